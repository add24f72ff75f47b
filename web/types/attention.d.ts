export type AttentionOptions = {
    /**
     * Play a short tone for each new message while the page is not
     * looked at (default false: a widget on someone else's page stays quiet).
     */
    sound?: boolean;
    /**
     * Show a desktop notification while the page is hidden, once the
     * user allowed it (default true).
     */
    notify?: boolean;
    /**
     * Which messages
     * count (default: every message from someone else that is not a system entry).
     */
    counts?: (message: import('./types.js').ChatMessage) => boolean;
    /**
     * A notification's title and text (default: the page's title and the message's text).
     */
    describe?: (message: import('./types.js').ChatMessage) => {
        title: string;
        body: string;
    };
    /**
     * The document to decorate (default: this page's).
     */
    document?: Document;
};
/** Attention for one client's messages on one page. */
export declare class Attention extends EventTarget {
    client: import("./client.js").SurechatClient;
    doc: Document;
    sound: boolean;
    notify: boolean;
    counts: (message: import('./types.js').ChatMessage) => boolean;
    describe: (message: import('./types.js').ChatMessage) => {
        title: string;
        body: string;
    };
    /** New messages since the page was last looked at. */
    unread: number;
    baseTitle: string;
    /** @type {AudioContext | null} */
    audio: AudioContext | null;
    /** @type {HTMLLinkElement} */
    icon: HTMLLinkElement;
    stop: () => void;
    seen: () => void;
    /** @type {Set<string>} */
    live: Set<string>;
    stopSynced: () => void;
    /**
     * @param {import('./client.js').SurechatClient} client
     * @param {AttentionOptions} [options]
     */
    constructor(client: import('./client.js').SurechatClient, options?: AttentionOptions);
    /** Whether the person is looking at the page now. */
    looking(): boolean;
    /** @param {import('./types.js').ChatMessage} message */
    arrived(message: import('./types.js').ChatMessage): void;
    /**
     * Something new that is not a message of a followed conversation (a console's new
     * conversation, say): counted, with the tone and a notification like a message, unless the
     * person is looking.
     * @param {{ conversation: string, title: string, body: string }} news
     */
    alert({ conversation, title, body }: {
        conversation: string;
        title: string;
        body: string;
    }): void;
    /** The title and the icon say how many new messages there are. */
    show(): void;
    /** The person looked: nothing is new any more. */
    reset(): void;
    /** A short, quiet two-note tone (Web Audio; nothing to download). */
    chime(): void;
    /**
     * Asks for permission to show notifications. Call it from a click (browsers refuse, or hold
     * against the site, a prompt that comes on its own). Resolves to the permission.
     * @returns {Promise<NotificationPermission | 'unsupported'>}
     */
    enableNotifications(): Promise<NotificationPermission | 'unsupported'>;
    /** Stops listening and restores the title and icon. */
    close(): void;
}
