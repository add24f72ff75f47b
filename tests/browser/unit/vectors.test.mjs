// The browser SDK against the shared wire vectors (crates/protocol/tests/vectors/), the same
// files the Rust protocol test reads: every frame decodes and re-encodes exactly, every
// equivalent form decodes to the same frame, every invalid text fails with the server's code,
// ref and frame type, and the session plays the resume example as docs/protocol.md tells it.
// Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import {
  decodeClientFrame, decodeServerFrame, encodeClientFrame, encodeServerFrame, FrameError,
  CLIENT_FRAMES, SERVER_FRAMES,
} from '../../../web/frames.js';
import { Session } from '../../../web/session.js';

const dir = new URL('../../../crates/protocol/tests/vectors/', import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, dir), 'utf8'));
const codec = {
  client: { decode: decodeClientFrame, encode: encodeClientFrame, table: CLIENT_FRAMES },
  server: { decode: decodeServerFrame, encode: encodeServerFrame, table: SERVER_FRAMES },
};

test('the vectors directory holds the files this test knows', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(files, ['client_frames.json', 'invalid_client_frames.json', 'resume_example.json', 'server_frames.json']);
});

for (const file of ['client_frames.json', 'server_frames.json']) {
  const { direction, vectors } = load(file);
  const { decode, encode, table } = codec[direction];
  test(`${file}: every frame decodes and re-encodes canonically`, () => {
    for (const v of vectors) {
      const frame = decode(JSON.stringify(v.frame));
      assert.deepEqual(JSON.parse(encode(frame)), v.frame, v.name);
      // Canonical form also keeps the protocol's field order.
      assert.equal(encode(frame), JSON.stringify(v.frame), `${v.name}: field order`);
      for (const [i, other] of (v.equivalent ?? []).entries()) {
        assert.deepEqual(decode(JSON.stringify(other)), frame, `${v.name}: equivalent ${i}`);
      }
    }
  });
  test(`${file}: every frame type has a vector`, () => {
    const seen = new Set(vectors.map((v) => v.frame.type));
    assert.deepEqual([...seen].sort(), Object.keys(table).sort());
  });
}

test('invalid_client_frames.json: each fails with the code, ref and frame type the server answers', () => {
  for (const v of load('invalid_client_frames.json').vectors) {
    assert.throws(() => decodeClientFrame(v.text), (e) => {
      assert.ok(e instanceof FrameError, v.name);
      assert.equal(e.code, v.code, `${v.name}: code`);
      assert.equal(e.ref, v.ref, `${v.name}: ref`);
      assert.equal(e.frame, v.frame_type, `${v.name}: frame type`);
      return true;
    });
  }
});

test('an unknown server frame type is refused (the driver ignores it)', () => {
  assert.throws(() => decodeServerFrame('{"type":"presence","user_id":"olga"}'), FrameError);
});

test('resume_example.json: the session sends the same frames as the worked example', () => {
  const { steps } = load('resume_example.json');
  const [hello] = steps;
  const token = hello.frame.token;
  // The device's state before: cursors 2 and 5 with their epochs, one message typed offline.
  const outgoing = steps.find((s) => s.frame.type === 'send').frame;
  const held = (conversation, n, epoch) => ({
    id: conversation, epoch, cursor: n,
    messages: Array.from({ length: n }, (_, i) => ({
      conversation, id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}${conversation.slice(-1)}`.slice(0, 36),
      seq: i + 1, sender: 'olga', role: 'operator', body: 'earlier', ts: 1, status: null,
    })),
  });
  const session = new Session({}, token, {
    user_id: 'ana',
    conversations: [held('booking-1001', 2, 5012873365028731), held('booking-1002', 5, 2251799813685248)],
    outbox: [{ id: outgoing.id, conversation: outgoing.conversation, body: outgoing.body, failed: null }],
  });
  let now = 1000;
  session.connect(now);
  const action = session.pollAction();
  session.handleOpen(now, action.attempt);
  const sent = [];
  const drain = () => {
    while (session.pollEvent()) { /* persisted */ }
    for (let f = session.pollTransmit(); f; f = session.pollTransmit()) sent.push(JSON.parse(encodeClientFrame(f)));
  };
  drain();
  for (const step of steps.slice(1)) {
    if (step.direction === 'server') {
      now += 10;
      session.handleFrame(now, decodeServerFrame(JSON.stringify(step.frame)));
      if (step.frame.type === 'message' && step.frame.seq === 6) session.markRead(now, 'booking-1001');
      if (step.frame.type === 'synced' && step.frame.conversation === 'booking-1002') session.markRead(now, 'booking-1001');
      drain();
    }
  }
  // The device's own frames follow the example: the same hello, the same send (the id it got
  // when it was created), cumulative receipts that never pass what it holds, pong for ping.
  // (It reports receipts message by message, where the example shows them batched.)
  const expected = steps.filter((s) => s.direction === 'client').map((s) => s.frame);
  assert.deepEqual(sent[0], expected[0], 'hello');
  assert.deepEqual(sent.filter((f) => f.type === 'send'), expected.filter((f) => f.type === 'send'));
  assert.deepEqual(sent.at(-1), { type: 'pong' });
  const last = {};
  for (const r of sent.filter((f) => f.type === 'receipt')) {
    const prev = last[r.conversation] ?? { delivered: 0, read: 0 };
    if (r.delivered !== undefined) assert.ok(r.delivered > prev.delivered, 'delivered moves forward');
    if (r.read !== undefined) assert.ok(r.read > prev.read, 'read moves forward');
    last[r.conversation] = { delivered: r.delivered ?? prev.delivered, read: r.read ?? prev.read };
  }
  assert.deepEqual(last['booking-1001'], { delivered: 6, read: 6 });
  assert.deepEqual(last['booking-1002'].delivered, 1);
  assert.deepEqual(session.deliveryStatus(outgoing.id), { name: 'read' });
  assert.equal(session.cursor('booking-1001'), 6);
  assert.equal(session.cursor('booking-1002'), 1);
  assert.equal(session.pendingCount(), 0);
});
