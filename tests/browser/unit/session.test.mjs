// The session on virtual time against a model server, like the Rust SDK's session tests:
// backoff bounds, a week offline, half-open connections, statuses, go-back-N, restarts.
// Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoff, DEFAULT_CONFIG, Jitter } from '../../../web/types.js';
import { retryable } from '../../../web/session.js';
import { Model, Rig, uuid } from './model.mjs';

const DAY = 24 * 3600 * 1000;

test('backoff is full jitter growing to a cap', () => {
  const c = DEFAULT_CONFIG;
  assert.equal(backoff(c, 0, 0.999999), 249);
  assert.equal(backoff(c, 0, 0), 0);
  assert.equal(backoff(c, 1, 0.999999), 999);
  assert.equal(backoff(c, 2, 0.999999), 1999);
  assert.equal(backoff(c, 5, 0.999999), 15999);
  assert.equal(backoff(c, 6, 0.999999), 29999);
  assert.equal(backoff(c, 1000, 0.999999), 29999);
  // The seeded generator is uniform enough and deterministic.
  const a = new Jitter(7);
  const b = new Jitter(7);
  const samples = Array.from({ length: 1000 }, () => a.unit());
  assert.deepEqual(samples.slice(0, 5), Array.from({ length: 5 }, () => b.unit()));
  assert.ok(samples.every((u) => u >= 0 && u < 1));
  const mean = samples.reduce((x, y) => x + y) / samples.length;
  assert.ok(mean > 0.45 && mean < 0.55, `mean ${mean}`);
});

test('reconnect delays stay within the backoff bounds while the server is unreachable', () => {
  const model = new Model();
  const rig = new Rig('ana', { seed: 99 });
  let now = 0;
  rig.session.connect(now);
  rig.pump(now, model, false);
  for (let attempt = 0; attempt < 40; attempt++) {
    const status = rig.session.status();
    assert.equal(status.name, 'reconnecting');
    const wait = status.nextAttemptAt - now;
    const window = attempt === 0 ? 250 : Math.min(30000, 1000 * 2 ** (attempt - 1));
    assert.ok(wait >= 0 && wait < window, `attempt ${attempt}: waited ${wait} of ${window}`);
    assert.equal(rig.session.pollTimeout(), status.nextAttemptAt);
    now = status.nextAttemptAt;
    rig.session.handleTimeout(now);
    rig.pump(now, model, false);
  }
});

test('a week offline, then resume from the cursor: every message once, in order', () => {
  const model = new Model();
  const ana = new Rig('ana');
  let now = 0;
  ana.session.connect(now);
  ana.pump(now, model);
  model.append(uuid(1), 'olga', 'before');
  ana.session.handleFrame(now, model.messages[0]);
  ana.pump(now, model);
  assert.equal(ana.session.cursor('b1'), 1);
  ana.session.handleNetwork(now, false);
  ana.pump(now, model, false);
  assert.equal(ana.session.status().name, 'offline');
  // Offline: the user types; the operator writes a lot.
  ana.session.send(now, uuid(99999), 'b1', 'typed offline');
  for (let i = 2; i <= 1500; i++) model.append(uuid(i), 'olga', `m${i}`);
  for (let t = 0; t < 7 * DAY; t += 3600 * 1000) {
    now = t;
    ana.session.handleTimeout(now);
    ana.pump(now, model, false);
  }
  assert.equal(ana.session.status().name, 'offline', 'no attempts while the device knows it is offline');
  assert.equal(ana.history(uuid(99999)).join(), 'sending');
  now = 7 * DAY;
  ana.session.handleNetwork(now, true);
  ana.pump(now, model);
  assert.equal(ana.session.status().name, 'connected');
  const held = ana.session.messages('b1');
  assert.deepEqual(held.map((m) => m.seq), Array.from({ length: 1501 }, (_, i) => i + 1));
  assert.equal(new Set(held.map((m) => m.id)).size, 1501);
  assert.equal(held.at(-1).body, 'typed offline');
  assert.equal(ana.session.pendingCount(), 0);
  const hello = ana.sent.filter((f) => f.type === 'hello').at(-1);
  assert.deepEqual(hello.cursors, [{ conversation: 'b1', seq: 1, epoch: 42 }]);
});

