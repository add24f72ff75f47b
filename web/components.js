// Web components for any framework or none: connection badge, delivery indicator, offline and
// pending banners. Accessible: live regions, keyboard, text labels beside colours; bodies are
// set as text, never parsed as HTML.

import { SurechatClient } from './client.js';
import { dirOf, isLoaded, load, localeOf, translator } from './i18n.js';

/**
 * Colours, all through custom properties a page may set (they inherit into the shadow roots):
 * `--surechat-*` (documented in web/README.md), with light defaults and dark ones when the
 * system prefers dark or `theme="dark"` is set on the element (`theme="light"` keeps it light).
 */
export function themeCss() {
  // Inside the function: this module and `chat-element.js` import each other, so the chat may
  // ask before this module's body has run.
  const light = '--_bg: var(--surechat-bg, #fff); --_fg: var(--surechat-fg, #1f2328); --_muted: var(--surechat-muted, #57606a); --_border: var(--surechat-border, #d0d7de); --_surface: var(--surechat-surface, #f6f8fa); --_log: var(--surechat-log-bg, #fafbfc); --_bubble: var(--surechat-bubble-bg, #fff); --_own: var(--surechat-own-bg, #dafbe1); --_own-border: var(--surechat-own-border, #9be9a8); --_accent: var(--surechat-accent, #0969da); --_accent-fg: var(--surechat-accent-fg, #fff); --_send: var(--surechat-send-bg, #1f883d); --_danger: var(--surechat-danger, #cf222e); --_failed: var(--surechat-failed-bg, #ffebe9); --_warn: var(--surechat-warning-bg, #fff8c5); --_warn-border: var(--surechat-warning-border, #d4a72c); --_info: var(--surechat-info-bg, #ddf4ff); --_info-border: var(--surechat-info-border, #54aeff); --_ok: var(--surechat-ok, #1a7f37); --_link: var(--surechat-link, #0550ae); color-scheme: light;';
  const dark = '--_bg: var(--surechat-bg, #0d1117); --_fg: var(--surechat-fg, #e6edf3); --_muted: var(--surechat-muted, #9da7b3); --_border: var(--surechat-border, #3d444d); --_surface: var(--surechat-surface, #161b22); --_log: var(--surechat-log-bg, #010409); --_bubble: var(--surechat-bubble-bg, #161b22); --_own: var(--surechat-own-bg, #0f3d25); --_own-border: var(--surechat-own-border, #2ea043); --_accent: var(--surechat-accent, #4493f8); --_accent-fg: var(--surechat-accent-fg, #fff); --_send: var(--surechat-send-bg, #238636); --_danger: var(--surechat-danger, #ff7b72); --_failed: var(--surechat-failed-bg, #3c1618); --_warn: var(--surechat-warning-bg, #3b2e00); --_warn-border: var(--surechat-warning-border, #9e6a03); --_info: var(--surechat-info-bg, #0c2d6b); --_info-border: var(--surechat-info-border, #1f6feb); --_ok: var(--surechat-ok, #3fb950); --_link: var(--surechat-link, #79c0ff); color-scheme: dark;';
  return `:host { ${light} }
@media (prefers-color-scheme: dark) { :host(:not([theme=light])) { ${dark} } }
:host([theme=dark]) { ${dark} }`;
}

/** Shared styles; sizes in rem so the widget follows the user's font size. */
const CSS = `
:host { font: 1rem/1.4 system-ui, sans-serif; color: var(--_fg); }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
button { font: inherit; color: var(--_fg); min-height: 2.25rem; padding: 0 .8rem; border-radius: .5rem; border: 1px solid var(--_muted); background: var(--_bg); cursor: pointer; }
button:focus-visible, textarea:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
.badge { display: inline-flex; align-items: center; gap: .4rem; padding: .2rem .6rem; border-radius: 1rem; background: var(--_surface); border: 1px solid var(--_border); font-size: .85rem; }
.dot { width: .6rem; height: .6rem; border-radius: 50%; background: var(--_muted); }
.connected .dot { background: var(--_ok); } .reconnecting .dot, .connecting .dot { background: #bf8700; }
.offline .dot, .disconnected .dot, .expired .dot { background: var(--_danger); }
.badge button { min-height: 1.8rem; font-size: .8rem; }
.banner { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; padding: .5rem .75rem; border-radius: .5rem; margin: .25rem 0; }
.banner.offline { background: var(--_warn); border: 1px solid var(--_warn-border); } .banner.pending { background: var(--_info); border: 1px solid var(--_info-border); }
[hidden] { display: none !important; }
`;

/** Text labels of delivery statuses: the icon's shape and this text, never colour alone. */
const TICKS = { sending: '', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '✗' };

/**
 * The language of an element and its lookup: `lang` on it or its nearest ancestor (shadow roots
 * crossed), else the page's, else the browser's.
 * @param {Element} el
 */
