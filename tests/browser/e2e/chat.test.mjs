// Client and operator in two browser contexts against a real server: messages both ways with
// ticks, offline typing, a slow network. Run with: node --test tests/browser/e2e/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, waitRows, type, badge, ARTIFACTS, WAIT_MS } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A fresh server with one booking, and both pages open and connected. */
async function setup(t) {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const clientContext = await browser.newContext();
  const operatorContext = await browser.newContext();
  t.after(() => clientContext.close());
  t.after(() => operatorContext.close());
  const client = await clientContext.newPage();
  const operator = await operatorContext.newPage();
  await client.goto(server.clientUrl(booking.ana, booking.id));
  await operator.goto(server.operatorUrl(booking.olga, booking.id));
  await badge(client, 'connected');
  await badge(operator, 'connected');
  return { server, booking, client, operator, clientContext, operatorContext };
}

const bodies = (rows) => rows.map((r) => r[0]);

test('messages both ways; ticks move sending → sent → delivered → read on the sender side', async (t) => {
  const { client, operator } = await setup(t);
  // The operator's page is in the background: it stores the message (delivered) without
  // reading it, until it becomes visible.
  // Recorded inside the page: a callback into the test process would arrive asynchronously,
  // possibly after the ticks it reports are already on screen.
  await client.evaluate(() => {
    window.statuses = [];
    window.surechat.on('delivery_status', (e) => window.statuses.push(e.status.name));
  });
  await type(client, 'Hi! Can I bring my dog?');
  await waitRows(operator, 'the client message at the operator', (r) => bodies(r).includes('Hi! Can I bring my dog?'));
  await waitRows(client, 'read ticks at the client', (r) => r[0]?.[1] === 'read');
  await client.waitForFunction(() => window.statuses.includes('read'), null, { timeout: 20000 });
  const statuses = await client.evaluate(() => window.statuses);
  assert.deepEqual(statuses.filter((s, i) => s !== statuses[i - 1]), ['sending', 'sent', 'delivered', 'read']);
  await type(operator, 'Of course, dogs are welcome.');
  await waitRows(client, 'the answer at the client', (r) => bodies(r).includes('Of course, dogs are welcome.'));
  await waitRows(operator, 'read ticks at the operator', (r) => r.find((x) => x[0] === 'Of course, dogs are welcome.')?.[1] === 'read');
  const indicator = operator.locator('surechat-chat surechat-delivery-indicator[status="read"]');
  assert.match(await indicator.first().getAttribute('title'), /Read/);
  assert.deepEqual(bodies(await waitRows(client, 'two rows', (r) => r.length === 2)), ['Hi! Can I bring my dog?', 'Of course, dogs are welcome.']);
});

test('offline: three messages wait as sending under an offline badge, then arrive once, in order', async (t) => {
  const { client, operator, clientContext } = await setup(t);
  await clientContext.setOffline(true);
  await badge(client, 'offline');
  for (const text of ['one', 'two', 'three']) await type(client, text);
  await waitRows(client, 'three pending rows', (r) => r.length === 3 && r.every((x) => x[1] === 'sending'));
  const banner = client.locator('surechat-chat surechat-pending-banner .banner');
  assert.match(await banner.textContent(), /3 messages waiting/);
  await clientContext.setOffline(false);
  await waitRows(operator, 'all three at the operator', (r) => r.length === 3);
  assert.deepEqual(bodies(await waitRows(operator, 'in order', () => true)), ['one', 'two', 'three']);
  await waitRows(client, 'delivered at the client', (r) => r.every((x) => x[1] === 'delivered' || x[1] === 'read'));
  assert.deepEqual(bodies(await waitRows(operator, 'still three', (r) => r.length === 3)), ['one', 'two', 'three']);
});

test('slow network (latency and throttling): everything arrives, in order', async (t) => {
  const { client, operator } = await setup(t);
  const cdp = await client.context().newCDPSession(client);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 400, downloadThroughput: 50 * 1024 / 8, uploadThroughput: 20 * 1024 / 8,
  });
  const sent = Array.from({ length: 8 }, (_, i) => `slow ${i + 1}`);
  for (const text of sent) await type(client, text);
  await type(operator, 'reply on a fast line');
  const seen = await waitRows(operator, 'all eight at the operator', (r) => bodies(r).filter((b) => b.startsWith('slow')).length === 8);
  assert.deepEqual(bodies(seen).filter((b) => b.startsWith('slow')), sent);
  const atClient = await waitRows(client, 'the reply and read ticks at the client', (r) => r.length === 9 && r.filter((x) => x[1]).every((x) => x[1] === 'read'));
  assert.equal(new Set(bodies(atClient)).size, 9);
});

test('a message over the size limit: the composer says so in characters; refused by the server it fails with Edit, never Retry', async (t) => {
  const { client, operator, booking } = await setup(t);
  await type(client, 'before');
  // Typed: the composer keeps it and says the limit in characters (4096, not 16384 bytes).
  await type(client, 'x'.repeat(17000));
  const error = client.locator('surechat-chat .error');
  await error.filter({ hasText: /4096 characters/ }).waitFor({ timeout: WAIT_MS });
  const input = client.locator('surechat-chat textarea');
  assert.equal((await input.inputValue()).length, 17000);
  assert.match(await client.locator('surechat-chat .counter').textContent(), /12904 characters over the limit of 4096/);
  // Sent anyway by the app through the SDK: the server refuses it for good.
  await input.fill('');
  await client.evaluate((id) => window.surechat.send(id, 'x'.repeat(17000)), booking.id);
  await type(client, 'after');
  await waitRows(client, 'three rows, one failed', (r) => r.length === 3 && r.some((x) => x[1] === 'failed'));
  const row = client.locator('surechat-chat li[data-status="failed"]');
  assert.match(await row.locator('surechat-delivery-indicator').getAttribute('title'), /Failed: it is too long for this chat/);
  assert.equal(await row.locator('button.retry').count(), 0);
  // The others were not held up.
  await waitRows(operator, 'before and after at the operator', (r) => bodies(r).join() === 'before,after');
  // Edit: the failed message goes back into the composer, shortened, and is sent anew.
  await row.locator('button.edit').click();
  assert.equal((await input.inputValue()).length, 17000);
  assert.equal(await input.evaluate((el) => el.getRootNode().activeElement === el), true);
  await input.fill('x'.repeat(100));
  await input.press('Enter');
  await waitRows(operator, 'the edited message', (r) => r.length === 3 && r[2][0] === 'x'.repeat(100));
  const final = await waitRows(client, 'no failed row left', (r) => r.length === 3 && !r.some((x) => x[1] === 'failed'));
  assert.deepEqual(bodies(final), ['before', 'after', 'x'.repeat(100)]);
  assert.equal(await error.textContent(), '');
  await client.screenshot({ path: `${ARTIFACTS}/client-after-edit.png` });
});
