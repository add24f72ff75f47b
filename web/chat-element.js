// `<surechat-chat>`: a complete chat for one conversation. Give it a `client` property, or
// `token`, `conversation` (and optionally `server`) attributes.

import { SurechatClient } from './client.js';
import { adoptStyles, h } from './components.js';

const CHAT_CSS = `
:host { display: flex; flex-direction: column; height: 100%; min-height: 20rem; background: #fff; border: 1px solid #d0d7de; border-radius: .75rem; overflow: hidden; font: 15px/1.4 system-ui, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .5rem; padding: .6rem .9rem; border-bottom: 1px solid #d0d7de; background: #f6f8fa; }
header h2 { font-size: 1rem; margin: 0; }
.banners { padding: 0 .75rem; }
ol { list-style: none; margin: 0; padding: .75rem; flex: 1; overflow-y: auto; display: flex; flex-direction: column; gap: .45rem; background: #fafbfc; }
li { max-width: 85%; padding: .45rem .7rem; border-radius: .9rem; background: #fff; border: 1px solid #d0d7de; align-self: flex-start; overflow-wrap: anywhere; }
li.own { align-self: flex-end; background: #dafbe1; border-color: #9be9a8; }
li.failed { background: #ffebe9; border-color: #ff8182; }
.body { white-space: pre-wrap; max-height: 8rem; overflow-y: auto; }
.reason { color: #cf222e; flex-basis: 100%; text-align: right; }
.meta { display: flex; flex-wrap: wrap; justify-content: flex-end; align-items: center; gap: .4rem; font-size: .75rem; color: #57606a; margin-top: .15rem; }
.meta button { min-height: 1.9rem; font-size: .8rem; padding: 0 .6rem; }
.typing { min-height: 1.3rem; padding: 0 .9rem; font-size: .8rem; color: #57606a; font-style: italic; }
form { display: flex; gap: .5rem; padding: .6rem .75rem; border-top: 1px solid #d0d7de; }
textarea { flex: 1; resize: none; font: inherit; padding: .5rem .6rem; border-radius: .5rem; border: 1px solid #8c959f; min-height: 2.5rem; }
form button { background: #1f883d; color: #fff; border-color: #1a7f37; font-weight: 600; }
li[data-kind=system] { align-self: center; text-align: center; border-style: dashed; color: #57606a; font-size: .85rem; }
li[data-kind=note] { background: #fff8c5; border-color: #d4a72c; }
.error { color: #cf222e; font-size: .8rem; padding: 0 .9rem; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.log { position: relative; flex: 1; display: flex; flex-direction: column; min-height: 0; }
.pill { position: absolute; left: 50%; bottom: .6rem; transform: translateX(-50%); border-radius: 1rem; background: #0969da; color: #fff; border-color: #0969da; box-shadow: 0 1px 4px rgba(0,0,0,.2); }
li.divider { align-self: stretch; max-width: none; background: none; border: 0; border-top: 2px solid #cf222e; border-radius: 0; padding: .1rem 0 0; color: #cf222e; font-size: .8rem; text-align: center; }
`;

/** Renews the typing signal this often while the user types (the server's TTL is 10 s). */
const TYPING_RENEW_MS = 3000;
/** Stops the typing signal after this long without a keystroke. */
const TYPING_IDLE_MS = 4000;

