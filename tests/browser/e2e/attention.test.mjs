// Reaching the person in the page: a tab in the background counts new messages in its title and
// icon and shows a notification once allowed; nothing asks for permission on load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, waitRows, type, badge } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/**
 * Runs before the page's scripts: records permission requests and notifications, and lets the
 * test hide the page (`window.hide(true)`) as switching tabs would.
 */
function instrument() {
  window.__asked = 0;
  window.__notes = [];
  let hidden = false;
  Object.defineProperty(document, 'visibilityState', { get: () => (hidden ? 'hidden' : 'visible') });
  Object.defineProperty(document, 'hidden', { get: () => hidden });
  document.hasFocus = () => !hidden;
  window.hide = (on) => { hidden = on; document.dispatchEvent(new Event('visibilitychange')); };
  const Real = window.Notification;
  class Recorded {
    static get permission() { return Real.permission; }
    static requestPermission() { window.__asked += 1; return Real.requestPermission(); }
    constructor(title, options) { window.__notes.push({ title, body: options?.body, tag: options?.tag }); }
    close() {}
  }
  window.Notification = /** @type {any} */ (Recorded);
}

test('a hidden tab counts new messages in its title and notifies once allowed; no prompt on load', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const clientContext = await browser.newContext();
  const operatorContext = await browser.newContext();
  t.after(() => clientContext.close());
  t.after(() => operatorContext.close());
  const page = await clientContext.newPage();
  await page.addInitScript(instrument);
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  const title = await page.title();
  assert.equal(await page.evaluate(() => window.__asked), 0, 'no permission prompt on load');
  const operator = await operatorContext.newPage();
  await operator.goto(server.operatorUrl(booking.olga, booking.id));
  await badge(operator, 'connected');

  // Visible: a reply is not news to count.
  await type(operator, 'seen at once');
  await waitRows(page, 'the first reply', (r) => r.length === 1);
  assert.equal(await page.title(), title);

  // In the background, not yet allowed: counted, no notification.
  await page.evaluate(() => window.hide(true));
  await type(operator, 'while you were away');
  await page.waitForFunction((t0) => document.title === `(1) ${t0}`, title);
  assert.equal(await page.evaluate(() => window.__notes.length), 0);

  // Allowed (the guest clicked; the browser granted it): the next reply notifies.
  await clientContext.grantPermissions(['notifications'], { origin: server.base });
  await type(operator, 'the flat is ready');
  await page.waitForFunction((t0) => document.title === `(2) ${t0}`, title);
  const notes = await page.evaluate(() => window.__notes);
  assert.equal(notes.length, 1);
  assert.equal(notes[0].body, 'the flat is ready');
  assert.equal(notes[0].tag, `surechat:${booking.id}`);
  const icon = await page.evaluate(() => document.querySelector('link[rel~="icon"]')?.getAttribute('href') ?? '');
  assert.match(icon, /^data:image\/png;base64,/);

  // Back to the tab: the count is gone.
  await page.evaluate(() => window.hide(false));
  await page.waitForFunction((t0) => document.title === t0, title);
  assert.equal(await page.evaluate(() => window.__asked), 0, 'never asked without a click');
});

test('"read" means seen: a message below the fold is read only once scrolled into view', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const clientContext = await browser.newContext({ viewport: { width: 420, height: 520 } });
  const operatorContext = await browser.newContext();
  t.after(() => clientContext.close());
  t.after(() => operatorContext.close());
  const page = await clientContext.newPage();
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  const operator = await operatorContext.newPage();
  await operator.goto(server.operatorUrl(booking.olga, booking.id));
  await badge(operator, 'connected');
  for (let i = 1; i <= 14; i += 1) await type(operator, `line ${i}`);
  await waitRows(page, 'fourteen lines', (r) => r.length === 14);
  await waitRows(operator, 'the fourteen read', (r) => r.length === 14 && r.every((x) => x[1] === 'read'));
  // The guest scrolls back up; a new reply arrives below the fold.
  const list = page.locator('surechat-chat ol');
  await list.evaluate((ol) => { ol.scrollTop = 0; });
  await type(operator, 'below the fold');
  await waitRows(page, 'the new reply', (r) => r.length === 15);
  await page.locator('surechat-chat .pill').waitFor({ state: 'visible' });
  await waitRows(operator, 'delivered, not read', (r) => r[14]?.[1] === 'delivered');
  // The guest's device holds it but has not read it: nothing asks for read past what was seen.
  const wanted = await page.evaluate((id) => window.surechat.session.conversations.get(id).readWanted, booking.id);
  assert.ok(wanted < 15, `read asked up to ${wanted}`);
  assert.equal((await waitRows(operator, 'still delivered', () => true))[14][1], 'delivered');
  // Scrolled into view (the "new messages" button): now it is read.
  await page.locator('surechat-chat .pill').click();
  await waitRows(operator, 'read once seen', (r) => r[14]?.[1] === 'read');
});

test('the console notifies of a conversation newly its own, and of guests in its own and unassigned conversations only', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const context = await browser.newContext();
  t.after(() => context.close());
  await context.grantPermissions(['notifications'], { origin: server.base });
  const page = await context.newPage();
  await page.addInitScript(instrument);
  await page.goto(server.operatorUrl(booking.olga, booking.id, 'mine'));
  await badge(page, 'connected');
  // The first inbox answer is what there is, not news.
  await page.waitForFunction(() => document.querySelector('#inbox li') !== null);
  await page.evaluate(() => window.hide(true));

  // A new booking assigned to olga: one notification, tagged with it.
  await server.admin('PUT', '/v1/conversations/booking-2002', {
    participants: [{ user_id: 'ben', role: 'client' }, { user_id: 'olga', role: 'operator' }],
    metadata: { guest: 'Ben Okafor' },
  });
  await server.admin('POST', '/v1/conversations/booking-2002/assign', { operator_id: 'olga' });
  await page.waitForFunction(() => window.__notes.some((n) => n.tag === 'surechat:booking-2002'));
  const note = await page.evaluate(() => window.__notes.find((n) => n.tag === 'surechat:booking-2002'));
  assert.equal(note.title, 'New conversation');
  assert.equal(note.body, 'Ben Okafor (booking-2002)');

  // Another operator's conversation: its guest's message is not olga's news; then a guest in
  // olga's own conversation is (the later notification shows the earlier was not counted).
  await server.token('ivan', 'operator');
  await server.admin('PUT', '/v1/conversations/booking-3003', {
    participants: [{ user_id: 'cleo', role: 'client' }, { user_id: 'olga', role: 'operator' }, { user_id: 'ivan', role: 'operator' }],
  });
  await server.admin('POST', '/v1/conversations/booking-3003/assign', { operator_id: 'ivan' });
  const cleo = await server.token('cleo', 'client');
  const ben = await server.token('ben', 'client');
  await page.evaluate(() => { window.__notes.length = 0; });
  const before = await page.title();
  await server.as(cleo, 'POST', '/v1/conversations/booking-3003/messages', { id: crypto.randomUUID(), body: 'for ivan' });
  await server.as(ben, 'POST', '/v1/conversations/booking-2002/messages', { id: crypto.randomUUID(), body: 'for olga' });
  await page.waitForFunction(() => window.__notes.some((n) => n.body === 'for olga'));
  const notes = await page.evaluate(() => window.__notes);
  assert.deepEqual(notes.map((n) => n.body), ['for olga']);
  const count = (title) => Number(/^\((\d+)\)/.exec(title)?.[1] ?? 0);
  assert.equal(count(await page.title()), count(before) + 1);
});
