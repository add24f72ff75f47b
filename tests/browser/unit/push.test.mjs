// web/push.js against stand-ins for the browser (Notification, the service worker's PushManager)
// and the server's API: what it asks, in which order, with which token and body. A real
// subscription needs a real push service, which headless tests cannot reach; the service
// worker's side is tested in e2e/service-worker-push.test.mjs.
// Run with: node --test tests/browser/unit/
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

const KEY = 'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8';
const OTHER_KEY = 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4';
const BASE = 'https://chat.example';

/** What happened, in order: permission prompts, API calls, subscribe/unsubscribe. */
let log;
/** The server's answers by "METHOD path". */
let answers;
let permission;
let current;

class FakeSubscription {
  constructor(key, n) {
    this.endpoint = `https://push.example/p/${n}`;
    this.options = { applicationServerKey: key.buffer, userVisibleOnly: true };
  }
  toJSON() { return { endpoint: this.endpoint, expirationTime: null, keys: { p256dh: 'pk', auth: 'au' } }; }
  async unsubscribe() { log.push(`unsubscribe ${this.endpoint}`); current = null; return true; }
}

let made = 0;
const registration = {
  pushManager: {
    async getSubscription() { return current; },
    async subscribe(options) {
      assert.equal(options.userVisibleOnly, true);
      made += 1;
      current = new FakeSubscription(new Uint8Array(options.applicationServerKey), made);
      log.push(`subscribe ${Buffer.from(options.applicationServerKey).toString('base64url')}`);
      return current;
    },
  },
};

function define(name, value) {
  Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
}

beforeEach(() => {
  log = [];
  current = null;
  permission = 'default';
  answers = {
    'GET /v1/push/key': [200, { public_key: KEY }],
    'POST /v1/push/subscriptions': [201, { id: 'ps-1', endpoint: 'x', created_at: 1 }],
    'GET /v1/push/subscriptions': [200, []],
  };
  const Notification = {
    get permission() { return permission; },
    async requestPermission() { log.push('asked'); permission = 'granted'; return permission; },
  };
  define('Notification', Notification);
  define('window', { isSecureContext: true, PushManager: class {}, Notification });
  define('navigator', { serviceWorker: { ready: Promise.resolve(registration) } });
  define('location', { origin: BASE });
  define('fetch', async (url, init = {}) => {
    const path = String(url).slice(BASE.length);
    const method = init.method ?? 'GET';
    assert.ok(String(url).startsWith(BASE), url);
    assert.equal(init.headers.Authorization, 'Bearer tok-1');
    log.push(`${method} ${path}${init.body ? ` ${init.body}` : ''}`);
    const [status, body] = answers[`${method} ${path}`] ?? [404, { title: 'not found' }];
    return new Response(body === null ? null : JSON.stringify(body), { status });
  });
});

const { enablePush, disablePush, pushStatus, PushError } = await import('../../../web/push.js');
const getToken = async () => 'tok-1';

test('enablePush asks once, subscribes with the server key and registers the subscription', async () => {
  assert.equal(await pushStatus(), 'off');
  const sub = await enablePush({ getToken });
  assert.equal(sub.endpoint, 'https://push.example/p/1');
  const json = JSON.stringify(sub.toJSON());
  assert.deepEqual(log, ['asked', 'GET /v1/push/key', `subscribe ${KEY}`, `POST /v1/push/subscriptions ${json}`]);
  assert.equal(await pushStatus(), 'on');

  // Again: no prompt, the same subscription, registered again.
  log = [];
  assert.equal(await enablePush({ getToken, baseUrl: `${BASE}/`, registration }), sub);
  assert.deepEqual(log, ['GET /v1/push/key', `POST /v1/push/subscriptions ${json}`]);

  // The server's key changed: the old subscription is replaced.
  log = [];
  answers['GET /v1/push/key'] = [200, { public_key: OTHER_KEY }];
  const renewed = await enablePush({ getToken });
  assert.notEqual(renewed, sub);
  assert.deepEqual(log.slice(0, 3), ['GET /v1/push/key', 'unsubscribe https://push.example/p/1', `subscribe ${OTHER_KEY}`]);
});

test('enablePush stops at a refusal: no permission, no support, a server error', async () => {
  Notification.requestPermission = async () => { log.push('asked'); permission = 'denied'; return permission; };
  await assert.rejects(enablePush({ getToken }), (e) => e instanceof PushError && e.code === 'denied');
  assert.deepEqual(log, ['asked']);
  assert.equal(await pushStatus(), 'denied');

  permission = 'granted';
  answers['POST /v1/push/subscriptions'] = [400, { title: 'Bad request', detail: 'p256dh is not a point' }];
  await assert.rejects(enablePush({ getToken }),
    (e) => e instanceof PushError && e.code === 'server' && e.status === 400 && /p256dh is not a point/.test(e.message));

  answers['GET /v1/push/key'] = [200, { public_key: 42 }];
  await assert.rejects(enablePush({ getToken }), (e) => e instanceof PushError && e.code === 'server');

  define('window', { isSecureContext: false, PushManager: class {}, Notification });
  await assert.rejects(enablePush({ getToken }), (e) => e instanceof PushError && e.code === 'unsupported');
  assert.equal(await pushStatus(), 'unsupported');
});

test('disablePush deletes this browser\'s subscription at the server, then unsubscribes', async () => {
  permission = 'granted';
  assert.equal(await disablePush({ getToken }), false, 'nothing to disable');
  const sub = await enablePush({ getToken });
  answers['GET /v1/push/subscriptions'] = [200, [
    { id: 'ps-other', endpoint: 'https://push.example/p/other', created_at: 1 },
    { id: 'ps/1', endpoint: sub.endpoint, created_at: 2 },
  ]];
  answers['DELETE /v1/push/subscriptions/ps%2F1'] = [204, null];
  log = [];
  assert.equal(await disablePush({ getToken }), true);
  assert.deepEqual(log, ['GET /v1/push/subscriptions', 'DELETE /v1/push/subscriptions/ps%2F1', `unsubscribe ${sub.endpoint}`]);
  assert.equal(await pushStatus(), 'off');

  // The server unreachable: unsubscribed all the same, and the error is told.
  const again = await enablePush({ getToken });
  define('fetch', async () => { throw new TypeError('Failed to fetch'); });
  log = [];
  await assert.rejects(disablePush({ getToken }), (e) => e instanceof PushError && e.code === 'server');
  assert.deepEqual(log, [`unsubscribe ${again.endpoint}`]);
});
