// The browser driver: one loop that feeds the sans-IO session its inputs and carries out its
// outputs. Persisting comes before writing frames, so `delivered` means stored on this device.

import { decodeServerFrame, encodeClientFrame } from './frames.js';
import { AttachmentLinks } from './links.js';
import { Session } from './session.js';
import { MemoryStore, Store } from './store.js';
import { ATTACHMENTS_MAX, TYPING_TTL_MS } from './types.js';
import { UploadError, Uploader } from './uploads.js';

/** Largest frame the server parses (FRAME_BYTES_MAX): a bigger `send` could never be answered. */
const FRAME_BYTES_MAX = 394240;
/** Longest timer browsers honour (2^31 - 1 ms). */
const TIMER_MS_MAX = 2147483647;

/**
 * @typedef {object} ClientOptions
 * @property {string} [token] The user's token (JWT from your backend or `POST /v1/tokens`).
 * @property {() => Promise<string>} [getToken] Returns a fresh token: called shortly before the
 *   current one expires and when the server refuses it. Without it (or when it fails), the
 *   connection waits in the `expired` status, the outbox kept, and `auth_expired` is dispatched;
 *   `setToken` (or `refreshToken` once `getToken` works) continues.
 * @property {string} [server] Base URL of the surechat server; default: this page's origin.
 * @property {boolean} [persist] Keep outbox and history in IndexedDB (default true).
 * @property {Partial<import('./types.js').Config>} [config] Session tunables.
 */

/** How long before its expiry a token is refreshed (at most half its remaining life). */
const REFRESH_AHEAD_MS = 60_000;

/**
 * When a token expires (its `exp`, in ms), read without checking the signature — only to refresh
 * it in time.
 * @param {string} token
 * @returns {number | null}
 */
export function tokenExpiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * The user id a token names (its `sub`), read without checking the signature — only to pick
 * the local database before the server has said who we are.
 * @param {string} token
 * @returns {string | null}
 */
export function tokenSubject(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).sub ?? null;
  } catch {
    return null;
  }
}

/**
 * A lowercase time-ordered UUID (v7: 48 bits of milliseconds, then random bits), so the server's
 * unique index of ids grows at its end instead of taking each id at a random place. Ids made in
 * one millisecond are ordered by a counter in the random part. Needs only
 * `crypto.getRandomValues` (also on plain http, where `crypto.randomUUID` is missing).
 */
