// Attachments in the SDK without a browser: the uploader against a model of the server's uploads
// (cut anywhere, offsets that disagree, permanent refusals, expired tokens), the session's order
// (a message waits for its files, and the conversation's later messages wait behind it), the
// wire codec, signed links, and the magic numbers. Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Uploader, UploadError, CHUNK_BYTES } from '../../../web/uploads.js';
import { AttachmentLinks, LINK_REFRESH_AHEAD_MS, expiryMs } from '../../../web/links.js';
import { sniffType, sniffBlob, refusal, SIGNATURES, DEFAULT_ATTACHMENT_TYPES } from '../../../web/sniff.js';
import { formatBytes, typeLabel } from '../../../web/format.js';
import { decodeServerFrame, encodeClientFrame, decodeClientFrame } from '../../../web/frames.js';
import { uploadName } from '../../../web/client.js';
import { retryable } from '../../../web/session.js';
import { Jitter } from '../../../web/types.js';
import { Model, Rig, uuid } from './model.mjs';
import { UploadServer } from './upload-server.mjs';

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A PDF-like file of `length` bytes: `%PDF-` then bytes from a seeded generator. */
function pdfBytes(length, seed) {
  const jitter = new Jitter(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(jitter.unit() * 256);
  bytes.set([...'%PDF-1.7\n'].map((c) => c.charCodeAt(0)));
  return bytes;
}

/** An uploader wired to `server`, on virtual time: sleeps are recorded and return at once. */
function uploaderFor(server, options = {}) {
  const sleeps = [];
  const uploader = new Uploader({
    base: 'http://127.0.0.1:1',
    token: options.token ?? (() => server.token),
    fetch: server.fetch,
    sleep: async (ms) => { sleeps.push(ms); },
    random: () => 0.5,
    authFailed: options.authFailed,
    chunkBytes: options.chunkBytes,
  });
  return { uploader, sleeps };
}

const fileOf = (bytes, id = uuid(900)) => ({ id, conversation: 'b1', name: 'report.pdf', type: 'application/pdf', blob: new Blob([bytes]) });

// ---- the uploader --------------------------------------------------------------------------

test('a cut at a random point of a chunk: the upload resumes from the offset the server stored, and the bytes match', async () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const random = new Jitter(seed);
    const bytes = pdfBytes(3 * 1024 * 1024 + 12345, seed);
    const server = new UploadServer();
    let patches = 0;
    const cuts = [];
    // Every other PATCH is cut after a random number of its bytes (0 … all of them).
    server.beforePatch = (_id, offset, length) => {
      patches += 1;
      if (patches % 2 === 0) return null;
      const cutAfter = Math.floor(random.unit() * (length + 1));
      cuts.push(offset + cutAfter);
      return { cutAfter };
    };
    const { uploader, sleeps } = uploaderFor(server);
    const progress = [];
    const done = await uploader.upload(fileOf(bytes), (n) => progress.push(n));
    assert.equal(done.state, 'complete', `seed ${seed}`);
    const stored = server.uploads.get(uuid(900));
    assert.equal(sha(stored.bytes), sha(bytes), `seed ${seed}: the stored bytes are the file's`);
    assert.ok(cuts.length >= 4, `seed ${seed}: cut ${cuts.length} times`);
    // After each cut the uploader asked where the server was, and went on from exactly there.
    const patchOffsets = server.log.filter(([m]) => m === 'PATCH').map(([, , o]) => Number(o));
    for (const cut of cuts) assert.ok(patchOffsets.includes(cut), `seed ${seed}: no PATCH resumed at the stored ${cut} (${patchOffsets})`);
    assert.equal(server.mismatches, 0, `seed ${seed}: every PATCH went at the stored offset, none had to be corrected`);
    assert.equal(server.log.filter(([m]) => m === 'GET').length, cuts.length, `seed ${seed}: one GET per cut`);
    assert.equal(server.log.filter(([m]) => m === 'PUT').length, 1, `seed ${seed}: created once`);
    // One wait (the backoff) per cut, each within the first retries' windows.
    assert.equal(sleeps.length, cuts.length, `seed ${seed}`);
    // Progress never claims more than the server holds, and ends at the length.
    assert.equal(progress.at(-1), bytes.length);
    assert.ok(progress.every((n) => n <= bytes.length));
  }
});

