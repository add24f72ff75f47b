// The service worker's app shell holds everything the pages need to open without a network: each
// page, its stylesheets and icon, and every module its scripts import, directly or not. A module
// added to a page but not to `SHELL` in web/sw.js would make an offline reload fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../../../web/', import.meta.url));
const PAGES = ['demo/client.html', 'console/index.html', 'console/sign-in.html', 'console/reset.html'];

/** The paths in sw.js's SHELL list. */
function shell() {
  const source = readFileSync(join(WEB, 'sw.js'), 'utf8');
  const list = source.match(/const SHELL = \[([\s\S]*?)\];/);
  assert.ok(list, 'sw.js declares const SHELL = [...]');
  return new Set([...list[1].matchAll(/'([^']+)'/g)].map((m) => m[1]));
}

/**
 * What `file` (a path under web/) needs: links and scripts of a page, imports of a module (static,
 * and dynamic ones like the catalogs of other languages, which a page in that language loads).
 */
function needs(file) {
  const text = readFileSync(join(WEB, file), 'utf8');
  const refs = file.endsWith('.html')
    ? [...text.matchAll(/<(?:link|script)\b[^>]*\b(?:href|src)="([^"]+)"/g)].map((m) => m[1])
    : [...text.matchAll(/(?:^|;|\n)\s*(?:import|export)\b[^'"`;]*?from\s*'([^']+)'|(?:^|\n)\s*import\s*'([^']+)'|\bimport\('([^']+)'\)/g)]
      .map((m) => m[1] ?? m[2] ?? m[3]);
  return refs.filter((r) => !/^[a-z]+:|^\/\//.test(r)).map((r) => normalize(join(dirname(file), r)));
}

test('the app shell holds every page, stylesheet, icon and module the pages load', () => {
  const listed = shell();
  const seen = new Set();
  const queue = [...PAGES];
  while (queue.length) {
    const file = /** @type {string} */ (queue.shift());
    if (seen.has(file)) continue;
    seen.add(file);
    if (/\.(html|js)$/.test(file)) queue.push(...needs(file));
  }
  const missing = [...seen].filter((f) => !listed.has(f)).sort();
  assert.deepEqual(missing, []);
  // The walk did find the modules (a broken pattern would find none and pass).
  assert.ok(seen.has('session.js') && seen.has('locales/ar.js') && seen.has('console/locales/ar.js'), [...seen].join(' '));
});
