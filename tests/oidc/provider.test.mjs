// The test provider works here, headless: discovery, the JWKS, and one authorization code flow
// with PKCE walked with plain fetch, ending in an ID token with the account's claims.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, createPublicKey, verify } from 'node:crypto';

import { startProvider, signIn, CookieJar, parseForm } from './provider-lib.mjs';

const REDIRECT_URI = 'http://127.0.0.1:9/v1/oidc/corp/callback';
const CLIENT_ID = 'surechat';
const CLIENT_SECRET = 'test-secret-1';

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

let provider;
before(async () => {
  provider = await startProvider({
    clients: [
      { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] },
      { clientId: 'surechat-public', redirectUris: [REDIRECT_URI], idTokenAlg: 'ES256' },
    ],
  });
});
after(() => provider?.close());

async function discovery() {
  const response = await fetch(`${provider.issuer}/.well-known/openid-configuration`);
  assert.equal(response.status, 200);
  return response.json();
}

function authorizeUrl(meta, clientId, { challenge, state, nonce }) {
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  return url.href;
}

function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
}

/** Verifies a compact JWS against the JWKS and returns its claims. */
function verifyIdToken(idToken, jwks) {
  const [header64, payload64, signature64] = idToken.split('.');
  const header = JSON.parse(Buffer.from(header64, 'base64url'));
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `a key with kid ${header.kid}`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${header64}.${payload64}`);
  const signature = Buffer.from(signature64, 'base64url');
  const ok = header.alg === 'ES256'
    ? verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
    : verify('sha256', data, key, signature);
  assert.ok(ok, 'the ID token signature verifies');
  return { header, claims: JSON.parse(Buffer.from(payload64, 'base64url')) };
}

test('discovery and JWKS describe a provider that requires S256', async () => {
  const meta = await discovery();
  assert.equal(meta.issuer, provider.issuer);
  assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
  for (const scope of ['openid', 'email', 'profile']) {
    assert.ok(meta.scopes_supported.includes(scope), scope);
  }
  const jwks = await (await fetch(meta.jwks_uri)).json();
  assert.deepEqual(jwks.keys.map((k) => k.kty).sort(), ['EC', 'RSA']);
  for (const key of jwks.keys) assert.equal(key.d, undefined, 'no private part published');
});

for (const [clientId, secret, alg] of [
  [CLIENT_ID, CLIENT_SECRET, 'RS256'],
  ['surechat-public', null, 'ES256'],
]) {
  test(`a code flow with PKCE signs agent in (${clientId}, ${alg})`, async () => {
    const meta = await discovery();
    const { verifier, challenge } = pkce();
    const state = b64url(randomBytes(16));
    const nonce = b64url(randomBytes(16));

    const location = new URL(await signIn(authorizeUrl(meta, clientId, { challenge, state, nonce }), 'agent'));
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    assert.equal(location.searchParams.get('state'), state);
    assert.equal(location.searchParams.get('iss'), provider.issuer);
    const code = location.searchParams.get('code');
    assert.ok(code, `a code in ${location}`);

    const body = new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
    });
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    if (secret) headers.authorization = `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
    else body.set('client_id', clientId);
    const response = await fetch(meta.token_endpoint, { method: 'POST', headers, body });
    const tokens = await response.json();
    assert.equal(response.status, 200, JSON.stringify(tokens));

    const jwks = await (await fetch(meta.jwks_uri)).json();
    const { header, claims } = verifyIdToken(tokens.id_token, jwks);
    assert.equal(header.alg, alg);
    assert.equal(claims.iss, provider.issuer);
    assert.equal(claims.aud, clientId);
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.sub, 'agent');
    assert.equal(claims.email, 'agent@corp.example');
    assert.equal(claims.email_verified, true);
    assert.equal(claims.name, 'Ada Agent');

    // The code is single-use.
    const again = await fetch(meta.token_endpoint, { method: 'POST', headers, body });
    assert.equal(again.status, 400);
  });
}

test('the token endpoint refuses a code without its PKCE verifier', async () => {
  const meta = await discovery();
  const { challenge } = pkce();
  const location = new URL(await signIn(
    authorizeUrl(meta, CLIENT_ID, { challenge, state: 's', nonce: 'n' }),
    'outsider',
  ));
  const response = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: location.searchParams.get('code'),
      redirect_uri: REDIRECT_URI,
      code_verifier: pkce().verifier,
    }),
  });
  assert.equal(response.status, 400);
  assert.equal((await response.json()).error, 'invalid_grant');
});

test('an authorization request without PKCE is sent back with an error', async () => {
  const meta = await discovery();
  const url = new URL(authorizeUrl(meta, CLIENT_ID, { challenge: 'x', state: 's', nonce: 'n' }));
  url.searchParams.delete('code_challenge');
  url.searchParams.delete('code_challenge_method');
  const location = new URL(await signIn(url.href, 'agent'));
  assert.equal(location.searchParams.get('error'), 'invalid_request');
});

test('the cookie jar sends cookies by path and forgets expired ones', () => {
  const jar = new CookieJar();
  const at = new URL('http://127.0.0.1/interaction/abc');
  jar.store(at, [
    '_interaction=1; path=/interaction/abc; httponly',
    '_session=2; path=/',
    'gone=3; path=/',
  ]);
  jar.store(at, ['gone=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT']);
  assert.equal(jar.header(at), '_interaction=1; _session=2');
  assert.equal(jar.header(new URL('http://127.0.0.1/interaction/abcd')), '_session=2');
  assert.equal(jar.header(new URL('http://127.0.0.1/auth/abc')), '_session=2');
});

test('parseForm reads the action and the hidden fields', () => {
  const form = parseForm(
    '<form autocomplete="off" action="http://127.0.0.1:1/interaction/x?a=1&amp;b=2" method="post">'
    + '<input type="hidden" name="prompt" value="login"/><input required type="text" name="login">'
    + '</form>',
  );
  assert.deepEqual(form, {
    action: 'http://127.0.0.1:1/interaction/x?a=1&b=2',
    method: 'post',
    fields: { prompt: 'login' },
  });
});