/** A complete chat widget for one conversation. */
export class ChatElement extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    this.badge = /** @type {import('./components.js').ConnectionStatusElement} */ (h('surechat-connection-status'));
    this.offline = /** @type {import('./components.js').OfflineBannerElement} */ (h('surechat-offline-banner'));
    this.pending = /** @type {import('./components.js').PendingBannerElement} */ (h('surechat-pending-banner'));
    this.heading = h('h2', { id: 'title' }, ['Chat']);
    this.list = h('ol', { role: 'log', 'aria-live': 'polite', 'aria-labelledby': 'title', tabindex: '0' });
    /** Shown when messages arrive while the reader is scrolled up. */
    this.pill = h('button', { type: 'button', class: 'pill', hidden: '' }, ['New messages ↓']);
    this.pill.addEventListener('click', () => {
      this.list.scrollTop = this.list.scrollHeight;
      this.pill.hidden = true;
    });
    this.list.addEventListener('scroll', () => { if (this.atBottom()) this.pill.hidden = true; });
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
    this.divider = h('li', { class: 'divider', role: 'separator' }, ['New messages']);
    /** Seq of the first message from others not seen yet, for the divider. @type {number | null} */
    this.firstUnseen = null;
    /** The list was drawn once (messages there at first are not news). */
    this.rendered = false;
    this.typingLine = h('div', { class: 'typing', 'aria-live': 'polite' });
    this.announcer = h('div', { class: 'sr', role: 'alert' });
    this.error = h('div', { class: 'error', role: 'alert' });
    this.input = /** @type {HTMLTextAreaElement} */ (h('textarea', { rows: '1', 'aria-label': 'Message', placeholder: 'Write a message…', enterkeyhint: 'send' }));
    const send = h('button', { type: 'submit' }, ['Send']);
    this.form = h('form', { 'aria-label': 'Send a message' }, [this.input, send]);
    /** @type {{ kind?: 'note' }} `{ kind: 'note' }`: the composer writes notes. */
    this.sendOptions = {};
    /** A system entry's text. @type {(m: import('./types.js').ChatMessage) => string} */
    this.systemText = (m) => m.body;
    adoptStyles(root, CHAT_CSS);
    /** The name shown for another participant, by user id (messages, typing): the app maps ids to names. @type {(userId: string) => string} */
    this.userName = (userId) => userId;
    root.append(
      h('header', {}, [this.heading, this.badge]),
      h('div', { class: 'banners' }, [this.offline, this.pending]),
      h('div', { class: 'log' }, [this.list, this.pill]), this.typingLine, this.error, this.form, this.announcer,
    );
    /** @type {Map<string, HTMLElement>} */
    this.rows = new Map();
    /** @type {SurechatClient | null} */
    this._client = null;
    /** @type {(() => void)[]} */
    this.unlisten = [];
    this.typingSince = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingStop = undefined;
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    this.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter starts a new line.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); }
    });
    this.input.addEventListener('input', () => this.typed());
  }

  /** The conversation shown. */
  get conversation() {
    return this.getAttribute('conversation') ?? '';
  }

  set conversation(id) {
    this.setAttribute('conversation', id);
    this.forget();
    this.render();
  }

  /** Drops every row (another conversation, or rows to build again). */
  forget() {
    this.rows.clear();
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
        this.announcer.textContent = `Message not sent: ${e.status.message}`;
      }
    }));
    client.start();
    this.render();
  }

  connectedCallback() {
    const token = this.getAttribute('token');
    if (!this._client && token) {
      this.client = new SurechatClient({ token, server: this.getAttribute('server') ?? undefined });
    }
    document.addEventListener('visibilitychange', this.onVisible);
    this.render();
  }

  disconnectedCallback() {
    document.removeEventListener('visibilitychange', this.onVisible);
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

  /** Sends what is typed. */
  async submit() {
    const text = this.input.value;
    if (!text.trim() || !this.client) return;
    this.input.value = '';
    this.error.textContent = '';
    this.stopTyping();
    try {
      await this.client.send(this.conversation, text, this.sendOptions);
    } catch (e) {
      this.input.value = text;
      this.error.textContent = e instanceof Error ? e.message : String(e);
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

  /** Builds every row again (after `systemText` or `userName` learned something new). */
  rerender() {
    const unseen = this.firstUnseen;
    this.forget();
    this.render();
    this.firstUnseen = unseen;
  }

  /** Brings the list up to date, reusing rows by message id. */
  render() {
    const client = this.client;
    if (!client) return;
    const title = this.getAttribute('heading');
    if (title) this.heading.textContent = title;
    const me = client.userId;
    const messages = client.messages(this.conversation);
    const atBottom = this.atBottom();
    const looking = document.visibilityState === 'visible';
    let added = false;
    let ownAdded = false;
    /** @type {HTMLElement[]} */
    const wanted = [];
    for (const m of messages) {
      let row = this.rows.get(m.id);
      if (!row) {
        row = this.row(m, m.sender === me);
        this.rows.set(m.id, row);
        this.watcher?.observe(row);
        added = true;
        ownAdded ||= m.sender === me;
        // Arrived while not looked at (page hidden, or the reader scrolled up): mark the place.
        if (m.sender !== me && m.seq !== null && this.rendered && (!looking || !atBottom) && this.firstUnseen === null) {
          this.firstUnseen = m.seq;
        }
      }
      this.update(row, m);
      if (this.firstUnseen !== null && m.seq === this.firstUnseen && !ownAdded) wanted.push(this.divider);
      wanted.push(row);
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
    this.typingLine.textContent = typing.length ? `${typing.map((id) => this.userName(id)).join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…` : '';
    this.markSeen();
  }

  /**
   * @param {import('./types.js').ChatMessage} m
   * @param {boolean} own
   */
  row(m, own) {
    const body = h('div', { class: 'body' });
    body.textContent = m.kind === 'system' ? this.systemText(m) : m.body; // text, never HTML
    const who = h('span', { class: 'who' }, [own ? 'You' : this.userName(m.sender)]);
    const meta = h('div', { class: 'meta' }, [who, h('time')]);
    if (m.kind === 'system') who.remove();
    if (m.kind === 'note') meta.prepend('Private note');
    if (own && m.kind !== 'system') meta.append(h('surechat-delivery-indicator'));
    return h('li', { class: own ? 'own' : 'other', 'data-id': m.id, 'data-kind': m.kind ?? 'message' }, [body, meta]);
  }

  /**
   * @param {HTMLElement} row
   * @param {import('./types.js').ChatMessage} m
   */
  update(row, m) {
    row.dataset.seq = m.seq === null ? '' : String(m.seq);
    const time = /** @type {HTMLElement} */ (row.querySelector('time'));
    const when = m.ts ? new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    if (time.textContent !== when) time.textContent = when;
    const tick = row.querySelector('surechat-delivery-indicator');
    if (!tick || !m.status) return;
    const status = m.status.name;
    row.dataset.status = status;
    row.classList.toggle('failed', status === 'failed');
    tick.setAttribute('status', status);
    if (m.status.name === 'failed') tick.setAttribute('reason', m.status.message);
    else tick.removeAttribute('reason');
    const meta = /** @type {HTMLElement} */ (row.querySelector('.meta'));
    const actions = meta.querySelector('.actions');
    if (status === 'failed' && !actions) {
      const retry = h('button', { type: 'button', class: 'retry' }, ['Retry']);
      const edit = h('button', { type: 'button', class: 'edit' }, ['Edit']);
      retry.addEventListener('click', () => this.client?.retryFailed(m.id));
      // Editing sends the new text as a new message (new id) and drops the failed one: an id
      // always names one text, so a retry can never store something else under it.
      edit.addEventListener('click', () => {
        this.client?.discard(m.id);
        this.input.value = m.body;
        this.input.focus();
      });
      meta.append(h('span', { class: 'reason' }, [`Not sent: ${m.status.message}`]), h('span', { class: 'actions' }, [retry, edit]));
    } else if (status !== 'failed' && actions) {
      actions.remove();
      meta.querySelector('.reason')?.remove();
    }
  }
}

customElements.define('surechat-chat', ChatElement);