test('offset_mismatch is no failure: the next chunk goes from the offset the server gives', async () => {
  const bytes = pdfBytes(CHUNK_BYTES * 3, 11);
  const server = new UploadServer();
  let first = true;
  // Another device of the user stored more of this upload meanwhile (same id, same bytes).
  server.beforePatch = (id, offset, length) => {
    if (!first) return null;
    first = false;
    const u = server.uploads.get(id);
    u.bytes.set(bytes.subarray(offset, offset + length + 1000), offset);
    u.offset = offset + length + 1000;
    return server.json(409, { code: 'offset_mismatch', offset: u.offset, status: 409 }, { 'Upload-Offset': String(u.offset) });
  };
  const { uploader, sleeps } = uploaderFor(server);
  const done = await uploader.upload(fileOf(bytes));
  assert.equal(done.state, 'complete');
  assert.equal(sha(server.uploads.get(uuid(900)).bytes), sha(bytes));
  assert.deepEqual(sleeps, [], 'no backoff for a mismatch');
  assert.equal(server.log.filter(([m]) => m === 'PATCH')[1][2], String(CHUNK_BYTES + 1000));
});

test('unsupported_type at the last byte is permanent: no retry, the code is the reason', async () => {
  const bytes = new TextEncoder().encode('<html><script>alert(1)</script></html>'.repeat(100));
  const server = new UploadServer();
  const { uploader, sleeps } = uploaderFor(server);
  await assert.rejects(uploader.upload({ ...fileOf(bytes), name: 'photo.jpg', type: 'image/jpeg' }), (e) => {
    assert.ok(e instanceof UploadError);
    assert.equal(e.code, 'unsupported_type');
    assert.equal(e.permanent, true);
    return true;
  });
  assert.deepEqual(sleeps, []);
  // Asked again later (a reload): the upload is refused, still permanent.
  await assert.rejects(uploader.upload({ ...fileOf(bytes), name: 'photo.jpg' }), (e) => e.code === 'unsupported_type' && e.permanent);
});

test('a file over the limit is refused at creation, permanently', async () => {
  const server = new UploadServer({ lengthMax: 100 });
  const { uploader } = uploaderFor(server);
  await assert.rejects(uploader.upload(fileOf(pdfBytes(101, 1))), (e) => e.code === 'attachment_too_large' && e.permanent);
  assert.deepEqual(server.log.map(([m]) => m), ['PUT']);
});

test('transient answers are retried with backoff and full jitter; retry_after_ms is honoured; a stored chunk starts the backoff over', async () => {
  const bytes = pdfBytes(CHUNK_BYTES * 2, 3);
  const server = new UploadServer();
  const answers = [
    server.json(503, { code: 'unavailable', status: 503 }),
    server.json(503, { code: 'unavailable', status: 503 }),
    server.json(429, { code: 'upload_quota', status: 429, retry_after_ms: 4321 }),
  ];
  server.intercept = (method) => (method === 'PATCH' ? answers.shift() ?? null : null);
  const { uploader, sleeps } = uploaderFor(server);
  const done = await uploader.upload(fileOf(bytes));
  assert.equal(done.state, 'complete');
  // First retry within 250 ms (half of it with random 0.5), the second within 1 s, then the server's wait.
  assert.deepEqual(sleeps, [125, 500, 4321]);
  // After a chunk is stored, the next failure is a first retry again.
  let patches = 0;
  server.intercept = (method) => (method === 'PATCH' && [2, 3].includes(++patches) ? server.json(503, { code: 'unavailable' }) : null);
  const again = uploaderFor(server);
  await again.uploader.upload(fileOf(bytes, uuid(901)));
  assert.deepEqual(again.sleeps, [125, 500]);
  patches = 0;
  server.intercept = (method) => (method === 'PATCH' && [1, 3].includes(++patches) ? server.json(503, { code: 'unavailable' }) : null);
  const reset = uploaderFor(server);
  await reset.uploader.upload(fileOf(bytes, uuid(902)));
  assert.deepEqual(reset.sleeps, [125, 125], 'the first chunk went between the two failures');
});

test('an expired token asks the app for a fresh one and goes on with it', async () => {
  const bytes = pdfBytes(1000, 4);
  const server = new UploadServer({ token: 'new' });
  let token = 'old';
  let asked = 0;
  const { uploader } = uploaderFor(server, { token: () => token, authFailed: () => { asked += 1; token = 'new'; } });
  const done = await uploader.upload(fileOf(bytes));
  assert.equal(done.state, 'complete');
  assert.equal(asked, 1);
});

