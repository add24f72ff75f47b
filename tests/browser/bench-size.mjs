// Size and load time of the browser SDK. Measures (1) the gzipped size of the SDK and the web
// components (everything but the React hook and the demo pages), per file and as one stream, as
// written and as the server sends them (comments stripped, gzip),
// and (2) the time until the client demo page's composer is usable and until its badge says
// connected, in headless Chromium on an emulated slow 3G network (400 ms latency, 400 kbit/s each
// way), on a first visit (cache empty) and on a repeat visit (same profile: HTTP cache and service
// worker), median of several runs.
// Run with: node tests/browser/bench-size.mjs   (after scripts/test-browser has built the binary)
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { get } from 'node:http';
import { join } from 'node:path';
import { Server, launch, ROOT } from './e2e/harness.mjs';

// What an English page loads; each other language adds its catalog (reported on its own).
const SDK = ['index.js', 'types.js', 'frames.js', 'outbox.js', 'conversation.js', 'session.js',
  'store.js', 'client.js', 'components.js', 'chat-element.js', 'format.js', 'i18n.js', 'locales/en.js'];
const LANGUAGES = ['locales/es.js', 'locales/ar.js'];
const RUNS = Number(process.env.RUNS ?? 5);
const SLOW_3G = { offline: false, latency: 400, downloadThroughput: 400 * 1000 / 8, uploadThroughput: 400 * 1000 / 8 };

const texts = SDK.map((f) => readFileSync(join(ROOT, 'web', f)));
const raw = texts.reduce((n, t) => n + t.length, 0);
const perFile = texts.reduce((n, t) => n + gzipSync(t, { level: 9 }).length, 0);
const together = gzipSync(Buffer.concat(texts), { level: 9 }).length;
console.log(`SDK + web components as written: ${SDK.length} files, ${raw} bytes raw, ${perFile} bytes gzipped file by file, ${together} bytes gzipped as one stream`);

const server = await new Server().start();

/** The bytes the server sends for `path` to a browser that accepts gzip (as they cross the wire). */
const wire = (/** @type {string} */ path) => new Promise((resolve, reject) => {
  get(`${server.base}/web/${path}`, { headers: { 'Accept-Encoding': 'gzip' } }, (response) => {
    let n = 0;
    response.on('data', (chunk) => { n += chunk.length; });
    response.on('end', () => resolve(n));
  }).on('error', reject);
});
/** The text the server sends for `path` (comments stripped), decoded. */
const servedText = async (/** @type {string} */ path) => Buffer.from(await (await fetch(`${server.base}/web/${path}`)).arrayBuffer());
const sent = await Promise.all(SDK.map(wire));
const servedTexts = await Promise.all(SDK.map(servedText));
const servedRaw = servedTexts.reduce((n, t) => n + t.length, 0);
const servedTogether = gzipSync(Buffer.concat(servedTexts), { level: 9 }).length;
console.log(`SDK + web components as served: ${servedRaw} bytes stripped, ${sent.reduce((a, b) => a + b, 0)} bytes on the wire file by file (gzip), ${servedTogether} bytes gzipped as one stream`);
for (const catalog of LANGUAGES) console.log(`  + ${catalog} for a page in that language: ${await wire(catalog)} bytes on the wire`);

const browser = await launch();

/** Median, min and max of a list of milliseconds, as text. @param {number[]} list */
const summary = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(sorted.length / 2)]}, min ${sorted[0]}, max ${sorted.at(-1)}`;
};

/**
 * Loads the client page on slow 3G and answers [composer usable, connected] in ms from the start
 * of navigation. "Usable" means the composer is there and accepts typing: the chat's textarea
 * exists, is enabled and is visible.
 * @param {import('playwright-core').BrowserContext} context
 * @param {string} url
 * @param {boolean} cache whether the HTTP cache (and so revalidation) is allowed
 */
async function visit(context, url, cache) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: !cache });
  await cdp.send('Network.emulateNetworkConditions', SLOW_3G);
  const started = Date.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.locator('surechat-chat textarea').waitFor({ state: 'visible', timeout: 60000 });
  const usable = Date.now() - started;
  await page.locator('surechat-connection-status[status="connected"]').waitFor({ timeout: 60000 });
  const connected = Date.now() - started;
  await page.close();
  return [usable, connected];
}

try {
  const booking = await server.booking();
  const url = server.clientUrl(booking.ana, booking.id);
  const first = [[], []];
  const repeat = [[], []];
  for (let i = 0; i < RUNS; i++) {
    // A first visit: a fresh profile, nothing cached, no service worker yet.
    const context = await browser.newContext();
    const [usable, connected] = await visit(context, url, false);
    first[0].push(usable);
    first[1].push(connected);
    // The service worker installed by that visit has the app shell; wait until it controls the
    // scope, then come back as a returning guest does (same profile, HTTP cache allowed).
    const page = await context.newPage();
    await page.goto(url);
    await page.evaluate(() => navigator.serviceWorker?.ready);
    await page.close();
    const [usable2, connected2] = await visit(context, url, true);
    repeat[0].push(usable2);
    repeat[1].push(connected2);
    await context.close();
  }
  console.log(`client page, first visit on slow 3G (ms, ${RUNS} runs): composer usable ${summary(first[0])}; connected ${summary(first[1])}`);
  console.log(`client page, repeat visit on slow 3G (ms, ${RUNS} runs): composer usable ${summary(repeat[0])}; connected ${summary(repeat[1])}`);
} finally {
  await browser.close();
  await server.stop();
}
