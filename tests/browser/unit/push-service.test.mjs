// The test push service (e2e/push-service.mjs) is itself tested: it opens the RFC 8291 example
// message, and refuses what a real push service refuses (a forged or misaddressed VAPID token,
// missing headers, a tampered body), recording each refusal.
// Run with: node --test tests/browser/unit/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { decrypt, startPushService } from '../e2e/push-service.mjs';

// RFC 8291 Section 5 and Appendix A (published test data).
const RFC = {
  plaintext: 'When I grow up, I want to be a watermelon',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  auth: 'BTBZMqHH6r4Tts7J_aSIgg',
  body: 'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml'
    + 'mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT'
    + 'pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};
const b64 = (text) => Buffer.from(text, 'base64url');

/** An application server's VAPID key pair; `k` is the public key as sent in `k=`. */
function vapidKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const k = Buffer.concat([Buffer.from([4]), b64(jwk.x), b64(jwk.y)]).toString('base64url');
  return { privateKey, k };
}

/** `vapid t=…, k=…` signed with `signer` for `claims`, announcing `k`. */
function authorization(signer, claims, k = signer.k) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signed = `${part({ typ: 'JWT', alg: 'ES256' })}.${part(claims)}`;
  const signature = sign('sha256', Buffer.from(signed), { key: signer.privateKey, dsaEncoding: 'ieee-p1363' });
  return `vapid t=${signed}.${signature.toString('base64url')}, k=${k}`;
}

let service;
before(async () => { service = await startPushService(); });
after(async () => { await service?.close(); });

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ aud: service.url, exp: now() + 3600, sub: 'mailto:ops@surechat.example', ...extra });

async function post(endpoint, headers, body) {
  const response = await fetch(endpoint, { method: 'POST', headers, body });
  return response.status;
}

test('decrypt opens the RFC 8291 example message', () => {
  const plain = decrypt(b64(RFC.body), { privateKey: b64(RFC.uaPrivate), publicKey: b64(RFC.uaPublic), auth: b64(RFC.auth) });
  assert.equal(plain.toString('utf8'), RFC.plaintext);
  const tampered = b64(RFC.body);
  tampered[tampered.length - 1] ^= 1;
  assert.throws(() => decrypt(tampered, { privateKey: b64(RFC.uaPrivate), publicKey: b64(RFC.uaPublic), auth: b64(RFC.auth) }));
});

test('the service accepts the RFC 8291 example pushed with a valid VAPID token', async () => {
  const sub = service.subscription('rfc', { privateKey: b64(RFC.uaPrivate), auth: b64(RFC.auth) });
  assert.deepEqual(sub.keys, { p256dh: RFC.uaPublic, auth: RFC.auth });
  assert.equal(sub.endpoint, `${service.url}/push/rfc`);
  const signer = vapidKey();
  const status = await post(sub.endpoint, {
    Authorization: authorization(signer, claims()), 'Content-Encoding': 'aes128gcm', TTL: '60',
    Topic: 'booking-1001', Urgency: 'high', 'Content-Type': 'application/octet-stream',
  }, b64(RFC.body));
  assert.equal(status, 201, JSON.stringify(service.failures));
  const [got] = await service.waitFor('rfc', 1, 5000);
  assert.equal(got.payload, RFC.plaintext);
  assert.equal(got.ttl, 60);
  assert.equal(got.topic, 'booking-1001');
  assert.equal(got.urgency, 'high');
  assert.equal(got.key, signer.k);
  assert.deepEqual(service.failures, []);
});

test('forged, misaddressed or expired tokens, missing headers and tampered bodies are refused and recorded', async () => {
  const signer = vapidKey();
  const sub = service.subscription('strict', { privateKey: b64(RFC.uaPrivate), auth: b64(RFC.auth) });
  const good = { 'Content-Encoding': 'aes128gcm', TTL: '60' };
  const body = b64(RFC.body);
  const tampered = b64(RFC.body);
  tampered[100] ^= 1;
  const cases = [
    ['a signature by another key than k', 401, { ...good, Authorization: authorization(vapidKey(), claims(), signer.k) }, body],
    ['no Authorization', 401, good, body],
    ['the old WebPush scheme', 401, { ...good, Authorization: authorization(signer, claims()).replace('vapid', 'WebPush') }, body],
    ['aud with a path', 403, { ...good, Authorization: authorization(signer, claims({ aud: `${service.url}/push/strict` })) }, body],
    ['an expired token', 403, { ...good, Authorization: authorization(signer, claims({ exp: now() - 1 })) }, body],
    ['exp more than 24 h ahead', 403, { ...good, Authorization: authorization(signer, claims({ exp: now() + 25 * 3600 })) }, body],
    ['no sub', 403, { ...good, Authorization: authorization(signer, claims({ sub: undefined })) }, body],
    ['no TTL', 400, { 'Content-Encoding': 'aes128gcm', Authorization: authorization(signer, claims()) }, body],
    ['the old aesgcm coding', 400, { ...good, 'Content-Encoding': 'aesgcm', Authorization: authorization(signer, claims()) }, body],
    ['a tampered body', 400, { ...good, Authorization: authorization(signer, claims()) }, tampered],
  ];
  for (const [what, status, headers, payload] of cases) {
    const before = service.failures.length;
    assert.equal(await post(sub.endpoint, headers, payload), status, what);
    assert.equal(service.failures.length, before + 1, `${what} is recorded`);
    assert.equal(service.failures.at(-1).status, status);
  }
  assert.equal(service.received('strict').length, 0);

  // Bound to its applicationServerKey: a valid token by another key is refused.
  const bound = service.subscription('bound', { applicationServerKey: signer.k });
  const other = vapidKey();
  assert.equal(await post(bound.endpoint, { ...good, Authorization: authorization(other, claims()) }, body), 403);

  // Gone: 410 from now on, and that is not a failure of the sender.
  service.gone('strict');
  const before_ = service.failures.length;
  assert.equal(await post(sub.endpoint, { ...good, Authorization: authorization(signer, claims()) }, body), 410);
  assert.equal(service.failures.length, before_);
  service.failures.length = 0;
});

test('waitFor fails with what was refused when too few pushes arrive', async () => {
  service.subscription('quiet');
  await assert.rejects(service.waitFor('quiet', 1, 50), /0 of 1 pushes arrived for quiet/);
});
