// `<surechat-chat>`: a complete chat for one conversation. Give it a `client` property, or
// `token`, `conversation` (and optionally `server`) attributes. `lang` (on it or the page) picks
// the language and the direction; `theme="dark|light"` overrides the system's colour scheme;
// colours come from `--surechat-*` custom properties (web/README.md). Files are attached with
// the button, by dropping them on the conversation or by pasting images (attachments-view.js).

import { ATTACH_CSS, ImageViewer, PendingFiles, attachmentsView, icon, uploadLine } from './attachments-view.js';
import { SurechatClient } from './client.js';
import { adoptStyles, h, speech, themeCss } from './components.js';
import { dayLabel, dayNumber, emojiOnly, linkParts, openState } from './format.js';
import { retryable } from './session.js';
import { DEFAULT_ATTACHMENT_TYPES } from './sniff.js';
import { ATTACHMENT_BYTES_MAX } from './types.js';

const CHAT_CSS = `
:host { display: flex; flex-direction: column; height: 100%; min-height: 20rem; background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border); border-radius: .75rem; overflow: hidden; font: 1rem/1.45 system-ui, sans-serif; }
button { font: inherit; color: var(--_fg); min-height: 2.25rem; padding: 0 .8rem; border-radius: .5rem; border: 1px solid var(--_muted); background: var(--_bg); cursor: pointer; }
button:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
[hidden] { display: none !important; }
header { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .25rem .5rem; padding: .5rem .9rem; border-block-end: 1px solid var(--_border); background: var(--_surface); }
header h2 { font-size: 1rem; margin: 0; }
.info { flex-basis: 100%; margin: 0; font-size: .8rem; color: var(--_muted); }
.info:empty { display: none; }
.banners { padding: 0 .75rem; }
.log { position: relative; flex: 1; display: flex; flex-direction: column; min-height: 0; background: var(--_log); }
ol { list-style: none; margin: 0; padding: .75rem; flex: 1; overflow-y: auto; display: flex; flex-direction: column; gap: .15rem; }
ol:focus-visible, li:focus-visible { outline: 3px solid var(--_accent); outline-offset: -3px; }
li { display: flex; flex-direction: column; align-items: flex-start; max-width: min(85%, 40rem); align-self: flex-start; }
li.own { align-self: flex-end; align-items: flex-end; }
li.first { margin-block-start: .6rem; }
.who-line { display: flex; align-items: center; gap: .4rem; font-size: .8rem; font-weight: 600; color: var(--_muted); margin-block-end: .15rem; }
.avatar { display: inline-grid; place-items: center; inline-size: 1.6rem; block-size: 1.6rem; border-radius: 50%; color: #fff; font-size: .7rem; font-weight: 700; overflow: hidden; flex: none; }
.avatar img { inline-size: 100%; block-size: 100%; object-fit: cover; }
li:not(.first) .who-line, li.own .who-line { display: none; }
.bubble { padding: .4rem .7rem; border-radius: 1rem; background: var(--_bubble); border: 1px solid var(--_border); overflow-wrap: anywhere; max-inline-size: 100%; }
li.own .bubble { background: var(--_own); border-color: var(--_own-border); }
li.failed .bubble { background: var(--_failed); border-color: var(--_danger); }
li[data-kind=note] .bubble { background: var(--_warn); border-color: var(--_warn-border); }
li[data-kind=system] { align-self: center; align-items: center; text-align: center; max-inline-size: 95%; }
li[data-kind=system] .bubble { border-style: dashed; color: var(--_muted); font-size: .85rem; background: transparent; }
.body { white-space: pre-wrap; font-size: 1rem; }
.body.emoji { font-size: 2.25rem; line-height: 1.2; }
.body.clamped { max-block-size: 12em; overflow: hidden; -webkit-mask-image: linear-gradient(to bottom, #000 75%, transparent); mask-image: linear-gradient(to bottom, #000 75%, transparent); }
.body a { color: var(--_link); text-decoration: underline; }
.more { margin-block-start: .25rem; min-height: 2rem; font-size: .85rem; }
.meta { display: flex; flex-wrap: wrap; justify-content: flex-end; align-items: center; gap: .4rem; font-size: .75rem; color: var(--_muted); margin-block-start: .1rem; }
li:not(.last) time { display: none; }
li:hover time, li:focus time, li:focus-within time { display: inline; }
li:focus time::after { content: ' · ' attr(title); }
.failure { display: flex; flex-wrap: wrap; justify-content: flex-end; align-items: center; gap: .4rem; margin-block-start: .25rem; font-size: .85rem; }
.reason { color: var(--_danger); font-weight: 600; }
.failure button { min-height: 2rem; font-size: .85rem; }
li.day { align-self: center; max-inline-size: none; margin-block: .75rem .25rem; padding: .1rem .7rem; border-radius: 1rem; background: var(--_surface); border: 1px solid var(--_border); font-size: .8rem; color: var(--_muted); font-weight: 600; }
li.divider { align-self: stretch; max-inline-size: none; align-items: center; border-block-start: 2px solid var(--_danger); margin-block: .5rem; color: var(--_danger); font-size: .8rem; }
.empty { margin: auto; padding: 1.5rem; text-align: center; color: var(--_muted); max-inline-size: 26rem; }
.empty p { margin: .25rem 0; }
.empty .welcome { font-size: 1.1rem; color: var(--_fg); white-space: pre-wrap; }
.typing { min-height: 1.3rem; padding: 0 .9rem; font-size: .8rem; color: var(--_muted); font-style: italic; }
form { display: flex; flex-wrap: wrap; align-items: flex-end; gap: .5rem; padding: .6rem .75rem; border-block-start: 1px solid var(--_border); }
textarea { box-sizing: border-box; flex: 1; resize: none; font: inherit; color: var(--_fg); background: var(--_bg); padding: .5rem .6rem; border-radius: .5rem; border: 1px solid var(--_muted); min-block-size: 2.6rem; max-block-size: 10rem; field-sizing: content; overflow-y: auto; }
form button { background: var(--_send); color: #fff; border-color: var(--_send); font-weight: 600; min-height: 2.6rem; }
.counter { flex-basis: 100%; font-size: .8rem; color: var(--_muted); text-align: end; }
.counter.over { color: var(--_danger); font-weight: 600; }
.counter:empty { display: none; }
.error { color: var(--_danger); font-size: .85rem; padding: 0 .9rem; }
.pill { position: absolute; inset-inline-start: 50%; inset-block-end: .6rem; transform: translateX(-50%); border-radius: 1rem; background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent); box-shadow: 0 1px 4px rgba(0,0,0,.2); }
:host([dir=rtl]) .pill { transform: translateX(50%); }
`;

