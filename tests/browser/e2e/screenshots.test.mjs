// Screenshots of the client page and the operator console, desktop and 360 px wide, with a
// conversation in every state worth seeing: read, delivered, pending and failed messages; and a
// conversation with a photo and a PDF.
// Saved to tests/browser/artifacts/; copy to docs/screenshots/ with SCREENSHOTS=docs.
import { test, before, after } from 'node:test';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Server, launch, waitRows, type, badge, until, ARTIFACTS, ROOT } from './harness.mjs';
import { pdf, png } from './files.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('screenshots: client page and operator console, desktop and 360 px', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  await server.booking('booking-1002');
  await server.booking('booking-1003');
  // Other bookings with unread messages, so the inbox shows its counts.
  const post = (conversation, body) => fetch(`${server.base}/v1/conversations/${conversation}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${booking.ana}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: crypto.randomUUID(), body }),
  });
  await post('booking-1002', 'Hello, is breakfast included?');
  await post('booking-1002', 'And is there a crib for the baby?');
  await post('booking-1003', 'We will be late, around 11 pm.');
  const bookings = [['booking-1001', 'Ana Lima', 'Sea View 3B', '12–15 Jun'], ['booking-1002', 'Jonas Berg', 'Garden Loft', '20–22 Jun'],
    ['booking-1003', 'Mia Chen', 'Old Town 1A', '1–8 Jul']];
  for (const [id, guest, apartment, dates] of bookings) {
    await server.admin('PUT', `/v1/conversations/${id}`, { metadata: { guest, apartment, dates, guests: 2 } });
  }
  // The console with every view (scope `all`); olga takes booking-1001 and leaves a note.
  const olga = await server.token('olga', 'operator', 'all');
  const asOlga = (path, body) => fetch(`${server.base}${path}`, {
    method: 'POST', headers: { Authorization: `Bearer ${olga}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  await asOlga(`/v1/conversations/${booking.id}/assign`, { operator_id: 'olga' });
  await server.admin('PUT', '/v1/operators/bob', { name: 'Bob' });
  await server.admin('POST', '/v1/conversations/booking-1003/participants', { user_id: 'bob', role: 'operator' });
  await asOlga('/v1/conversations/booking-1003/assign', { operator_id: 'bob', note: 'late check-in, key box code sent' });
  // Every combination people see: desktop and phone, light and dark, English and Arabic. The
  // conversation is written once, in the first; later ones show it as it stands.
  const shots = [];
  let first = true;
  for (const [viewport, size] of [[{ width: 1100, height: 720 }, 'desktop'], [{ width: 360, height: 740 }, '360']]) {
    for (const colorScheme of /** @type {const} */ (['light', 'dark'])) {
      for (const lang of ['en', 'ar']) {
        const suffix = [size, colorScheme === 'dark' ? 'dark' : '', lang === 'ar' ? 'ar' : ''].filter(Boolean).join('-');
        const options = { viewport, colorScheme, deviceScaleFactor: size === '360' ? 2 : 1 };
        const clientContext = await browser.newContext(options);
        const operatorContext = await browser.newContext(options);
        const client = await clientContext.newPage();
        const operator = await operatorContext.newPage();
        const language = lang === 'ar' ? '&lang=ar' : '';
        await client.goto(server.clientUrl(booking.ana, booking.id) + language);
        await operator.goto(server.operatorUrl(olga, booking.id, 'all') + language);
        await badge(client, 'connected');
        await operator.locator('#badge[status="connected"]').waitFor();
        if (first) {
          await type(client, 'Hi! Can I bring my dog to the apartment?');
          await waitRows(operator, 'first', (r) => r.length === 2);
          await type(operator, 'Of course, dogs are welcome. Please keep him off the sofa.');
          await waitRows(client, 'answer', (r) => r.length === 3);
          await operator.locator('#note-switch').check();
          await type(operator, 'Asked the cleaners to put a dog bed in.');
          await waitRows(operator, 'note', (r) => r.length === 4);
          await operator.locator('#note-switch').uncheck();
          await type(client, 'مرحبا، هل يوجد موقف للسيارات قريب؟');
          await waitRows(client, 'read', (r) => r.length === 4 && r[3][1] === 'read');
          // Over the server's limit, sent by the app through the SDK (the composer would refuse it).
          await client.evaluate((id) => window.surechat.send(id, 'x'.repeat(16400)), booking.id);
          await waitRows(client, 'failed', (r) => r.at(-1)[1] === 'failed');
        }
        // A message waiting while offline, in the English light shots.
        const offline = lang === 'en' && colorScheme === 'light';
        if (offline) {
          await clientContext.setOffline(true);
          await badge(client, 'offline');
          await type(client, 'Is there parking nearby?');
          await waitRows(client, 'pending', (r) => r.at(-1)[1] === 'sending');
        }
        await client.screenshot({ path: join(ARTIFACTS, `client-${suffix}.png`) });
        await operator.screenshot({ path: join(ARTIFACTS, `operator-${suffix}.png`) });
        shots.push(`client-${suffix}`, `operator-${suffix}`);
        if (offline) {
          await clientContext.setOffline(false);
          await waitRows(operator, 'delivered', (r) => r.at(-1)[0] === 'Is there parking nearby?');
        }
        await clientContext.close();
        await operatorContext.close();
        first = false;
      }
    }
  }
  if (process.env.SCREENSHOTS === 'docs') {
    mkdirSync(join(ROOT, 'docs/screenshots'), { recursive: true });
    for (const name of shots) {
      copyFileSync(join(ARTIFACTS, `${name}.png`), join(ROOT, 'docs/screenshots', `${name}.png`));
    }
  }
});

