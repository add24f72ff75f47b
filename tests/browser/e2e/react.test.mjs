// The React hook in the example app (examples/react-booking, built with Vite), driven like the
// demo pages: send, receive, and the offline queue. The app is served from its own static
// server (another origin than surechat's, as in a real integration).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { extname, join } from 'node:path';
import { Server, launch, waitRows, type, badge, ROOT, WAIT_MS } from './harness.mjs';

const APP = join(ROOT, 'examples/react-booking');
let browser;
let web;
let origin;

before(async () => {
  if (!existsSync(join(APP, 'dist/index.html'))) {
    execFileSync('npm', ['run', 'build'], { cwd: APP, stdio: 'inherit', timeout: 120000 });
  }
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  web = createServer((req, res) => {
    const path = join(APP, 'dist', new URL(req.url, 'http://x').pathname.replace(/^\/$/, '/index.html'));
    if (!path.startsWith(join(APP, 'dist')) || !existsSync(path)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'Content-Type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${web.address().port}`;
  browser = await launch();
});
after(async () => { await browser?.close(); web?.close(); });

/** The React page's rows as [body, status]. */
const reactRows = (page) => page.evaluate(() => [...document.querySelectorAll('li')]
  .map((li) => [li.querySelector('.body').textContent, li.dataset.status]));

async function waitReact(page, what, predicate) {
  const until = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < until) {
    last = await reactRows(page);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50)); // expect-style polling interval
  }
  throw new Error(`timed out waiting for ${what}; rows were ${JSON.stringify(last)}`);
}

test('the React hook: send, receive, and messages queued offline arrive once, in order', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const reactContext = await browser.newContext();
  const operatorContext = await browser.newContext();
  t.after(() => reactContext.close());
  t.after(() => operatorContext.close());
  const page = await reactContext.newPage();
  await page.goto(`${origin}/#token=${booking.ana}&conversation=${booking.id}&server=${server.base}`);
  const operator = await operatorContext.newPage();
  await operator.goto(server.operatorUrl(booking.olga, booking.id));
  await badge(operator, 'connected');
  await page.locator('[data-connection="connected"]').waitFor({ timeout: WAIT_MS });

  const input = page.getByLabel('Message');
  await input.fill('Hello from React');
  await input.press('Enter');
  await waitRows(operator, 'the React message at the operator', (r) => r.length === 1);
  await waitReact(page, 'read ticks', (r) => r[0]?.[1] === 'read');
  await type(operator, 'Hello back');
  await waitReact(page, 'the answer', (r) => r.length === 2 && r[1][0] === 'Hello back');

  await reactContext.setOffline(true);
  await page.locator('[data-connection="offline"]').waitFor({ timeout: WAIT_MS });
  for (const text of ['q1', 'q2', 'q3']) {
    await input.fill(text);
    await input.press('Enter');
  }
  await page.locator('[data-pending="3"]').waitFor({ timeout: WAIT_MS });
  await waitReact(page, 'three sending', (r) => r.filter((x) => x[1] === 'sending').length === 3);
  await reactContext.setOffline(false);
  const seen = await waitRows(operator, 'the queued three', (r) => r.length === 5);
  assert.deepEqual(seen.map((r) => r[0]), ['Hello from React', 'Hello back', 'q1', 'q2', 'q3']);
  await waitReact(page, 'queued ones delivered', (r) => r.length === 5 && r.slice(2).every((x) => x[1] === 'delivered' || x[1] === 'read'));
});
