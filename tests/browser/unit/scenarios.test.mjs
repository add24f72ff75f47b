// The browser session replays the shared scenario files (crates/protocol/tests/scenarios/), the
// same ones the Rust SDK's session replays: commands, server frames, time, network and storage
// failures in, frames and statuses out. Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { decodeServerFrame, encodeClientFrame } from '../../../web/frames.js';
import { Session } from '../../../web/session.js';

const dir = new URL('../../../crates/protocol/tests/scenarios/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('the scenarios directory is not empty', () => assert.ok(files.length >= 5));

for (const file of files) {
  const scenario = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
  test(`${file}: ${scenario.name}`, () => replay(scenario));
}

/** Replays one scenario, failing at the first expectation that does not hold. */
function replay(scenario) {
  const session = new Session({ seed: 1 }, 't');
  let now = 0;
  let storeFails = false;
  let sent = [];
  const drain = () => {
    for (;;) {
      let progressed = false;
      for (let a = session.pollAction(); a; a = session.pollAction()) {
        progressed = true;
        if (a.type === 'connect') session.handleOpen(now, a.attempt);
      }
      const events = [];
      for (let e = session.pollEvent(); e; e = session.pollEvent()) events.push(e);
      if (events.length && storeFails) {
        storeFails = false;
        session.handleStoreFailure(now);
      }
      for (let f = session.pollTransmit(); f; f = session.pollTransmit()) {
        progressed = true;
        sent.push(JSON.parse(encodeClientFrame(f)));
      }
      if (!progressed && !events.length) return;
    }
  };
  const fire = (until) => {
    for (let at = session.pollTimeout(); at !== null && at <= until; at = session.pollTimeout()) {
      now = Math.max(now, at);
      session.handleTimeout(now);
      drain();
    }
    now = until;
  };
  for (const [index, step] of scenario.steps.entries()) {
    const where = `${scenario.name}, step ${index}: ${JSON.stringify(step).slice(0, 120)}`;
    if (step.do === 'connect') session.connect(now);
    else if (step.do === 'send') session.send(now, step.id, step.conversation, step.body);
    else if (step.do === 'close') session.handleClose(now, session.attemptId, step.code ?? null);
    else if (step.do === 'set_token') session.setToken(now, step.token);
    else if (step.do === 'network') session.handleNetwork(now, step.up);
    else if (step.frame) session.handleFrame(now, decodeServerFrame(JSON.stringify(step.frame)));
    else if (step.store === 'fail') storeFails = true;
    else if (step.advance_ms !== undefined) fire(now + step.advance_ms);
    else if (step.advance_to_next_timeout) fire(/** @type {number} */ (session.pollTimeout()));
    else if (step.expect_transmit) {
      assert.deepEqual(sent, withinRanges(step.expect_transmit, sent), where);
      sent = [];
    } else if (step.expect_next_timeout_ms) {
      const wait = /** @type {number} */ (session.pollTimeout()) - now;
      assert.ok(wait >= step.expect_next_timeout_ms.min && wait <= step.expect_next_timeout_ms.max, `${where}: ${wait} ms`);
    } else if (step.expect_connection) assert.equal(session.status().name, step.expect_connection, where);
    else if (step.expect_status) assert.equal(session.deliveryStatus(step.expect_status.id)?.name, step.expect_status.status, where);
    else if (step.expect_pending !== undefined) assert.equal(session.pendingCount(), step.expect_pending, where);
    else assert.fail(`${where}: unknown step`);
    drain();
  }
}

/**
 * `expected` with each `{min, max}` field replaced by the number `sent` has there, when that
 * number is in the range (inclusive); otherwise left as is, so the comparison fails.
 * @param {any[]} expected
 * @param {any[]} sent
 */
function withinRanges(expected, sent) {
  return expected.map((frame, i) => {
    const copy = { ...frame };
    for (const [name, value] of Object.entries(frame)) {
      const actual = sent[i]?.[name];
      if (value && typeof value === 'object' && 'min' in value && 'max' in value
          && typeof actual === 'number' && actual >= value.min && actual <= value.max) copy[name] = actual;
    }
    return copy;
  });
}
