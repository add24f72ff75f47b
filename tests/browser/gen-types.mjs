// Generates the .d.ts files of the browser SDK into web/types/ for integrators (TypeScript
// users of the plain-JS modules). With --check, fails if the committed files differ from what
// it would generate. Run with: node tests/browser/gen-types.mjs [--check]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, cpSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const target = join(here, '../../web/types');
const out = mkdtempSync(join(tmpdir(), 'surechat-types-'));
try {
  execFileSync(join(here, 'node_modules/.bin/tsc'), ['-p', join(here, 'tsconfig.json'), '--noEmit', 'false',
    '--declaration', '--emitDeclarationOnly', '--rootDir', join(here, '../../web'), '--outDir', out], { stdio: 'inherit' });
  const files = (dir) => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.d.ts') && !f.startsWith('demo') && !f.startsWith('console') && f !== 'sw.d.ts').sort() : []);
  if (process.argv.includes('--check')) {
    const want = files(out);
    const have = files(target);
    const differ = want.filter((f) => !have.includes(f) || readFileSync(join(out, f), 'utf8') !== readFileSync(join(target, f), 'utf8'));
    const extra = have.filter((f) => !want.includes(f));
    if (differ.length || extra.length) {
      console.error(`web/types is out of date (${[...differ, ...extra].join(', ')}): run node tests/browser/gen-types.mjs`);
      process.exit(1);
    }
    console.log(`web/types: ${want.length} declaration files up to date`);
  } else {
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    for (const f of files(out)) cpSync(join(out, f), join(target, f));
    console.log(`wrote ${files(target).length} declaration files to web/types`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
