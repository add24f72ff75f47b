import { ImageViewer, PendingFiles } from './attachments-view.js';
import { SurechatClient } from './client.js';
export type WidgetSettings = {
    /**
     * Shown in an empty conversation.
     */
    welcome?: string;
    /**
     * Opening hours, in `timezone`.
     */
    hours?: import('./format.js').Hours[];
    /**
     * IANA zone of the hours.
     */
    timezone?: string;
    /**
     * Expected reply time.
     */
    reply_minutes?: number;
    /**
     * Longest message, in characters (code points).
     */
    message_chars_max: number;
    /**
     * Longest message, in bytes of UTF-8.
     */
    message_bytes_max: number;
    /**
     * Largest file, in bytes.
     */
    attachment_bytes_max: number;
    /**
     * Types of files the server takes (as found in their content).
     */
    attachment_types: string[];
};
export type Person = {
    id: string;
    name: string;
    avatar_url?: string | null;
};
/** A complete chat widget for one conversation. */
export declare class ChatElement extends HTMLElement {
    badge: import("./components.js").ConnectionStatusElement;
    offline: import("./components.js").OfflineBannerElement;
    pending: import("./components.js").PendingBannerElement;
    heading: HTMLElement;
    /** Opening hours and reply time (`GET /v1/widget`). */
    info: HTMLElement;
    /** The messages: a list, scrollable and focusable (arrow keys move between messages). */
    list: HTMLElement;
    /** What an empty conversation shows: an invitation, not a blank panel. */
    welcome: HTMLElement;
    hint: HTMLElement;
    empty: HTMLElement;
    /** Shown when messages arrive while the reader is scrolled up. */
    pill: HTMLElement;
    /** The reader is at the end of the list (kept while pictures load and make it taller). */
    pinned: boolean;
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
    /** Polite: where the user's latest message got to (sent, delivered, read), once per change. */
    announcer: HTMLElement;
    /** Assertive: a message that could not be sent. */
    alarm: HTMLElement;
    error: HTMLElement;
    input: HTMLTextAreaElement;
    sendButton: HTMLElement;
    counter: HTMLElement;
    /** The full-size view of photos. */
    viewer: ImageViewer;
    /** Files chosen for the next message. */
    pendingFiles: PendingFiles;
    attachButton: HTMLElement;
    picker: HTMLInputElement;
    /** Shown while files are dragged over the chat. */
    dropzone: HTMLElement;
    form: HTMLElement;
    /** @type {{ kind?: 'note' }} `{ kind: 'note' }`: the composer writes notes. */
    sendOptions: {
        kind?: 'note';
    };
    /** A system entry's text: in the reader's language from its data, the stored (English) text for changes it does not know. @type {(m: import('./types.js').ChatMessage) => string} */
    systemText: (m: import('./types.js').ChatMessage) => string;
    /** Operators of the conversation by id, from the server's directory. @type {Map<string, Person>} */
    people: Map<string, Person>;
    /** The name shown for another participant, by user id (messages, typing): the directory's name, or what the app says. @type {(userId: string) => string} */
    userName: (userId: string) => string;
    /** @type {WidgetSettings} */
    settings: WidgetSettings;
    log: HTMLElement;
    /** @type {Map<string, HTMLElement>} */
    rows: Map<string, HTMLElement>;
    /** Day separators by day number. @type {Map<number, HTMLElement>} */
    days: Map<number, HTMLElement>;
    /** @type {SurechatClient | null} */
    _client: SurechatClient | null;
    /** @type {(() => void)[]} */
    unlisten: (() => void)[];
    typingSince: number;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    typingStop: ReturnType<typeof setTimeout> | undefined;
    /** The user's latest own message and its status, to announce each change once. */
    latest: {
        id: string;
        status: string;
    };
    locale: string;
    t: (key: string, vars?: Record<string, string | number>) => string;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    clock: ReturnType<typeof setInterval> | undefined;
    /** The `dir` attribute was set here (from the language), not by the page. */
    autoDir: boolean;
    static get observedAttributes(): string[];
    constructor();
    /** What the attachment views need from the chat. @returns {import('./attachments-view.js').ChatContext} */
    context(): import('./attachments-view.js').ChatContext;
    /**
     * Checks and adds files to the next message; says why any was refused (before any upload).
     * @param {Blob[]} files
     */
    attach(files: Blob[]): Promise<void>;
    /** The composer's files changed: focus stays in the composer when a removed file had it. */
    filesChanged(): void;
    /** Files dragged over the chat are shown a place to drop, and attached when dropped. */
    dropTargets(): void;
    /** Whether the main pointer is a finger (Enter inserts a line then). */
    touch(): boolean;
    /** Sets every fixed text in the current language (again when the language changed). */
    localize(): boolean;
    /** The catalog of this element's language arrived: every text again, in it. */
    relocalize(): void;
    /** @param {string} name */
    attributeChangedCallback(name: string): void;
    /** The parts in shadow roots of their own follow the element's `theme`. */
    theme(): void;
    /** The conversation shown. */
    get conversation(): string;
    set conversation(id: string);
    /** Drops every row (another conversation, or rows to build again). */
    forget(): void;
    /** The client used; created from the `token` and `server` attributes when not set. */
    get client(): SurechatClient | null;
    set client(client: SurechatClient | null);
    /** The HTTP API's base, beside the client's WebSocket endpoint. */
    api(): string;
    /**
     * An authenticated GET of the API: the JSON, or null (404, offline, anything else).
     * @param {string} path
     */
    get(path: string): Promise<any>;
    /** Reads the widget's settings (welcome, hours, reply time, limits); none (404) keeps the defaults. */
    loadSettings(): Promise<void>;
    /** Reads the names and avatars of the conversation's operators; rows follow. */
    loadPeople(): Promise<void>;
    connectedCallback(): void;
    disconnectedCallback(): void;
    onVisible: () => void;
    /** Whether the reader is at (or near) the end of the list. */
    atBottom(): boolean;
    /** Sends "read" up to the last message on screen, while the page is visible. */
    markSeen(): void;
    /**
     * Arrow keys in the list move between messages (each then shows its full date and time).
     * @param {KeyboardEvent} e
     */
    navigate(e: KeyboardEvent): void;
    /** Shows the character counter near the limit, in characters (code points). */
    count(): void;
    /** Grows the composer with its text where CSS cannot (`field-sizing`), up to its max height. */
    grow(): void;
    /** Sends what is typed, unless it is over the limits (then says so, in characters). */
    submit(): Promise<void>;
    typed(): void;
    stopTyping(): void;
    /**
     * A system entry in the reader's language, built from its data (`event`, names and statuses);
     * the server's English text when the change is not one this version knows.
     * @param {import('./types.js').ChatMessage} m
     */
    describe(m: import('./types.js').ChatMessage): string;
    /** Builds every row again (after `systemText`, `userName` or the language changed). */
    rerender(): void;
    /**
     * A failure's reason in plain words, in the reader's language.
     * @param {{ code: string }} status
     */
    reason(status: {
        code: string;
    }): string;
    /** The opening hours and reply time line. */
    infoText(): string;
    /** Brings the list up to date, reusing rows by message id. */
    render(): void;
    /**
     * Says (politely, once per change) where the user's latest message got to.
     * @param {import('./types.js').ChatMessage | null} m
     */
    announce(m: import('./types.js').ChatMessage | null): void;
    /**
     * The avatar of a participant: the directory's picture, else initials on a colour.
     * @param {string} id
     */
    avatar(id: string): HTMLElement;
    /**
     * A message's text as nodes: web addresses become links (http/https only), built as
     * elements; everything else stays text, never HTML.
     * @param {string} text
     */
    static textNodes(text: string): (HTMLElement | Text)[];
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
    /**
     * A message's files: drawn from the server's copy once it is stored (the device's until then),
     * and the upload's progress while it is on its way.
     * @param {HTMLElement} row
     * @param {import('./types.js').ChatMessage} m
     */
    updateFiles(row: HTMLElement, m: import('./types.js').ChatMessage): void;
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
    failure(row: HTMLElement, m: import('./types.js').ChatMessage, reason: string, canRetry: boolean): HTMLElement;
}