export function speech(el) {
  const locale = localeOf(el);
  // A language whose catalog is still on its way reads English for now; the element is told
  // (`relocalize`) when the catalog arrives, and draws itself again.
  if (!isLoaded(locale)) load(locale).then(() => /** @type {any} */ (el).relocalize?.(), () => {});
  return { locale, dir: dirOf(locale), t: translator(locale) };
}

/**
 * Moves focus somewhere sensible when `button` had it and is about to disappear (a banner
 * that closes, a status that changes): the element's host is asked first (`surechat-focus-away`,
 * which the chat answers by focusing its composer), else the host itself is focused.
 * @param {HTMLElement} button
 * @param {HTMLElement} host
 */
export function keepFocus(button, host) {
  if (button.getRootNode() instanceof ShadowRoot && /** @type {ShadowRoot} */ (button.getRootNode()).activeElement === button) {
    const asked = new CustomEvent('surechat-focus-away', { bubbles: true, composed: true, cancelable: true });
    if (host.dispatchEvent(asked)) {
      if (!host.hasAttribute('tabindex')) host.tabIndex = -1;
      host.focus();
    }
  }
}

/** The clock of "sending", drawn (emoji fonts are often missing on the devices that matter). */
function clock() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '0.9em');
  svg.setAttribute('height', '0.9em');
  svg.setAttribute('aria-hidden', 'true');
  svg.style.verticalAlign = '-0.1em';
  svg.innerHTML = '<circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M8 4.5V8l2.5 1.5" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/>';
  return svg;
}

/**
 * Creates an element with attributes and children (text children are set as text).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/**
 * One constructed sheet per style text, shared by every element. A `var`, made on first use: this
 * module and `chat-element.js` import each other, so an element can be constructed before this
 * module's body has run (a `const` would not be initialised yet).
 * @type {Map<string, CSSStyleSheet> | undefined}
 */
// eslint-disable-next-line no-var
var sheets;

/**
 * Styles a shadow root with `css`. A constructed style sheet, unlike a `<style>` element, is
 * allowed by a strict Content-Security-Policy (`style-src 'self'` without `'unsafe-inline'`), so
 * the components work on pages that forbid inline styles; browsers without constructed sheets
 * get a `<style>` element.
 * @param {ShadowRoot} root
 * @param {string} css
 */
export function adoptStyles(root, css) {
  if ('adoptedStyleSheets' in Document.prototype && 'replaceSync' in CSSStyleSheet.prototype) {
    sheets ??= new Map();
    let sheet = sheets.get(css);
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      sheets.set(css, sheet);
    }
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  } else {
    root.prepend(h('style', {}, [css]));
  }
}

/** Base: an open shadow root with the shared styles, and a `client` to follow. */
class Base extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    adoptStyles(this.root, themeCss());
    adoptStyles(this.root, CSS);
    /** @type {SurechatClient | null} */
    this._client = null;
    /** @type {(() => void) | null} */
    this.unlisten = null;
  }

  /** The client whose state this element shows. */
  get client() {
    return this._client;
  }

  set client(client) {
    this.unlisten?.();
    this._client = client;
    this.unlisten = client ? client.on('change', () => this.render()) : null;
    this.render();
  }

  /** The texts in this element's language. */
  get t() {
    return speech(this).t;
  }

  /** The catalog of this element's language arrived: draw in it. */
  relocalize() {
    this.render();
  }

  disconnectedCallback() {
    this.unlisten?.();
    this.unlisten = null;
  }

  connectedCallback() {
    if (this._client && !this.unlisten) this.client = this._client;
    this.render();
  }

  render() {}
}

/**
 * `<surechat-connection-status>`: connected / connecting / reconnecting with a countdown /
 * offline / disconnected, with a "Reconnect" button when not connected; "Session expired" with
 * "Sign in again" (the client's `refreshToken`) when the server refused the token. A change of
 * status is announced once, politely: the countdown ticks on screen only, never in the live
 * region.
 */
export class ConnectionStatusElement extends Base {
  constructor() {
    super();
    /** What is seen (with the countdown); hidden from screen readers, which get `spoken`. */
    this.label = h('span', { class: 'label', 'aria-hidden': 'true' });
    /** The live region: its text changes with the status, never with the countdown. */
    this.spoken = h('span', { class: 'sr', role: 'status' });
    this.button = h('button', { type: 'button', part: 'reconnect' });
    this.badge = h('span', { class: 'badge', part: 'badge' },
      [h('span', { class: 'dot', 'aria-hidden': 'true' }), this.label, this.spoken, this.button]);
    this.button.addEventListener('click', () => {
      if (this.client?.status.name === 'expired') this.client.refreshToken();
      else this.client?.reconnect();
    });
    this.root.append(this.badge);
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.tick = undefined;
  }

