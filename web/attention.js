// Getting the person's attention while the page is not looked at: the count of new messages in
// the tab's title and on its icon, an optional sound, and a desktop notification while the page
// is hidden. Built on the client's events only, so an integrator's page uses it as the demo does.
// Permission for notifications is asked only from a user gesture (`enableNotifications`), never
// on load.

/**
 * @typedef {object} AttentionOptions
 * @property {boolean} [sound] Play a short tone for each new message while the page is not
 *   looked at (default false: a widget on someone else's page stays quiet).
 * @property {boolean} [notify] Show a desktop notification while the page is hidden, once the
 *   user allowed it (default true).
 * @property {(message: import('./types.js').ChatMessage) => boolean} [counts] Which messages
 *   count (default: every message from someone else that is not a system entry).
 * @property {(message: import('./types.js').ChatMessage) => { title: string, body: string }} [describe]
 *   A notification's title and text (default: the page's title and the message's text).
 * @property {Document} [document] The document to decorate (default: this page's).
 */

/** Side of the icon drawn with the count, in pixels. */
const ICON_PX = 64;

/** Draws the page's icon with `count` in a red disc (no count: the plain icon). @param {number} count */
function iconWith(count) {
  const canvas = document.createElement('canvas');
  canvas.width = ICON_PX;
  canvas.height = ICON_PX;
  const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  g.fillStyle = '#1f883d';
  g.beginPath();
  g.roundRect(4, 8, 48, 36, 10);
  g.fill();
  g.beginPath();
  g.moveTo(14, 44);
  g.lineTo(10, 58);
  g.lineTo(28, 44);
  g.fill();
  if (count > 0) {
    g.fillStyle = '#cf222e';
    g.beginPath();
    g.arc(44, 20, 19, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#fff';
    g.font = 'bold 26px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(count > 9 ? '9+' : String(count), 44, 21);
  }
  return canvas.toDataURL('image/png');
}

/** Attention for one client's messages on one page. */
export class Attention extends EventTarget {
  /**
   * @param {import('./client.js').SurechatClient} client
   * @param {AttentionOptions} [options]
   */
  constructor(client, options = {}) {
    super();
    this.client = client;
    this.doc = options.document ?? document;
    this.sound = options.sound ?? false;
    this.notify = options.notify ?? true;
    this.counts = options.counts ?? ((m) => m.sender !== client.userId && m.kind !== 'system');
    this.describe = options.describe ?? ((m) => ({ title: this.baseTitle, body: m.body }));
    /** New messages since the page was last looked at. */
    this.unread = 0;
    this.baseTitle = this.doc.title;
    /** @type {AudioContext | null} */
    this.audio = null;
    /** @type {HTMLLinkElement} */
    this.icon = this.doc.querySelector('link[rel~="icon"]') ?? this.doc.head.appendChild(
      Object.assign(this.doc.createElement('link'), { rel: 'icon', type: 'image/png' }));
    this.icon.href = iconWith(0);
    this.stop = client.on('message', (e) => this.arrived(e.message));
    this.seen = () => { if (this.looking()) this.reset(); };
    this.doc.addEventListener('visibilitychange', this.seen);
    globalThis.addEventListener?.('focus', this.seen);
    // Messages restored from storage or caught up on connect are not news to count: only those
    // that arrive after the first `synced` of each conversation.
    /** @type {Set<string>} */
    this.live = new Set();
    this.stopSynced = client.on('synced', (e) => this.live.add(e.conversation));
  }

  /** Whether the person is looking at the page now. */
  looking() {
    return this.doc.visibilityState === 'visible' && (this.doc.hasFocus?.() ?? true);
  }

  /** @param {import('./types.js').ChatMessage} message */
  arrived(message) {
    if (!this.live.has(message.conversation) || !this.counts(message)) return;
    this.alert({ conversation: message.conversation, ...this.describe(message) });
  }

  /**
   * Something new that is not a message of a followed conversation (a console's new
   * conversation, say): counted, with the tone and a notification like a message, unless the
   * person is looking.
   * @param {{ conversation: string, title: string, body: string }} news
   */
  alert({ conversation, title, body }) {
    if (this.looking()) return;
    this.unread += 1;
    this.show();
    if (this.sound) this.chime();
    const Notify = globalThis.Notification;
    if (this.notify && Notify?.permission === 'granted' && this.doc.visibilityState === 'hidden') {
      // One notification per conversation: a newer one replaces the older (same tag).
      const shown = new Notify(title, { body, tag: `surechat:${conversation}`, icon: this.icon.href });
      shown.onclick = () => { globalThis.focus?.(); shown.close(); };
      this.dispatchEvent(new CustomEvent('notified', { detail: { conversation, title, body } }));
    }
  }

  /** The title and the icon say how many new messages there are. */
  show() {
    this.doc.title = this.unread > 0 ? `(${this.unread}) ${this.baseTitle}` : this.baseTitle;
    this.icon.href = iconWith(this.unread);
  }

  /** The person looked: nothing is new any more. */
  reset() {
    if (this.unread === 0) return;
    this.unread = 0;
    this.show();
  }

  /** A short, quiet two-note tone (Web Audio; nothing to download). */
  chime() {
    try {
      this.audio ??= new AudioContext();
      const now = this.audio.currentTime;
      for (const [at, hz] of [[0, 660], [0.12, 880]]) {
        const tone = this.audio.createOscillator();
        const gain = this.audio.createGain();
        tone.frequency.value = hz;
        gain.gain.setValueAtTime(0.08, now + at);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.25);
        tone.connect(gain).connect(this.audio.destination);
        tone.start(now + at);
        tone.stop(now + at + 0.25);
      }
    } catch {
      // No audio output (or not allowed before a gesture): the title and icon still say it.
    }
  }

  /**
   * Asks for permission to show notifications. Call it from a click (browsers refuse, or hold
   * against the site, a prompt that comes on its own). Resolves to the permission.
   * @returns {Promise<NotificationPermission | 'unsupported'>}
   */
  async enableNotifications() {
    const Notify = globalThis.Notification;
    if (!Notify) return 'unsupported';
    this.notify = true;
    return Notify.permission === 'default' ? Notify.requestPermission() : Notify.permission;
  }

  /** Stops listening and restores the title and icon. */
  close() {
    this.stop();
    this.stopSynced();
    this.doc.removeEventListener('visibilitychange', this.seen);
    globalThis.removeEventListener?.('focus', this.seen);
    this.unread = 0;
    this.show();
  }
}
