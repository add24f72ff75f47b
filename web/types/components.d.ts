import { SurechatClient } from './client.js';
/**
 * Colours, all through custom properties a page may set (they inherit into the shadow roots):
 * `--surechat-*` (documented in web/README.md), with light defaults and dark ones when the
 * system prefers dark or `theme="dark"` is set on the element (`theme="light"` keeps it light).
 */
export declare function themeCss(): string;
/**
 * The language of an element and its lookup: `lang` on it or its nearest ancestor (shadow roots
 * crossed), else the page's, else the browser's.
 * @param {Element} el
 */
export declare function speech(el: Element): {
    locale: string;
    dir: "ltr" | "rtl";
    t: (key: string, vars?: Record<string, string | number>) => string;
};
/**
 * Moves focus somewhere sensible when `button` had it and is about to disappear (a banner
 * that closes, a status that changes): the element's host is asked first (`surechat-focus-away`,
 * which the chat answers by focusing its composer), else the host itself is focused.
 * @param {HTMLElement} button
 * @param {HTMLElement} host
 */
export declare function keepFocus(button: HTMLElement, host: HTMLElement): void;
/**
 * Creates an element with attributes and children (text children are set as text).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
export declare function h(tag: string, attrs?: Record<string, string>, children?: (Node | string)[]): HTMLElement;
/**
 * Styles a shadow root with `css`. A constructed style sheet, unlike a `<style>` element, is
 * allowed by a strict Content-Security-Policy (`style-src 'self'` without `'unsafe-inline'`), so
 * the components work on pages that forbid inline styles; browsers without constructed sheets
 * get a `<style>` element.
 * @param {ShadowRoot} root
 * @param {string} css
 */
export declare function adoptStyles(root: ShadowRoot, css: string): void;
/** Base: an open shadow root with the shared styles, and a `client` to follow. */
declare class Base extends HTMLElement {
    root: ShadowRoot;
    /** @type {SurechatClient | null} */
    _client: SurechatClient | null;
    /** @type {(() => void) | null} */
    unlisten: (() => void) | null;
    constructor();
    /** The client whose state this element shows. */
    get client(): SurechatClient | null;
    set client(client: SurechatClient | null);
    /** The texts in this element's language. */
    get t(): (key: string, vars?: Record<string, string | number>) => string;
    /** The catalog of this element's language arrived: draw in it. */
    relocalize(): void;
    disconnectedCallback(): void;
    connectedCallback(): void;
    render(): void;
}
/**
 * `<surechat-connection-status>`: connected / connecting / reconnecting with a countdown /
 * offline / disconnected, with a "Reconnect" button when not connected; "Session expired" with
 * "Sign in again" (the client's `refreshToken`) when the server refused the token. A change of
 * status is announced once, politely: the countdown ticks on screen only, never in the live
 * region.
 */
export declare class ConnectionStatusElement extends Base {
    /** What is seen (with the countdown); hidden from screen readers, which get `spoken`. */
    label: HTMLElement;
    /** The live region: its text changes with the status, never with the countdown. */
    spoken: HTMLElement;
    button: HTMLElement;
    badge: HTMLElement;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    tick: ReturnType<typeof setInterval> | undefined;
    constructor();
    render(): void;
    disconnectedCallback(): void;
}
/**
 * `<surechat-delivery-indicator status="sending|sent|delivered|read|failed" reason="…">`: clock,
 * ✓, ✓✓, blue ✓✓ or ✗, each with its text label (visible, and as a tooltip). Its text is not in
 * any live region's way: the chat announces the status of the user's latest message itself.
 */
export declare class DeliveryIndicatorElement extends HTMLElement {
    static get observedAttributes(): string[];
    attributeChangedCallback(): void;
    connectedCallback(): void;
    /** The catalog of this element's language arrived: draw in it. */
    relocalize(): void;
    render(): void;
}
/**
 * A banner inside a live region that is always there: what is shown is put into the region (and
 * taken out), so a screen reader announces it when it appears; the region itself never hides.
 */
declare class BannerElement extends Base {
    region: HTMLElement;
    banner: HTMLElement;
    /** @param {string} kind */
    constructor(kind: string);
    /** @param {boolean} shown */
    show(shown: boolean): void;
}
/** `<surechat-offline-banner>`: shown while the device knows it has no network. */
export declare class OfflineBannerElement extends BannerElement {
    constructor();
    render(): void;
}
/**
 * `<surechat-pending-banner>`: "N messages waiting to be sent", with "Retry now". Failed
 * messages are not waiting (they say so on their own rows), so they are never counted here.
 */
export declare class PendingBannerElement extends BannerElement {
    text: HTMLElement;
    button: HTMLElement;
    constructor();
    render(): void;
}
export { SurechatClient };
export { ChatElement } from './chat-element.js';
