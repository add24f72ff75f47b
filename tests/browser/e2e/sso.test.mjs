// Single sign-on through surechat's own routes against a real OpenID provider (oidc-provider,
// tests/oidc): an existing operator signs in, an address of an allowed domain is provisioned as
// an agent and others are refused, and a callback that does not match its flow (state, tampered
// cookie) starts no session. Then the same in Chromium, through the provider's pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, badge, WAIT_MS } from './harness.mjs';
import { startProvider, signIn } from '../../oidc/provider-lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A surechat with provider `corp` (provisioning corp.example) and the provider, wired up. */
async function setup(t) {
  // The redirect URI names surechat's port, known only once it listens: take a free one first.
  const probe = await new Server().start();
  const address = probe.listen;
  await probe.stop();
  const provider = await startProvider({ clientId: 'surechat', clientSecret: 'a-client-secret-0123456789', redirectUris: [`http://${address}/v1/oidc/corp/callback`] });
  t.after(() => provider.close());
  const toml = `[[oidc]]
name = "corp"
label = "Corp"
issuer = "${provider.issuer}"
client_id = "surechat"
client_secret = "a-client-secret-0123456789"
auto_provision = true
allowed_domains = ["corp.example"]
`;
  const server = new Server({ SURECHAT_LISTEN: address }, toml);
  server.listen = address;
  await server.start();
  t.after(() => server.stop());
  return { server, provider };
}

/**
 * Starts a sign-in at surechat, walks the provider's pages as `login`, and follows the provider's
 * redirect back to surechat's callback; answers that last response.
 */
async function sso(server, login, { tamper } = {}) {
  const start = await fetch(`${server.base}/v1/oidc/corp/start`, { redirect: 'manual' });
  assert.equal(start.status, 302);
  let flow = start.headers.get('set-cookie').split(';')[0];
  if (tamper) flow = tamper(flow);
  const back = await signIn(start.headers.get('location'), login);
  return fetch(back, { redirect: 'manual', headers: { cookie: flow } });
}

test('single sign-on: existing accounts sign in, allowed domains are provisioned, others refused', async (t) => {
  const { server } = await setup(t);
  const providers = await (await fetch(`${server.base}/v1/oidc`)).json();
  assert.deepEqual(providers, { providers: [{ name: 'corp', label: 'Corp' }] });

  // An operator of the directory (no account) already has the id the address maps to:
  // provisioning must not take it over.
  await server.admin('PUT', '/v1/operators/agent@corp.example', { name: 'Someone Else' });

  // agent@corp.example has no account yet: provisioned as an agent, signed in.
  const first = await sso(server, 'agent');
  assert.equal(first.status, 302);
  assert.equal(first.headers.get('location'), '/web/console/');
  const session = first.headers.getSetCookie().find((c) => c.startsWith('surechat_session='));
  assert.ok(session, 'a session cookie');
  const me = await (await fetch(`${server.base}/v1/session`, { headers: { cookie: session.split(';')[0] } })).json();
  assert.equal(me.email, 'agent@corp.example');
  assert.equal(me.role, 'agent');
  assert.equal(me.method, 'oidc:corp');
  const { accounts } = await server.admin('GET', '/v1/accounts');
  assert.deepEqual(accounts.map((a) => [a.operator_id, a.email, a.role, a.password_set]), [['agent@corp.example-2', 'agent@corp.example', 'agent', false]]);
  assert.equal((await server.admin('GET', '/v1/operators/agent@corp.example')).name, 'Someone Else');

  // Another domain: no account, none made.
  const outsider = await sso(server, 'outsider');
  assert.equal(outsider.headers.get('location'), '/web/console/sign-in.html#error=no_account');
  // An unverified address identifies nobody, even of the allowed domain.
  const unverified = await sso(server, 'unverified');
  assert.equal(unverified.headers.get('location'), '/web/console/sign-in.html#error=no_account');
  assert.equal((await server.admin('GET', '/v1/accounts')).accounts.length, 1);

  // An existing account of another domain: this provider speaks only for corp.example, so it
  // cannot sign anyone in as that account (an admin, here).
  await server.admin('PUT', '/v1/accounts/oscar', { email: 'outsider@other.example', name: 'Oscar', role: 'admin' });
  const oscar = await sso(server, 'outsider');
  assert.equal(oscar.headers.get('location'), '/web/console/sign-in.html#error=no_account');

  // The provisioned account again: the same operator, not a second one.
  const again = await sso(server, 'agent');
  assert.equal(again.headers.get('location'), '/web/console/');
  assert.equal((await server.admin('GET', '/v1/accounts')).accounts.length, 2);

  // A flow cookie altered on the way: refused, no session.
  const tampered = await sso(server, 'agent', { tamper: (c) => c.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A')) });
  assert.equal(tampered.headers.get('location'), '/web/console/sign-in.html#error=failed');
  assert.ok(!tampered.headers.getSetCookie().some((c) => c.startsWith('surechat_session=') && !c.includes('Max-Age=0')));

  // Disabled: refused.
  const agentId = (await server.admin('GET', '/v1/accounts')).accounts.find((a) => a.email === 'agent@corp.example').operator_id;
  await server.admin('PUT', `/v1/accounts/${encodeURIComponent(agentId)}`, { email: 'agent@corp.example', name: 'Ada Agent', role: 'agent', active: false });
  const disabled = await sso(server, 'agent');
  assert.equal(disabled.headers.get('location'), '/web/console/sign-in.html#error=disabled');

  const { entries } = await server.admin('GET', '/v1/audit');
  assert.ok(entries.some((e) => e.action === 'account_created' && e.actor === 'oidc:corp'));
  assert.ok(entries.some((e) => e.action === 'signin' && e.detail.method === 'oidc:corp'));
  assert.ok(entries.some((e) => e.action === 'signin_failed' && e.actor === 'outsider@other.example' && e.detail.why === 'domain not allowed'));
});

test('single sign-on in Chromium: the sign-in page button, the provider pages, the console', async (t) => {
  const { server } = await setup(t);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(`${server.base}/console`);
  await page.waitForURL(/sign-in\.html/);
  await page.getByRole('link', { name: 'Sign in with Corp' }).click();
  await page.locator('input[name=login]').waitFor({ timeout: WAIT_MS });
  await page.fill('input[name=login]', 'agent');
  const password = page.locator('input[name=password]');
  if (await password.count()) await password.fill('any');
  await page.click('button[type=submit]');
  await page.locator('button[type=submit]').waitFor({ timeout: WAIT_MS });
  await page.click('button[type=submit]');
  await page.waitForURL(/\/web\/console\/$/, { timeout: WAIT_MS });
  await badge(page, 'connected');
  await page.locator('#who', { hasText: 'Ada Agent' }).waitFor({ timeout: WAIT_MS });
});
