// A push service on a local port, standing in for FCM or Mozilla autopush in the tests: it hands
// out subscriptions as a browser's PushManager would (a P-256 key pair and an auth secret per
// subscription), and checks each push the server sends as a strict push service does — the VAPID
// token (RFC 8292), the headers (RFC 8030) — then opens the payload (RFC 8291) with the
// subscription's private key. Written with node:crypto and node:http only, apart from the
// server's Rust code, so the two check each other.
//
// Every refused push is recorded in `failures`: a test asserts the list is empty, so a push the
// service refused cannot pass unnoticed as "not delivered yet".
import { createServer } from 'node:http';
import { createECDH, createDecipheriv, createHmac, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';
import { EventEmitter } from 'node:events';

/** RFC 8292 Section 2: a token must not be valid for more than 24 hours. */
const EXP_MAX_S = 24 * 3600;
/** RFC 8030 Section 7.2: bodies up to 4096 bytes must be accepted; we refuse larger ones. */
const BODY_MAX = 4096;
const URGENCIES = ['very-low', 'low', 'normal', 'high'];

/** Why a push is refused, and with which status. */
class Refusal extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

/**
 * Opens an `aes128gcm` body (RFC 8291 Section 3.4, RFC 8188) with the receiver's keys: what a
 * browser does on receipt. One record only, as RFC 8291 requires of senders.
 * @param {Buffer} body
 * @param {{ privateKey: Buffer, publicKey: Buffer, auth: Buffer }} receiver 32-byte private key,
 *   65-byte uncompressed public key, 16-byte auth secret.
 * @returns {Buffer} The plaintext, without padding.
 */
export function decrypt(body, { privateKey, publicKey, auth }) {
  if (body.length < 21) throw new Error('body shorter than the aes128gcm header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  if (idlen !== 65) throw new Error(`key id of ${idlen} bytes, not the sender's 65-byte public key`);
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (rs < 18) throw new Error(`record size ${rs} is below 18`);
  if (record.length > rs) throw new Error(`${record.length} bytes of records with record size ${rs}: more than one record`);
  if (record.length < 17) throw new Error('record shorter than the tag and a delimiter');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(privateKey);
  const secret = ecdh.computeSecret(asPublic);
  const info = (text, ...parts) => Buffer.concat([Buffer.from(text + '\0', 'latin1'), ...parts]);
  const ikm = Buffer.from(hkdfSync('sha256', secret, auth, info('WebPush: info', publicKey, asPublic), 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, info('Content-Encoding: aes128gcm'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, info('Content-Encoding: nonce'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (end < 0 || padded[end] !== 0x02) throw new Error('no last-record delimiter 0x02 after the plaintext');
  return padded.subarray(0, end);
}

/**
 * Checks `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292 Section 3) for a push to `origin`.
 * @param {string | undefined} header
 * @param {string} origin The push service's origin, the token's required `aud`.
 * @param {string | undefined} applicationServerKey The key the subscription was made with, if
 *   any: a token signed by another key is refused (403), as real push services do.
 * @returns {{ key: string, claims: Record<string, unknown> }}
 */
export function checkVapid(header, origin, applicationServerKey) {
  const m = /^vapid t=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header ?? '');
  if (!m) throw new Refusal(401, `Authorization is not "vapid t=…, k=…": ${header ?? '(none)'}`);
  const [, jwt, k] = m;
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Refusal(401, 'k is not an uncompressed P-256 point');
  let key;
  try {
    key = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
      format: 'jwk',
    });
  } catch (e) {
    throw new Refusal(401, `k is not a P-256 public key: ${e.message}`);
  }
  const [head, body, signature] = jwt.split('.');
  let header_, claims;
  try {
    header_ = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new Refusal(401, 'the token is not JSON');
  }
  if (header_.alg !== 'ES256') throw new Refusal(401, `token alg ${header_.alg}, not ES256`);
  const sig = Buffer.from(signature, 'base64url');
  // JWS carries r || s (64 bytes), not DER.
  if (sig.length !== 64 || !verify('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' }, sig)) {
    throw new Refusal(401, 'the token signature does not verify with k');
  }
  if (applicationServerKey && k !== applicationServerKey.replace(/=+$/, '')) {
    throw new Refusal(403, 'k is not the applicationServerKey this subscription was made with');
  }
  if (claims.aud !== origin) throw new Refusal(403, `aud ${JSON.stringify(claims.aud)}, not ${origin}`);
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw new Refusal(403, `exp ${claims.exp} is not in the future`);
  if (claims.exp > now + EXP_MAX_S) throw new Refusal(403, `exp ${claims.exp} is more than 24 h ahead`);
  if (typeof claims.sub !== 'string' || !/^(mailto:.+|https:\/\/.+)/.test(claims.sub)) {
    throw new Refusal(403, `sub ${JSON.stringify(claims.sub)} is not a mailto: or https: URI`);
  }
  return { key: k, claims };
}

/**
 * @typedef {object} Received
 * @property {unknown} payload The plaintext, parsed as JSON when it is JSON, else a string.
 * @property {Buffer} plaintext The plaintext bytes.
 * @property {number} ttl The `TTL` header.
 * @property {string | null} topic The `Topic` header.
 * @property {string | null} urgency The `Urgency` header.
 * @property {string} key The VAPID public key that signed for it.
 */