test('an upload the server no longer has (past its time) is made again from the start', async () => {
  const bytes = pdfBytes(CHUNK_BYTES + 10, 5);
  const server = new UploadServer();
  let patches = 0;
  server.beforePatch = (id) => {
    patches += 1;
    if (patches !== 2) return null;
    server.uploads.delete(id); // removed between two chunks
    throw new TypeError('Failed to fetch');
  };
  const { uploader } = uploaderFor(server);
  const done = await uploader.upload(fileOf(bytes));
  assert.equal(done.state, 'complete');
  assert.equal(sha(server.uploads.get(uuid(900)).bytes), sha(bytes));
  assert.deepEqual(server.log.map(([m]) => m), ['PUT', 'PATCH', 'PATCH', 'GET', 'PUT', 'PATCH', 'PATCH']);
});

test('an upload already complete on the server (another tab, a lost answer) sends no byte again', async () => {
  const bytes = pdfBytes(2000, 6);
  const server = new UploadServer();
  await uploaderFor(server).uploader.upload(fileOf(bytes));
  server.log = [];
  const { uploader } = uploaderFor(server);
  const progress = [];
  const done = await uploader.upload(fileOf(bytes), (n) => progress.push(n));
  assert.equal(done.state, 'complete');
  assert.deepEqual(server.log.map(([m]) => m), ['PUT']);
  assert.deepEqual(progress, [2000]);
});

test('an abort stops the upload with the abort reason, without retrying', async () => {
  const server = new UploadServer();
  const controller = new AbortController();
  server.beforePatch = () => { controller.abort(new Error('stopped')); throw new TypeError('Failed to fetch'); };
  const { uploader, sleeps } = uploaderFor(server);
  await assert.rejects(uploader.upload(fileOf(pdfBytes(100, 7)), () => {}, controller.signal), /stopped/);
  assert.deepEqual(sleeps, []);
});

// ---- the session: order and failures -------------------------------------------------------

const photo = [{ id: uuid(801), name: 'beach.jpg', type: 'image/jpeg', size: 2048 }];
const sendsOf = (rig) => rig.sent.filter((f) => f.type === 'send');

test('FIFO: a text typed after a photo waits until the photo is uploaded and sent; the order is kept', () => {
  const model = new Model();
  const ana = new Rig('ana');
  let now = 0;
  ana.session.connect(now);
  ana.pump(now, model);
  ana.session.send(now, uuid(1), 'b1', 'before', null, null);
  ana.session.send(now, uuid(2), 'b1', '', null, null, photo);
  ana.session.send(now, uuid(3), 'b1', 'after', null, null);
  ana.pump(now, model);
  assert.deepEqual(sendsOf(ana).map((f) => f.id), [uuid(1)], 'only the text before the photo went');
  assert.deepEqual(ana.session.uploadsWanted(), [{ id: uuid(2), conversation: 'b1', attachments: photo }]);
  // Shown at once, in order, the photo with its local description.
  const shown = ana.session.messages('b1');
  assert.deepEqual(shown.map((m) => m.body), ['before', '', 'after']);
  assert.deepEqual(shown[1].attachments, [{ ...photo[0], local: true }]);
  assert.deepEqual(shown.map((m) => m.status.name), ['sent', 'sending', 'sending']);
  // Time passing does not send it, nor asks the driver to wake for it (a wake-up already due
  // would spin); only the heartbeat is due.
  assert.equal(ana.session.pollTimeout(), now + 35_000);
  now += 20_000;
  ana.session.handleTimeout(now);
  ana.pump(now, model);
  assert.equal(sendsOf(ana).length, 1);
  ana.session.uploadsDone(now, uuid(2));
  ana.pump(now, model);
  const sends = sendsOf(ana);
  assert.deepEqual(sends.map((f) => f.id), [uuid(1), uuid(2), uuid(3)]);
  assert.deepEqual(sends[1].attachments, [uuid(801)]);
  assert.ok(!('attachments' in sends[0]), 'a text names no attachments');
  assert.deepEqual(model.messages.map((m) => m.body), ['before', '', 'after']);
  assert.deepEqual(ana.session.uploadsWanted(), []);
  assert.equal(ana.session.pendingCount(), 0);
});

