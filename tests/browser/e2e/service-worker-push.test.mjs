// The demo's service worker shows Web Push messages as notifications: the server's payload gives
// title, text and conversation, a conversation's notifications collapse into one, and a push it
// cannot read still shows one (the subscription promised the browser every push is shown).
// Pushes are handed to the worker through the DevTools protocol, as a push service would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, badge, WAIT_MS, until } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** The notifications the page's service worker shows now. */
function shown(page) {
  return page.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
  });
}


test('pushes become notifications, one per conversation; an unreadable push still shows one', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const context = await browser.newContext();
  t.after(() => context.close());
  await context.grantPermissions(['notifications'], { origin: server.base });
  const page = await context.newPage();

  // The worker's registration id, from DevTools' account of registrations.
  const cdp = await context.newCDPSession(page);
  const scope = `${server.base}/web/`;
  let registrationId = null;
  cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
    const ours = registrations.find((r) => r.scopeURL === scope && !r.isDeleted);
    if (ours) registrationId = ours.registrationId;
  });
  await cdp.send('ServiceWorker.enable');
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await until('the registration reported over DevTools', () => registrationId !== null);
  const worker = await until('the running worker', () => context.serviceWorkers().find((w) => w.url().startsWith(scope)));
  // Counts the notifications the worker finished showing. Chromium may drop a notification whose
  // showNotification is still under way when getNotifications runs, so the notifications are
  // read only once the worker's call has resolved, never polled meanwhile.
  await worker.evaluate(() => {
    const real = ServiceWorkerRegistration.prototype.showNotification;
    self.shownCount = 0;
    ServiceWorkerRegistration.prototype.showNotification = function (...args) {
      return real.apply(this, args).then((r) => { self.shownCount += 1; return r; });
    };
  });
  assert.deepEqual(await shown(page), []);

  /** Delivers a push and returns the notifications once the worker has shown one for it. */
  const push = async (data) => {
    const count = await worker.evaluate(() => self.shownCount);
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.base, registrationId, data });
    await until(`a notification for ${JSON.stringify(data)}`, () => worker.evaluate((n) => self.shownCount > n, count));
    return shown(page);
  };
  const message = (conversation, title, body, seq) => JSON.stringify({
    type: 'message', conversation_id: conversation, title, body, url: `/web/demo/client.html#conversation=${conversation}`, seq,
  });

  // A reply in the booking's conversation.
  let notes = await push(message(booking.id, 'Olga replied', 'The flat is ready', 7));
  assert.equal(notes.length, 1, JSON.stringify(notes));
  assert.equal(notes[0].title, 'Olga replied');
  assert.equal(notes[0].body, 'The flat is ready');
  assert.equal(notes[0].tag, `surechat:${booking.id}`, 'the tag the page\'s own notifications use');
  assert.equal(notes[0].data.url, `${server.base}/web/demo/client.html#conversation=${booking.id}`);
  assert.equal(notes[0].data.conversation, booking.id);

  // The next one replaces it; another conversation's stands beside it.
  notes = await push(message(booking.id, 'Olga replied', 'Key code is 4711', 8));
  assert.deepEqual(notes.map((n) => n.body), ['Key code is 4711']);
  notes = await push(message('booking-2002', 'Oleg replied', 'See you at six', 3));
  assert.deepEqual(notes.map((n) => n.tag).sort(), [`surechat:${booking.id}`, 'surechat:booking-2002']);

  // A page of another origin in the payload is not kept for the click to open.
  notes = await push(JSON.stringify({ type: 'message', conversation_id: 'booking-3003', title: 'x', body: 'y', url: 'https://elsewhere.example/', seq: 1 }));
  assert.equal(notes.find((n) => n.tag === 'surechat:booking-3003')?.data.url, null);

  // No payload, a payload that is not JSON, JSON without a title: a plain notification each time.
  for (const data of ['', 'not json', '{"type":"message"}']) {
    await page.evaluate(async () => {
      for (const n of await (await navigator.serviceWorker.ready).getNotifications({ tag: 'surechat' })) n.close();
    });
    await until('the plain notification closed', async () => !(await shown(page)).some((n) => n.tag === 'surechat'));
    notes = await push(data);
    const plain = notes.filter((n) => n.tag === 'surechat');
    assert.equal(plain.length, 1, `a plain notification for ${JSON.stringify(data)}: ${JSON.stringify(notes)}`);
    assert.equal(plain[0].title, 'New message');
    assert.equal(plain[0].body, 'Open the chat to read it.');
  }
  assert.equal(notes.length, 4, 'three conversations and the plain one');
});
