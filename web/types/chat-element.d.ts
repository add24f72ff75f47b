import { SurechatClient } from './client.js';
/** A complete chat widget for one conversation. */
export declare class ChatElement extends HTMLElement {
    badge: import("./components.js").ConnectionStatusElement;
    offline: import("./components.js").OfflineBannerElement;
    pending: import("./components.js").PendingBannerElement;
    heading: HTMLElement;
    list: HTMLElement;
    /** Shown when messages arrive while the reader is scrolled up. */
    pill: HTMLElement;
    /** Rows on screen now, by seq: "read" covers only what was seen while the page was visible. @type {Set<number>} */
    onScreen: Set<number>;
    watcher: IntersectionObserver | null;
    /** The separator before the first message that arrived while the page was not looked at. */
    divider: HTMLElement;
    /** Seq of the first message from others not seen yet, for the divider. @type {number | null} */
    firstUnseen: number | null;
    /** The list was drawn once (messages there at first are not news). */
    rendered: boolean;
    typingLine: HTMLElement;
    announcer: HTMLElement;
    error: HTMLElement;
    input: HTMLTextAreaElement;
    form: HTMLElement;
    /** @type {{ kind?: 'note' }} `{ kind: 'note' }`: the composer writes notes. */
    sendOptions: {
        kind?: 'note';
    };
    /** A system entry's text. @type {(m: import('./types.js').ChatMessage) => string} */
    systemText: (m: import('./types.js').ChatMessage) => string;
    /** The name shown for another participant, by user id (messages, typing): the app maps ids to names. @type {(userId: string) => string} */
    userName: (userId: string) => string;
    /** @type {Map<string, HTMLElement>} */
    rows: Map<string, HTMLElement>;
    /** @type {SurechatClient | null} */
    _client: SurechatClient | null;
    /** @type {(() => void)[]} */
    unlisten: (() => void)[];
    typingSince: number;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    typingStop: ReturnType<typeof setTimeout> | undefined;
    constructor();
    /** The conversation shown. */
    get conversation(): string;
    set conversation(id: string);
    /** Drops every row (another conversation, or rows to build again). */
    forget(): void;
    /** The client used; created from the `token` and `server` attributes when not set. */
    get client(): SurechatClient | null;
    set client(client: SurechatClient | null);
    connectedCallback(): void;
    disconnectedCallback(): void;
    onVisible: () => void;
    /** Whether the reader is at (or near) the end of the list. */
    atBottom(): boolean;
    /** Sends "read" up to the last message on screen, while the page is visible. */
    markSeen(): void;
    /** Sends what is typed. */
    submit(): Promise<void>;
    typed(): void;
    stopTyping(): void;
    /** Builds every row again (after `systemText` or `userName` learned something new). */
    rerender(): void;
    /** Brings the list up to date, reusing rows by message id. */
    render(): void;
    /**
     * @param {import('./types.js').ChatMessage} m
     * @param {boolean} own
     */
    row(m: import('./types.js').ChatMessage, own: boolean): HTMLElement;
    /**
     * @param {HTMLElement} row
     * @param {import('./types.js').ChatMessage} m
     */
    update(row: HTMLElement, m: import('./types.js').ChatMessage): void;
}
