// The browser SDK's frame decoders against mutated input, like crates/protocol/tests/
// decode_mutations.rs for the Rust side: every wire vector is mutated thousands of times (seeded,
// so a failure reproduces) — values swapped for other types, fields dropped and added, bytes
// flipped, cut, duplicated and spliced with JSON punctuation. A decoder may only refuse with a
// FrameError (`malformed_frame` or `unknown_frame`); whatever it accepts re-encodes to a text
// that decodes to the same frame; and a session fed the accepted server frames never throws.
// Run with: node --test tests/browser/unit/
// More cases: SURECHAT_FUZZ_CASES=2000000 node --test tests/browser/unit/mutations.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  decodeClientFrame, decodeServerFrame, encodeClientFrame, encodeServerFrame, FrameError,
} from '../../../web/frames.js';
import { Session } from '../../../web/session.js';
import { DEFAULT_CONFIG } from '../../../web/types.js';

const CASES = Number(process.env.SURECHAT_FUZZ_CASES ?? 20000);
const dir = new URL('../../../crates/protocol/tests/vectors/', import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, dir), 'utf8'));

/** xorshift32: seeded, so a failing case reproduces. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x % Math.max(1, n);
  };
}

const ODD = [
  null, true, false, -1, 0, 0.5, 1e308, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, '', 'x'.repeat(5000),
  '\u0000\u202e😀</script>', [], {}, [1, 2], { type: 'send' }, '5f0c1e2a-8b4d-4c6e-9a1b-2c3d4e5f6a7b',
  'operator', 'note', 'system', '__proto__', 'constructor',
];

function mutateValue(below, value, depth = 0) {
  if (value && typeof value === 'object' && !Array.isArray(value) && below(5) !== 0) {
    const keys = Object.keys(value);
    if (keys.length > 0) {
      const key = keys[below(keys.length)];
      const copy = { ...value };
      switch (below(4)) {
        case 0: delete copy[key]; break;
        case 1: copy[below(2) ? `${key}_extra` : '__proto__'] = ODD[below(ODD.length)]; break;
        default: copy[key] = mutateValue(below, value[key], depth + 1);
      }
      return copy;
    }
  }
  if (Array.isArray(value) && value.length > 0 && below(4) !== 0) {
    const copy = [...value];
    const i = below(copy.length);
    if (below(3) === 0) for (let n = below(64); n > 0; n--) copy.push(copy[i]);
    else copy[i] = mutateValue(below, copy[i], depth + 1);
    return copy;
  }
  if (depth < 30 && below(8) === 0) return below(2) ? [value] : { v: value };
  return ODD[below(ODD.length)];
}

const PIECES = ['{', '}', '[', ']', '"', ':', ',', 'null', '-1', '1e999', '\\u0000', '\\', '😀', '"type"', '"ack"'];

function mutateText(below, text) {
  let s = text;
  for (let n = 1 + below(4); n > 0; n--) {
    const at = below(s.length + 1);
    switch (below(4)) {
      case 0: s = s.slice(0, at) + String.fromCharCode(s.charCodeAt(at) ^ (1 << below(7))) + s.slice(at + 1); break;
      case 1: s = s.slice(0, at); break;
      case 2: s = s.slice(0, at) + PIECES[below(PIECES.length)] + s.slice(at); break;
      default: s = s.slice(0, at) + s.slice(at, at + below(16)) + s.slice(at);
    }
  }
  return s;
}

/** Mutated texts of `frames`: structure-aware and byte-level, half each. */
function* mutations(frames, seed) {
  const below = rng(seed);
  for (let i = 0; i < CASES; i++) {
    const frame = frames[i % frames.length];
    yield below(2) ? JSON.stringify(mutateValue(below, frame)) : mutateText(below, JSON.stringify(frame));
  }
}

function check(decode, encode, text, onFrame) {
  let frame;
  try {
    frame = decode(text);
  } catch (e) {
    assert.ok(e instanceof FrameError, `${text}: threw ${e}`);
    assert.ok(['malformed_frame', 'unknown_frame'].includes(e.code), `${text}: ${e.code}`);
    return false;
  }
  assert.deepEqual(decode(encode(frame)), frame, `${text}: round trip`);
  onFrame?.(frame);
  return true;
}

test('mutated server frames: refused with a FrameError, or accepted and harmless to a session', () => {
  const frames = load('server_frames.json').vectors.map((v) => v.frame);
  const session = new Session(DEFAULT_CONFIG, 'token');
  let now = 0;
  session.connect(now);
  while (session.pollAction()) { /* the driver would open a socket */ }
  session.handleOpen(now, 1);
  let accepted = 0;
  for (const text of mutations(frames, 0x5eed)) {
    now += 7;
    if (check(decodeServerFrame, encodeServerFrame, text, (frame) => session.handleFrame(now, frame))) accepted++;
    while (session.pollEvent()) { /* drained, as the driver does */ }
    while (session.pollTransmit()) { /* drained */ }
    while (session.pollAction()) { /* drained */ }
  }
  assert.ok(accepted > CASES / 20 && accepted < CASES, `some accepted, most refused: ${accepted}`);
});

test('mutated client frames: refused with a FrameError, or accepted and re-encoded', () => {
  const frames = load('client_frames.json').vectors.map((v) => v.frame);
  let accepted = 0;
  for (const text of mutations(frames, 0xc11e)) {
    if (check(decodeClientFrame, encodeClientFrame, text)) accepted++;
  }
  assert.ok(accepted > CASES / 20 && accepted < CASES, `some accepted, most refused: ${accepted}`);
});
