// The operator console against a real server, with the client page in another browser context:
// assignment and transfer, status, presence, typing both ways, private notes, and the inbox
// after a reconnect. Every wait is for a DOM state, bounded. Run with: node --test tests/browser/e2e/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, type, badge, WAIT_MS, until } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A server with a short presence leave delay, so "operator left" shows within the test. */
async function start(t) {
  const server = await new Server({ SURECHAT_PRESENCE_LEAVE_DELAY_MS: '300' }).start();
  t.after(() => server.stop());
  return server;
}

/** A fresh page in its own browser context (closed after the test). */
async function open(t, url) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url);
  await badge(page, 'connected');
  return page;
}


/** The timeline of a page's chat: [{ kind, body }]. */
function timeline(page) {
  return page.evaluate(() => [...document.querySelector('surechat-chat').shadowRoot.querySelectorAll('li[data-id]')]
    .map((li) => ({ kind: li.dataset.kind, body: li.querySelector('.body').textContent })));
}

/** The inbox rows the console shows, in order. */
function inbox(page) {
  return page.evaluate(() => [...document.querySelectorAll('#inbox [data-conversation]')].map((b) => ({
    id: b.dataset.conversation, status: b.dataset.status, assignee: b.dataset.assignee,
    unread: Number(b.dataset.unread), waiting_since: b.dataset.waitingSince, last: b.dataset.last,
  })));
}

/** The same fields from `GET /v1/inbox`. */
async function inboxOverHttp(server, token, view) {
  const answer = await server.as(token, 'GET', `/v1/inbox?view=${view}`);
  return answer.conversations.map((r) => ({
    id: r.id, status: r.status, assignee: r.assignee ?? '', unread: r.unread,
    waiting_since: r.waiting_since === null || r.waiting_since === undefined ? '' : String(r.waiting_since),
    last: r.last_message?.id ?? '',
  }));
}

const post = (server, token, conversation, body, kind) => server.as(token, 'POST', `/v1/conversations/${conversation}/messages`,
  { id: crypto.randomUUID(), body, ...(kind ? { kind } : {}) });

test('assign to me, then transfer with a note: rows, case and both operators\' timelines follow', async (t) => {
  const server = await start(t);
  const { id, ana, olga } = await server.booking();
  await server.admin('PUT', `/v1/conversations/${id}`, { metadata: { guest: 'Ana Lima', apartment: 'Sea View 3B', nights: 3 } });
  const bob = await server.token('bob', 'operator');
  const client = await open(t, server.clientUrl(ana, id));
  await type(client, 'Can we check in early?');
  const console_ = await open(t, server.operatorUrl(olga, id, 'unassigned'));
  const row = console_.locator(`#inbox [data-conversation="${id}"]`);
  await until('the row with the client\'s message', async () => /Can we check in early\?/.test(await row.textContent()));
  assert.equal(await row.getAttribute('data-assignee'), '');
  assert.match(await row.textContent(), /Ana Lima/);
  assert.match(await row.textContent(), /Sea View 3B/);
  assert.notEqual(await row.getAttribute('data-waiting-since'), '');
  assert.match(await console_.locator('#facts').textContent(), /apartment:\s*Sea View 3B/);

  await console_.locator('#assign-me').click();
  await console_.locator('#case[data-assignee="olga"]').waitFor({ timeout: WAIT_MS });
  // It leaves the unassigned view and shows in "mine" with its assignee.
  await row.waitFor({ state: 'detached', timeout: WAIT_MS });
  await console_.locator('.views button[data-view="mine"]').click();
  await console_.locator(`#inbox [data-conversation="${id}"][data-assignee="olga"]`).waitFor({ timeout: WAIT_MS });
  await until('the assignment entry in olga\'s timeline', async () => (await timeline(console_))
    .find((m) => m.kind === 'system' && /Olga assigned the conversation to Olga/.test(m.body)));

  // Bob is not in the conversation yet: the transfer adds him, and his console follows.
  const bobConsole = await open(t, server.operatorUrl(bob, id, 'mine'));
  // The picker offers active operators by name: bob (not olga herself).
  await until('bob in the transfer picker', async () => (await console_.locator('#transfer-to option').allTextContents()).includes('Bob'));
  await console_.locator('#transfer-to').selectOption({ label: 'Bob' });
  await console_.locator('#transfer-note').fill('VIP guest, call back before noon');
  await console_.locator('#transfer button[type="submit"]').click();
  const transferred = (m) => m.kind === 'system' && /Olga transferred the conversation from Olga to Bob: VIP guest, call back before noon/.test(m.body);
  await until('the transfer entry at olga', async () => (await timeline(console_)).find(transferred));
  await until('the transfer entry at bob', async () => (await timeline(bobConsole)).find(transferred));
  await bobConsole.locator(`#inbox [data-conversation="${id}"][data-assignee="bob"]`).waitFor({ timeout: WAIT_MS });
  await console_.locator(`#inbox [data-conversation="${id}"]`).waitFor({ state: 'detached', timeout: WAIT_MS });
  await console_.locator('#case[data-assignee="bob"]').waitFor({ timeout: WAIT_MS });
  // Said once: by the open conversation's timeline (a live log), not again by the console.
  assert.doesNotMatch(await console_.locator('#announce').textContent(), /transferred/);
  // The client sees who handles the conversation, as text, and never the operators' note.
  await until('the handover at the client', async () => (await timeline(client)).find((m) => m.kind === 'system' && m.body === 'Bob is handling your conversation'));
  assert.ok(!(await timeline(client)).some((m) => /VIP/.test(m.body)));
});