test('screenshots: a conversation with a photo and a PDF, desktop and 360 px, light and dark, English and Arabic', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  await server.admin('PUT', `/v1/conversations/${booking.id}`, { metadata: { guest: 'Ana Lima', apartment: 'Sea View 3B', dates: '12–15 Jun', guests: 2 } });
  const olga = await server.token('olga', 'operator', 'all');
  const shots = [];
  let first = true;
  for (const [viewport, size] of [[{ width: 1100, height: 720 }, 'desktop'], [{ width: 360, height: 740 }, '360']]) {
    for (const colorScheme of /** @type {const} */ (['light', 'dark'])) {
      for (const lang of ['en', 'ar']) {
        const suffix = [size, colorScheme === 'dark' ? 'dark' : '', lang === 'ar' ? 'ar' : ''].filter(Boolean).join('-');
        const options = { viewport, colorScheme, deviceScaleFactor: size === '360' ? 2 : 1 };
        const clientContext = await browser.newContext(options);
        const operatorContext = await browser.newContext(options);
        const client = await clientContext.newPage();
        const operator = await operatorContext.newPage();
        const language = lang === 'ar' ? '&lang=ar' : '';
        await client.goto(server.clientUrl(booking.ana, booking.id) + language);
        await operator.goto(server.operatorUrl(olga, booking.id, 'all') + language);
        await badge(client, 'connected');
        await operator.locator('#badge[status="connected"]').waitFor();
        if (first) {
          await type(client, 'Hi! The shower in the bathroom leaks, see the photo.');
          await client.locator('surechat-chat input[type=file]').setInputFiles([{ name: 'shower.png', mimeType: 'image/png', buffer: png(800, 600, [60, 110, 160], [220, 230, 240]) }]);
          await client.locator('surechat-chat textarea').press('Enter');
          await waitRows(operator, 'the photo', (r) => r.length === 2);
          await type(operator, 'Sorry about that! A plumber comes at 10:00. Here is your updated invoice.');
          await operator.locator('surechat-chat input[type=file]').setInputFiles([{ name: 'Invoice 2024-0612.pdf', mimeType: 'application/pdf', buffer: pdf(184_000) }]);
          await operator.locator('surechat-chat textarea').press('Enter');
          await waitRows(client, 'the invoice', (r) => r.length === 4 && r[1][1] === 'read');
        }
        const loaded = (page) => page.evaluate(() => [...document.querySelector('surechat-chat').shadowRoot.querySelectorAll('.thumb img')].every((img) => img.complete && img.naturalWidth > 0));
        await until('the thumbnails', async () => (await loaded(client)) && (await loaded(operator)));
        await client.locator('surechat-chat .file-card a.download[href]').waitFor();
        await client.screenshot({ path: join(ARTIFACTS, `client-attachments-${suffix}.png`) });
        await operator.screenshot({ path: join(ARTIFACTS, `operator-attachments-${suffix}.png`) });
        shots.push(`client-attachments-${suffix}`, `operator-attachments-${suffix}`);
        await clientContext.close();
        await operatorContext.close();
        first = false;
      }
    }
  }
  if (process.env.SCREENSHOTS === 'docs') {
    mkdirSync(join(ROOT, 'docs/screenshots'), { recursive: true });
    // A few in the docs; every one in the artifacts.
    const docs = ['client-attachments-desktop', 'client-attachments-360', 'client-attachments-360-dark-ar', 'operator-attachments-desktop'];
    for (const name of docs) copyFileSync(join(ARTIFACTS, `${name}.png`), join(ROOT, 'docs/screenshots', `${name}.png`));
  }
});