  render() {
    const { t } = this;
    const status = this.client?.status ?? { name: 'disconnected' };
    this.badge.className = `badge ${status.name}`;
    this.setAttribute('status', status.name);
    clearInterval(this.tick);
    const text = () => {
      if (status.name !== 'reconnecting') return t(`conn.${status.name}`);
      const n = Math.max(0, Math.ceil((status.nextAttemptAt - Date.now()) / 1000));
      return n > 0 ? t('conn.reconnecting_in', { n }) : t('conn.reconnecting');
    };
    this.label.textContent = text();
    const spoken = status.name === 'reconnecting' ? t('conn.reconnecting') : text();
    if (this.spoken.textContent !== spoken) this.spoken.textContent = spoken;
    if (status.name === 'reconnecting') this.tick = setInterval(() => { this.label.textContent = text(); }, 1000);
    const hide = status.name === 'connected' || status.name === 'connecting';
    if (hide && !this.button.hidden) keepFocus(this.button, this);
    this.button.hidden = hide;
    this.button.textContent = status.name === 'expired' ? t('conn.sign_in_again') : t('conn.reconnect');
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this.tick);
  }
}

/**
 * `<surechat-delivery-indicator status="sending|sent|delivered|read|failed" reason="…">`: clock,
 * ✓, ✓✓, blue ✓✓ or ✗, each with its text label (visible, and as a tooltip). Its text is not in
 * any live region's way: the chat announces the status of the user's latest message itself.
 */
export class DeliveryIndicatorElement extends HTMLElement {
  static get observedAttributes() {
    return ['status', 'reason'];
  }

  attributeChangedCallback() {
    this.render();
  }

  connectedCallback() {
    this.render();
  }

  /** The catalog of this element's language arrived: draw in it. */
  relocalize() {
    this.render();
  }

  render() {
    const status = /** @type {keyof typeof TICKS} */ (this.getAttribute('status') ?? 'sending');
    const icon = TICKS[status] ?? TICKS.sending;
    const name = speech(this).t(`tick.${status in TICKS ? status : 'sending'}`);
    const reason = this.getAttribute('reason');
    const text = reason ? `${name}: ${reason}` : name;
    this.className = `tick ${status}`;
    this.title = text;
    // One accessible name, changed as an attribute: a live region around it (the chat's log)
    // does not read every change of status (the chat announces the latest one itself).
    this.setAttribute('role', 'img');
    this.setAttribute('aria-label', text);
    // Styled inline so it reads right in any page, inside a shadow root or not.
    this.style.color = status === 'read' ? 'var(--_accent, #0969da)' : status === 'failed' ? 'var(--_danger, #cf222e)' : 'var(--_muted, #57606a)';
    this.style.fontWeight = status === 'read' || status === 'failed' ? '600' : '';
    this.style.whiteSpace = 'nowrap';
    // The label is visible: the icon's colour (blue for read) is never the only signal.
    const icon_ = status === 'sending' ? clock() : h('span', { 'aria-hidden': 'true' }, [icon]);
    this.replaceChildren(icon_, ' ', h('span', {}, [name]));
  }
}

/**
 * A banner inside a live region that is always there: what is shown is put into the region (and
 * taken out), so a screen reader announces it when it appears; the region itself never hides.
 */
class BannerElement extends Base {
  /** @param {string} kind */
  constructor(kind) {
    super();
    this.region = h('div', { role: 'status', part: 'region' });
    this.banner = h('div', { class: `banner ${kind}`, part: 'banner' });
    this.root.append(this.region);
  }

  /** @param {boolean} shown */
  show(shown) {
    if (shown && !this.banner.isConnected) this.region.append(this.banner);
    if (!shown && this.banner.isConnected) this.banner.remove();
  }
}

/** `<surechat-offline-banner>`: shown while the device knows it has no network. */
export class OfflineBannerElement extends BannerElement {
  constructor() {
    super('offline');
  }

  render() {
    const text = this.t('banner.offline');
    if (this.banner.textContent !== text) this.banner.textContent = text;
    this.show(this.client?.status.name === 'offline');
  }
}

/**
 * `<surechat-pending-banner>`: "N messages waiting to be sent", with "Retry now". Failed
 * messages are not waiting (they say so on their own rows), so they are never counted here.
 */
export class PendingBannerElement extends BannerElement {
  constructor() {
    super('pending');
    this.text = h('span');
    this.button = h('button', { type: 'button', part: 'retry' });
    this.button.addEventListener('click', () => this.client?.reconnect());
    this.banner.append(this.text, this.button);
  }

  render() {
    const { t } = this;
    const client = this.client;
    const n = client ? client.waitingCount ?? client.pendingCount : 0;
    const text = t('banner.pending', { n });
    if (this.text.textContent !== text) this.text.textContent = text;
    this.button.textContent = t('banner.retry_now');
    if (n === 0 && this.banner.isConnected) keepFocus(this.button, this);
    this.show(n > 0);
  }
}

customElements.define('surechat-connection-status', ConnectionStatusElement);
customElements.define('surechat-delivery-indicator', DeliveryIndicatorElement);
customElements.define('surechat-offline-banner', OfflineBannerElement);
customElements.define('surechat-pending-banner', PendingBannerElement);

export { SurechatClient };
export { ChatElement } from './chat-element.js';
