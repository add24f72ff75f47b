// What every browser test needs: a real `surechat serve` on a temp data dir and an ephemeral
// port, headless Chromium (Debian's package) with a fresh profile, and helpers that wait for
// DOM states — never sleeps. Every wait is bounded, so a test fails instead of hanging.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
// scripts/test-browser copies the freshly built binary here, so a concurrent build of another
// tree cannot swap it mid-run; SURECHAT_BIN overrides.
const BINARY = process.env.SURECHAT_BIN ?? join(ROOT, 'tests/browser/.bin/surechat');
const ADMIN_KEY = 'test-admin-key-0123456789';
const JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789';
/** Bound of every wait in the tests. */
export const WAIT_MS = 20000;

mkdirSync(ARTIFACTS, { recursive: true });

/** Servers still running; killed if the test process ends early (a timeout, an exception). */
const running = new Set();
process.on('exit', () => { for (const child of running) child.kill('SIGKILL'); });

/**
 * A running surechat server; `kill()` is SIGKILL, `restart()` reuses port and data dir. `env`:
 * extra `SURECHAT_*` settings (e.g. a short presence leave delay).
 */
export class Server {
  /** @param {Record<string, string>} [env] @param {string} [toml] a configuration file's text */
  constructor(env = {}, toml = '') {
    this.env = env;
    this.data = mkdtempSync(join(tmpdir(), 'surechat-browser-'));
    this.toml = toml;
    this.listen = '127.0.0.1:0';
    this.base = '';
    this.child = null;
  }

  async start() {
    const args = ['serve', '--listen', this.listen, '--data', this.data];
    if (this.toml) {
      const file = join(this.data, 'surechat.toml');
      writeFileSync(file, this.toml);
      args.push('--config', file);
    }
    const child = spawn(BINARY, args, {
      env: { ...process.env, SURECHAT_ADMIN_KEY: ADMIN_KEY, SURECHAT_JWT_SECRET: JWT_SECRET, RUST_LOG: 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(child);
    child.on('exit', () => running.delete(child));
    let stderr = '';
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    this.base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), WAIT_MS);
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/surechat listening on (http:\/\/[^\s]+)/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${stderr}`)); });
    });
    this.listen = this.base.replace('http://', '');
    await this.checkEmbedded();
    return this;
  }

  /**
   * Fails clearly when the binary embeds another version of web/ than this tree's. JavaScript is
   * served stripped of its comments, so the bodies differ from the files; each file's `ETag` is
   * the hash of its source (128 bits of SHA-256), which the tree's file must match.
   */
  async checkEmbedded() {
    const files = readdirSync(join(ROOT, 'web'), { recursive: true }).map(String).filter((f) => /\.(js|html|css)$/.test(f));
    for (const file of files) {
      const response = await fetch(`${this.base}/web/${file}`, { headers: { 'Accept-Encoding': 'identity' } });
      const tag = `"${createHash('sha256').update(readFileSync(join(ROOT, 'web', file))).digest('hex').slice(0, 32)}"`;
      if (!response.ok || response.headers.get('etag') !== tag) {
        throw new Error(`${BINARY} serves another web/${file}: rebuild it (scripts/test-browser does)`);
      }
    }
  }

  /** SIGKILL: no goodbye, no close frames. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async restart() {
    await this.kill();
    // The port may linger for a moment after SIGKILL; retry binding within the bound.
    const until = Date.now() + WAIT_MS;
    for (;;) {
      try {
        return await this.start();
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop() {
    await this.kill();
    rmSync(this.data, { recursive: true, force: true });
  }

  /** An admin call to the HTTP API. */
  async admin(method, path, body) {
    const response = await fetch(this.base + path, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  /** Creates a booking conversation with ana (client) and olga (operator); returns tokens. */
  async booking(id = 'booking-1001') {
    await this.admin('POST', '/v1/conversations', {
      id, participants: [{ user_id: 'ana', role: 'client' }, { user_id: 'olga', role: 'operator' }],
    });
    const ana = await this.token('ana', 'client');
    const olga = await this.token('olga', 'operator');
    return { id, ana, olga };
  }

  /**
   * A user token; `scope: 'all'` lets an operator see every conversation. An operator is put in
   * the operator directory first, named by the id capitalised (olga → Olga).
   */
  async token(user_id, role, scope) {
    if (role === 'operator') {
      await this.admin('PUT', `/v1/operators/${user_id}`, { name: user_id[0].toUpperCase() + user_id.slice(1) });
    }
    return (await this.admin('POST', '/v1/tokens', { user_id, role, ...(scope ? { scope } : {}) })).token;
  }

  /** A user's call to the HTTP API (throws on an error answer). */
  async as(token, method, path, body) {
    const response = await fetch(this.base + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  clientUrl(token, conversation) {
    return `${this.base}/web/demo/client.html#token=${token}&conversation=${conversation}`;
  }

  operatorUrl(token, conversation, view) {
    return `${this.base}/web/console/#token=${token}${conversation ? `&conversation=${conversation}` : ''}${view ? `&view=${view}` : ''}`;
  }
}

/**
 * Headless Chromium with a fresh profile (Playwright gives every launch a new temporary
 * user-data-dir); `newContext()` gives isolated browser contexts within it.
 */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The chat's rows (own and others'), as [body, status] in display order. */
