// Attachments end to end, in Chromium against the real server: a photo chosen offline survives
// closing the tab and is delivered once, in order with the texts around it; an upload cut by a
// SIGKILL of the server resumes from the offset the server stored; paste and drag and drop; a
// file over the limit is refused before any upload; axe-core with attachments on screen.
// Run with: node --test --test-concurrency=1 tests/browser/e2e/attachments.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { withConsole, launch, waitRows, type, badge, until, assertAccessible } from './harness.mjs';
import { pdf, png } from './files.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const bodies = (rows) => rows.map((r) => r[0]);
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

const setup = (t, env) => withConsole(browser, t, env);

/** Chooses files with the chat's attach button's file input, as a user's file picker would. */
async function choose(page, files) {
  await page.locator('surechat-chat input[type=file]').setInputFiles(files);
}

/** The files waiting in the composer, by name. */
async function chosen(page) {
  return page.locator('surechat-chat .pending-files li .name').allTextContents();
}

/** Files of pending messages kept in the page's IndexedDB. */
function storedFiles(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const request = indexedDB.open('surechat:ana');
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains('files')) { db.close(); resolve(0); return; }
      const count = db.transaction('files').objectStore('files').count();
      count.onsuccess = () => { db.close(); resolve(count.result); };
      count.onerror = () => reject(count.error);
    };
  }));
}

/** The conversation as the server holds it (as the operator reads it over HTTP). */
async function history(server, booking) {
  return (await server.as(booking.olga, 'GET', `/v1/conversations/${booking.id}/messages`)).messages;
}

/** Thumbnails shown in a page's chat that have loaded: their src. */
function loadedThumbs(page) {
  return page.evaluate(() => [...document.querySelector('surechat-chat').shadowRoot.querySelectorAll('.thumb img')]
    .filter((img) => img.complete && img.naturalWidth > 0).map((img) => img.src));
}

test('a photo chosen offline survives closing the tab, then is uploaded and delivered once, in order with the texts around it', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  const url = server.clientUrl(booking.ana, booking.id);
  let page = await clientContext.newPage();
  await page.goto(url);
  await badge(page, 'connected');
  await type(page, 'hello, online');
  await waitRows(operator, 'the first message', (r) => r.length === 1);
  await clientContext.setOffline(true);
  await badge(page, 'offline');
  await type(page, 'typed before the photo');
  const photo = png(640, 420);
  await choose(page, [{ name: 'balcony.png', mimeType: 'image/png', buffer: photo }]);
  assert.deepEqual(await chosen(page), ['balcony.png']);
  await page.locator('surechat-chat textarea').press('Enter'); // a photo without words
  await type(page, 'typed after the photo');
  const pending = await waitRows(page, 'three waiting', (r) => r.filter((x) => x[1] === 'sending').length === 3);
  assert.deepEqual(bodies(pending), ['hello, online', 'typed before the photo', '', 'typed after the photo']);
  // The photo is on this device, with its message, before anything was uploaded.
  assert.equal(await storedFiles(page), 1);
  await page.close();
  assert.equal((await history(server, booking)).length, 1, 'nothing reached the server while offline');

  await clientContext.setOffline(false);
  page = await clientContext.newPage();
  const uploads = [];
  page.on('request', (r) => { if (r.url().includes('/v1/uploads/')) uploads.push(`${r.method()} ${new URL(r.url()).pathname}`); });
  await page.goto(url);
  await badge(page, 'connected');
  const seen = await waitRows(operator, 'the three kept messages', (r) => r.length === 4);
  assert.deepEqual(bodies(seen), ['hello, online', 'typed before the photo', '', 'typed after the photo']);
  const stored = await history(server, booking);
  assert.deepEqual(stored.map((m) => m.body), bodies(seen), 'stored once each, in the order written');
  assert.equal(new Set(stored.map((m) => m.id)).size, 4);
  const [attachment] = stored[2].attachments;
  assert.equal(stored[2].attachments.length, 1);
  assert.equal(attachment.name, 'balcony.png');
  assert.equal(attachment.type, 'image/png');
  assert.deepEqual([attachment.width, attachment.height], [640, 420]);
  // Only the page that was opened online uploaded it: one upload id.
  assert.equal(new Set(uploads.map((u) => u.split(' ')[1])).size, 1, uploads.join('\n'));
  // The operator sees its thumbnail, through a signed link.
  const thumbs = await until('the thumbnail at the operator', () => loadedThumbs(operator));
  assert.equal(thumbs.length, 1);
  assert.match(thumbs[0], new RegExp(`/v1/attachments/${attachment.id}/thumb`));
  // The client's ticks for all four, and the bytes gone from IndexedDB once stored.
  await waitRows(page, 'delivered at the client', (r) => r.length === 4 && r.every((x) => x[1] === 'delivered' || x[1] === 'read'));
  await until('the files gone from IndexedDB', async () => (await storedFiles(page)) === 0);
});

