import { AttachmentLinks } from './links.js';
import { Session } from './session.js';
import { MemoryStore, Store } from './store.js';
import { Uploader } from './uploads.js';
export type ClientOptions = {
    /**
     * The user's token (JWT from your backend or `POST /v1/tokens`).
     */
    token?: string;
    /**
     * Returns a fresh token: called shortly before the
     * current one expires and when the server refuses it. Without it (or when it fails), the
     * connection waits in the `expired` status, the outbox kept, and `auth_expired` is dispatched;
     * `setToken` (or `refreshToken` once `getToken` works) continues.
     */
    getToken?: () => Promise<string>;
    /**
     * Base URL of the surechat server; default: this page's origin.
     */
    server?: string;
    /**
     * Keep outbox and history in IndexedDB (default true).
     */
    persist?: boolean;
    /**
     * Session tunables.
     */
    config?: Partial<import('./types.js').Config>;
};
/**
 * When a token expires (its `exp`, in ms), read without checking the signature — only to refresh
 * it in time.
 * @param {string} token
 * @returns {number | null}
 */
export declare function tokenExpiry(token: string): number | null;
/**
 * The user id a token names (its `sub`), read without checking the signature — only to pick
 * the local database before the server has said who we are.
 * @param {string} token
 * @returns {string | null}
 */
export declare function tokenSubject(token: string): string | null;
/**
 * A lowercase time-ordered UUID (v7: 48 bits of milliseconds, then random bits), so the server's
 * unique index of ids grows at its end instead of taking each id at a random place. Ids made in
 * one millisecond are ordered by a counter in the random part. Needs only
 * `crypto.getRandomValues` (also on plain http, where `crypto.randomUUID` is missing).
 */
export declare function newId(): string;
/**
 * A file's name as the server takes it: no control characters, 1–255 bytes of UTF-8 (cut at a
 * character, never inside one).
 * @param {string} name
 */
export declare function uploadName(name: string): string;
/**
 * A connected chat device. Events (`addEventListener` or `on`), each a CustomEvent whose
 * `detail` is the session event: `connection_status`, `delivery_status`, `message`, `typing`,
 * `presence`, `receipt`, `synced`, `token_expired` (the server refused the token),
 * `auth_expired` (no fresh token could be had: the app must sign the user in again and call
 * `setToken`), `upload_progress` (`{ conversation, id, bytes, length }`: a message's files on
 * their way), `error`, and `change` after any of them.
 */
