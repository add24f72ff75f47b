import { Conversation } from './conversation.js';
import { Outbox } from './outbox.js';
import { Jitter } from './types.js';
export type ConnectionStatus = import('./types.js').ConnectionStatus;
export type ChatMessage = import('./types.js').ChatMessage;
export type ClientFrame = import('./types.js').ClientFrame;
export type ServerFrame = import('./types.js').ServerFrame;
/**
 * Whether a failed message may succeed if sent again unchanged: only when the app's own deadline
 * failed it (the server never refused it). A permanent refusal by the server (too large,
 * forbidden, conversation closed, invalid) never can, so a UI offers "Edit" and "Delete" for it,
 * never "Retry". The one place this rule lives (the Rust SDK: `DeliveryStatus::Failed` with the
 * same codes).
 * @param {import('./types.js').DeliveryStatus | null | undefined} status
 */
export declare function retryable(status: import('./types.js').DeliveryStatus | null | undefined): boolean;
/** A device's session. */
export declare class Session {
    config: {
        backoffFirstMs: number;
        backoffBaseMs: number;
        backoffCapMs: number;
        connectTimeoutMs: number;
        heartbeatTimeoutMs: number;
        sendWindow: number;
        seed: number;
    };
    token: string;
    jitter: Jitter;
    /** @type {ConnectionStatus} */
    connection: ConnectionStatus;
    /** @type {'idle' | 'opening' | 'greeting' | 'ready'} */
    transport: 'idle' | 'opening' | 'greeting' | 'ready';
    /** The app wants to be connected (between connect and disconnect). */
    wanted: boolean;
    networkUp: boolean;
    /** Reconnect attempts since the last welcome. */
    attempt: number;
    /** Identifies the current transport attempt. */
    attemptId: number;
    /** @type {number | null} */ nextAttemptAt: number | null;
    /** @type {number | null} */ connectDeadline: number | null;
    /** @type {number | null} */ heartbeatDeadline: number | null;
    /** When the last welcomed connection was lost (reported in the next hello). @type {number | null} */
    lostAt: number | null;
    /** The token said in the last hello. @type {string | null} */
    helloToken: string | null;
    /** The server refused the token: nothing is tried until `setToken`. */
    expired: boolean;
    heartbeatTimeout: number;
    /** @type {string | null} */
    user: string | null;
    /** The operator's presence switch, if set. @type {string | null} */
    presence: string | null;
    /** @type {Map<string, Conversation>} */
    conversations: Map<string, Conversation>;
    outbox: Outbox;
    /** @type {import('./types.js').Action[]} */ actions: import('./types.js').Action[];
    /** @type {import('./types.js').SessionEvent[]} */ events: import('./types.js').SessionEvent[];
    /** @type {ClientFrame[]} */ transmits: ClientFrame[];
    /** Cursors before the events not yet stored. @type {Map<string, number>} */
    unconfirmed: Map<string, number>;
    /** Stored cursors, where storing failed: receipts stop there. @type {Map<string, number>} */
    unstored: Map<string, number>;
    /** @type {number | null} */ storeRetryAt: number | null;
    storeAttempts: number;
    /**
     * A session that continues from a snapshot (or starts empty): pending messages are resent in
     * order on the next connection, cursors resume where they were.
     * @param {Partial<import('./types.js').Config>} config
     * @param {string} token
     * @param {import('./types.js').Snapshot} [snapshot]
     */
    constructor(config: Partial<import('./types.js').Config>, token: string, snapshot?: import('./types.js').Snapshot);
    /** The connection status. @returns {ConnectionStatus} */
    status(): ConnectionStatus;
    /** Messages in the outbox that are not yet durable on the server (failed ones included). */
    pendingCount(): number;
    /** Messages in the outbox that failed for good. */
    failedCount(): number;
    /** Messages still on their way: in the outbox and not failed (what a "waiting" banner counts). */
    waitingCount(): number;
    /** The user, once known from welcome (or the snapshot). */
    userId(): string | null;
    /** Conversation ids known to the device. */
    conversationIds(): string[];
    /** @param {string} conversation @returns {number} a conversation's contiguous cursor */
    cursor(conversation: string): number;
    /**
     * A conversation's messages: those held, by seq, then the outbox's, in creation order.
     * @param {string} conversation
     * @returns {ChatMessage[]}
     */
    messages(conversation: string): ChatMessage[];
    /**
     * The status of one of the user's messages.
     * @param {string} id
     * @returns {import('./types.js').DeliveryStatus | undefined}
     */
    deliveryStatus(id: string): import('./types.js').DeliveryStatus | undefined;
    /**
     * Messages whose files the driver is to upload (then `uploadsDone`, or `uploadFailed`), in
     * creation order: new ones, restored ones (whether their uploads finished is asked again), and
     * those the server answered `attachment_pending`.
     * @returns {{ id: string, conversation: string, attachments: import('./types.js').AttachmentDraft[] }[]}
     */
    uploadsWanted(): {
        id: string;
        conversation: string;
        attachments: import('./types.js').AttachmentDraft[];
    }[];
    /** Starts connecting (and keeps reconnecting until disconnect). @param {number} now */
    connect(now: number): void;
    /** Closes the connection and stops reconnecting. The outbox is kept. @param {number} now */
    disconnect(now: number): void;
    /**
     * Queues a message (the driver has already persisted it under `id`). Returns the id.
     * @param {number} now
     * @param {string} id A fresh lowercase UUID: the idempotency key.
     * @param {string} conversation
     * @param {string} body
     * @param {number | null} [deadline] Fail it if not stored by then.
     * @param {string | null} [kind] `note`: a private note between operators.
     * @param {import('./types.js').AttachmentDraft[]} [attachments] Files (the driver has stored
     *   their bytes): the message waits, and the conversation's later messages behind it, until
     *   the driver says they are uploaded (`uploadsDone`).
     */
    send(now: number, id: string, conversation: string, body: string, deadline?: number | null, kind?: string | null, attachments?: import('./types.js').AttachmentDraft[]): string;
    /**
     * Takes over a closed tab's pending messages.
     * @param {number} now
     * @param {import('./types.js').PendingMessage[]} pending
     */
    adoptPending(now: number, pending: import('./types.js').PendingMessage[]): void;
    /**
     * Queues failed messages again, with their ids (every one, or only `id`). Returns how many.
     * @param {number} now
     * @param {string} [id]
     */
    retryFailed(now: number, id?: string): number;
    /**
     * Every file of message `id` is uploaded and complete on the server: it may be sent, in its
     * turn.
     * @param {number} now
     * @param {string} id
     */
    uploadsDone(now: number, id: string): void;
    /**
     * A file of message `id` was refused for good (`unsupported_type`, `attachment_too_large`,
     * `attachment_not_found`, …): the message fails with that reason, like a refused text.
     * @param {number} now
     * @param {string} id
     * @param {string} code
     * @param {string} message
     */
    uploadFailed(now: number, id: string, code: string, message: string): void;
    /**
     * Drops a failed message from the outbox (the user edits it and sends the new text as a new
     * message, with a new id). Only a failed message can be discarded: any other may already be
     * stored. Returns whether it was.
     * @param {number} _now
     * @param {string} id
     */
    discard(_now: number, id: string): boolean;
    /**
     * Marks what is held in `conversation` as read: everything, or up to `upTo` (the last message
     * the reader saw). Never moves back.
     * @param {number} now
     * @param {string} conversation
     * @param {number} [upTo]
     */
    markRead(now: number, conversation: string, upTo?: number): void;
    /**
     * Sends a typing signal if connected (ephemeral: never queued).
     * @param {number} _now
     * @param {string} conversation
     * @param {boolean} active
     */
    setTyping(_now: number, conversation: string, active: boolean): void;
    /** An operator's `available` / `away`, sent now and after each welcome. @param {number} _now @param {string} status */
    setPresence(_now: number, status: string): void;
    /** Replaces the token; if the session was waiting for one, reconnects at once. @param {number} now @param {string} token */
    setToken(now: number, token: string): void;
    /**
     * Tries now instead of at the end of the backoff (the page became visible, the user pressed
     * "reconnect"). Does nothing while connected or offline.
     * @param {number} now
     */
    reconnectNow(now: number): void;
    /** The transport of attempt `attempt` is open: say hello with the cursors. @param {number} now @param {number} attempt */
    handleOpen(now: number, attempt: number): void;
    /**
     * The transport of attempt `attempt` closed (or failed to open), with the close code if one
     * was received.
     * @param {number} now
     * @param {number} attempt
     * @param {number | null} code
     */
    handleClose(now: number, attempt: number, code: number | null): void;
    /** A frame from the server. @param {number} now @param {ServerFrame} frame */
    handleFrame(now: number, frame: ServerFrame): void;
    /** Storing the events just polled failed (see the Rust SDK). @param {number} now */
    handleStoreFailure(now: number): void;
    /** Time passed: reconnect attempts, dead connections, deadlines and resend delays. @param {number} now */
    handleTimeout(now: number): void;
    /** The device's network went down or came back. @param {number} now @param {boolean} up */
    handleNetwork(now: number, up: boolean): void;
    /** The next thing to do with the transport. */
    pollAction(): import("./types.js").Action | undefined;
    /** The next event for the app (and for persistence). */
    pollEvent(): import("./types.js").SessionEvent | undefined;
    /** The next frame to write (the events are stored by now). */
    pollTransmit(): import("./types.js").ClientFrame | undefined;
    /** When handleTimeout must be called next. @returns {number | null} */
    pollTimeout(): number | null;
    /** @param {string} id */
    conversation(id: string): Conversation;
    /** @param {string} id */
    received(id: string): Conversation;
    /** @param {ConnectionStatus} status */
    setStatus(status: ConnectionStatus): void;
    /** @param {number} now */
    open(now: number): void;
    /**
     * Forgets the transport: frames not yet written are dropped, messages in flight go back to
     * the queue (they are resent with the same ids). `tellDriver` asks the driver to close it.
     * @param {number} now
     * @param {boolean} tellDriver
     */
    dropTransport(now: number, tellDriver: boolean): void;
    /** @param {number} now */
    scheduleReconnect(now: number): void;
    /**
     * @param {import('./types.js').ConversationState} state
     * @param {string | null} me
     */
    adopt(state: import('./types.js').ConversationState, me: string | null): void;
    /**
     * @param {number} now
     * @param {Extract<ServerFrame, { type: 'welcome' }>} welcome
     */
    welcome(now: number, welcome: Extract<ServerFrame, {
        type: 'welcome';
    }>): void;
    /**
     * @param {number} now
     * @param {Extract<ServerFrame, { type: 'error' }>} error
     */
    error(now: number, error: Extract<ServerFrame, {
        type: 'error';
    }>): void;
    /**
     * Writes what can be written now: the outbox (window, go-back-N per conversation) and
     * receipts.
     * @param {number} now
     */
    flush(now: number): void;
}