export function newId() {
  const now = Date.now();
  const b = crypto.getRandomValues(new Uint8Array(16));
  if (now === lastIdMs) {
    idCounter = (idCounter + 1) & 0xfff;
  } else {
    lastIdMs = now;
    idCounter = ((b[6] & 0x07) << 8) | b[7];
  }
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (idCounter >> 8);
  b[7] = idCounter & 0xff;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
let lastIdMs = 0;
let idCounter = 0;

/** Wait before asking local storage again for files it failed to read. */
const UPLOAD_STORAGE_RETRY_MS = 5000;
/** Longest file name the server takes, in bytes of UTF-8. */
const FILE_NAME_BYTES_MAX = 255;

/**
 * A file's name as the server takes it: no control characters, 1–255 bytes of UTF-8 (cut at a
 * character, never inside one).
 * @param {string} name
 */
export function uploadName(name) {
  // eslint-disable-next-line no-control-regex
  let clean = String(name ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  const encoder = new TextEncoder();
  while (encoder.encode(clean).length > FILE_NAME_BYTES_MAX) clean = [...clean].slice(0, -1).join('');
  return clean || 'file';
}

/**
 * A connected chat device. Events (`addEventListener` or `on`), each a CustomEvent whose
 * `detail` is the session event: `connection_status`, `delivery_status`, `message`, `typing`,
 * `presence`, `receipt`, `synced`, `token_expired` (the server refused the token),
 * `auth_expired` (no fresh token could be had: the app must sign the user in again and call
 * `setToken`), `upload_progress` (`{ conversation, id, bytes, length }`: a message's files on
 * their way), `error`, and `change` after any of them.
 */
export class SurechatClient extends EventTarget {
  /** @param {ClientOptions} options */
  constructor(options) {
    super();
    this.options = options;
    this.token = options.token ?? '';
    const base = options.server ?? globalThis.location?.origin ?? '';
    /** WebSocket endpoint. */
    this.url = base.replace(/^http/, 'ws').replace(/\/$/, '') + '/v1/ws';
    /** This tab's id: owner of the messages it creates. */
    this.tab = newId();
    this.session = new Session(options.config ?? {}, this.token);
    /** @type {Store | MemoryStore} */
    this.store = new MemoryStore();
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.pumping = false;
    this.again = false;
    /** conversation → user → expiry time of their typing signal. @type {Map<string, Map<string, number>>} */
    this.typers = new Map();
    /** @type {(() => void)[]} */
    this.cleanup = [];
    /** Resolves once started. @type {Promise<void> | null} */
    this.ready = null;
    /** Components using this client (the React hook stops its own client when none is left). */
    this.holders = 0;
    /** The session was rebuilt from storage. */
    this.restored = false;
    /** Name of the local database, locks and channel. */
    this.name = '';
    /** Tabs watched, to adopt their messages. @type {Set<string>} */
    this.watched = new Set();
    /** @type {import('./types.js').SessionEvent[]} */
    this.unsaved = [];
    /** The refresh scheduled before the token expires. @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    /** A `getToken` call in flight. @type {Promise<void> | null} */
    this.refreshing = null;
    /** Waits to end early when the network comes back or the token changes. @type {Set<() => void>} */
    this.wakers = new Set();
    /** The HTTP API's base. */
    this.base = base.replace(/\/$/, '');
    this.uploader = new Uploader({
      base: this.base,
      token: () => this.token,
      sleep: (ms, signal) => this.sleep(ms, signal),
      random: () => Math.random(),
      online: (signal) => this.online(signal),
      authFailed: () => { this.refreshToken(); },
      config: options.config,
    });
    /** Signed links to attachments, cached. */
    this.links = new AttachmentLinks({ base: this.base, token: () => this.token });
    /** The message whose files are being uploaded (one at a time, in outbox order). @type {string | null} */
    this.uploading = null;
    /** Stops uploads when the client stops. */
    this.uploadsStopped = new AbortController();
    /** How far each message's files are. @type {Map<string, import('./types.js').UploadProgress>} */
    this.progress = new Map();
  }

  /**
   * Replaces the token (the user signed in again): an `expired` connection continues at once,
   * and the outbox is sent.
   * @param {string} token
   */
  setToken(token) {
    this.token = token;
    this.wake();
    this.scheduleRefresh();
    this.input((now) => this.session.setToken(now, token));
  }

  /**
   * Asks `getToken` for a fresh token and continues with it; dispatches `auth_expired` when there
   * is no `getToken` or it fails. Calls while one is in flight share it.
   * @returns {Promise<void>}
   */
  refreshToken() {
    const getToken = this.options.getToken;
    if (!getToken) {
      this.dispatchEvent(new CustomEvent('auth_expired', { detail: { type: 'auth_expired' } }));
      return Promise.resolve();
    }
    this.refreshing ??= getToken()
      .then((token) => this.setToken(token))
      .catch(() => {
        this.dispatchEvent(new CustomEvent('auth_expired', { detail: { type: 'auth_expired' } }));
      })
      .finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  /** With `getToken`, refreshes the token shortly before it expires. */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const expiry = tokenExpiry(this.token);
    if (!this.options.getToken || expiry === null) return;
    const left = expiry - Date.now();
    const wait = Math.max(0, left - Math.min(REFRESH_AHEAD_MS, left / 2));
    this.refreshTimer = setTimeout(() => { this.refreshToken(); }, Math.min(wait, TIMER_MS_MAX));
  }

  /** Opens local storage, restores where the last page stopped, and connects. */
  start() {
    this.ready ??= this.begin();
    return this.ready;
  }

  async begin() {
    const user = tokenSubject(this.token);
    const name = `surechat:${user ?? 'anonymous'}`;
    this.name = name;
    const locks = globalThis.navigator?.locks;
    if (locks) {
      // Held for the life of this page; when it is free again, this tab is gone.
      await new Promise((granted) => {
        locks.request(`${name}:tab:${this.tab}`, () => { granted(undefined); return new Promise(() => {}); });
      });
    }
    if (this.options.persist !== false && globalThis.indexedDB) {
      try {
        this.store = await Store.open(name);
      } catch {
        this.store = new MemoryStore(); // private mode: work, but remember nothing
      }
    }
    if (locks && this.store instanceof Store && globalThis.BroadcastChannel) {
      // Tabs opened later announce themselves (once they hold their lock), to be watched too.
      const tabs = new BroadcastChannel(`${name}:tabs`);
      tabs.onmessage = (e) => typeof e.data?.tab === 'string' && this.watch(e.data.tab);
      tabs.postMessage({ tab: this.tab });
      this.cleanup.push(() => tabs.close());
    }
    await this.adopt();
    this.listen();
    if (globalThis.navigator && navigator.onLine === false) this.session.handleNetwork(Date.now(), false);
    this.scheduleRefresh();
    this.session.connect(Date.now());
    this.pump();
  }

  /** Restores the session, adopting the pending messages of closed tabs; watches open ones. */
  async adopt() {
    const locks = globalThis.navigator?.locks;
    const name = this.store instanceof Store ? this.store.name : '';
    const run = async () => {
      const held = locks ? (await locks.query()).held ?? [] : [];
      const prefix = `${name}:tab:`;
      // A tab holds its own lock exclusively; watchers wait in shared mode.
      const live = new Set(held.filter((l) => l.mode === 'exclusive' && l.name?.startsWith(prefix))
        .map((l) => /** @type {string} */ (l.name).slice(prefix.length)));
      live.add(this.tab);
      return { snapshot: await this.store.load(this.tab, live, this.session.userId() ?? tokenSubject(this.token)), live };
    };
    // One tab adopts at a time, so a message is never taken by two.
    const { snapshot, live } = locks ? await locks.request(`${name}:adopt`, run) : await run();
    if (!this.restored) {
      this.restored = true;
      this.session = new Session(this.options.config ?? {}, this.token, snapshot);
    } else {
      this.session.adoptPending(Date.now(), snapshot.outbox ?? []);
    }
    if (this.store instanceof Store) for (const tab of live) this.watch(tab);
  }

  /** Adopts `tab`'s pending messages once it closes (its lock is free). @param {string} tab */
  watch(tab) {
    const locks = globalThis.navigator?.locks;
    if (!locks || tab === this.tab || this.watched.has(tab)) return;
    this.watched.add(tab);
    locks.request(`${this.name}:tab:${tab}`, { mode: 'shared' }, () => {})
      .then(() => this.adopt())
      .then(() => this.pump(), (error) => this.storageFailed(error));
  }

  /** Wires the browser's signals to the session. */
  listen() {
    /** @param {EventTarget | undefined} target @param {string} type @param {() => void} fn */
    const on = (target, type, fn) => {
      if (!target) return;
      target.addEventListener(type, fn);
      this.cleanup.push(() => target.removeEventListener(type, fn));
    };
    const win = globalThis.window;
    on(win, 'online', () => { this.wake(); this.input((now) => this.session.handleNetwork(now, true)); });
    on(win, 'offline', () => this.input((now) => this.session.handleNetwork(now, false)));
    // A page coming back to the foreground tries now rather than at the end of a long backoff.
    on(globalThis.document, 'visibilitychange', () => {
      if (document.visibilityState === 'visible') this.input((now) => this.session.reconnectNow(now));
    });
  }

  /** Closes the connection and stops reconnecting; the outbox stays in storage. */
  stop() {
    this.uploadsStopped.abort(new DOMException('the client stopped', 'AbortError'));
    this.input((now) => this.session.disconnect(now));
    for (const fn of this.cleanup.splice(0)) fn();
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
  }

  // ---- commands -----------------------------------------------------------------------------

  /**
   * Sends a message: stored in the outbox first (with its files' bytes, in the same
   * transaction), then shown as sending, then sent (again, after any outage, with the same id)
   * until the server stores it or refuses it for good. With `files`, each is uploaded first
   * (resumably, `upload_progress` events tell how far), and the message goes once all are
   * complete — the conversation's later messages wait behind it, so the order is kept. With
   * files the body may be empty.
   * @param {string} conversation
   * @param {string} body
   * @param {{ kind?: 'note', files?: Blob[] }} [options] `kind: 'note'`: a private note;
   *   `files`: up to 10 `File`s or `Blob`s (photos, PDFs). The widget checks size and type
   *   before; the server decides, and a refusal fails the message with its reason.
   * @returns {Promise<string>} the message id
   */
  async send(conversation, body, options = {}) {
    await this.start();
    const id = newId();
    const kind = options.kind || null;
    const blobs = [...(options.files ?? [])];
    if (blobs.length > ATTACHMENTS_MAX) throw new RangeError(`at most ${ATTACHMENTS_MAX} files per message`);
    if (blobs.some((b) => !(b instanceof Blob) || b.size === 0)) throw new TypeError('files must be non-empty Files or Blobs');
    const files = blobs.map((blob) => ({
      id: newId(), name: uploadName(/** @type {File} */ (blob).name ?? ''), type: blob.type ?? '', blob,
    }));
    /** @type {import('./types.js').AttachmentDraft[]} */
    const attachments = files.map((f) => ({ id: f.id, name: f.name, type: f.type, size: f.blob.size }));
    const frame = encodeClientFrame({
      type: 'send', id, conversation, body, ...(kind && { kind }), ...(files.length && { attachments: files.map((f) => f.id) }),
    });
    if (new TextEncoder().encode(frame).length > FRAME_BYTES_MAX) {
      throw new RangeError('message too large to send');
    }
    await this.store.addPending({ id, conversation, body, failed: null, owner: this.tab, created: Date.now(), kind, attachments }, files);
    this.input((now) => this.session.send(now, id, conversation, body, null, kind, attachments));
    return id;
  }

  /**
   * Signed links to an attachment of a received message, for `<img src>` (`thumb_url`) and
   * downloads (`url`): cached, and asked for again shortly before they expire.
   * @param {string} attachmentId
   * @returns {Promise<import('./links.js').AttachmentLink>}
   */
  attachmentLink(attachmentId) {
    return this.links.get(attachmentId);
  }

  /**
   * How far the files of pending message `id` are uploaded, if they are on their way.
   * @param {string} id
   * @returns {import('./types.js').UploadProgress | undefined}
   */
  uploadProgress(id) {
    return this.progress.get(id);
  }

  /**
   * The bytes of a pending message's files (to show a photo before it is uploaded).
   * @param {string} id
   * @returns {Promise<{ id: string, name: string, type: string, size: number, blob: Blob }[]>}
   */
  async pendingFiles(id) {
    await this.start();
    return this.store.files(id);
  }

  /** Sends failed messages again with their ids (every one, or only `id`). @param {string} [id] */
  retryFailed(id) {
    this.input((now) => this.session.retryFailed(now, id));
  }

  /** Drops a failed message (e.g. to send an edited text as a new message). @param {string} id */
  discard(id) {
    this.input((now) => this.session.discard(now, id));
  }

  /**
   * Marks what was received in `conversation` as read: everything, or up to `upTo` (the `seq` of
   * the last message the reader saw).
   * @param {string} conversation
   * @param {number} [upTo]
   */
  markRead(conversation, upTo) {
    this.input((now) => this.session.markRead(now, conversation, upTo));
  }

  /** Tells the others that the user types (renew every few seconds while it lasts). @param {string} conversation @param {boolean} active */
  setTyping(conversation, active) {
    this.input((now) => this.session.setTyping(now, conversation, active));
  }

  /** An operator's `available` or `away`. @param {string} status */
  setPresence(status) {
    this.input((now) => this.session.setPresence(now, status));
  }

  /** Tries to connect now (e.g. a "reconnect" button), also after the session gave up. */
  reconnect() {
    this.input((now) => {
      if (this.session.status().name === 'disconnected') this.session.connect(now);
      else this.session.reconnectNow(now);
    });
  }

  // ---- getters ------------------------------------------------------------------------------

  /** @returns {import('./types.js').ConnectionStatus} */
  get status() {
    return this.session.status();
  }

  /** Messages not yet stored on the server (failed ones included). */
  get pendingCount() {
    return this.session.pendingCount();
  }

  /** Messages still on their way (in the outbox, not failed): what is "waiting to be sent". */
  get waitingCount() {
    return this.session.waitingCount();
  }

  /** The user, once known. */
  get userId() {
    return this.session.userId() ?? tokenSubject(this.token);
  }

  /** @param {string} conversation */
  messages(conversation) {
    return this.session.messages(conversation);
  }

  /** @param {string} id */
  deliveryStatus(id) {
    return this.session.deliveryStatus(id);
  }

  /** Users typing in `conversation` now. @param {string} conversation @returns {string[]} */
  typing(conversation) {
    const now = Date.now();
    return [...(this.typers.get(conversation) ?? new Map())].filter(([, until]) => until > now).map(([u]) => u);
  }

  /**
   * Listens to an event; returns a function that stops listening.
   * @param {string} type
   * @param {(detail: any) => void} fn
   */
  on(type, fn) {
    /** @param {Event} e */
    const listener = (e) => fn(/** @type {CustomEvent} */ (e).detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  // ---- the loop -----------------------------------------------------------------------------

  /** Hands one input to the session, then drains its outputs. @param {(now: number) => void} fn */
  input(fn) {
    fn(Date.now());
    this.pump();
  }

  pump() {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.drain().finally(() => { this.pumping = false; });
  }

  /** Actions, then events (persisted, then told), then frames, then the timer. */
  async drain() {
    let retry = this.unsaved.length > 0;
    do {
      this.again = false;
      for (let a = this.session.pollAction(); a; a = this.session.pollAction()) this.act(a);
      const events = [];
      for (let e = this.session.pollEvent(); e; e = this.session.pollEvent()) events.push(e);
      if (events.length || retry) {
        retry = false;
        const batch = this.unsaved.concat(events);
        this.unsaved = [];
        try {
          await this.store.apply(batch);
        } catch (error) {
          // Quota, eviction: retried later; nothing unstored is acknowledged (docs/guide.md).
          this.unsaved = batch;
          this.session.handleStoreFailure(Date.now());
          this.storageFailed(error);
        }
        for (const e of events) this.tell(e);
        this.dispatchEvent(new CustomEvent('change'));
        this.again = true;
        continue;
      }
      for (let f = this.session.pollTransmit(); f; f = this.session.pollTransmit()) {
        if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encodeClientFrame(f));
      }
      this.kickUploads();
      clearTimeout(this.timer);
      const at = this.session.pollTimeout();
      if (at !== null) {
        const delay = Math.min(Math.max(at - Date.now(), 0), TIMER_MS_MAX);
        this.timer = setTimeout(() => this.input((now) => this.session.handleTimeout(now)), delay);
      }
    } while (this.again);
  }

  // ---- uploads ------------------------------------------------------------------------------

  /** Starts uploading the files of the first message that waits for them, if none is on its way. */
  kickUploads() {
    if (this.uploading !== null || this.uploadsStopped.signal.aborted) return;
    const next = this.session.uploadsWanted()[0];
    if (!next) return;
    this.uploading = next.id;
    this.uploadMessage(next)
      .catch((error) => {
        // Local storage could not give the files (the uploader itself retries forever): say so,
        // and wait before trying again rather than spin.
        this.storageFailed(error);
        return this.sleep(UPLOAD_STORAGE_RETRY_MS, this.uploadsStopped.signal).catch(() => {});
      })
      .finally(() => {
        this.uploading = null;
        this.kickUploads();
      });
  }

  /**
   * Uploads a message's files one after the other, then tells the session it may go; a
   * permanent refusal fails the message with the server's reason.
   * @param {{ id: string, conversation: string, attachments: import('./types.js').AttachmentDraft[] }} message
   */
  async uploadMessage(message) {
    const { id, conversation } = message;
    const files = await this.store.files(id);
    const signal = this.uploadsStopped.signal;
    if (files.length !== message.attachments.length) {
      this.input((now) => this.session.uploadFailed(now, id, 'attachment_not_found', 'the file is no longer on this device'));
      return;
    }
    const length = files.reduce((sum, f) => sum + f.size, 0);
    let before = 0;
    try {
      for (const file of files) {
        await this.uploader.upload({ id: file.id, conversation, name: file.name, type: file.type, blob: file.blob },
          (offset) => this.reportProgress({ conversation, id, bytes: before + offset, length }), signal);
        before += file.size;
      }
    } catch (error) {
      if (signal.aborted) return;
      this.progress.delete(id);
      if (error instanceof UploadError && error.permanent) {
        this.input((now) => this.session.uploadFailed(now, id, error.code, error.message));
        return;
      }
      throw error;
    }
    this.input((now) => this.session.uploadsDone(now, id));
  }

  /** @param {import('./types.js').UploadProgress} progress */
  reportProgress(progress) {
    const last = this.progress.get(progress.id);
    if (last && last.bytes === progress.bytes) return;
    this.progress.set(progress.id, progress);
    this.dispatchEvent(new CustomEvent('upload_progress', { detail: { type: 'upload_progress', ...progress } }));
    this.dispatchEvent(new CustomEvent('change'));
  }

  /**
   * Waits `ms`, less when the network comes back or the token changes (something worth trying
   * again at once).
   * @param {number} ms
   * @param {AbortSignal} [signal]
   * @returns {Promise<void>}
   */
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      const end = () => {
        clearTimeout(timer);
        this.wakers.delete(end);
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => { end(); reject(signal?.reason); };
      const timer = setTimeout(end, Math.min(ms, TIMER_MS_MAX));
      this.wakers.add(end);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * Resolves once the device has a network (at once when it has one).
   * @param {AbortSignal} [signal]
   * @returns {Promise<void>}
   */
  async online(signal) {
    while (globalThis.navigator?.onLine === false) await this.sleep(TIMER_MS_MAX, signal);
  }

  /** Ends every wait of the uploads. */
  wake() {
    for (const end of [...this.wakers]) end();
  }

  /** Tells the app that local storage failed. @param {unknown} error */
  storageFailed(error) {
    this.dispatchEvent(new CustomEvent('error', { detail: { type: 'error', code: 'storage', message: String(error) } }));
  }

  /** @param {import('./types.js').Action} action */
  act(action) {
    if (action.type === 'disconnect') {
      const ws = this.ws;
      this.ws = null;
      ws?.close(1000);
      return;
    }
    const attempt = action.attempt;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      queueMicrotask(() => this.input((now) => this.session.handleClose(now, attempt, null)));
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.ws === ws && this.input((now) => this.session.handleOpen(now, attempt));
    ws.onmessage = (e) => {
      if (this.ws !== ws || typeof e.data !== 'string') return;
      let frame;
      try {
        frame = decodeServerFrame(e.data);
      } catch {
        return; // a frame of a later protocol minor version: ignored, like unknown fields
      }
      this.input((now) => this.session.handleFrame(now, frame));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // 1006: no close frame (network failure, server killed) — like 1012 for the session.
      this.input((now) => this.session.handleClose(now, attempt, e.code === 1006 ? null : e.code));
    };
  }

  /** Tells the app about one event. @param {import('./types.js').SessionEvent} e */
  tell(e) {
    if (e.type === 'typing') {
      const users = this.typers.get(e.conversation) ?? new Map();
      if (e.active) users.set(e.user_id, Date.now() + TYPING_TTL_MS);
      else users.delete(e.user_id);
      this.typers.set(e.conversation, users);
      // Expire it on this side unless renewed.
      setTimeout(() => this.dispatchEvent(new CustomEvent('change')), TYPING_TTL_MS + 10);
    }
    if (e.type === 'token_expired') this.refreshToken();
    if (e.type === 'delivery_status' && e.status.name !== 'sending') this.progress.delete(e.id);
    if (e.type === 'cursor') return;
    this.dispatchEvent(new CustomEvent(e.type, { detail: e }));
  }
}