test('resolve: the row shows resolved; a client message reopens it', async (t) => {
  const server = await start(t);
  const { id, ana } = await server.booking();
  const olga = await server.token('olga', 'operator', 'all');
  const client = await open(t, server.clientUrl(ana, id));
  await type(client, 'Thanks, all clear!');
  const console_ = await open(t, server.operatorUrl(olga, id, 'all'));
  const row = (status) => console_.locator(`#inbox [data-conversation="${id}"][data-status="${status}"]`);
  await row('open').waitFor({ timeout: WAIT_MS });
  await console_.locator('#status-buttons button[data-status="resolved"]').click();
  await row('resolved').waitFor({ timeout: WAIT_MS });
  assert.equal(await console_.locator('#status-buttons button[data-status="resolved"]').getAttribute('aria-pressed'), 'true');
  await until('the status entry at the client', async () => (await timeline(client)).find((m) => m.kind === 'system' && m.body === 'Conversation marked resolved'));
  await until('the status entry in the console\'s timeline', async () => (await timeline(console_)).find((m) => m.kind === 'system' && /changed the status from open to resolved/.test(m.body)));
  assert.doesNotMatch(await console_.locator('#announce').textContent(), /changed the status/, 'said once, by the timeline');
  await type(client, 'One more question, sorry');
  await row('open').waitFor({ timeout: WAIT_MS });
  await console_.locator('#case[data-status="open"]').waitFor({ timeout: WAIT_MS });
  await until('the reopening at the client', async () => (await timeline(client)).find((m) => m.body === 'Conversation reopened'));
});

test('presence: the client page shows whether an operator is online', async (t) => {
  const server = await start(t);
  const { id, ana, olga } = await server.booking();
  const client = await open(t, server.clientUrl(ana, id));
  const online = (value) => client.locator(`#presence[data-online="${value}"]`);
  await online('false').waitFor({ timeout: WAIT_MS });
  const operatorContext = await browser.newContext();
  t.after(() => operatorContext.close());
  const console_ = await operatorContext.newPage();
  await console_.goto(server.operatorUrl(olga, id));
  await badge(console_, 'connected');
  await online('true').waitFor({ timeout: WAIT_MS });
  assert.equal(await online('true').textContent(), 'An operator is online');
  await console_.locator('#presence').selectOption('away');
  await online('false').waitFor({ timeout: WAIT_MS });
  await console_.locator('#presence').selectOption('available');
  await online('true').waitFor({ timeout: WAIT_MS });
  // Closing the console: offline after the (short) leave delay.
  await console_.close();
  await online('false').waitFor({ timeout: WAIT_MS });
});

test('typing indicator both ways, cleared when the message is sent', async (t) => {
  const server = await start(t);
  const { id, ana, olga } = await server.booking();
  const client = await open(t, server.clientUrl(ana, id));
  const console_ = await open(t, server.operatorUrl(olga, id));
  const typingLine = (page) => page.locator('surechat-chat .typing');
  await client.locator('surechat-chat textarea').pressSequentially('Is the pool');
  await until('ana typing at the operator', async () => (await typingLine(console_).textContent()) === 'ana is typing…');
  await client.locator('surechat-chat textarea').press('Enter');
  await until('the typing line cleared at the operator', async () => (await typingLine(console_).textContent()) === '');
  await console_.locator('surechat-chat textarea').pressSequentially('Yes, it is');
  await until('olga typing at the client', async () => (await typingLine(client).textContent()) === 'Olga is typing…');
  await console_.locator('surechat-chat textarea').press('Enter');
  await until('the typing line cleared at the client', async () => (await typingLine(client).textContent()) === '');
  await until('the answer at the client', async () => (await timeline(client)).find((m) => m.body === 'Yes, it is'));
  // The client sees the operator by the directory's name, never by the id.
  const senders = await until('the operator named at the client', async () => {
    const names = await client.locator('surechat-chat li .who').allTextContents();
    return names.includes('Olga') && names;
  });
  assert.ok(!senders.includes('olga'), JSON.stringify(senders));
});

