// Operators sign in to the console at /console, in Chromium: an admin adds an agent, the agent
// signs in and answers a guest, the admin disables the agent and the agent's open console is
// signed out within seconds; wrong passwords lock the account; two-step sign-in is set up and
// used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Server, launch, badge, type, waitRows, WAIT_MS } from './harness.mjs';

const ADA = { email: 'ada@example.com', password: 'ada has a long passphrase' };
const BO = { email: 'bo@example.com', password: 'bo has a long passphrase too' };

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A server with a first admin (made with the admin key, as `surechat operator add` would). */
async function withAdmin(t, env = {}) {
  const server = await new Server(env).start();
  t.after(() => server.stop());
  await server.admin('PUT', '/v1/accounts/ada', { email: ADA.email, name: 'Ada', role: 'admin', password: ADA.password });
  return server;
}

/** Opens /console in a fresh context and signs in; answers the page once the console is up. */
async function signIn(t, server, who, code) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(`${server.base}/console`);
  await page.waitForURL(/\/web\/console\/sign-in\.html/);
  await page.fill('#email', who.email);
  await page.fill('#password', who.password);
  await page.click('#signin button[type=submit]');
  if (code) {
    await page.locator('#code').waitFor({ state: 'visible', timeout: WAIT_MS });
    await page.fill('#code', await code());
    await page.click('#signin button[type=submit]');
  }
  await page.waitForURL(/\/web\/console\/(#.*)?$/, { timeout: WAIT_MS });
  await badge(page, 'connected');
  return page;
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret, for `at` ms. */
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[19] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}

test('an admin adds an agent, who answers a guest, and is signed out within seconds when disabled', async (t) => {
  const server = await withAdmin(t);
  const admin = await signIn(t, server, ADA);
  await admin.click('#team summary');
  await admin.fill('#team-add input[name=name]', 'Bo');
  await admin.fill('#team-add input[name=email]', BO.email);
  await admin.fill('#team-add input[name=password]', BO.password);
  await admin.click('#team-add button[type=submit]');
  await admin.locator('#team-status', { hasText: 'Bo can sign in now.' }).waitFor({ timeout: WAIT_MS });

  // A guest's booking, assigned to Bo.
  await server.admin('PUT', '/v1/conversations/booking-7', { participants: [{ user_id: 'ana', role: 'client' }], metadata: { guest: 'Ana' } });
  await server.admin('POST', '/v1/conversations/booking-7/assign', { operator_id: BO.email });
  const ana = await server.token('ana', 'client');

  const agent = await signIn(t, server, BO);
  await agent.locator('#inbox [data-conversation="booking-7"]').click();
  await type(agent, 'Hello Ana, your room is ready.');
  const guestContext = await browser.newContext();
  t.after(() => guestContext.close());
  const guest = await guestContext.newPage();
  await guest.goto(server.clientUrl(ana, 'booking-7'));
  await waitRows(guest, "Bo's answer", (r) => r.some(([body]) => body.includes('your room is ready')));

  // Disabled: Bo's open console ends up on the sign-in page on its own.
  const started = Date.now();
  await admin.locator(`#team-list button[data-account="${BO.email}"]`, { hasText: 'Disable' }).click();
  await agent.waitForURL(/sign-in\.html/, { timeout: WAIT_MS });
  assert.ok(Date.now() - started < 10000, 'signed out within seconds');
  await agent.fill('#email', BO.email);
  await agent.fill('#password', BO.password);
  await agent.click('#signin button[type=submit]');
  await agent.locator('#problem', { hasText: 'Wrong email or password.' }).waitFor({ timeout: WAIT_MS });

  const { entries } = await server.admin('GET', '/v1/audit');
  const actions = entries.map((e) => `${e.action}:${e.actor}`);
  assert.ok(actions.includes('account_created:ada'), actions.join(' '));
  assert.ok(actions.includes('operator_disabled:ada'), actions.join(' '));
});

test('wrong passwords lock the account after the documented count', async (t) => {
  const server = await withAdmin(t);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(`${server.base}/web/console/sign-in.html`);
  await page.fill('#email', ADA.email);
  // The default `signin_lock_after` is 5: four say "wrong", the fifth locks.
  for (let i = 1; i <= 5; i++) {
    await page.fill('#password', `wrong guess number ${i}`);
    await page.click('#signin button[type=submit]');
    const expected = i < 5 ? 'Wrong email or password.' : 'Too many failed attempts.';
    await page.locator('#problem', { hasText: expected }).waitFor({ timeout: WAIT_MS });
    if (i < 5) await page.evaluate(() => { document.getElementById('problem').textContent = ''; });
  }
  await page.fill('#password', ADA.password);
  await page.click('#signin button[type=submit]');
  await page.locator('#problem', { hasText: 'Too many failed attempts.' }).waitFor({ timeout: WAIT_MS });
  assert.match(page.url(), /sign-in\.html/);
});

test('two-step sign-in: set up with the key, then asked for a code', async (t) => {
  const server = await withAdmin(t);
  const page = await signIn(t, server, ADA);
  await page.click('#totp summary');
  await page.click('#totp-start');
  const secret = await page.locator('#totp-secret').textContent();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await page.fill('#totp-code', totp(secret));
  await page.click('#totp form button[type=submit]');
  await page.locator('#totp', { hasText: 'Two-step sign-in is on.' }).waitFor({ timeout: WAIT_MS });
  await page.click('#sign-out');
  await page.waitForURL(/sign-in\.html/);

  // A code of the next step, so the one used to turn it on is not replayed.
  const next = () => totp(secret, Date.now() + 30000);
  const again = await signIn(t, server, ADA, async () => next());
  assert.match(again.url(), /\/web\/console\//);
  const { entries } = await server.admin('GET', '/v1/audit');
  assert.ok(entries.some((e) => e.action === 'totp_enabled' && e.actor === 'ada'));
  assert.ok(entries.some((e) => e.action === 'signin' && e.detail.method === 'password+totp'));
});