/**
 * A server (with `env` settings), a booking, a context for the client's pages and the operator's
 * console connected: what the tests of a guest and an operator start from. Everything is closed
 * when test `t` ends.
 */
export async function withConsole(browser, t, env = {}) {
  const server = await new Server(env).start();
  t.after(() => server.stop());
  const booking = await server.booking();
  const clientContext = await browser.newContext();
  const operatorContext = await browser.newContext();
  t.after(() => clientContext.close());
  t.after(() => operatorContext.close());
  const operator = await operatorContext.newPage();
  await operator.goto(server.operatorUrl(booking.olga, booking.id));
  await badge(operator, 'connected');
  return { server, booking, clientContext, operator };
}

export async function rows(page) {
  return page.evaluate(() => {
    const chat = document.querySelector('surechat-chat');
    return [...chat.shadowRoot.querySelectorAll('li[data-id]')].map((li) => [li.querySelector('.body').textContent, li.dataset.status ?? '']);
  });
}

/**
 * Waits until `predicate(rows)` holds in the page, polling the DOM (bounded).
 * @param {import('playwright-core').Page} page
 * @param {string} what Description for the failure message.
 * @param {(rows: [string, string][]) => boolean} predicate
 */
export async function waitRows(page, what, predicate) {
  const until = Date.now() + WAIT_MS;
  let last = [];
  while (Date.now() < until) {
    last = await rows(page);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50)); // expect-style polling interval, not a sync point
  }
  const shown = last.map(([body, status]) => [body.slice(0, 40), status]);
  throw new Error(`timed out waiting for ${what}; rows were ${JSON.stringify(shown)}`);
}

/** Types a message in the page's chat and sends it with Enter, as a user would. */
export async function type(page, text) {
  const input = page.locator('surechat-chat textarea');
  await input.fill(text);
  await input.press('Enter');
}

/** Waits for the connection badge to show `status`. */
export async function badge(page, status) {
  await page.locator(`surechat-connection-status[status="${status}"]`).first().waitFor({ timeout: WAIT_MS });
}

/**
 * Waits (bounded by WAIT_MS) until `check()` answers something truthy — an empty array counts as
 * not yet — and returns it; fails with `what` and the last answer. For states no event announces
 * (the DOM, a cache, a notification list), polled every 50 ms.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} check
 * @returns {Promise<T>}
 */
export async function until(what, check) {
  const end = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last && (!Array.isArray(last) || last.length)) return last;
    await new Promise((r) => setTimeout(r, 50)); // polling interval, not a synchronisation point
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

/** axe-core's source, evaluated in the page through the DevTools protocol (the pages' CSP forbids injected scripts). */
const AXE_SOURCE = readFileSync(join(ROOT, 'tests/browser/node_modules/axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core (WCAG 2.1 A/AA rules and best practices) on the page as it is now, shadow roots
 * included, and fails with each rule, its help and the offending elements when any serious or
 * critical violation is found. `state` names the state checked, for the failure message.
 * @param {import('playwright-core').Page} page
 * @param {string} state
 * @returns {Promise<any[]>} the moderate and minor violations, for tests that want none at all
 */
export async function assertAccessible(page, state) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // @ts-ignore axe is the global just evaluated
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((/** @type {any} */ v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((/** @type {any} */ n) => `${JSON.stringify(n.target)}: ${n.failureSummary}`),
    }));
  });
  const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (grave.length) {
    const text = grave.map((v) => `- ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.join('\n    ')}`).join('\n');
    throw new Error(`axe-core found serious or critical violations (${state}):\n${text}`);
  }
  return violations.filter((v) => !(v.impact === 'serious' || v.impact === 'critical'));
}