test('the heartbeat timeout detects a half-open connection', () => {
  const model = new Model();
  const ana = new Rig('ana');
  let now = 0;
  ana.session.connect(now);
  ana.pump(now, model);
  assert.equal(ana.session.status().name, 'connected');
  // The server goes silent (half-open): no frame for welcome.timeout_ms.
  assert.equal(ana.session.pollTimeout(), 35000);
  now = 34999;
  ana.session.handleTimeout(now);
  ana.pump(now, model);
  assert.equal(ana.session.status().name, 'connected');
  now = 35000;
  ana.session.handleTimeout(now);
  ana.pump(now, model, false);
  assert.equal(ana.session.status().name, 'reconnecting');
  assert.ok(ana.session.status().nextAttemptAt < now + 250);
  // A ping keeps it alive and is answered.
  const fresh = new Rig('ana');
  fresh.session.connect(0);
  fresh.pump(0, model);
  fresh.session.handleFrame(30000, { type: 'ping', ts: 1 });
  fresh.pump(30000, model);
  assert.deepEqual(fresh.sent.at(-1), { type: 'pong' });
  assert.equal(fresh.session.pollTimeout(), 65000);
});

test('statuses only move forward: sending → sent → delivered → read, whatever order frames come in', () => {
  const model = new Model();
  const ana = new Rig('ana');
  const olga = new Rig('olga');
  let now = 0;
  ana.session.connect(now);
  olga.session.connect(now);
  ana.pump(now, model);
  olga.pump(now, model);
  ana.session.send(now, uuid(1), 'b1', 'hello');
  ana.pump(now, model);
  assert.deepEqual(ana.history(uuid(1)), ['sending', 'sent']);
  // Receipts arrive out of order: read first, then an older delivered.
  ana.session.handleFrame(now, { type: 'receipt', conversation: 'b1', user_id: 'olga', role: 'operator', delivered: 1, read: 1 });
  ana.session.handleFrame(now, { type: 'receipt', conversation: 'b1', user_id: 'olga', role: 'operator', delivered: 1, read: 0 });
  // A duplicate of the echo and of the ack change nothing.
  ana.session.handleFrame(now, model.messages[0]);
  ana.session.handleFrame(now, { type: 'ack', id: uuid(1), conversation: 'b1', seq: 1, ts: 1 });
  ana.pump(now, model);
  assert.deepEqual(ana.history(uuid(1)), ['sending', 'sent', 'delivered', 'read']);
  assert.deepEqual(ana.session.deliveryStatus(uuid(1)), { name: 'read' });
  assert.equal(ana.session.messages('b1').length, 1);
});

test('a permanent refusal fails one message without holding up the others; retry and discard', () => {
  const model = new Model();
  model.refuse = (f) => (f.body.length > 10
    ? { code: 'message_too_large', message: 'message body is over the limit', permanent: true } : null);
  const ana = new Rig('ana');
  ana.session.connect(0);
  ana.pump(0, model);
  ana.session.send(0, uuid(1), 'b1', 'first');
  ana.session.send(0, uuid(2), 'b1', 'x'.repeat(50));
  ana.session.send(0, uuid(3), 'b1', 'third');
  ana.pump(0, model);
  assert.deepEqual(model.messages.map((m) => m.body), ['first', 'third']);
  assert.deepEqual(ana.session.deliveryStatus(uuid(2)), { name: 'failed', code: 'message_too_large', message: 'message body is over the limit' });
  assert.equal(ana.session.pendingCount(), 1);
  assert.equal(ana.session.failedCount(), 1);
  // Failed for good: not waiting, and nothing for a UI to offer "Retry" for.
  assert.equal(ana.session.waitingCount(), 0);
  assert.equal(retryable(ana.session.deliveryStatus(uuid(2))), false);
  // A manual retry keeps the id (and fails again: the body is still too large).
  assert.equal(ana.session.retryFailed(0), 1);
  ana.pump(0, model);
  assert.deepEqual(ana.history(uuid(2)), ['sending', 'failed', 'sending', 'failed']);
  assert.equal(ana.sent.filter((f) => f.type === 'send' && f.id === uuid(2)).length, 2);
  // Retry after editing: the failed one is discarded, the edited text is a new message.
  assert.ok(ana.session.discard(0, uuid(2)));
  assert.ok(!ana.session.discard(0, uuid(1)), 'only a failed message can be discarded');
  ana.session.send(0, uuid(4), 'b1', 'short');
  ana.pump(0, model);
  assert.deepEqual(ana.session.messages('b1').map((m) => m.body), ['first', 'third', 'short']);
  assert.equal(ana.session.pendingCount(), 0);
});

