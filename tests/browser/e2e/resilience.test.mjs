// The hard cases: the page is closed (or reloaded) while messages wait offline, and the server
// is killed with SIGKILL and restarted mid-conversation. Run with: node --test tests/browser/e2e/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { withConsole, launch, waitRows, type, badge } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const bodies = (rows) => rows.map((r) => r[0]);

const setup = (t, env) => withConsole(browser, t, env);

test('typed offline, page closed, reloaded offline from the app shell, reopened online: delivered once, in order', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  const url = server.clientUrl(booking.ana, booking.id);
  let page = await clientContext.newPage();
  await page.goto(url);
  await badge(page, 'connected');
  await type(page, 'first, online');
  await waitRows(operator, 'the first message', (r) => r.length === 1);
  // The service worker has the app shell before the network goes.
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await clientContext.setOffline(true);
  await badge(page, 'offline');
  for (const text of ['kept 1', 'kept 2', 'kept 3']) await type(page, text);
  await waitRows(page, 'three pending', (r) => r.filter((x) => x[1] === 'sending').length === 3);
  // Reload without network: the shell comes from the service worker, the messages from IndexedDB.
  await page.reload();
  await badge(page, 'offline');
  const pending = await waitRows(page, 'pending after an offline reload', (r) => r.filter((x) => x[1] === 'sending').length === 3);
  assert.deepEqual(bodies(pending), ['first, online', 'kept 1', 'kept 2', 'kept 3']);
  await page.close();
  assert.equal((await waitRows(operator, 'nothing new yet', () => true)).length, 1);
  await clientContext.setOffline(false);
  page = await clientContext.newPage();
  await page.goto(url);
  await badge(page, 'connected');
  const seen = await waitRows(operator, 'the three kept messages', (r) => r.length === 4);
  assert.deepEqual(bodies(seen), ['first, online', 'kept 1', 'kept 2', 'kept 3']);
  const mine = await waitRows(page, 'delivered at the client', (r) => r.length === 4 && r.every((x) => x[1] === 'delivered' || x[1] === 'read'));
  assert.deepEqual(bodies(mine), bodies(seen));
  // A second tab of the same user shows each message once, too.
  const second = await clientContext.newPage();
  await second.goto(url);
  await badge(second, 'connected');
  assert.deepEqual(bodies(await waitRows(second, 'the same four', (r) => r.length === 4)), bodies(seen));
});

test('ticks survive a reload, online and offline: read stays read', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  const page = await clientContext.newPage();
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  await type(page, 'read before the reload');
  await waitRows(operator, 'the message at the operator', (r) => r.length === 1);
  await waitRows(page, 'read at the client', (r) => r[0]?.[1] === 'read');
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  // Online: the first rows shown after the reload already say read, before any receipt.
  await page.reload();
  assert.deepEqual(await waitRows(page, 'the row after an online reload', (r) => r.length === 1), [['read before the reload', 'read']]);
  // Offline: no server to ask; IndexedDB alone keeps the tick.
  await clientContext.setOffline(true);
  await page.reload();
  await badge(page, 'offline');
  assert.deepEqual(await waitRows(page, 'the row after an offline reload', (r) => r.length === 1), [['read before the reload', 'read']]);
  await clientContext.setOffline(false);
  await badge(page, 'connected');
  assert.deepEqual(await waitRows(page, 'the row back online', (r) => r.length === 1), [['read before the reload', 'read']]);
});

test('an expired link shows the expired state, keeps what is typed, and sends it once getToken works', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  // Long enough for the page to load and connect on a busy machine before the token runs out.
  const short = (await server.admin('POST', '/v1/tokens', { user_id: 'ana', role: 'client', ttl_s: 8 })).token;
  const page = await clientContext.newPage();
  await page.goto(server.clientUrl(short, booking.id));
  await badge(page, 'connected');
  // The server closes at the token's expiry: the page says so instead of reconnecting forever.
  await badge(page, 'expired');
  const status = page.locator('surechat-connection-status');
  assert.equal(await status.locator('.label').textContent(), 'Session expired');
  await page.waitForFunction(() => /expired/.test(document.getElementById('presence')?.textContent ?? ''));
  await type(page, 'typed after the link expired');
  await waitRows(page, 'kept as sending', (r) => r.at(-1)?.[1] === 'sending');
  assert.equal(await page.evaluate(() => window.surechat.status.name), 'expired', 'no reconnect loop');
  // The integrator's page can get tokens now; the guest presses "Sign in again".
  const fresh = await server.token('ana', 'client');
  await page.evaluate((token) => { window.surechat.options.getToken = async () => token; }, fresh);
  await status.getByRole('button', { name: 'Sign in again' }).click();
  await badge(page, 'connected');
  const seen = await waitRows(operator, 'the kept message', (r) => r.length === 1);
  assert.deepEqual(bodies(seen), ['typed after the link expired']);
  await waitRows(page, 'delivered at the client', (r) => r.length === 1 && (r[0][1] === 'delivered' || r[0][1] === 'read'));
  assert.equal((await waitRows(operator, 'still once', () => true)).length, 1);
});

