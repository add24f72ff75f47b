// The npm package of the browser SDK (web/package.json): what its tarball holds, that every entry
// point has its module and its declarations, that `sideEffects` names exactly the modules that
// register custom elements, that React is the only (optional) dependency, and that the apps that
// install the tarball (the React example, the TypeScript consumer check) refer to it so that
// `npm ci` always installs the freshly packed one.
// Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WEB = join(ROOT, 'web');
const pkg = JSON.parse(readFileSync(join(WEB, 'package.json'), 'utf8'));
const json = (path) => JSON.parse(readFileSync(join(ROOT, path), 'utf8'));

/** The files `npm pack` would put in the tarball, as it reports them without writing it. */
const packed = (() => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: WEB, encoding: 'utf8' });
  return JSON.parse(out)[0].files.map((f) => f.path).sort();
})();
// sw.js is the pages' service worker (served by the server), not a module of the SDK.
const modules = readdirSync(WEB).filter((f) => f.endsWith('.js') && f !== 'sw.js').sort();
const source = (file) => readFileSync(join(WEB, file), 'utf8');

test('the package version is the Rust workspace version', () => {
  const cargo = readFileSync(join(ROOT, 'Cargo.toml'), 'utf8');
  const version = cargo.match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)?.[1];
  assert.ok(version, 'no [workspace.package] version in Cargo.toml');
  assert.equal(pkg.name, 'surechat');
  assert.equal(pkg.version, version);
  assert.equal(pkg.type, 'module');
});

test('the tarball holds the SDK modules, their declarations, package.json and README, nothing else', () => {
  const declarations = readdirSync(join(WEB, 'types')).filter((f) => f.endsWith('.d.ts')).map((f) => `types/${f}`);
  // The message catalogs the components import (their declarations under types/locales/).
  const catalogs = readdirSync(join(WEB, 'locales')).filter((f) => f.endsWith('.js'));
  const catalogTypes = readdirSync(join(WEB, 'types/locales')).filter((f) => f.endsWith('.d.ts'));
  const want = ['README.md', 'package.json', ...modules, ...declarations, ...catalogs.map((f) => `locales/${f}`),
    ...catalogTypes.map((f) => `types/locales/${f}`)].sort();
  assert.deepEqual(packed, want);
  assert.ok(!packed.some((f) => f.startsWith('demo/') || f.startsWith('console/')), 'the pages are not part of the package');
  assert.ok(!packed.includes('sw.js'), 'the service worker is not part of the package');
  // Every module has its declarations (gen-types.mjs writes them; --check keeps them current).
  for (const m of modules) assert.ok(packed.includes(`types/${m.replace(/\.js$/, '.d.ts')}`), `no declarations for ${m}`);
});

test('every entry point names a shipped module and its shipped declarations, types first', () => {
  const entries = Object.entries(pkg.exports).filter(([name]) => name !== './package.json');
  for (const [name, target] of entries) {
    assert.deepEqual(Object.keys(target), ['types', 'default'], `${name}: "types" must come before "default"`);
    const file = target.default.replace(/^\.\//, '');
    assert.ok(packed.includes(file), `${name} → ${file} is not in the tarball`);
    assert.equal(target.types, `./types/${file.replace(/\.js$/, '.d.ts')}`, `${name}: declarations of another file`);
    assert.ok(packed.includes(target.types.replace(/^\.\//, '')), `${name} → ${target.types} is not in the tarball`);
  }
  const names = entries.map(([name]) => name);
  // What docs/guide.md and the example import.
  for (const name of ['.', './client', './components', './react']) assert.ok(names.includes(name), `no entry ${name}`);
  assert.equal(pkg.exports['.'].default, pkg.main);
  assert.equal(pkg.exports['.'].types, pkg.types);
});

test('sideEffects names exactly the modules that register custom elements', () => {
  const defining = modules.filter((m) => /\bcustomElements\.define\(/.test(source(m))).map((m) => `./${m}`);
  assert.ok(defining.length > 0);
  assert.deepEqual([...pkg.sideEffects].sort(), defining.sort());
});

test('React is the only dependency, optional, and only react.js imports it', () => {
  assert.equal(pkg.dependencies, undefined);
  assert.deepEqual(Object.keys(pkg.peerDependencies), ['react']);
  assert.deepEqual(pkg.peerDependenciesMeta, { react: { optional: true } });
  for (const m of modules) {
    const specifiers = [...source(m).matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)]
      .map((x) => x[1] ?? x[2]);
    const bare = specifiers.filter((s) => !s.startsWith('./'));
    assert.deepEqual(bare, m === 'react.js' ? ['react'] : [], `${m} imports ${bare.join(', ')}`);
    for (const s of specifiers.filter((s) => s.startsWith('./'))) {
      assert.ok(packed.includes(s.slice(2)), `${m} imports ${s}, which is not in the tarball`);
    }
  }
});

// npm records an `integrity` for a local tarball when it first adds one; `npm ci` then installs
// whatever its cache holds under that hash (a stale SDK) or, with an empty cache, fails once web/
// has changed. Without it, `npm ci` reads the tarball that was just packed.
for (const app of ['examples/react-booking', 'tests/browser/consumer']) {
  test(`${app} installs the packed tarball, and its lock file pins no hash of it`, () => {
    const spec = json(`${app}/package.json`).dependencies.surechat;
    const tarball = `target/npm/${pkg.name}-${pkg.version}.tgz`;
    assert.match(spec, /^file:/);
    const resolved = join(ROOT, app, spec.slice('file:'.length));
    assert.equal(resolved, join(ROOT, tarball), `${app} must depend on ${tarball}`);
    const lock = json(`${app}/package-lock.json`);
    assert.equal(lock.packages[''].dependencies.surechat, spec);
    const entry = lock.packages['node_modules/surechat'];
    assert.equal(entry.resolved, spec);
    assert.equal(entry.version, pkg.version);
    assert.deepEqual(entry.peerDependencies, pkg.peerDependencies, `${app}/package-lock.json: run npm install there after packing`);
    assert.equal(entry.integrity, undefined, `remove "integrity" from node_modules/surechat in ${app}/package-lock.json`);
  });
}

test('no tarball lies in web/: everything there is embedded in the server binary', () => {
  const tarballs = readdirSync(WEB, { recursive: true }).map(String).filter((f) => f.endsWith('.tgz'));
  assert.deepEqual(tarballs, [], 'pack with --pack-destination target/npm');
});