test('the server killed with SIGKILL during an upload: after the restart it resumes from the stored offset; delivered once', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  const page = await clientContext.newPage();
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  const file = pdf(3 * 1024 * 1024, 7);
  let patches = 0;
  /** Requests after the kill wait until the test has read the stored offset. @type {null | { promise: Promise<void>, resolve: () => void }} */
  let gate = null;
  let killed;
  const killedNow = new Promise((resolve) => { killed = resolve; });
  /** Upload-Offset of every PATCH let through after the restart. */
  const resumed = [];
  let uploadPath = '';
  await page.route('**/v1/uploads/**', async (route) => {
    const request = route.request();
    uploadPath ||= new URL(request.url()).pathname;
    if (gate) {
      await gate.promise;
      if (request.method() === 'PATCH') resumed.push(Number(request.headers()['upload-offset']));
      return route.continue().catch(() => {});
    }
    if (request.method() === 'PATCH' && ++patches === 3) {
      let release;
      gate = { promise: new Promise((resolve) => { release = resolve; }), resolve: () => release() };
      const continued = route.continue().catch(() => {});
      await server.kill(); // while the third chunk is on its way
      killed();
      return continued;
    }
    return route.continue();
  });
  await choose(page, [{ name: 'passport-scan.pdf', mimeType: 'application/pdf', buffer: file }]);
  await type(page, 'my passport');
  await killedNow;
  await server.restart();
  const before = await server.as(booking.ana, 'GET', uploadPath);
  assert.equal(before.state, 'receiving');
  assert.ok(before.offset >= 2 * 512 * 1024 && before.offset < file.length, `stored before the kill: ${before.offset}`);
  gate.resolve();
  const seen = await waitRows(operator, 'the passport at the operator', (r) => r.length === 1);
  assert.deepEqual(bodies(seen), ['my passport']);
  assert.equal(resumed[0], before.offset, `the first chunk after the restart starts at the stored offset (${resumed})`);
  const done = await server.as(booking.ana, 'GET', uploadPath);
  assert.equal(done.state, 'complete');
  assert.equal(done.sha256, sha256(file), 'the stored file is the file');
  const stored = await history(server, booking);
  assert.equal(stored.length, 1, 'delivered once');
  assert.equal(stored[0].attachments[0].sha256, sha256(file));
  // The operator's card links to the file.
  const card = operator.locator('surechat-chat .file-card');
  await card.waitFor();
  assert.match(await card.textContent(), /passport-scan\.pdf/);
  await until('a download link', async () => (await card.locator('a.download').getAttribute('href')) ?? '');
});