test('server SIGKILLed and restarted mid-conversation: both pages reconnect and resume, nothing missing or doubled', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  const client = await clientContext.newPage();
  await client.goto(server.clientUrl(booking.ana, booking.id));
  await badge(client, 'connected');
  await type(client, 'c1');
  await waitRows(operator, 'c1 at the operator', (r) => r.length === 1);
  await type(operator, 'o1');
  await waitRows(client, 'c1 and o1', (r) => r.length === 2 && r[0][1] === 'read');
  await server.kill();
  await badge(client, 'reconnecting');
  await badge(operator, 'reconnecting');
  await type(client, 'c2 while the server is down');
  await type(operator, 'o2 while the server is down');
  await waitRows(client, 'c2 pending', (r) => r.at(-1)[1] === 'sending');
  await server.restart();
  await badge(client, 'connected');
  await badge(operator, 'connected');
  await type(client, 'c3 after restart');
  const expected = ['c1', 'o1', 'c2 while the server is down', 'o2 while the server is down', 'c3 after restart'];
  const done = (r) => r.length === 5 && new Set(bodies(r)).size === 5;
  const atClient = await waitRows(client, 'five at the client', done);
  const atOperator = await waitRows(operator, 'five at the operator', done);
  assert.deepEqual(bodies(atClient), bodies(atOperator), 'both sides show the same order');
  assert.deepEqual([...bodies(atClient)].sort(), [...expected].sort());
  assert.ok(bodies(atClient).indexOf('c2 while the server is down') < bodies(atClient).indexOf('c3 after restart'));
  await waitRows(client, 'all own messages read', (r) => r.filter((x) => x[1]).every((x) => x[1] === 'read'));
});

// Two tabs of the same user in one browser: the tab that typed offline is closed while the
// other stays open the whole time. The open tab must take the closed tab's messages over and
// send them without being reloaded — whether it opened before or after the closed one.
for (const order of ['before', 'after']) {
  test(`a tab closed with messages typed offline: a tab opened ${order} it sends them once, in order, without a reload`, async (t) => {
    const { server, booking, clientContext, operator } = await setup(t);
    const url = server.clientUrl(booking.ana, booking.id);
    const open = async () => {
      const page = await clientContext.newPage();
      await page.goto(url);
      await badge(page, 'connected');
      return page;
    };
    let a;
    let b;
    if (order === 'before') {
      b = await open();
      a = await open();
    } else {
      a = await open();
      b = await open();
    }
    // Navigations of B are counted: a reload would hide the bug this test is about.
    let navigations = 0;
    b.on('framenavigated', (frame) => { if (frame === b.mainFrame()) navigations += 1; });
    await clientContext.setOffline(true);
    await badge(a, 'offline');
    await badge(b, 'offline');
    const typed = ['tab A 1', 'tab A 2', 'tab A 3'];
    for (const text of typed) await type(a, text);
    await waitRows(a, 'three pending in tab A', (r) => r.length === 3 && r.every((x) => x[1] === 'sending'));
    await a.close();
    await clientContext.setOffline(false);
    await badge(b, 'connected');
    const seen = await waitRows(operator, 'the three messages of the closed tab', (r) => r.length >= 3);
    assert.deepEqual(bodies(seen), typed);
    const mine = await waitRows(b, 'delivered in the open tab', (r) => r.length === 3 && r.every((x) => x[1] === 'delivered' || x[1] === 'read'));
    assert.deepEqual(bodies(mine), typed);
    // Stored once on the server, and nothing left in the origin's outbox.
    const history = await server.as(booking.olga, 'GET', `/v1/conversations/${booking.id}/messages`);
    assert.deepEqual(history.messages.map((m) => m.body), typed);
    const outbox = await b.evaluate(() => new Promise((resolve, reject) => {
      const request = indexedDB.open('surechat:ana');
      request.onsuccess = () => {
        const get = request.result.transaction('outbox').objectStore('outbox').count();
        get.onsuccess = () => resolve(get.result);
        get.onerror = () => reject(get.error);
      };
      request.onerror = () => reject(request.error);
    }));
    assert.equal(outbox, 0);
    assert.equal(navigations, 0, 'tab B was never reloaded');
  });
}