test('go-back-N: a refused message is resent before the ones behind it, ids unchanged', () => {
  const model = new Model();
  let refusals = 0;
  // The server refuses the second send once (rate limited) and, as its FIFO guard does, every
  // later one of that connection until it is resent.
  let blocker = null;
  model.refuse = (f) => {
    if (blocker && f.id !== blocker) return { code: 'out_of_order', message: 'resend the earlier one', permanent: false };
    if (f.id === uuid(2) && refusals++ === 0) {
      blocker = f.id;
      return { code: 'rate_limited', message: 'slow down', permanent: false, retry_after_ms: 100 };
    }
    if (f.id === blocker) blocker = null;
    return null;
  };
  const ana = new Rig('ana');
  ana.session.connect(0);
  ana.pump(0, model);
  for (let i = 1; i <= 5; i++) ana.session.send(0, uuid(i), 'b1', `m${i}`);
  ana.pump(0, model);
  assert.deepEqual(model.messages.map((m) => m.body), ['m1']);
  assert.equal(ana.session.pollTimeout(), 100, 'waits retry_after_ms');
  ana.session.handleTimeout(100);
  ana.pump(100, model);
  assert.deepEqual(model.messages.map((m) => m.body), ['m1', 'm2', 'm3', 'm4', 'm5']);
  const sends = ana.sent.filter((f) => f.type === 'send').map((f) => f.body);
  assert.deepEqual(sends, ['m1', 'm2', 'm3', 'm4', 'm5', 'm2', 'm3', 'm4', 'm5']);
  assert.equal(ana.session.pendingCount(), 0);
});

test('close codes decide whether to reconnect', () => {
  const model = new Model();
  // 4401 refuses the token said in hello: the session waits for a new one (setToken).
  for (const [code, expected] of [[1012, 'reconnecting'], [null, 'reconnecting'], [4408, 'reconnecting'], [4401, 'expired'], [4400, 'disconnected']]) {
    const rig = new Rig('ana');
    rig.session.connect(0);
    rig.pump(0, model);
    rig.session.handleClose(0, rig.open, code);
    rig.pump(0, model, false);
    assert.equal(rig.session.status().name, expected, `close ${code}`);
    if (code === 4401) {
      assert.ok(rig.events.some((e) => e.type === 'token_expired'));
      assert.equal(rig.session.pollTimeout(), null, 'no reconnect is planned');
      rig.session.setToken(0, 'fresh');
      assert.equal(rig.session.status().name, 'connecting', 'a new token connects at once');
    }
  }
});

test('a restart from a snapshot resends the outbox and never shows a message twice', () => {
  const model = new Model();
  const ana = new Rig('ana');
  ana.session.connect(0);
  ana.pump(0, model);
  ana.session.send(0, uuid(1), 'b1', 'stored');
  ana.pump(0, model);
  // The snapshot was taken before the ack was persisted: uuid(1) is both held and pending.
  const snapshot = {
    user_id: 'ana',
    conversations: [{ id: 'b1', epoch: 42, cursor: 1, messages: ana.session.messages('b1') }],
    outbox: [
      { id: uuid(1), conversation: 'b1', body: 'stored', failed: null },
      { id: uuid(2), conversation: 'b1', body: 'pending', failed: null },
    ],
  };
  const again = new Rig('ana', {}, snapshot);
  assert.deepEqual(again.session.messages('b1').map((m) => m.body), ['stored', 'pending']);
  again.session.connect(0);
  again.pump(0, model);
  assert.deepEqual(again.session.messages('b1').map((m) => [m.seq, m.body]), [[1, 'stored'], [2, 'pending']]);
  assert.deepEqual(model.messages.map((m) => m.body), ['stored', 'pending']);
  assert.equal(again.sent.filter((f) => f.type === 'send').length, 1);
});

test('the network coming back retries at once, not at the end of the backoff', () => {
  const model = new Model();
  const ana = new Rig('ana');
  let now = 0;
  ana.session.connect(now);
  ana.pump(now, model, false);
  for (let i = 0; i < 10; i++) {
    now = ana.session.status().nextAttemptAt;
    ana.session.handleTimeout(now);
    ana.pump(now, model, false);
  }
  assert.ok(ana.session.status().nextAttemptAt - now > 1000);
  ana.session.reconnectNow(now);
  ana.pump(now, model);
  assert.equal(ana.session.status().name, 'connected');
  assert.deepEqual([...new Set(ana.statuses())], ['connecting', 'reconnecting', 'connected']);
});

test('skipped positions (private notes) advance the cursor; a restart keeps it', () => {
  const model = new Model();
  const ana = new Rig('ana');
  ana.session.connect(0);
  ana.pump(0, model);
  const m = (seq, body) => ({ type: 'message', conversation: 'b1', id: uuid(seq), seq, sender: 'olga', role: 'operator', body, ts: 1 });
  // Out of order on purpose: the note's skip arrives after the message behind it.
  ana.session.handleFrame(0, m(1, 'one'));
  ana.session.handleFrame(0, m(3, 'three'));
  ana.session.handleFrame(0, { type: 'skip', conversation: 'b1', seq: 2 });
  ana.pump(0, model);
  assert.equal(ana.session.cursor('b1'), 3);
  assert.deepEqual(ana.session.messages('b1').map((x) => x.seq), [1, 3]);
  assert.deepEqual(ana.sent.filter((f) => f.type === 'receipt').at(-1), { type: 'receipt', conversation: 'b1', delivered: 3 });
  const again = new Rig('ana', {}, {
    user_id: 'ana', conversations: [{ id: 'b1', epoch: 42, cursor: 3, messages: ana.session.messages('b1') }],
  });
  assert.equal(again.session.cursor('b1'), 3);
  assert.deepEqual(again.session.messages('b1').map((x) => x.body), ['one', 'three']);
});

