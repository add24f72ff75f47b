// Size and load time of the browser SDK. Measures (1) the gzipped size of the SDK and the web
// components (everything but the React hook and the demo pages), per file and as one stream,
// and (2) the time until the client demo page is usable — the chat's composer is there and the
// badge says connected — in headless Chromium on an emulated slow 3G network (400 ms latency,
// 400 kbit/s each way, cache empty), median of several runs.
// Run with: node tests/browser/bench-size.mjs   (after scripts/test-browser has built the binary)
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { Server, launch, ROOT } from './e2e/harness.mjs';

const SDK = ['index.js', 'types.js', 'frames.js', 'outbox.js', 'conversation.js', 'session.js',
  'store.js', 'client.js', 'components.js', 'chat-element.js', 'format.js', 'i18n.js', 'locales/en.js',
  'locales/es.js', 'locales/ar.js'];
const RUNS = Number(process.env.RUNS ?? 5);
const SLOW_3G = { offline: false, latency: 400, downloadThroughput: 400 * 1000 / 8, uploadThroughput: 400 * 1000 / 8 };

const texts = SDK.map((f) => readFileSync(join(ROOT, 'web', f)));
const raw = texts.reduce((n, t) => n + t.length, 0);
const perFile = texts.reduce((n, t) => n + gzipSync(t, { level: 9 }).length, 0);
const together = gzipSync(Buffer.concat(texts), { level: 9 }).length;
console.log(`SDK + web components: ${SDK.length} files, ${raw} bytes raw, ${perFile} bytes gzipped file by file, ${together} bytes gzipped as one stream`);

const server = await new Server().start();
const browser = await launch();
try {
  const booking = await server.booking();
  const times = [];
  // The composer works before the connection does (what is typed goes to the outbox), so both
  // moments are reported: the composer is there, and the badge says connected.
  const typing = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await cdp.send('Network.emulateNetworkConditions', SLOW_3G);
    const started = Date.now();
    await page.goto(server.clientUrl(booking.ana, booking.id), { waitUntil: 'commit' });
    await page.locator('surechat-chat textarea').waitFor({ timeout: 60000 });
    typing.push(Date.now() - started);
    await page.locator('surechat-connection-status[status="connected"]').waitFor({ timeout: 60000 });
    times.push(Date.now() - started);
    await context.close();
  }
  times.sort((a, b) => a - b);
  typing.sort((a, b) => a - b);
  console.log(`client page composer ready on slow 3G (ms, ${RUNS} runs): median ${typing[Math.floor(typing.length / 2)]}, min ${typing[0]}, max ${typing.at(-1)}`);
  console.log(`client page usable on slow 3G (ms, ${RUNS} runs): median ${times[Math.floor(times.length / 2)]}, min ${times[0]}, max ${times.at(-1)}`);
} finally {
  await browser.close();
  await server.stop();
}