test('attachment_pending is transient: the files are checked again, then the message and those behind it go, in order', () => {
  const model = new Model();
  const ana = new Rig('ana');
  let now = 0;
  let pendingOnce = true;
  let blocker = null;
  // The server's FIFO guard: after a transient refusal, others are refused out_of_order until it is resent.
  model.refuse = (f) => {
    if (blocker && f.id !== blocker) return { code: 'out_of_order', message: 'behind the blocker', permanent: false };
    if (f.id === uuid(2) && pendingOnce) {
      pendingOnce = false;
      blocker = f.id;
      return { code: 'attachment_pending', message: 'an upload is still receiving', permanent: false };
    }
    if (f.id === blocker) blocker = null;
    return null;
  };
  ana.session.connect(now);
  ana.pump(now, model);
  ana.session.send(now, uuid(2), 'b1', 'look', null, null, photo);
  ana.session.uploadsDone(now, uuid(2));
  ana.session.send(now, uuid(3), 'b1', 'after', null, null);
  ana.pump(now, model);
  assert.deepEqual(ana.session.uploadsWanted().map((m) => m.id), [uuid(2)], 'asked to check the upload again');
  assert.equal(ana.session.deliveryStatus(uuid(2)).name, 'sending', 'not failed');
  // Whatever the time, nothing goes before the files are confirmed.
  now += 120_000;
  ana.session.handleTimeout(now);
  ana.pump(now, model);
  assert.deepEqual(model.messages, []);
  ana.session.uploadsDone(now, uuid(2));
  for (let i = 0; i < 5 && model.messages.length < 2; i++) {
    now = Math.max(now, ana.session.pollTimeout() ?? now);
    ana.session.handleTimeout(now);
    ana.pump(now, model);
  }
  assert.deepEqual(model.messages.map((m) => m.id), [uuid(2), uuid(3)]);
});

test('a file refused for good fails its message with the reason; later messages are not held up; retry checks the files again', () => {
  const model = new Model();
  const ana = new Rig('ana');
  const now = 0;
  ana.session.connect(now);
  ana.pump(now, model);
  ana.session.send(now, uuid(2), 'b1', 'doc', null, null, photo);
  ana.session.send(now, uuid(3), 'b1', 'after', null, null);
  ana.pump(now, model);
  assert.deepEqual(model.messages, []);
  ana.session.uploadFailed(now, uuid(2), 'unsupported_type', 'not an allowed type');
  ana.pump(now, model);
  const status = ana.session.deliveryStatus(uuid(2));
  assert.deepEqual(status, { name: 'failed', code: 'unsupported_type', message: 'not an allowed type' });
  assert.equal(retryable(status), false, 'like a refused text: edit or delete, no retry');
  assert.deepEqual(model.messages.map((m) => m.body), ['after']);
  assert.deepEqual(ana.session.uploadsWanted(), []);
  assert.equal(ana.session.retryFailed(now, uuid(2)), 1);
  assert.deepEqual(ana.session.uploadsWanted().map((m) => m.id), [uuid(2)]);
});

test('a restart from a snapshot checks the files again before sending; the text behind waits', () => {
  const model = new Model();
  const snapshot = {
    user_id: 'ana',
    outbox: [
      { id: uuid(2), conversation: 'b1', body: '', failed: null, attachments: photo },
      { id: uuid(3), conversation: 'b1', body: 'after', failed: null },
    ],
  };
  const ana = new Rig('ana', {}, snapshot);
  const now = 0;
  ana.session.connect(now);
  ana.pump(now, model);
  assert.deepEqual(sendsOf(ana), []);
  assert.deepEqual(ana.session.uploadsWanted().map((m) => m.id), [uuid(2)]);
  ana.session.uploadsDone(now, uuid(2));
  ana.pump(now, model);
  assert.deepEqual(model.messages.map((m) => m.id), [uuid(2), uuid(3)]);
});

test('messages received keep their attachments, through a restart', () => {
  const model = new Model();
  const ana = new Rig('ana');
  const now = 0;
  ana.session.connect(now);
  ana.pump(now, model);
  const attachments = [{ id: uuid(700), name: 'room.png', type: 'image/png', size: 999, sha256: 'ab', width: 640, height: 480, thumb: true }];
  ana.session.handleFrame(now, { ...model.append(uuid(9), 'olga', ''), attachments });
  ana.pump(now, model);
  assert.deepEqual(ana.session.messages('b1')[0].attachments, attachments);
  const stored = ana.events.find((e) => e.type === 'message').message;
  assert.deepEqual(stored.attachments, attachments);
});

// ---- codec ---------------------------------------------------------------------------------