export declare class SurechatClient extends EventTarget {
    options: ClientOptions;
    token: string;
    /** WebSocket endpoint. */
    url: string;
    /** This tab's id: owner of the messages it creates. */
    tab: string;
    session: Session;
    /** @type {Store | MemoryStore} */
    store: Store | MemoryStore;
    /** @type {WebSocket | null} */
    ws: WebSocket | null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    timer: ReturnType<typeof setTimeout> | undefined;
    pumping: boolean;
    again: boolean;
    /** conversation → user → expiry time of their typing signal. @type {Map<string, Map<string, number>>} */
    typers: Map<string, Map<string, number>>;
    /** @type {(() => void)[]} */
    cleanup: (() => void)[];
    /** Resolves once started. @type {Promise<void> | null} */
    ready: Promise<void> | null;
    /** Components using this client (the React hook stops its own client when none is left). */
    holders: number;
    /** The session was rebuilt from storage. */
    restored: boolean;
    /** Name of the local database, locks and channel. */
    name: string;
    /** Tabs watched, to adopt their messages. @type {Set<string>} */
    watched: Set<string>;
    /** @type {import('./types.js').SessionEvent[]} */
    unsaved: import('./types.js').SessionEvent[];
    /** The refresh scheduled before the token expires. @type {ReturnType<typeof setTimeout> | undefined} */
    refreshTimer: ReturnType<typeof setTimeout> | undefined;
    /** A `getToken` call in flight. @type {Promise<void> | null} */
    refreshing: Promise<void> | null;
    /** Waits to end early when the network comes back or the token changes. @type {Set<() => void>} */
    wakers: Set<() => void>;
    /** The HTTP API's base. */
    base: string;
    uploader: Uploader;
    /** Signed links to attachments, cached. */
    links: AttachmentLinks;
    /** The message whose files are being uploaded (one at a time, in outbox order). @type {string | null} */
    uploading: string | null;
    /** Stops uploads when the client stops. */
    uploadsStopped: AbortController;
    /** How far each message's files are. @type {Map<string, import('./types.js').UploadProgress>} */
    progress: Map<string, import('./types.js').UploadProgress>;
    /** @param {ClientOptions} options */
    constructor(options: ClientOptions);
    /**
     * Replaces the token (the user signed in again): an `expired` connection continues at once,
     * and the outbox is sent.
     * @param {string} token
     */
    setToken(token: string): void;
    /**
     * Asks `getToken` for a fresh token and continues with it; dispatches `auth_expired` when there
     * is no `getToken` or it fails. Calls while one is in flight share it.
     * @returns {Promise<void>}
     */
    refreshToken(): Promise<void>;
    /** With `getToken`, refreshes the token shortly before it expires. */
    scheduleRefresh(): void;
    /** Opens local storage, restores where the last page stopped, and connects. */
    start(): Promise<void>;
    begin(): Promise<void>;
    /** Restores the session, adopting the pending messages of closed tabs; watches open ones. */
    adopt(): Promise<void>;
    /** Adopts `tab`'s pending messages once it closes (its lock is free). @param {string} tab */
    watch(tab: string): void;
    /** Wires the browser's signals to the session. */
    listen(): void;
    /** Closes the connection and stops reconnecting; the outbox stays in storage. */
    stop(): void;
    /**
     * Sends a message: stored in the outbox first (with its files' bytes, in the same
     * transaction), then shown as sending, then sent (again, after any outage, with the same id)
     * until the server stores it or refuses it for good. With `files`, each is uploaded first
     * (resumably, `upload_progress` events tell how far), and the message goes once all are
     * complete — the conversation's later messages wait behind it, so the order is kept. With
     * files the body may be empty.
     * @param {string} conversation
     * @param {string} body
     * @param {{ kind?: 'note', files?: Blob[] }} [options] `kind: 'note'`: a private note;
     *   `files`: up to 10 `File`s or `Blob`s (photos, PDFs). The widget checks size and type
     *   before; the server decides, and a refusal fails the message with its reason.
     * @returns {Promise<string>} the message id
     */
    send(conversation: string, body: string, options?: {
        kind?: 'note';
        files?: Blob[];
    }): Promise<string>;
    /**
     * Signed links to an attachment of a received message, for `<img src>` (`thumb_url`) and
     * downloads (`url`): cached, and asked for again shortly before they expire.
     * @param {string} attachmentId
     * @returns {Promise<import('./links.js').AttachmentLink>}
     */
    attachmentLink(attachmentId: string): Promise<import('./links.js').AttachmentLink>;
    /**
     * How far the files of pending message `id` are uploaded, if they are on their way.
     * @param {string} id
     * @returns {import('./types.js').UploadProgress | undefined}
     */
    uploadProgress(id: string): import('./types.js').UploadProgress | undefined;
    /**
     * The bytes of a pending message's files (to show a photo before it is uploaded).
     * @param {string} id
     * @returns {Promise<{ id: string, name: string, type: string, size: number, blob: Blob }[]>}
     */
    pendingFiles(id: string): Promise<{
        id: string;
        name: string;
        type: string;
        size: number;
        blob: Blob;
    }[]>;
    /** Sends failed messages again with their ids (every one, or only `id`). @param {string} [id] */
    retryFailed(id?: string): void;
    /** Drops a failed message (e.g. to send an edited text as a new message). @param {string} id */
    discard(id: string): void;
    /**
     * Marks what was received in `conversation` as read: everything, or up to `upTo` (the `seq` of
     * the last message the reader saw).
     * @param {string} conversation
     * @param {number} [upTo]
     */
    markRead(conversation: string, upTo?: number): void;
    /** Tells the others that the user types (renew every few seconds while it lasts). @param {string} conversation @param {boolean} active */
    setTyping(conversation: string, active: boolean): void;
    /** An operator's `available` or `away`. @param {string} status */
    setPresence(status: string): void;
    /** Tries to connect now (e.g. a "reconnect" button), also after the session gave up. */
    reconnect(): void;
    /** @returns {import('./types.js').ConnectionStatus} */
    get status(): import('./types.js').ConnectionStatus;
    /** Messages not yet stored on the server (failed ones included). */
    get pendingCount(): number;
    /** Messages still on their way (in the outbox, not failed): what is "waiting to be sent". */
    get waitingCount(): number;
    /** The user, once known. */
    get userId(): string | null;
    /** @param {string} conversation */
    messages(conversation: string): import("./types.js").ChatMessage[];
    /** @param {string} id */
    deliveryStatus(id: string): import("./types.js").DeliveryStatus | undefined;
    /** Users typing in `conversation` now. @param {string} conversation @returns {string[]} */
    typing(conversation: string): string[];
    /**
     * Listens to an event; returns a function that stops listening.
     * @param {string} type
     * @param {(detail: any) => void} fn
     */
    on(type: string, fn: (detail: any) => void): () => void;
    /** Hands one input to the session, then drains its outputs. @param {(now: number) => void} fn */
    input(fn: (now: number) => void): void;
    pump(): void;
    /** Actions, then events (persisted, then told), then frames, then the timer. */
    drain(): Promise<void>;
    /** Starts uploading the files of the first message that waits for them, if none is on its way. */
    kickUploads(): void;
    /**
     * Uploads a message's files one after the other, then tells the session it may go; a
     * permanent refusal fails the message with the server's reason.
     * @param {{ id: string, conversation: string, attachments: import('./types.js').AttachmentDraft[] }} message
     */
    uploadMessage(message: {
        id: string;
        conversation: string;
        attachments: import('./types.js').AttachmentDraft[];
    }): Promise<void>;
    /** @param {import('./types.js').UploadProgress} progress */
    reportProgress(progress: import('./types.js').UploadProgress): void;
    /**
     * Waits `ms`, less when the network comes back or the token changes (something worth trying
     * again at once).
     * @param {number} ms
     * @param {AbortSignal} [signal]
     * @returns {Promise<void>}
     */
    sleep(ms: number, signal?: AbortSignal): Promise<void>;
    /**
     * Resolves once the device has a network (at once when it has one).
     * @param {AbortSignal} [signal]
     * @returns {Promise<void>}
     */
    online(signal?: AbortSignal): Promise<void>;
    /** Ends every wait of the uploads. */
    wake(): void;
    /** Tells the app that local storage failed. @param {unknown} error */
    storageFailed(error: unknown): void;
    /** @param {import('./types.js').Action} action */
    act(action: import('./types.js').Action): void;
    /** Tells the app about one event. @param {import('./types.js').SessionEvent} e */
    tell(e: import('./types.js').SessionEvent): void;
}