/** Renews the typing signal this often while the user types (the server's TTL is 10 s). */
const TYPING_RENEW_MS = 3000;
/** Stops the typing signal after this long without a keystroke. */
const TYPING_IDLE_MS = 4000;
/** Messages of one sender closer than this in time read as one group (name once, time at the end). */
const GROUP_MS = 5 * 60 * 1000;
/** A message longer than this (characters or lines) shows its start and "Show more". */
const LONG_CHARS = 700;
const LONG_LINES = 10;
/** Limits when the server says none (`GET /v1/widget` answers 404): the protocol's defaults. */
const DEFAULT_SETTINGS = {
  message_chars_max: 4096, message_bytes_max: 16384, attachment_bytes_max: ATTACHMENT_BYTES_MAX, attachment_types: DEFAULT_ATTACHMENT_TYPES,
};
/** The counter shows from this share of the limit on. */
const COUNTER_FROM = 0.9;

/**
 * What `GET /v1/widget` tells the widget (all optional).
 * @typedef {object} WidgetSettings
 * @property {string} [welcome] Shown in an empty conversation.
 * @property {import('./format.js').Hours[]} [hours] Opening hours, in `timezone`.
 * @property {string} [timezone] IANA zone of the hours.
 * @property {number} [reply_minutes] Expected reply time.
 * @property {number} message_chars_max Longest message, in characters (code points).
 * @property {number} message_bytes_max Longest message, in bytes of UTF-8.
 * @property {number} attachment_bytes_max Largest file, in bytes.
 * @property {string[]} attachment_types Types of files the server takes (as found in their content).
 */

/**
 * A person the conversation shows by name: from `GET /v1/conversations/{id}/operators`.
 * @typedef {{ id: string, name: string, avatar_url?: string | null }} Person
 */

/** A colour for someone's initials, the same for the same id. @param {string} id */
function hue(id) {
  let n = 0;
  for (const c of id) n = (n * 31 + (c.codePointAt(0) ?? 0)) % 360;
  return `hsl(${n} 55% 38%)`;
}

