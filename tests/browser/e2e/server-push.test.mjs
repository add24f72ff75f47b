// The server's Web Push, end to end, against a local push service (push-service.mjs) that checks
// every request's VAPID signature and opens each payload with the subscription's own keys: a push
// goes out only when none of the person's devices is connected and the message stayed unread for
// `push_delay_ms`; a burst is one push; notes never reach a push; a subscription the push
// service says is gone (410) is removed.
//
// Absence is shown without waiting for time to pass: a second person's push comes from a later
// round of the same loop, after which the first person's count is final.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, badge, waitRows, WAIT_MS } from './harness.mjs';
import { startPushService } from './push-service.mjs';

const SETTINGS = {
  SURECHAT_PUSH_ALLOW_PRIVATE: 'true',
  SURECHAT_PUSH_DELAY_MS: '800',
  SURECHAT_REACH_INTERVAL_MS: '100',
  SURECHAT_PUSH_SUBJECT: 'mailto:ops@hotel.example',
};

let push;
let browser;
before(async () => { push = await startPushService(); browser = await launch(); });
after(async () => { await push?.close(); await browser?.close(); });

/** Sends a message as `token` (a note with `kind: 'note'`). */
function say(server, token, conversation, body, kind) {
  return server.as(token, 'POST', `/v1/conversations/${conversation}/messages`, { id: crypto.randomUUID(), body, ...(kind ? { kind } : {}) });
}

/** A booking `id` between `guest` and olga; the guest's token. */
async function booking(server, id, guest) {
  await server.admin('PUT', `/v1/conversations/${id}`, {
    participants: [{ user_id: guest, role: 'client' }, { user_id: 'olga', role: 'operator' }],
  });
  return server.token(guest, 'client');
}