test('a private note shows at operators only, never on the client page', async (t) => {
  const server = await start(t);
  const { id, ana, olga } = await server.booking();
  const client = await open(t, server.clientUrl(ana, id));
  const console_ = await open(t, server.operatorUrl(olga, id));
  await type(client, 'Hello');
  await console_.locator('#note-switch').check();
  await type(console_, 'Note: guest was rude last time');
  await until('the note at the operator', async () => (await timeline(console_)).find((m) => m.kind === 'note' && m.body === 'Note: guest was rude last time'));
  assert.match(await console_.locator('surechat-chat li[data-kind="note"]').textContent(), /Private note/);
  await console_.locator('#note-switch').uncheck();
  await type(console_, 'Welcome back!');
  await until('the reply at the client', async () => (await timeline(client)).find((m) => m.body === 'Welcome back!'));
  const seen = await timeline(client);
  assert.deepEqual(seen.map((m) => m.body), ['Hello', 'Welcome back!']);
  // A fresh load of the client page (history from the server) does not show it either.
  await client.reload();
  await badge(client, 'connected');
  const reloaded = await until('history after reload', async () => {
    const rows = await timeline(client);
    return rows.some((m) => m.body === 'Welcome back!') && rows;
  });
  assert.ok(!reloaded.some((m) => /rude/.test(m.body)));
  // Refused from a client.
  await assert.rejects(post(server, ana, id, 'sneaky', 'note'), /403/);
});

test('after a reconnect the inbox equals a fresh load, without reloading the page', async (t) => {
  const server = await start(t);
  const { ana } = await server.booking('booking-1001');
  await server.booking('booking-1002');
  await server.booking('booking-1003');
  const olga = await server.token('olga', 'operator', 'all');
  const bob = await server.token('bob', 'operator');
  for (const c of ['booking-1001', 'booking-1002', 'booking-1003']) {
    await server.admin('POST', `/v1/conversations/${c}/participants`, { user_id: 'bob', role: 'operator' });
  }
  await post(server, ana, 'booking-1002', 'Is breakfast included?');
  await post(server, ana, 'booking-1003', 'We arrive late');
  await post(server, ana, 'booking-1001', 'Parking?');
  const context = await browser.newContext();
  t.after(() => context.close());
  const console_ = await context.newPage();
  await console_.goto(server.operatorUrl(olga, 'booking-1001', 'all'));
  await badge(console_, 'connected');
  const settled = async () => {
    const want = await inboxOverHttp(server, olga, 'all');
    const have = await inbox(console_);
    return JSON.stringify(have) === JSON.stringify(want) && have;
  };
  await until('the inbox as the server has it', settled);

  await context.setOffline(true);
  await badge(console_, 'offline');
  const before = await inbox(console_);
  // Meanwhile another operator works over HTTP and the client writes.
  await post(server, bob, 'booking-1002', 'Yes, from 7 to 10.');
  await server.as(bob, 'POST', '/v1/conversations/booking-1003/assign', { operator_id: 'bob' });
  await server.as(bob, 'POST', '/v1/conversations/booking-1001/status', { status: 'resolved' });
  await post(server, ana, 'booking-1003', 'Around midnight');
  const changed = await inboxOverHttp(server, olga, 'all');
  assert.notDeepEqual(before, changed);
  assert.deepEqual(await inbox(console_), before, 'offline, the console cannot know yet');

  await context.setOffline(false);
  await badge(console_, 'connected');
  const after = await until('the inbox after the reconnect', settled);
  assert.equal(after.find((r) => r.id === 'booking-1003').assignee, 'bob');
  assert.equal(after.find((r) => r.id === 'booking-1001').status, 'resolved');
  assert.equal(after.find((r) => r.id === 'booking-1002').waiting_since, '');
  // And a fresh load of the console shows the same rows.
  const fresh = await open(t, server.operatorUrl(olga, 'booking-1001', 'all'));
  const freshRows = await until('the fresh console', async () => {
    const rows = await inbox(fresh);
    return rows.length === 3 && rows;
  });
  await until('both consoles equal', async () => JSON.stringify(await inbox(console_)) === JSON.stringify(await inbox(fresh)));
  assert.equal(freshRows.length, after.length);
});
