// Web Push: reaching the person when no page of the app is open. The browser subscribes at its
// push service with the server's VAPID public key, and the server is given the subscription;
// from then on the server's pushes wake the app's service worker, which shows them as
// notifications (see `demo/sw.js` for one that does).
//
// Browsers let a page subscribe only once the user allowed notifications, and ask only in
// response to a click: call `enablePush` from a click handler, never on load.

/**
 * @typedef {object} PushOptions
 * @property {() => string | Promise<string>} getToken The user's token for the server's API.
 * @property {string} [baseUrl] Base URL of the surechat server; default: this page's origin.
 * @property {ServiceWorkerRegistration} [registration] The service worker that shows the
 *   notifications; default: this page's (`navigator.serviceWorker.ready`).
 */

/**
 * Why push could not be enabled: `unsupported` (no service worker, Push API or notifications
 * in this browser or context, e.g. a page not served over HTTPS), `denied` (the user did not
 * allow notifications) or `server` (the server's API refused or could not be reached; `status`
 * is its HTTP status, 0 for a network failure).
 */
export class PushError extends Error {
  /**
   * @param {'unsupported' | 'denied' | 'server'} code
   * @param {string} message
   * @param {number} [status]
   */
  constructor(code, message, status = 0) {
    super(message);
    this.name = 'PushError';
    this.code = code;
    this.status = status;
  }
}

/** Whether this browser and page can receive pushes at all. */
export function pushSupported() {
  return typeof window !== 'undefined' && window.isSecureContext && 'serviceWorker' in navigator
    && 'PushManager' in window && 'Notification' in window;
}

/**
 * Subscribes this browser to pushes and registers the subscription with the server. Call it
 * from a user gesture (a click): it asks for permission to notify if that is not decided yet.
 * Calling it again is harmless: the existing subscription is reused (and registered again),
 * unless the server's key changed, in which case it is replaced.
 * @param {PushOptions} options
 * @returns {Promise<PushSubscription>}
 */
export async function enablePush({ baseUrl, getToken, registration }) {
  if (!pushSupported()) throw new PushError('unsupported', 'push notifications are not available in this browser or page');
  // Asked before anything is awaited: browsers honour the request only close to the click.
  const permission = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission;
  if (permission !== 'granted') throw new PushError('denied', 'notifications were not allowed');
  const base = serverBase(baseUrl);
  const worker = registration ?? await navigator.serviceWorker.ready;
  const token = await getToken();
  const { public_key: publicKey } = await api(base, token, 'GET', '/v1/push/key');
  if (typeof publicKey !== 'string' || !/^[A-Za-z0-9_-]+=*$/.test(publicKey)) {
    throw new PushError('server', 'GET /v1/push/key: no base64url public_key in the answer');
  }
  const key = fromBase64Url(publicKey);
  let subscription = await worker.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    // Made for another key: the push service would refuse the server's pushes to it.
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await api(base, token, 'POST', '/v1/push/subscriptions', subscription.toJSON());
  return subscription;
}

/**
 * Stops pushes to this browser: removes the subscription from the server, then unsubscribes
 * at the push service. The browser is unsubscribed even when the server cannot be reached (its
 * pushes are then refused by the push service, and the server forgets the subscription), and
 * the server's error is thrown after.
 * @param {PushOptions} options
 * @returns {Promise<boolean>} Whether there was a subscription.
 */
export async function disablePush({ baseUrl, getToken, registration }) {
  if (!pushSupported()) return false;
  const worker = registration ?? await navigator.serviceWorker.ready;
  const subscription = await worker.pushManager.getSubscription();
  if (!subscription) return false;
  try {
    const base = serverBase(baseUrl);
    const token = await getToken();
    /** @type {{ id: string, endpoint: string }[]} */
    const registered = await api(base, token, 'GET', '/v1/push/subscriptions');
    for (const entry of registered.filter((s) => s.endpoint === subscription.endpoint)) {
      await api(base, token, 'DELETE', `/v1/push/subscriptions/${encodeURIComponent(entry.id)}`, undefined, [404]);
    }
  } finally {
    await subscription.unsubscribe();
  }
  return true;
}

/**
 * Whether pushes reach this browser now: `unsupported`, `denied` (notifications blocked),
 * `off` (not subscribed) or `on`. For showing the right button; it asks nothing.
 * @param {{ registration?: ServiceWorkerRegistration }} [options]
 * @returns {Promise<'unsupported' | 'denied' | 'off' | 'on'>}
 */
export async function pushStatus({ registration } = {}) {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  const worker = registration ?? await navigator.serviceWorker.ready;
  const subscription = await worker.pushManager.getSubscription();
  return subscription && Notification.permission === 'granted' ? 'on' : 'off';
}

/** @param {string | undefined} baseUrl */
function serverBase(baseUrl) {
  return (baseUrl ?? location.origin).replace(/\/+$/, '');
}

/**
 * One call to the server's API; its JSON answer (null when it has none).
 * @param {string} base
 * @param {string} token
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {number[]} [tolerated] Statuses that are not errors here.
 * @returns {Promise<any>}
 */
async function api(base, token, method, path, body, tolerated = []) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new PushError('server', `${method} ${path}: ${e instanceof Error ? e.message : e}`);
  }
  if (!response.ok && !tolerated.includes(response.status)) {
    /** @type {{ detail?: string, title?: string }} */
    const problem = await response.json().catch(() => ({}));
    throw new PushError('server', `${method} ${path}: ${problem.detail ?? problem.title ?? response.status}`, response.status);
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * Bytes of base64url text (with or without padding), as `applicationServerKey` takes them.
 * @param {string} text
 */
function fromBase64Url(text) {
  const base64 = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Whether a subscription's key is `key`.
 * @param {ArrayBuffer | null} current
 * @param {Uint8Array} key
 */
function sameKey(current, key) {
  if (!current) return false;
  const bytes = new Uint8Array(current);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}