test('a message unread with no device connected is pushed once, encrypted and signed', async (t) => {
  const server = await new Server(SETTINGS).start();
  t.after(() => server.stop());
  const ana = await booking(server, 'B-1', 'ana');
  const olga = await server.token('olga', 'operator');
  const { public_key: key } = await (await fetch(`${server.base}/v1/push/key`)).json();
  const registered = await server.as(ana, 'POST', '/v1/push/subscriptions', push.subscription('ana-1', { applicationServerKey: key }));
  assert.match(registered.id, /^[0-9a-f]{24}$/);

  await say(server, olga, 'B-1', 'VIP: upgrade quietly', 'note');
  await say(server, olga, 'B-1', 'Your room is ready.');
  await say(server, olga, 'B-1', 'Check-in from 3 pm.');
  const [first] = await push.waitFor('ana-1', 1, WAIT_MS);
  assert.deepEqual(push.failures, []);
  assert.equal(first.key, key, 'signed with the key the browser subscribed with');
  assert.equal(first.payload.type, 'message');
  assert.equal(first.payload.conversation_id, 'B-1');
  assert.equal(first.payload.seq, 3);
  assert.equal(first.payload.body, 'New message about booking B-1', 'no text in pushes by default');
  assert.match(first.payload.url, /\/web\/demo\/client\.html\?surechat_link=/);
  assert.ok(!first.plaintext.toString().includes('VIP'));
  assert.match(first.topic ?? '', /^[A-Za-z0-9_-]{1,32}$/);
  assert.ok(first.ttl > 0);

  // The push's link opens the conversation once, as a fresh session of ana.
  const link = new URL(first.payload.url).searchParams.get('surechat_link');
  const redeem = (token) => fetch(`${server.base}/v1/links/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const opened = await redeem(link);
  assert.equal(opened.status, 200);
  assert.equal((await opened.json()).user_id, 'ana');
  assert.equal((await redeem(link)).status, 410);

  // The burst was one push: ben's later push shows ana's count is final.
  const ben = await booking(server, 'B-2', 'ben');
  await server.as(ben, 'POST', '/v1/push/subscriptions', push.subscription('ben-1', { applicationServerKey: key }));
  await say(server, olga, 'B-2', 'Breakfast is at 7.');
  await push.waitFor('ben-1', 1, WAIT_MS);
  assert.equal(push.received('ana-1').length, 1);
});

test('no push while a device is connected; a gone subscription is removed', async (t) => {
  const server = await new Server(SETTINGS).start();
  t.after(() => server.stop());
  const ana = await booking(server, 'B-1', 'ana');
  const olga = await server.token('olga', 'operator');
  const { public_key: key } = await (await fetch(`${server.base}/v1/push/key`)).json();
  await server.as(ana, 'POST', '/v1/push/subscriptions', push.subscription('ana-2', { applicationServerKey: key }));
  // Ana's page is open, in a background tab (hidden: nothing is read).
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.addInitScript(() => {
    Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' });
    Object.defineProperty(document, 'hidden', { get: () => true });
  });
  await page.goto(server.clientUrl(ana, 'B-1'));
  await badge(page, 'connected');
  await say(server, olga, 'B-1', 'Your room is ready.');
  const ben = await booking(server, 'B-2', 'ben');
  await server.as(ben, 'POST', '/v1/push/subscriptions', push.subscription('ben-2', { applicationServerKey: key }));
  await say(server, olga, 'B-2', 'Breakfast is at 7.');
  await push.waitFor('ben-2', 1, WAIT_MS);
  assert.equal(push.received('ana-2').length, 0, 'ana has a device connected');

  // The tab closes: the message is still unread, so now it is pushed.
  await page.close();
  await push.waitFor('ana-2', 1, WAIT_MS);

  // The push service says ben's browser is gone: the subscription is removed.
  push.gone('ben-2');
  await say(server, olga, 'B-2', 'Parking is free.');
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { subscriptions } = await server.as(ben, 'GET', '/v1/push/subscriptions');
    if (subscriptions.length === 0) break;
    assert.ok(Date.now() < deadline, 'the gone subscription was not removed');
    await new Promise((r) => setTimeout(r, 50)); // polling interval, not a synchronisation point
  }
  assert.deepEqual(push.failures.filter((f) => f.status !== 410), []);
});

test('subscriptions are checked and belong to their user', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const ana = await booking(server, 'B-1', 'ana');
  const ben = await server.token('ben', 'client');
  const post = (token, body) => fetch(`${server.base}/v1/push/subscriptions`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const good = push.subscription('ana-3');
  // Without push_allow_private, a loopback http:// endpoint is refused.
  const local = await post(ana, good);
  assert.equal(local.status, 400);
  assert.equal((await local.json()).code, 'invalid_subscription');
  const remote = { ...good, endpoint: 'https://push.example.net/send/ana-3' };
  const created = await post(ana, remote);
  assert.equal(created.status, 201);
  const { id } = await created.json();
  assert.equal((await post(ana, remote)).status, 200, 'the same endpoint again is a renewal');
  const badKey = await post(ana, { ...remote, keys: { ...remote.keys, p256dh: 'AAAA' } });
  assert.equal((await badKey.json()).code, 'invalid_subscription');
  // Ben can neither see nor remove ana's.
  assert.deepEqual((await server.as(ben, 'GET', '/v1/push/subscriptions')).subscriptions, []);
  const removeAs = (token) => fetch(`${server.base}/v1/push/subscriptions/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
  assert.equal((await removeAs(ben)).status, 404);
  assert.equal((await removeAs(ana)).status, 204);
  assert.deepEqual((await server.as(ana, 'GET', '/v1/push/subscriptions')).subscriptions, []);
});

test("a push's link opens the guest's conversation in the demo page once", async (t) => {
  const server = await new Server(SETTINGS).start();
  t.after(() => server.stop());
  const ana = await booking(server, 'B-1', 'ana');
  const olga = await server.token('olga', 'operator');
  const { public_key: key } = await (await fetch(`${server.base}/v1/push/key`)).json();
  await server.as(ana, 'POST', '/v1/push/subscriptions', push.subscription('ana-4', { applicationServerKey: key }));
  await say(server, olga, 'B-1', 'Your room is ready.');
  const [received] = await push.waitFor('ana-4', 1, WAIT_MS);
  const url = received.payload.url;
  assert.ok(url.startsWith(`${server.base}/web/demo/client.html?surechat_link=`), url);

  const first = await browser.newContext();
  t.after(() => first.close());
  const page = await first.newPage();
  await page.goto(url);
  await badge(page, 'connected');
  const shown = await waitRows(page, 'the answer', (r) => r.some(([body]) => body.includes('Your room is ready.')));
  assert.ok(shown.length >= 1);
  // The link left the address bar; a reload keeps the session.
  assert.equal(new URL(page.url()).search, '');
  await page.reload();
  await badge(page, 'connected');

  // Another browser with the same link: used already, said plainly.
  const second = await browser.newContext();
  t.after(() => second.close());
  const other = await second.newPage();
  await other.goto(url);
  await other.waitForSelector('.problem');
  assert.match(await other.textContent('.problem'), /used already/);
});
