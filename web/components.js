// Web components for any framework or none: connection badge, delivery indicator, offline and
// pending banners. Accessible: live regions, keyboard, text labels beside colours; bodies are
// set as text, never parsed as HTML.

import { SurechatClient } from './client.js';

/** Shared styles; sizes in rem so the widget follows the user's font size. */
const CSS = `
:host { font: 15px/1.4 system-ui, sans-serif; color: #1f2328; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
button { font: inherit; min-height: 2.25rem; padding: 0 .8rem; border-radius: .5rem; border: 1px solid #8c959f; background: #fff; cursor: pointer; }
button:focus-visible, textarea:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
.badge { display: inline-flex; align-items: center; gap: .4rem; padding: .2rem .6rem; border-radius: 1rem; background: #f6f8fa; border: 1px solid #d0d7de; font-size: .85rem; }
.dot { width: .6rem; height: .6rem; border-radius: 50%; background: #8c959f; }
.connected .dot { background: #1a7f37; } .reconnecting .dot, .connecting .dot { background: #bf8700; }
.offline .dot, .disconnected .dot, .expired .dot { background: #cf222e; }
.badge button { min-height: 1.8rem; font-size: .8rem; }
.tick { font-size: .8rem; color: #57606a; white-space: nowrap; }
.tick.read { color: #0969da; font-weight: 600; } .tick.failed { color: #cf222e; font-weight: 600; }
.banner { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; padding: .5rem .75rem; border-radius: .5rem; margin: .25rem 0; }
.banner.offline { background: #fff8c5; border: 1px solid #d4a72c; } .banner.pending { background: #ddf4ff; border: 1px solid #54aeff; }
[hidden] { display: none !important; }
`;

/** Text labels of delivery statuses: the icon's shape and this text, never colour alone. */
const TICKS = {
  sending: ['', 'Sending'], sent: ['✓', 'Sent'], delivered: ['✓✓', 'Delivered'],
  read: ['✓✓', 'Read'], failed: ['✗', 'Failed'],
};

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
 * "Sign in again" (the client's `refreshToken`) when the server refused the token. Announced
 * politely.
 */
export class ConnectionStatusElement extends Base {
  constructor() {
    super();
    this.label = h('span', { class: 'label' });
    this.button = h('button', { type: 'button', part: 'reconnect' }, ['Reconnect']);
    this.badge = h('span', { class: 'badge', role: 'status', 'aria-live': 'polite', part: 'badge' },
      [h('span', { class: 'dot', 'aria-hidden': 'true' }), this.label, this.button]);
    this.button.addEventListener('click', () => {
      if (this.client?.status.name === 'expired') this.client.refreshToken();
      else this.client?.reconnect();
    });
    this.root.append(this.badge);
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.tick = undefined;
  }

  render() {
    const status = this.client?.status ?? { name: 'disconnected' };
    this.badge.className = `badge ${status.name}`;
    this.setAttribute('status', status.name);
    clearInterval(this.tick);
    const text = () => {
      if (status.name !== 'reconnecting') {
        return {
          connected: 'Connected', connecting: 'Connecting…', offline: 'Offline', disconnected: 'Disconnected',
          expired: 'Session expired',
        }[status.name];
      }
      const s = Math.max(0, Math.ceil((status.nextAttemptAt - Date.now()) / 1000));
      return s > 0 ? `Reconnecting in ${s} s` : 'Reconnecting…';
    };
    this.label.textContent = text();
    if (status.name === 'reconnecting') this.tick = setInterval(() => { this.label.textContent = text(); }, 1000);
    this.button.hidden = status.name === 'connected' || status.name === 'connecting';
    this.button.textContent = status.name === 'expired' ? 'Sign in again' : 'Reconnect';
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this.tick);
  }
}

/**
 * `<surechat-delivery-indicator status="sending|sent|delivered|read|failed" reason="…">`: clock,
 * ✓, ✓✓, blue ✓✓ or ✗, each with its text label for screen readers and as a tooltip.
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

  render() {
    const status = /** @type {keyof typeof TICKS} */ (this.getAttribute('status') ?? 'sending');
    const [icon, name] = TICKS[status] ?? TICKS.sending;
    const reason = this.getAttribute('reason');
    const text = reason ? `${name}: ${reason}` : name;
    this.className = `tick ${status}`;
    this.title = text;
    // Styled inline so it reads right in any page, inside a shadow root or not.
    this.style.color = status === 'read' ? '#0969da' : status === 'failed' ? '#cf222e' : '#57606a';
    this.style.fontWeight = status === 'read' || status === 'failed' ? '600' : '';
    this.style.whiteSpace = 'nowrap';
    // The label is visible: the icon's colour (blue for read) is never the only signal.
    const icon_ = status === 'sending' ? clock() : h('span', { 'aria-hidden': 'true' }, [icon]);
    this.replaceChildren(icon_, ' ', h('span', {}, [name]));
  }
}

/** `<surechat-offline-banner>`: shown while the device knows it has no network. */
export class OfflineBannerElement extends Base {
  constructor() {
    super();
    this.banner = h('div', { class: 'banner offline', role: 'status', part: 'banner' },
      ['You are offline. Your messages are kept and will be sent when you are back online.']);
    this.root.append(this.banner);
  }

  render() {
    this.banner.hidden = this.client?.status.name !== 'offline';
  }
}

/** `<surechat-pending-banner>`: "N messages waiting to be sent", with "Retry now". */
export class PendingBannerElement extends Base {
  constructor() {
    super();
    this.text = h('span');
    const button = h('button', { type: 'button', part: 'retry' }, ['Retry now']);
    button.addEventListener('click', () => {
      this.client?.retryFailed();
      this.client?.reconnect();
    });
    this.banner = h('div', { class: 'banner pending', role: 'status', part: 'banner' }, [this.text, button]);
    this.root.append(this.banner);
  }

  render() {
    const n = this.client?.pendingCount ?? 0;
    this.banner.hidden = n === 0;
    this.text.textContent = n === 1 ? '1 message waiting to be sent' : `${n} messages waiting to be sent`;
  }
}

customElements.define('surechat-connection-status', ConnectionStatusElement);
customElements.define('surechat-delivery-indicator', DeliveryIndicatorElement);
customElements.define('surechat-offline-banner', OfflineBannerElement);
customElements.define('surechat-pending-banner', PendingBannerElement);

export { SurechatClient };
export { ChatElement } from './chat-element.js';
