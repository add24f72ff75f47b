// Message ids the browser SDK makes: UUIDv7 (time-ordered), so storage's unique index of ids grows
// at its end. Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from '../../../web/client.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('ids are lowercase version-7 UUIDs carrying the time they were made', () => {
  const before = Date.now();
  const id = newId();
  const after = Date.now();
  assert.match(id, UUID);
  const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
  assert.ok(ms >= before && ms <= after, `${ms} outside ${before}..${after}`);
});

test('ids made one after the other sort in the order they were made, and never repeat', () => {
  const ids = Array.from({ length: 2000 }, () => newId());
  assert.equal(new Set(ids).size, ids.length);
  const sorted = [...ids].sort();
  assert.deepEqual(sorted, ids);
});
