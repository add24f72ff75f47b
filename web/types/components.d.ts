import { SurechatClient } from './client.js';
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
    disconnectedCallback(): void;
    connectedCallback(): void;
    render(): void;
}
/**
 * `<surechat-connection-status>`: connected / connecting / reconnecting with a countdown /
 * offline / disconnected, with a "Reconnect" button when not connected; "Session expired" with
 * "Sign in again" (the client's `refreshToken`) when the server refused the token. Announced
 * politely.
 */
export declare class ConnectionStatusElement extends Base {
    label: HTMLElement;
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
 * ✓, ✓✓, blue ✓✓ or ✗, each with its text label for screen readers and as a tooltip.
 */
export declare class DeliveryIndicatorElement extends HTMLElement {
    static get observedAttributes(): string[];
    attributeChangedCallback(): void;
    connectedCallback(): void;
    render(): void;
}
/** `<surechat-offline-banner>`: shown while the device knows it has no network. */
export declare class OfflineBannerElement extends Base {
    banner: HTMLElement;
    constructor();
    render(): void;
}
/** `<surechat-pending-banner>`: "N messages waiting to be sent", with "Retry now". */
export declare class PendingBannerElement extends Base {
    text: HTMLElement;
    banner: HTMLElement;
    constructor();
    render(): void;
}
export { SurechatClient };
export { ChatElement } from './chat-element.js';