test('send names its uploads after kind; message frames carry descriptions; both stay optional', () => {
  const text = encodeClientFrame({ type: 'send', id: uuid(1), conversation: 'b1', body: '', attachments: [uuid(2), uuid(3)] });
  assert.equal(text, `{"type":"send","id":"${uuid(1)}","conversation":"b1","body":"","attachments":["${uuid(2)}","${uuid(3)}"]}`);
  assert.deepEqual(decodeClientFrame(text).attachments, [uuid(2), uuid(3)]);
  assert.throws(() => decodeClientFrame(`{"type":"send","id":"${uuid(1)}","conversation":"b1","body":"","attachments":[1]}`), /attachments\[0\]/);
  const frame = decodeServerFrame(JSON.stringify({
    type: 'message', conversation: 'b1', id: uuid(1), seq: 1, sender: 'ana', role: 'client', body: '', ts: 1,
    attachments: [{ id: uuid(2), name: 'a.pdf', type: 'application/pdf', size: 10, sha256: 'ff', thumb: false, later: 1 }],
  }));
  assert.deepEqual(frame.attachments, [{ id: uuid(2), name: 'a.pdf', type: 'application/pdf', size: 10, sha256: 'ff', thumb: false }]);
  const plain = decodeServerFrame(JSON.stringify({ type: 'message', conversation: 'b1', id: uuid(1), seq: 1, sender: 'ana', role: 'client', body: 'x', ts: 1, attachments: null }));
  assert.ok(!('attachments' in plain));
});

test('file names are cut to what the server takes: no control characters, at most 255 bytes, never empty', () => {
  assert.equal(uploadName('a\u0000b\nc.pdf'), 'abc.pdf');
  assert.equal(uploadName(''), 'file');
  const long = uploadName('é'.repeat(200));
  assert.equal(new TextEncoder().encode(long).length, 254);
  assert.equal(long, 'é'.repeat(127));
});

// ---- signed links --------------------------------------------------------------------------

test('signed links: asked once, absolute, refreshed shortly before they expire', async () => {
  let now = 1_000_000;
  const asked = [];
  const fetch = async (url, init) => {
    asked.push([url, new Headers(init.headers).get('Authorization')]);
    return new Response(JSON.stringify({
      url: `/v1/attachments/a1?sig=${asked.length}`, thumb_url: `/v1/attachments/a1/thumb?sig=${asked.length}`,
      expires_at: Math.floor(now / 1000) + 300,
    }), { status: 200 });
  };
  const links = new AttachmentLinks({ base: 'http://127.0.0.1:9/', token: () => 'tok', now: () => now, fetch });
  assert.equal(links.peek('a1'), undefined);
  const [a, b] = await Promise.all([links.get('a1'), links.get('a1')]);
  assert.equal(asked.length, 1, 'concurrent calls share one request');
  assert.deepEqual(asked[0], ['http://127.0.0.1:9/v1/attachments/a1/link', 'Bearer tok']);
  assert.equal(a, b);
  assert.equal(a.url, 'http://127.0.0.1:9/v1/attachments/a1?sig=1');
  assert.equal(a.thumb_url, 'http://127.0.0.1:9/v1/attachments/a1/thumb?sig=1');
  now += 300_000 - LINK_REFRESH_AHEAD_MS - 1000;
  assert.equal((await links.get('a1')).url, a.url, 'still fresh');
  assert.equal(links.peek('a1'), a);
  now += 2000;
  assert.equal(links.peek('a1'), undefined, 'too close to its expiry to hand out');
  assert.equal((await links.get('a1')).url, 'http://127.0.0.1:9/v1/attachments/a1?sig=2');
  assert.equal(asked.length, 2);
});

test('a refused link rejects with the server code, and is asked again next time', async () => {
  let calls = 0;
  const fetch = async () => {
    calls += 1;
    return new Response(JSON.stringify({ code: 'not_found', detail: 'no such file' }), { status: 404 });
  };
  const links = new AttachmentLinks({ base: 'http://x', token: () => 't', fetch });
  await assert.rejects(links.get('zz'), (e) => e.code === 'not_found');
  await assert.rejects(links.get('zz'), (e) => e.code === 'not_found');
  assert.equal(calls, 2);
});

test('expires_at in seconds, milliseconds or as a date', () => {
  assert.equal(expiryMs(1_700_000_000, 0), 1_700_000_000_000);
  assert.equal(expiryMs(1_700_000_000_000, 0), 1_700_000_000_000);
  assert.equal(expiryMs('2023-11-14T22:13:20Z', 0), 1_700_000_000_000);
  assert.equal(expiryMs(undefined, 5), 300_005);
});

// ---- magic numbers -------------------------------------------------------------------------

const bytesOf = (...parts) => new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