test('an image pasted into the composer and files dropped on the conversation are attached and sent', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t);
  const page = await clientContext.newPage();
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  const bytes = (buffer) => [...buffer];
  // Paste: a screenshot on the clipboard, as the browser hands it to the page.
  await page.locator('surechat-chat textarea').evaluate((input, data) => {
    const clipboard = new DataTransfer();
    clipboard.items.add(new File([new Uint8Array(data)], 'image.png', { type: 'image/png' }));
    input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: clipboard, bubbles: true, cancelable: true, composed: true }));
  }, bytes(png(300, 200)));
  await until('the pasted image in the composer', () => chosen(page));
  assert.deepEqual(await chosen(page), ['image.png']);
  // Drop: a photo and a PDF dragged from the desktop onto the conversation.
  const transfer = await page.evaluateHandle(([photo, doc]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(photo)], 'room.png', { type: 'image/png' }));
    dt.items.add(new File([new Uint8Array(doc)], 'invoice.pdf', { type: 'application/pdf' }));
    return dt;
  }, [bytes(png(400, 300, [20, 140, 90], [240, 240, 200])), bytes(pdf(40_000))]);
  const log = page.locator('surechat-chat .log');
  await log.dispatchEvent('dragenter', { dataTransfer: transfer });
  await page.locator('surechat-chat .dropzone').waitFor({ state: 'visible' });
  await log.dispatchEvent('dragover', { dataTransfer: transfer });
  await log.dispatchEvent('drop', { dataTransfer: transfer });
  await until('three files in the composer', async () => (await chosen(page)).length === 3);
  assert.deepEqual(await chosen(page), ['image.png', 'room.png', 'invoice.pdf']);
  assert.equal(await page.locator('surechat-chat .dropzone').isHidden(), true);
  // One removed with its button, by keyboard.
  await page.locator('surechat-chat .pending-files button[aria-label="Remove image.png"]').press('Enter');
  assert.deepEqual(await chosen(page), ['room.png', 'invoice.pdf']);
  await type(page, 'the room and the invoice');
  assert.deepEqual(await chosen(page), [], 'the composer is empty once sent');
  await waitRows(operator, 'the message at the operator', (r) => r.length === 1);
  const [message] = await history(server, booking);
  assert.deepEqual(message.attachments.map((a) => [a.name, a.type]), [['room.png', 'image/png'], ['invoice.pdf', 'application/pdf']]);
  await until('the thumbnail at the operator', () => loadedThumbs(operator));
  await operator.locator('surechat-chat .file-card', { hasText: 'invoice.pdf' }).waitFor();

  // (e) axe-core with attachments on screen: the bubble's thumbnail and card, files waiting in
  // the composer, and the full-size view.
  await until('the thumbnail at the client', () => loadedThumbs(page));
  await choose(page, [{ name: 'later.pdf', mimeType: 'application/pdf', buffer: pdf(2000) }]);
  await assertAccessible(page, 'client: a photo, a PDF card, a file in the composer');
  await assertAccessible(operator, 'console: a photo and a PDF card');
  const thumb = page.locator('surechat-chat button.thumb').first();
  await thumb.focus();
  await thumb.press('Enter');
  const viewer = page.locator('surechat-chat dialog.viewer');
  await viewer.waitFor({ state: 'visible' });
  assert.equal(await viewer.getAttribute('aria-label'), 'room.png');
  await until('the full-size picture', () => viewer.locator('img').evaluate((img) => img.complete && img.naturalWidth === 400));
  await assertAccessible(page, 'client: the full-size view');
  await page.keyboard.press('Escape');
  await viewer.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.querySelector('surechat-chat').shadowRoot.activeElement?.className), 'thumb', 'focus back on the photo');
});

test('files over the limit or of a type not allowed are refused before any upload request, with a clear message', async (t) => {
  const { server, booking, clientContext, operator } = await setup(t, { SURECHAT_ATTACHMENT_BYTES_MAX: '1000000' });
  const page = await clientContext.newPage();
  const uploads = [];
  page.on('request', (r) => { if (r.url().includes('/v1/uploads')) uploads.push(r.method()); });
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  // The widget has the server's limit (GET /v1/widget).
  await until('the server limit in the widget', () => page.evaluate(() => document.querySelector('surechat-chat').settings.attachment_bytes_max === 1000000));
  const error = page.locator('surechat-chat .error');
  await choose(page, [{ name: 'scan.pdf', mimeType: 'application/pdf', buffer: pdf(1_500_000) }]);
  await until('the refusal', async () => /scan\.pdf is too large to send: files can be up to 1 MB\./.test(await error.textContent()));
  await choose(page, [{ name: 'photo.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('<html><script>alert(1)</script></html>') }]);
  await until('the second refusal', async () => /photo\.jpg cannot be sent/.test(await error.textContent()));
  assert.equal(await error.getAttribute('role'), 'alert', 'said at once to screen readers');
  assert.deepEqual(await chosen(page), []);
  assert.deepEqual(uploads, [], 'no upload request for refused files');
  // A file that is allowed goes (the counter above counts real uploads).
  await choose(page, [{ name: 'ok.png', mimeType: 'image/png', buffer: png(50, 50) }]);
  await until('the allowed file in the composer', () => chosen(page));
  await page.locator('surechat-chat textarea').press('Enter');
  await waitRows(operator, 'the allowed file at the operator', (r) => r.length === 1);
  assert.ok(uploads.includes('PUT') && uploads.includes('PATCH'), uploads.join(' '));
});
