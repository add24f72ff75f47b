// The service worker's app shell: a repeat visit is answered from the cache at once and the cache
// catches up in the background (stale-while-revalidate); only files under /web/ are kept, never
// the API or the build name; a new version of the worker drops the caches of older ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, badge, WAIT_MS, until } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });


/** The names of the origin's caches, and the paths each holds. */
function cached(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      out[name] = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
    }
    return out;
  });
}

test('the shell is served from the cache and revalidated; old caches go; the API is never kept', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const context = await browser.newContext();
  t.after(() => context.close());
  // Before any worker: a cache an older worker left behind.
  const page = await context.newPage();
  await page.goto(`${server.base}/web/favicon.svg`);
  await page.evaluate(async () => {
    await (await caches.open('surechat-shell-v5')).put('/web/old.js', new Response('old'));
  });
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  const caches = await until('only the new cache, with the shell', async () => {
    const now = await cached(page);
    const names = Object.keys(now);
    return names.length === 1 && names[0] !== 'surechat-shell-v5' && now[names[0]].includes('/web/client.js') ? now : null;
  });
  const [name] = Object.keys(caches);
  // The page now runs under the worker; it calls the API, and the API is not kept.
  await page.reload();
  await badge(page, 'connected');
  assert.ok(await page.evaluate(() => Boolean(navigator.serviceWorker.controller)));
  const widget = await page.evaluate(async (token) => (await fetch('/v1/widget', { headers: { Authorization: `Bearer ${token}` } })).status, booking.ana);
  assert.equal(widget, 200);
  const build = await page.evaluate(async () => (await fetch('/web/build')).text());
  const paths = (await cached(page))[name];
  assert.ok(paths.every((p) => p.startsWith('/web/') && p !== '/web/build' && p !== '/web/sw.js'), paths.join());
  // Stale-while-revalidate: what the cache holds is answered at once, then replaced by the
  // server's file for the next visit.
  const real = await (await fetch(`${server.base}/web/favicon.svg`)).text();
  await page.evaluate(async (cacheName) => {
    await (await caches.open(cacheName)).put('/web/favicon.svg', new Response('stale', { headers: { etag: '"stale"', 'content-type': 'image/svg+xml' } }));
  }, name);
  assert.equal(await page.evaluate(async () => (await fetch('/web/favicon.svg')).text()), 'stale', 'answered from the cache');
  await until('the cache to hold the server\'s file', () => page.evaluate(async (cacheName) => {
    const held = await (await caches.open(cacheName)).match('/web/favicon.svg');
    return held && (await held.text()) !== 'stale';
  }, name));
  assert.equal(await page.evaluate(async () => (await fetch('/web/favicon.svg')).text()), real);
  // Versioned files are answered from the cache without asking again.
  const versioned = `/web/v/${build}/favicon.svg`;
  assert.equal(await page.evaluate(async (path) => (await fetch(path)).status, versioned), 200);
  await page.evaluate(async ([cacheName, path]) => {
    await (await caches.open(cacheName)).put(path, new Response('kept', { headers: { 'content-type': 'image/svg+xml' } }));
  }, [name, versioned]);
  assert.equal(await page.evaluate(async (path) => (await fetch(path)).text(), versioned), 'kept');
});