test('sniffing: each allowed type by its magic number, whatever the name or declared type', async () => {
  const table = [
    [bytesOf([0xff, 0xd8, 0xff, 0xe0], 'JFIF'), 'image/jpeg'],
    [bytesOf([0xff, 0xd8, 0xff, 0xdb]), 'image/jpeg'],
    [bytesOf([0x89], 'PNG', [0x0d, 0x0a, 0x1a, 0x0a], 'IHDR'), 'image/png'],
    [bytesOf('GIF87a', [1, 0]), 'image/gif'],
    [bytesOf('GIF89a', [1, 0]), 'image/gif'],
    [bytesOf('RIFF', [0x24, 0, 0, 0], 'WEBPVP8 '), 'image/webp'],
    [bytesOf('%PDF-1.4\n'), 'application/pdf'],
    // Not allowed: found as nothing.
    [bytesOf('<html><body>'), null],
    [bytesOf('<?xml version="1.0"?><svg'), null],
    [bytesOf('<svg xmlns='), null],
    [bytesOf('RIFF', [0x24, 0, 0, 0], 'WAVEfmt '), null],
    [bytesOf('GIF88a'), null],
    [bytesOf([0x89], 'PNG', [0x0d, 0x0a, 0x1a]), null], // cut short
    [bytesOf([0xff, 0xd8]), null],
    [bytesOf('%PDF'), null],
    [bytesOf('PK', [3, 4]), null], // a zip (docx, …)
    [new Uint8Array(0), null],
  ];
  for (const [bytes, want] of table) {
    assert.equal(sniffType(bytes), want, `${[...bytes.slice(0, 8)].map((b) => b.toString(16)).join(' ')}`);
    assert.equal(await sniffBlob(new Blob([bytes], { type: 'image/jpeg' })), want);
  }
  // Every signature's type is one the server allows by default, and each is in the table above.
  assert.deepEqual([...new Set(SIGNATURES.map((s) => s.type))].sort(), [...DEFAULT_ATTACHMENT_TYPES].sort());
});

test('the widget refuses before uploading: empty, over the limit, or not an allowed type by its content', async () => {
  const jpeg = (size) => new File([new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), new Uint8Array(size - 4)], 'photo.jpg', { type: 'image/jpeg' });
  const limits = { attachment_bytes_max: 1_000_000, attachment_types: DEFAULT_ATTACHMENT_TYPES };
  assert.equal(await refusal(jpeg(1_000_000), limits, 'en'), null, 'exactly the limit goes');
  assert.deepEqual(await refusal(jpeg(1_000_001), limits, 'en'), { key: 'attach.too_large', vars: { name: 'photo.jpg', max: '1 MB' } });
  assert.deepEqual(await refusal(new File([], 'empty.pdf'), limits, 'en'), { key: 'attach.empty', vars: { name: 'empty.pdf' } });
  const html = new File(['<html><script>alert(1)</script>'], 'photo.jpg', { type: 'image/jpeg' });
  assert.deepEqual(await refusal(html, limits, 'en'), { key: 'attach.unsupported', vars: { name: 'photo.jpg' } });
  // A server that allows fewer types: a PDF is refused by its content, whatever its name.
  const pdfNamedPng = new File(['%PDF-1.4 ...'], 'scan.png', { type: 'image/png' });
  assert.equal((await refusal(pdfNamedPng, { attachment_types: ['image/jpeg', 'image/png'] }, 'en'))?.key, 'attach.unsupported');
  assert.equal(await refusal(pdfNamedPng, {}, 'en'), null, 'defaults: the protocol limit and types');
  // A server configured with a type this SDK cannot read decides itself.
  assert.equal(await refusal(html, { attachment_types: [...DEFAULT_ATTACHMENT_TYPES, 'image/heic'] }, 'en'), null);
});

test('sizes and types as a file card shows them, in the reader\'s language', () => {
  assert.equal(formatBytes(512, 'en'), '512 byte');
  assert.equal(formatBytes(245_000, 'en'), '245 kB');
  assert.equal(formatBytes(1_840_000, 'en'), '1.8 MB');
  assert.equal(formatBytes(26_214_400, 'en'), '26 MB');
  assert.equal(formatBytes(1_840_000, 'es'), '1,8 MB');
  assert.notEqual(formatBytes(1_840_000, 'ar'), '1.8 MB', 'Arabic units');
  assert.equal(typeLabel('application/pdf'), 'PDF');
  assert.equal(typeLabel('image/svg+xml'), 'SVG');
  assert.equal(typeLabel(''), '');
});