/**
 * Starts the push service on an ephemeral port of 127.0.0.1.
 * @returns {Promise<{
 *   url: string,
 *   subscription: (name: string, options?: { privateKey?: Buffer, auth?: Buffer, applicationServerKey?: string }) =>
 *     { endpoint: string, expirationTime: null, keys: { p256dh: string, auth: string } },
 *   received: (name: string) => Received[],
 *   waitFor: (name: string, count: number, timeoutMs?: number) => Promise<Received[]>,
 *   gone: (name: string) => void,
 *   failures: { name: string, status: number, reason: string }[],
 *   close: () => Promise<void>,
 * }>}
 */
export async function startPushService() {
  /** @type {Map<string, { privateKey: Buffer, publicKey: Buffer, auth: Buffer, applicationServerKey?: string, received: Received[], gone: boolean }>} */
  const subscriptions = new Map();
  const failures = [];
  const arrivals = new EventEmitter();
  let url = '';

  /** Checks and opens one push: what arrived, or null for a subscription that is gone (410). */
  async function accept(request, name, body) {
    const sub = subscriptions.get(name);
    if (!sub) throw new Refusal(404, `no subscription ${name}`);
    if (sub.gone) return null;
    const { key } = checkVapid(request.headers.authorization, url, sub.applicationServerKey);
    if (request.headers['content-encoding'] !== 'aes128gcm') {
      throw new Refusal(400, `Content-Encoding ${request.headers['content-encoding'] ?? '(none)'}, not aes128gcm`);
    }
    const ttl = request.headers.ttl;
    if (ttl === undefined || !/^\d+$/.test(ttl)) throw new Refusal(400, `TTL ${ttl ?? '(none)'} is not a number of seconds`);
    const topic = request.headers.topic ?? null;
    if (topic !== null && !/^[A-Za-z0-9_-]{1,32}$/.test(topic)) throw new Refusal(400, `Topic ${topic} is not 1-32 base64url characters`);
    const urgency = request.headers.urgency ?? null;
    if (urgency !== null && !URGENCIES.includes(urgency)) throw new Refusal(400, `Urgency ${urgency} is not one of ${URGENCIES}`);
    if (body.length > BODY_MAX) throw new Refusal(413, `body of ${body.length} bytes`);
    let plaintext;
    try {
      plaintext = decrypt(body, sub);
    } catch (e) {
      throw new Refusal(400, `cannot decrypt: ${e.message}`);
    }
    let payload = plaintext.toString('utf8');
    try { payload = JSON.parse(payload); } catch { /* not JSON: kept as text */ }
    return { payload, plaintext, ttl: Number(ttl), topic, urgency, key };
  }

  const server = createServer((request, response) => {
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => { size += chunk.length; if (size <= 2 * BODY_MAX) chunks.push(chunk); });
    request.on('end', async () => {
      const match = /^\/push\/([^/?]+)$/.exec(request.url ?? '');
      const name = match ? decodeURIComponent(match[1]) : '';
      let status;
      let arrived = null;
      try {
        if (request.method !== 'POST' || !match) throw new Refusal(404, `${request.method} ${request.url}`);
        arrived = await accept(request, name, Buffer.concat(chunks));
        status = arrived ? 201 : 410;
      } catch (e) {
        status = e instanceof Refusal ? e.status : 500;
        failures.push({ name, status, reason: e.message });
      }
      if (status === 201) response.setHeader('Location', `${url}/message/${randomBytes(8).toString('hex')}`);
      response.writeHead(status, { 'Content-Type': 'text/plain' });
      // Counted once the answer is sent: a test that closes the service as soon as a push
      // arrived must not cut off the 201 its sender waits for.
      response.end(status >= 400 ? (failures.at(-1)?.reason ?? 'gone') : '', () => {
        if (status !== 201) return;
        subscriptions.get(name)?.received.push(arrived);
        arrivals.emit(name);
      });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`;

  return {
    url,
    /** A new subscription named `name`, shaped as PushSubscription.toJSON(). */
    subscription(name, options = {}) {
      const ecdh = createECDH('prime256v1');
      if (options.privateKey) ecdh.setPrivateKey(options.privateKey);
      else ecdh.generateKeys();
      const auth = options.auth ?? randomBytes(16);
      subscriptions.set(name, {
        privateKey: ecdh.getPrivateKey(), publicKey: ecdh.getPublicKey(), auth,
        applicationServerKey: options.applicationServerKey, received: [], gone: false,
      });
      return {
        endpoint: `${url}/push/${encodeURIComponent(name)}`,
        expirationTime: null,
        keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
      };
    },
    /** What arrived for `name` so far, in order. */
    received(name) {
      return [...(subscriptions.get(name)?.received ?? [])];
    },
    /** Resolves once `count` pushes arrived for `name`; rejects after `timeoutMs`. */
    waitFor(name, count, timeoutMs = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const got = subscriptions.get(name)?.received ?? [];
          if (got.length < count) return false;
          clearTimeout(timer);
          arrivals.off(name, check);
          resolve([...got]);
          return true;
        };
        const timer = setTimeout(() => {
          arrivals.off(name, check);
          const got = subscriptions.get(name)?.received.length ?? 0;
          reject(new Error(`${got} of ${count} pushes arrived for ${name} in ${timeoutMs} ms; refused: ${JSON.stringify(failures)}`));
        }, timeoutMs);
        arrivals.on(name, check);
        check();
      });
    },
    /** From now on, pushes to `name` are answered 410 Gone (the browser unsubscribed). */
    gone(name) {
      const sub = subscriptions.get(name);
      if (!sub) throw new Error(`no subscription ${name}`);
      sub.gone = true;
    },
    failures,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