/** A complete chat widget for one conversation. */
export class ChatElement extends HTMLElement {
  static get observedAttributes() {
    return ['lang', 'heading', 'theme', 'hide-connection'];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    adoptStyles(root, themeCss());
    adoptStyles(root, CHAT_CSS);
    adoptStyles(root, ATTACH_CSS);
    this.badge = /** @type {import('./components.js').ConnectionStatusElement} */ (h('surechat-connection-status'));
    this.offline = /** @type {import('./components.js').OfflineBannerElement} */ (h('surechat-offline-banner'));
    this.pending = /** @type {import('./components.js').PendingBannerElement} */ (h('surechat-pending-banner'));
    this.heading = h('h2', { id: 'title' });
    /** Opening hours and reply time (`GET /v1/widget`). */
    this.info = h('p', { class: 'info' });
    /** The messages: a list, scrollable and focusable (arrow keys move between messages). */
    this.list = h('ol', { tabindex: '0' });
    /** What an empty conversation shows: an invitation, not a blank panel. */
    this.welcome = h('p', { class: 'welcome', dir: 'auto' });
    this.hint = h('p');
    this.empty = h('div', { class: 'empty', hidden: '' }, [this.welcome, this.hint]);
    /** Shown when messages arrive while the reader is scrolled up. */
    this.pill = h('button', { type: 'button', class: 'pill', hidden: '' });
    this.pill.addEventListener('click', () => {
      this.list.scrollTop = this.list.scrollHeight;
      this.pill.hidden = true;
    });
    /** The reader is at the end of the list (kept while pictures load and make it taller). */
    this.pinned = true;
    this.list.addEventListener('scroll', () => {
      this.pinned = this.atBottom();
      if (this.pinned) this.pill.hidden = true;
    });
    // A picture that loads makes its message taller: a reader at the end stays at the end.
    this.list.addEventListener('load', () => { if (this.pinned) this.list.scrollTop = this.list.scrollHeight; }, true);
    this.list.addEventListener('keydown', (e) => this.navigate(e));
    /** Rows on screen now, by seq: "read" covers only what was seen while the page was visible. @type {Set<number>} */
    this.onScreen = new Set();
    this.watcher = typeof IntersectionObserver === 'function' ? new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const seq = Number(/** @type {HTMLElement} */ (entry.target).dataset.seq);
        if (!seq) continue;
        if (entry.isIntersecting) this.onScreen.add(seq);
        else this.onScreen.delete(seq);
      }
      this.markSeen();
    }, { root: this.list, threshold: 0.5 }) : null;
    /** The separator before the first message that arrived while the page was not looked at. */
    this.divider = h('li', { class: 'divider' });
    /** Seq of the first message from others not seen yet, for the divider. @type {number | null} */
    this.firstUnseen = null;
    /** The list was drawn once (messages there at first are not news). */
    this.rendered = false;
    this.typingLine = h('div', { class: 'typing', 'aria-live': 'polite' });
    /** Polite: where the user's latest message got to (sent, delivered, read), once per change. */
    this.announcer = h('div', { class: 'sr', role: 'status' });
    /** Assertive: a message that could not be sent. */
    this.alarm = h('div', { class: 'sr', role: 'alert' });
    this.error = h('div', { class: 'error', role: 'alert' });
    this.input = /** @type {HTMLTextAreaElement} */ (h('textarea', { rows: '1', 'aria-describedby': 'counter', dir: 'auto' }));
    this.sendButton = h('button', { type: 'submit' });
    this.counter = h('div', { class: 'counter', id: 'counter' });
    /** The full-size view of photos. */
    this.viewer = new ImageViewer();
    /** Files chosen for the next message. */
    this.pendingFiles = new PendingFiles(() => this.context(), () => this.filesChanged());
    this.attachButton = h('button', { type: 'button', class: 'attach' }, [icon('clip')]);
    this.picker = /** @type {HTMLInputElement} */ (h('input', { type: 'file', multiple: '', class: 'picker', tabindex: '-1', 'aria-hidden': 'true' }));
    this.picker.accept = DEFAULT_SETTINGS.attachment_types.join(',');
    this.attachButton.addEventListener('click', () => this.picker.click());
    this.picker.addEventListener('change', () => {
      const files = [...(this.picker.files ?? [])];
      this.picker.value = '';
      this.attach(files);
    });
    /** Shown while files are dragged over the chat. */
    this.dropzone = h('div', { class: 'dropzone', hidden: '' });
    this.form = h('form', {}, [this.pendingFiles.list, this.attachButton, this.picker, this.input, this.sendButton, this.counter]);
    /** @type {{ kind?: 'note' }} `{ kind: 'note' }`: the composer writes notes. */
    this.sendOptions = {};
    /** A system entry's text: in the reader's language from its data, the stored (English) text for changes it does not know. @type {(m: import('./types.js').ChatMessage) => string} */
    this.systemText = (m) => this.describe(m);
    /** Operators of the conversation by id, from the server's directory. @type {Map<string, Person>} */
    this.people = new Map();
    /** The name shown for another participant, by user id (messages, typing): the directory's name, or what the app says. @type {(userId: string) => string} */
    this.userName = (userId) => this.people.get(userId)?.name ?? userId;
    /** @type {WidgetSettings} */
    this.settings = { ...DEFAULT_SETTINGS };
    this.log = h('div', { class: 'log', role: 'log', 'aria-labelledby': 'title' }, [this.empty, this.list, this.pill, this.dropzone]);
    root.append(
      h('header', {}, [this.heading, this.badge, this.info]),
      h('div', { class: 'banners' }, [this.offline, this.pending]),
      this.log, this.typingLine, this.error, this.form, this.announcer, this.alarm, this.viewer.dialog,
    );
    this.dropTargets();
    /** @type {Map<string, HTMLElement>} */
    this.rows = new Map();
    /** Day separators by day number. @type {Map<number, HTMLElement>} */
    this.days = new Map();
    /** @type {SurechatClient | null} */
    this._client = null;
    /** @type {(() => void)[]} */
    this.unlisten = [];
    this.typingSince = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingStop = undefined;
    /** The user's latest own message and its status, to announce each change once. */
    this.latest = { id: '', status: '' };
    this.locale = '';
    this.t = speech(this).t;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.clock = undefined;
    /** The `dir` attribute was set here (from the language), not by the page. */
    this.autoDir = false;
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    this.input.addEventListener('keydown', (e) => {
      // Enter sends (Shift+Enter: a new line) with a keyboard; on a touch screen Enter is a new
      // line and the Send button sends, as people expect of a phone.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !this.touch()) { e.preventDefault(); this.submit(); }
    });
    this.input.addEventListener('input', () => { this.typed(); this.count(); this.grow(); });
    // Images pasted into the composer are attached (a screenshot, a photo copied from elsewhere).
    this.input.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (!files.length) return;
      if (!e.clipboardData?.types.includes('text/plain')) e.preventDefault();
      this.attach(files);
    });
    // A banner's button that goes away hands focus to the composer, never to the page's body.
    root.addEventListener('surechat-focus-away', (e) => { e.preventDefault(); this.input.focus(); });
    this.localize();
  }

  /** What the attachment views need from the chat. @returns {import('./attachments-view.js').ChatContext} */
  context() {
    return { client: this._client, t: this.t, locale: this.locale, viewer: this.viewer };
  }

  /**
   * Checks and adds files to the next message; says why any was refused (before any upload).
   * @param {Blob[]} files
   */
  async attach(files) {
    if (!files.length) return;
    const reasons = await this.pendingFiles.add(files, this.settings);
    this.error.textContent = reasons.join(' ');
  }

  /** The composer's files changed: focus stays in the composer when a removed file had it. */
  filesChanged() {
    const root = /** @type {ShadowRoot} */ (this.shadowRoot);
    if (!root.activeElement || root.activeElement === this.form) this.input.focus();
  }

  /** Files dragged over the chat are shown a place to drop, and attached when dropped. */
  dropTargets() {
    let depth = 0;
    /** @param {DragEvent} e */
    const carriesFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
    this.addEventListener('dragenter', (e) => {
      if (!carriesFiles(e)) return;
      depth += 1;
      this.dropzone.hidden = false;
    });
    this.addEventListener('dragover', (e) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    });
    this.addEventListener('dragleave', (e) => {
      if (!carriesFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) this.dropzone.hidden = true;
    });
    this.addEventListener('drop', (e) => {
      depth = 0;
      this.dropzone.hidden = true;
      const files = [...(e.dataTransfer?.files ?? [])];
      if (!files.length) return;
      e.preventDefault();
      this.attach(files);
      this.input.focus();
    });
  }

  /** Whether the main pointer is a finger (Enter inserts a line then). */
  touch() {
    return typeof matchMedia === 'function' && matchMedia('(pointer: coarse)').matches;
  }

  /** Sets every fixed text in the current language (again when the language changed). */
  localize() {
    const { locale, dir, t } = speech(this);
    if (locale === this.locale) return false;
    this.locale = locale;
    this.t = t;
    if (!this.hasAttribute('dir') || this.autoDir) {
      this.setAttribute('dir', dir);
      this.autoDir = true;
    }
    this.heading.textContent = this.getAttribute('heading') || t('chat.title');
    this.pill.textContent = t('chat.new_below');
    this.divider.textContent = t('chat.new_messages');
    this.input.setAttribute('aria-label', t('chat.message'));
    this.input.placeholder = t('chat.placeholder');
    this.input.setAttribute('enterkeyhint', this.touch() ? 'enter' : 'send');
    this.sendButton.textContent = t('chat.send');
    this.attachButton.setAttribute('aria-label', t('attach.button'));
    this.attachButton.title = t('attach.button');
    this.dropzone.textContent = t('attach.drop');
    this.pendingFiles.localize();
    this.viewer.localize(t);
    this.form.setAttribute('aria-label', t('chat.form'));
    this.hint.textContent = t('chat.empty_hint');
    // (Not upgraded yet when this module runs first: they render when they are.)
    for (const el of [this.badge, this.offline, this.pending]) if (el.isConnected && 'root' in el) el.render();
    return true;
  }

  /** The catalog of this element's language arrived: every text again, in it. */
  relocalize() {
    this.locale = '';
    if (this.localize()) this.rerender();
  }

  /** @param {string} name */
  attributeChangedCallback(name) {
    if (name === 'theme') this.theme();
    // A page with a connection badge of its own (the console) hides this one, so a reconnect
    // is shown, and announced, once.
    else if (name === 'hide-connection') this.badge.hidden = this.hasAttribute('hide-connection');
    else if (name === 'heading') this.heading.textContent = this.getAttribute('heading') || this.t('chat.title');
    else if (this.localize()) this.rerender();
  }

  /** The parts in shadow roots of their own follow the element's `theme`. */
  theme() {
    const theme = this.getAttribute('theme');
    for (const el of [this.badge, this.offline, this.pending]) {
      if (theme) el.setAttribute('theme', theme);
      else el.removeAttribute('theme');
    }
  }

  /** The conversation shown. */
  get conversation() {
    return this.getAttribute('conversation') ?? '';
  }

  set conversation(id) {
    this.setAttribute('conversation', id);
    this.forget();
    this.people = new Map();
    this.loadPeople();
    this.render();
  }

  /** Drops every row (another conversation, or rows to build again). */
  forget() {
    this.rows.clear();
    this.days.clear();
    this.list.replaceChildren();
    this.watcher?.disconnect();
    this.onScreen.clear();
    this.firstUnseen = null;
    this.rendered = false;
    this.pill.hidden = true;
  }

  /** The client used; created from the `token` and `server` attributes when not set. */
  get client() {
    return this._client;
  }

  set client(client) {
    for (const fn of this.unlisten.splice(0)) fn();
    this._client = client;
    for (const el of [this.badge, this.offline, this.pending]) el.client = client;
    if (!client) return;
    this.unlisten.push(client.on('change', () => this.render()));
    this.unlisten.push(client.on('delivery_status', (e) => {
      if (e.conversation === this.conversation && e.status.name === 'failed') {
        this.alarm.textContent = this.t('chat.announce_failed', { reason: this.reason(e.status) });
      }
    }));
    // Names again after a (re)connect and after a handover: the operators may have changed.
    this.unlisten.push(client.on('connection_status', (e) => { if (e.status.name === 'connected') this.loadPeople(); }));
    this.unlisten.push(client.on('message', (e) => {
      if (e.message.conversation === this.conversation && e.message.data?.event === 'assigned') this.loadPeople();
    }));
    client.start();
    this.loadSettings();
    this.loadPeople();
    this.render();
  }

  /** The HTTP API's base, beside the client's WebSocket endpoint. */
  api() {
    return (this._client?.url ?? '').replace(/^ws/, 'http').replace(/\/v1\/ws$/, '');
  }

  /**
   * An authenticated GET of the API: the JSON, or null (404, offline, anything else).
   * @param {string} path
   */
  async get(path) {
    const client = this._client;
    if (!client?.token) return null;
    try {
      const response = await fetch(this.api() + path, { headers: { Authorization: `Bearer ${client.token}` } });
      return response.ok ? await response.json() : null;
    } catch {
      return null;
    }
  }

  /** Reads the widget's settings (welcome, hours, reply time, limits); none (404) keeps the defaults. */
  async loadSettings() {
    const settings = await this.get('/v1/widget');
    if (!settings || typeof settings !== 'object') return;
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.picker.accept = this.settings.attachment_types.join(',');
    this.count();
    this.render();
  }

  /** Reads the names and avatars of the conversation's operators; rows follow. */
  async loadPeople() {
    const conversation = this.conversation;
    if (!conversation) return;
    const answer = await this.get(`/v1/conversations/${encodeURIComponent(conversation)}/operators`);
    if (!answer || conversation !== this.conversation || !Array.isArray(answer.operators)) return;
    const before = JSON.stringify([...this.people]);
    for (const o of answer.operators) this.people.set(o.id, o);
    if (JSON.stringify([...this.people]) !== before) this.rerender();
  }

  connectedCallback() {
    const token = this.getAttribute('token');
    if (!this._client && token) {
      this.client = new SurechatClient({ token, server: this.getAttribute('server') ?? undefined });
    }
    // What was typed into the page's placeholder composer before this module loaded carries over.
    const early = /** @type {HTMLTextAreaElement | null} */ (this.querySelector(':scope > .early textarea'));
    if (early?.value && !this.input.value) this.input.value = early.value;
    if (early && document.activeElement === early) this.input.focus();
    this.querySelector(':scope > .early')?.remove(); // not shown any more (no slot): not kept either
    document.addEventListener('visibilitychange', this.onVisible);
    // Opening hours and day separators move with the clock: look again every minute.
    clearInterval(this.clock);
    this.clock = setInterval(() => this.render(), 60000);
    if (this.localize()) this.rerender();
    else this.render();
  }

  disconnectedCallback() {
    document.removeEventListener('visibilitychange', this.onVisible);
    clearInterval(this.clock);
  }

  onVisible = () => this.render();

  /** Whether the reader is at (or near) the end of the list. */
  atBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
  }

  /** Sends "read" up to the last message on screen, while the page is visible. */
  markSeen() {
    const client = this.client;
    if (!client || document.visibilityState !== 'visible' || !this.onScreen.size) return;
    const upTo = Math.max(...this.onScreen);
    if (this.firstUnseen !== null && upTo >= this.firstUnseen && this.atBottom()) this.firstUnseen = null;
    client.markRead(this.conversation, upTo);
  }

  /**
   * Arrow keys in the list move between messages (each then shows its full date and time).
   * @param {KeyboardEvent} e
   */
  navigate(e) {
    const keys = ['ArrowUp', 'ArrowDown', 'Home', 'End'];
    if (!keys.includes(e.key) || !(e.target === this.list || /** @type {Element} */ (e.target).matches?.('li[data-id]'))) return;
    const items = /** @type {HTMLElement[]} */ ([...this.list.querySelectorAll('li[data-id]')]);
    if (!items.length) return;
    const at = items.indexOf(/** @type {HTMLElement} */ (e.target));
    const next = e.key === 'Home' ? 0 : e.key === 'End' || at < 0 ? items.length - 1
      : Math.max(0, Math.min(items.length - 1, at + (e.key === 'ArrowUp' ? -1 : 1)));
    e.preventDefault();
    items[next].focus();
  }

  /** Shows the character counter near the limit, in characters (code points). */
  count() {
    const max = this.settings.message_chars_max;
    const n = [...this.input.value].length;
    const over = n > max;
    this.counter.classList.toggle('over', over);
    const text = over ? this.t('chat.chars_over', { n: n - max, max })
      : n >= max * COUNTER_FROM ? this.t('chat.chars_left', { n: max - n }) : '';
    if (this.counter.textContent !== text) this.counter.textContent = text;
    if (this.error.textContent && !over) this.error.textContent = '';
    this.input.setAttribute('aria-invalid', String(over));
  }

  /** Grows the composer with its text where CSS cannot (`field-sizing`), up to its max height. */
  grow() {
    if (typeof CSS !== 'undefined' && CSS.supports?.('field-sizing', 'content')) return;
    this.input.style.height = 'auto';
    this.input.style.height = `${this.input.scrollHeight + 2}px`;
  }

  /** Sends what is typed, unless it is over the limits (then says so, in characters). */
  async submit() {
    const text = this.input.value;
    const files = this.pendingFiles.files();
    if ((!text.trim() && !files.length) || !this.client) return;
    const { message_chars_max: chars, message_bytes_max: bytes } = this.settings;
    if ([...text].length > chars || new TextEncoder().encode(text).length > bytes) {
      this.error.textContent = this.t('chat.too_long', { max: chars });
      this.input.focus();
      return;
    }
    this.input.value = '';
    this.error.textContent = '';
    const chosen = this.pendingFiles.items.splice(0);
    this.pendingFiles.clear();
    this.count();
    this.grow();
    this.stopTyping();
    try {
      await this.client.send(this.conversation, text, { ...this.sendOptions, ...(files.length && { files }) });
    } catch (e) {
      this.input.value = text;
      this.pendingFiles.items = chosen;
      this.pendingFiles.list.replaceChildren(...chosen.map((c) => c.item));
      this.count();
      this.error.textContent = this.t('chat.too_long', { max: chars });
      if (!(e instanceof RangeError)) this.error.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  typed() {
    if (this.sendOptions.kind) return; // a note: not for the client's eyes
    const now = Date.now();
    if (now - this.typingSince > TYPING_RENEW_MS) {
      this.typingSince = now;
      this.client?.setTyping(this.conversation, true);
    }
    clearTimeout(this.typingStop);
    this.typingStop = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingStop);
    if (this.typingSince) this.client?.setTyping(this.conversation, false);
    this.typingSince = 0;
  }

  /**
   * A system entry in the reader's language, built from its data (`event`, names and statuses);
   * the server's English text when the change is not one this version knows.
   * @param {import('./types.js').ChatMessage} m
   */
  describe(m) {
    const d = /** @type {Record<string, any>} */ (m.data ?? {});
    const t = this.t;
    const name = (/** @type {any} */ id, /** @type {any} */ given) => String(given ?? this.userName(String(id ?? '')));
    if (d.event === 'assigned') {
      const by = name(d.by, d.by_name);
      if (d.from && d.to) return t('system.transferred', { by, from: name(d.from, d.from_name), to: name(d.to, d.to_name) });
      if (d.to) return t('system.assigned', { by, to: name(d.to, d.to_name) });
      if (d.from) return t('system.unassigned', { by, from: name(d.from, d.from_name) });
    }
    if (d.event === 'status' && ['open', 'pending', 'resolved'].includes(d.to)) {
      const status = (/** @type {string} */ value) => (['open', 'pending', 'resolved'].includes(value) ? t(`status.${value}`) : value);
      if (d.from) return t('system.status', { by: name(d.by, d.by_name), from: status(d.from), to: status(d.to) });
    }
    return m.body;
  }

  /** Builds every row again (after `systemText`, `userName` or the language changed). */
  rerender() {
    const unseen = this.firstUnseen;
    const focused = /** @type {ShadowRoot} */ (this.shadowRoot).activeElement?.closest('li[data-id]')?.getAttribute('data-id');
    this.forget();
    this.render();
    this.firstUnseen = unseen;
    if (focused) this.rows.get(focused)?.focus();
  }

  /**
   * A failure's reason in plain words, in the reader's language.
   * @param {{ code: string }} status
   */
  reason(status) {
    const key = `reason.${status.code}`;
    const text = this.t(key);
    return text === key ? this.t('reason.other', { code: status.code }) : text;
  }

  /** The opening hours and reply time line. */
  infoText() {
    const { t } = this;
    const s = this.settings;
    const parts = [];
    const state = openState(s.hours ?? [], s.timezone ?? 'UTC', Date.now());
    if (state?.open) parts.push(t('chat.open_now'));
    else if (state && state.next !== null) {
      const next = state.next;
      const days = dayNumber(next) - dayNumber(Date.now());
      const day = days === 0 ? t('chat.later_today') : days === 1 ? t('chat.tomorrow')
        : new Intl.DateTimeFormat(this.locale, { weekday: 'long' }).format(next);
      const time = new Intl.DateTimeFormat(this.locale, { hour: 'numeric', minute: '2-digit' }).format(next);
      parts.push(t('chat.away_until', { day, time }));
    } else if (state) parts.push(t('chat.away'));
    const minutes = Number(s.reply_minutes);
    if (minutes > 0) {
      parts.push(minutes < 60 ? t('chat.reply_minutes', { n: minutes }) : t('chat.reply_hours', { n: Math.round(minutes / 60) }));
    }
    return parts.join(' · ');
  }

  /** Brings the list up to date, reusing rows by message id. */
  render() {
    const client = this.client;
    if (this.localize() && this.rows.size) {
      this.rerender();
      return;
    }
    const info = this.infoText();
    if (this.info.textContent !== info) this.info.textContent = info;
    const welcome = this.settings.welcome || this.t('chat.empty');
    if (this.welcome.textContent !== welcome) this.welcome.textContent = welcome;
    if (!client) return;
    const me = client.userId;
    const messages = client.messages(this.conversation);
    this.empty.hidden = messages.length > 0;
    this.list.hidden = messages.length === 0;
    const atBottom = this.atBottom();
    const looking = document.visibilityState === 'visible';
    const now = Date.now();
    let added = false;
    let ownAdded = false;
    /** @type {HTMLElement[]} */
    const wanted = [];
    /** @type {import('./types.js').ChatMessage | null} */
    let previous = null;
    /** @type {HTMLElement | null} */
    let previousRow = null;
    /** @type {import('./types.js').ChatMessage | null} */
    let latestOwn = null;
    for (const m of messages) {
      const own = m.sender === me;
      let row = this.rows.get(m.id);
      if (!row) {
        row = this.row(m, own);
        this.rows.set(m.id, row);
        this.watcher?.observe(row);
        added = true;
        ownAdded ||= own;
        // Arrived while not looked at (page hidden, or the reader scrolled up): mark the place.
        if (!own && m.seq !== null && this.rendered && (!looking || !atBottom) && this.firstUnseen === null) {
          this.firstUnseen = m.seq;
        }
      }
      this.update(row, m);
      if (own && m.kind !== 'system') latestOwn = m;
      // A day separator before the first message of each day (a message not stored yet is today's).
      const when = m.ts ?? now;
      const day = dayNumber(when);
      if (!previous || dayNumber(previous.ts ?? now) !== day) {
        let separator = this.days.get(day);
        if (!separator) {
          separator = h('li', { class: 'day' });
          this.days.set(day, separator);
        }
        const label = dayLabel(when, now, this.locale, this.t);
        if (separator.textContent !== label) separator.textContent = label;
        wanted.push(separator);
      }
      // One group: the same sender, the same kind of entry, close in time and on the same day.
      const grouped = previous !== null && previousRow !== null && previous.sender === m.sender && m.kind !== 'system'
        && (previous.kind ?? '') === (m.kind ?? '') && Math.abs(when - (previous.ts ?? now)) < GROUP_MS
        && dayNumber(previous.ts ?? now) === day && !(this.firstUnseen !== null && m.seq === this.firstUnseen);
      row.classList.toggle('first', !grouped);
      if (previousRow) previousRow.classList.toggle('last', !grouped);
      row.classList.add('last');
      if (this.firstUnseen !== null && m.seq === this.firstUnseen && !ownAdded) wanted.push(this.divider);
      wanted.push(row);
      previous = m;
      previousRow = row;
    }
    if (ownAdded) this.firstUnseen = null;
    wanted.forEach((row, index) => {
      if (this.list.children[index] !== row) this.list.insertBefore(row, this.list.children[index] ?? null);
    });
    while (this.list.children.length > wanted.length) this.list.lastElementChild?.remove();
    this.rendered = true;
    // Follow new messages when the reader is at the end, and always after sending one; otherwise
    // say that there are new ones below, and keep the reader's place.
    if ((added && atBottom && looking) || ownAdded) this.list.scrollTop = this.list.scrollHeight;
    else if (added && !atBottom) this.pill.hidden = false;
    const typing = client.typing(this.conversation);
    const typingText = typing.length ? this.t('chat.typing', { n: typing.length, names: typing.map((id) => this.userName(id)).join(', ') }) : '';
    if (this.typingLine.textContent !== typingText) this.typingLine.textContent = typingText;
    this.announce(latestOwn);
    this.markSeen();
  }

  /**
   * Says (politely, once per change) where the user's latest message got to.
   * @param {import('./types.js').ChatMessage | null} m
   */
  announce(m) {
    const status = m?.status?.name ?? '';
    if (!m || (m.id === this.latest.id && status === this.latest.status)) return;
    const first = this.latest.id === '';
    this.latest = { id: m.id, status };
    // What was there when the chat opened is not news.
    if (first) return;
    if (status === 'sent' || status === 'delivered' || status === 'read') {
      this.announcer.textContent = this.t(`chat.announce_${status}`);
    }
  }

  /**
   * The avatar of a participant: the directory's picture, else initials on a colour.
   * @param {string} id
   */
  avatar(id) {
    const person = this.people.get(id);
    const name = this.userName(id);
    const initials = [...name.trim().split(/\s+/).slice(0, 2).map((w) => [...w][0] ?? '').join('')].join('').toUpperCase();
    const circle = h('span', { class: 'avatar', 'aria-hidden': 'true' });
    circle.style.background = hue(id);
    const url = person?.avatar_url;
    if (url && /^https?:/i.test(url)) {
      const img = /** @type {HTMLImageElement} */ (h('img', { alt: '', src: url }));
      img.addEventListener('error', () => img.replaceWith(initials));
      circle.append(img);
    } else circle.append(initials);
    return circle;
  }

  /**
   * A message's text as nodes: web addresses become links (http/https only), built as
   * elements; everything else stays text, never HTML.
   * @param {string} text
   */
  static textNodes(text) {
    return linkParts(text).map((part) => (part.href
      ? h('a', { href: part.href, rel: 'noopener noreferrer', target: '_blank' }, [part.text])
      : document.createTextNode(part.text)));
  }

  /**
   * @param {import('./types.js').ChatMessage} m
   * @param {boolean} own
   */
  row(m, own) {
    const { t } = this;
    const text = m.kind === 'system' ? this.systemText(m) : m.body;
    const body = h('div', { class: 'body', dir: 'auto', id: `b-${m.id}` }, ChatElement.textNodes(text));
    if (emojiOnly(text)) body.classList.add('emoji');
    const who = h('span', { class: 'who', dir: 'auto' }, [own ? t('chat.you') : this.userName(m.sender)]);
    const header = h('div', { class: 'who-line' });
    const time = h('time');
    const meta = h('div', { class: 'meta' }, [time]);
    if (m.kind === 'note') meta.prepend(t('chat.note'));
    if (own && m.kind !== 'system') meta.append(h('surechat-delivery-indicator'));
    const bubble = h('div', { class: 'bubble' }, [body]);
    if (m.attachments?.length) bubble.prepend(attachmentsView(this.context(), m));
    const lines = text.split('\n').length;
    if (text.length > LONG_CHARS || lines > LONG_LINES) {
      // Long: its start, and a button that shows it all (no inner scrolling, keyboard reachable).
      body.classList.add('clamped');
      const more = h('button', { type: 'button', class: 'more', 'aria-expanded': 'false', 'aria-controls': body.id }, [t('chat.show_more')]);
      more.addEventListener('click', () => {
        const open = body.classList.toggle('clamped') === false;
        more.setAttribute('aria-expanded', String(open));
        more.textContent = open ? t('chat.show_less') : t('chat.show_more');
      });
      bubble.append(more);
    }
    bubble.append(meta);
    const row = h('li', { class: own ? 'own' : 'other', 'data-id': m.id, 'data-kind': m.kind ?? 'message', tabindex: '-1' }, [header, bubble]);
    // The name (and avatar) show once per group; `.who` holds the name alone.
    if (m.kind !== 'system') header.append(...(own ? [] : [this.avatar(m.sender)]), who);
    else header.remove();
    return row;
  }

  /**
   * @param {HTMLElement} row
   * @param {import('./types.js').ChatMessage} m
   */
  update(row, m) {
    row.dataset.seq = m.seq === null ? '' : String(m.seq);
    this.updateFiles(row, m);
    const time = /** @type {HTMLElement} */ (row.querySelector('time'));
    if (m.ts && time.getAttribute('datetime') === null) {
      time.setAttribute('datetime', new Date(m.ts).toISOString());
      time.textContent = new Intl.DateTimeFormat(this.locale, { hour: 'numeric', minute: '2-digit' }).format(m.ts);
      const full = new Intl.DateTimeFormat(this.locale, { dateStyle: 'full', timeStyle: 'short' }).format(m.ts);
      time.title = full;
      row.title = full;
    }
    const tick = row.querySelector('surechat-delivery-indicator');
    if (!tick || !m.status) return;
    const status = m.status.name;
    if (row.dataset.status === status) return;
    row.dataset.status = status;
    row.classList.toggle('failed', status === 'failed');
    tick.setAttribute('status', status);
    const bubble = /** @type {HTMLElement} */ (row.querySelector('.bubble'));
    const failure = bubble.querySelector('.failure');
    if (m.status.name === 'failed') {
      const reason = this.reason(m.status);
      tick.setAttribute('reason', reason);
      failure?.remove();
      bubble.append(this.failure(row, m, reason, retryable(m.status)));
    } else {
      tick.removeAttribute('reason');
      failure?.remove();
    }
  }

  /**
   * A message's files: drawn from the server's copy once it is stored (the device's until then),
   * and the upload's progress while it is on its way.
   * @param {HTMLElement} row
   * @param {import('./types.js').ChatMessage} m
   */
  updateFiles(row, m) {
    if (!m.attachments?.length) return;
    const bubble = /** @type {HTMLElement} */ (row.querySelector('.bubble'));
    const files = /** @type {HTMLElement | null} */ (bubble.querySelector('.files'));
    const local = m.attachments.some((a) => 'local' in a && a.local);
    if (files && files.dataset.local === 'true' && !local) files.replaceWith(attachmentsView(this.context(), m));
    const line = uploadLine(this.context(), m);
    const shown = bubble.querySelector('.upload');
    if (line && shown?.textContent === line.textContent) return;
    shown?.remove();
    if (line) /** @type {HTMLElement} */ (bubble.querySelector('.files')).after(line);
  }

  /**
   * The reason a message was not sent and what can be done: "Edit" (the text back in the
   * composer) and "Delete"; "Retry" only where sending it again may work (never for a refusal
   * by the server). Focus stays on the message, or goes to the composer or the next message
   * when the message goes away — never to the page's body.
   * @param {HTMLElement} row
   * @param {import('./types.js').ChatMessage} m
   * @param {string} reason
   * @param {boolean} canRetry
   */
  failure(row, m, reason, canRetry) {
    const { t } = this;
    const buttons = [];
    if (canRetry) {
      const retry = h('button', { type: 'button', class: 'retry' }, [t('chat.retry')]);
      retry.addEventListener('click', () => {
        row.focus();
        this.client?.retryFailed(m.id);
      });
      buttons.push(retry);
    }
    const edit = h('button', { type: 'button', class: 'edit' }, [t('chat.edit')]);
    // Editing sends the new text as a new message (new id) and drops the failed one: an id
    // always names one text, so a retry can never store something else under it.
    edit.addEventListener('click', async () => {
      // Its files come back to the composer too (read before the discard drops them).
      const files = m.attachments?.length && this.client ? await this.client.pendingFiles(m.id) : [];
      this.client?.discard(m.id);
      this.input.value = m.body;
      this.count();
      this.grow();
      this.input.focus();
      if (files.length) await this.attach(files.map((f) => new File([f.blob], f.name, { type: f.type })));
    });
    const remove = h('button', { type: 'button', class: 'delete' }, [t('chat.delete')]);
    remove.addEventListener('click', () => {
      const items = /** @type {HTMLElement[]} */ ([...this.list.querySelectorAll('li[data-id]')]);
      const next = items[items.indexOf(row) + 1];
      this.client?.discard(m.id);
      if (next) next.focus();
      else this.input.focus();
    });
    buttons.push(edit, remove);
    return h('div', { class: 'failure' }, [
      h('span', { class: 'reason', dir: 'auto' }, [t('chat.not_sent', { reason })]), ...buttons,
    ]);
  }
}

customElements.define('surechat-chat', ChatElement);
