// The browser SDK against protocol version 1 as frozen in crates/protocol/tests/frozen/v1/ (the
// Rust test frozen_v1.rs pins those files' bytes): every version-1 server frame still decodes, the
// same with a field a later server might add, and every version-1 device frame this SDK encodes
// keeps every field version 1 had. Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeClientFrame, decodeServerFrame, encodeClientFrame } from '../../../web/frames.js';

const dir = new URL('../../../crates/protocol/tests/frozen/v1/', import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, dir), 'utf8')).vectors;

/** Every field of `expected` is in `actual` with the same value (new fields may be added). */
function keepsFields(expected, actual, at) {
  if (expected && typeof expected === 'object') {
    for (const [key, value] of Object.entries(expected)) {
      assert.ok(actual && key in actual, `${at}: field ${key} is gone`);
      keepsFields(value, actual[key], `${at}.${key}`);
    }
  } else {
    assert.deepEqual(actual, expected, at);
  }
}

test('version-1 server frames decode, also with fields added by a later server', () => {
  for (const v of load('server_frames.json')) {
    const frame = decodeServerFrame(JSON.stringify(v.frame));
    keepsFields(v.frame, frame, v.name);
    const newer = decodeServerFrame(JSON.stringify({ ...v.frame, added_in_a_later_version: { any: [1] } }));
    assert.deepEqual(newer, frame, `${v.name}: a new field changes nothing`);
  }
});

test('version-1 device frames still encode every field version 1 had', () => {
  for (const v of load('client_frames.json')) {
    const encoded = JSON.parse(encodeClientFrame(decodeClientFrame(JSON.stringify(v.frame))));
    keepsFields(v.frame, encoded, v.name);
  }
});