test('a private note goes out with kind `note`, also after a reconnect; the presence switch is sent again on every welcome', () => {
  const model = new Model();
  const olga = new Rig('olga');
  let now = 0;
  olga.session.setPresence(now, 'away'); // before connecting: kept for the welcome
  olga.session.connect(now);
  olga.pump(now, model);
  assert.deepEqual(olga.sent.filter((f) => f.type === 'presence'), [{ type: 'presence', status: 'away' }]);
  olga.session.handleNetwork(now, false);
  olga.pump(now, model, false);
  olga.session.send(now, uuid(1), 'b1', 'guest prefers the quiet room', null, 'note');
  assert.equal(olga.session.messages('b1')[0].kind, 'note');
  olga.session.handleNetwork(now, true);
  olga.pump(now, model);
  const sends = olga.sent.filter((f) => f.type === 'send');
  assert.deepEqual(sends, [{ type: 'send', id: uuid(1), conversation: 'b1', body: 'guest prefers the quiet room', kind: 'note' }]);
  assert.equal(olga.sent.filter((f) => f.type === 'presence').length, 2);
  olga.session.send(now, uuid(2), 'b1', 'hello');
  olga.pump(now, model);
  assert.equal(olga.sent.filter((f) => f.type === 'send').at(-1).kind, undefined);
});

test("a private note's ticks follow other operators, never the client", () => {
  const model = new Model();
  const olga = new Rig('olga');
  olga.session.connect(0);
  olga.pump(0, model);
  olga.session.send(0, uuid(1), 'b1', 'internal: check the deposit', null, 'note');
  olga.session.send(0, uuid(2), 'b1', 'Hello!');
  olga.pump(0, model);
  const receipt = (user_id, role, delivered, read) => ({ type: 'receipt', conversation: 'b1', user_id, role, delivered, read });
  // The client's cursors pass the note (clients skip it): only the text message moves.
  olga.session.handleFrame(0, receipt('ana', 'client', 2, 2));
  assert.equal(olga.session.deliveryStatus(uuid(1))?.name, 'sent');
  assert.equal(olga.session.deliveryStatus(uuid(2))?.name, 'read');
  // Another operator reads it.
  olga.session.handleFrame(0, receipt('omar', 'operator', 1, 1));
  assert.equal(olga.session.deliveryStatus(uuid(1))?.name, 'read');
});

test('only a failure by the app\'s own deadline is retryable; a waiting message counts as waiting', () => {
  const ana = new Rig('ana');
  ana.session.send(0, uuid(1), 'b1', 'never connected', 1000);
  ana.session.send(0, uuid(2), 'b1', 'no deadline');
  assert.equal(ana.session.waitingCount(), 2);
  ana.session.handleTimeout(1000);
  const status = ana.session.deliveryStatus(uuid(1));
  assert.equal(status?.name, 'failed');
  assert.equal(retryable(status), true);
  assert.equal(ana.session.waitingCount(), 1);
  assert.equal(retryable({ name: 'failed', code: 'conversation_closed', message: 'closed' }), false);
  assert.equal(retryable({ name: 'sending' }), false);
});

test('receipts report others\' messages, never the user\'s own alone', () => {
  const model = new Model();
  const ana = new Rig('ana');
  ana.session.connect(0);
  ana.pump(0, model);
  const receipts = () => ana.sent.filter((f) => f.type === 'receipt');
  // Three of ana's own, acked and echoed: the cursor moves, nobody's status depends on it.
  for (let i = 1; i <= 3; i++) ana.session.send(0, uuid(i), 'b1', 'mine');
  ana.pump(0, model);
  ana.session.markRead(0, 'b1', 3);
  ana.pump(0, model);
  assert.equal(ana.session.cursor('b1'), 3);
  assert.deepEqual(receipts(), []);
  // Olga answers: one receipt covers everything held, with the read ana asked for meanwhile.
  model.append(uuid(4), 'olga', 'noted');
  ana.session.handleFrame(0, model.messages[3]);
  ana.pump(0, model);
  assert.deepEqual(receipts(), [{ type: 'receipt', conversation: 'b1', delivered: 4, read: 3 }]);
});
