export type Entry = {
    id: string;
    conversation: string;
    body: string;
    /**
     * Fails if not stored by then.
     */
    deadline: number | null;
    state: 'queued' | 'in_flight' | 'failed';
    /**
     * Set when `failed`.
     */
    failure: {
        code: string;
        message: string;
    } | null;
    /**
     * Transient refusals so far, for the resend backoff.
     */
    attempts: number;
    /**
     * Not to be resent before this time.
     */
    notBefore: number | null;
    /**
     * `note` or null.
     */
    kind: string | null;
    /**
     * Files the message carries, in
     * order (their upload ids are named in the `send`).
     */
    attachments: import('./types.js').AttachmentDraft[];
    /**
     * Every attachment is uploaded and complete on the server: until
     * then the message (and every later one of its conversation) waits.
     */
    uploaded: boolean;
};
/**
 * @typedef {object} Entry
 * @property {string} id
 * @property {string} conversation
 * @property {string} body
 * @property {number | null} deadline Fails if not stored by then.
 * @property {'queued' | 'in_flight' | 'failed'} state
 * @property {{ code: string, message: string } | null} failure Set when `failed`.
 * @property {number} attempts Transient refusals so far, for the resend backoff.
 * @property {number | null} notBefore Not to be resent before this time.
 * @property {string | null} kind `note` or null.
 * @property {import('./types.js').AttachmentDraft[]} attachments Files the message carries, in
 *   order (their upload ids are named in the `send`).
 * @property {boolean} uploaded Every attachment is uploaded and complete on the server: until
 *   then the message (and every later one of its conversation) waits.
 */
/**
 * @param {Entry} entry
 * @returns {import('./types.js').DeliveryStatus}
 */
export declare function entryStatus(entry: Entry): import('./types.js').DeliveryStatus;
/** The outbox of one session. */
export declare class Outbox {
    /** @type {Entry[]} */
    entries: Entry[];
    constructor();
    /**
     * Queues a new message (a repeat of a known id is ignored).
     * @param {string} id
     * @param {string} conversation
     * @param {string} body
     * @param {number | null} deadline
     * @param {string | null} [kind]
     * @param {import('./types.js').AttachmentDraft[]} [attachments]
     */
    push(id: string, conversation: string, body: string, deadline: number | null, kind?: string | null, attachments?: import('./types.js').AttachmentDraft[]): void;
    /** @param {import('./types.js').PendingMessage} pending */
    restore(pending: import('./types.js').PendingMessage): void;
    get length(): number;
    failedCount(): number;
    /** @param {string} id */
    get(id: string): Entry | undefined;
    /**
     * Removes a message that is now durable on the server (or discarded by the user).
     * @param {string} id
     */
    take(id: string): Entry | undefined;
    /**
     * Queues failed messages again, with their ids (all, or only `id`).
     * @param {string} [id]
     * @returns {Entry[]} the messages retried
     */
    retryFailed(id?: string): Entry[];
    /**
     * Messages whose files are still to be uploaded, in creation order (failed ones aside).
     * @returns {Entry[]}
     */
    uploadsWanted(): Entry[];
    /**
     * Marks a message failed for good.
     * @param {string} id
     * @param {string} code
     * @param {string} message
     */
    fail(id: string, code: string, message: string): Entry;
    /**
     * Whether an earlier message of the same conversation is still pending (not failed).
     * @param {string} id
     */
    behindAnother(id: string): boolean;
    /**
     * A transient refusal: queue again, not before `at`.
     * @param {string} id
     * @param {number | null} at
     */
    retryLater(id: string, at: number | null): void;
    /** The connection is gone: what was in flight is queued again (same ids). */
    requeueInFlight(): void;
    /**
     * Fails queued messages whose deadline has passed.
     * @param {number} now
     * @returns {Entry[]}
     */
    expire(now: number): Entry[];
    /** @returns {number | null} */
    nextDeadline(): number | null;
    /**
     * Per conversation, the live messages from the first queued one on — unless one of them is
     * in flight: its answer (an `out_of_order` refusal) must come back first (go-back-N).
     * Failed messages hold no one up.
     * @returns {Entry[][]}
     */
    runs(): Entry[][];
    /**
     * When the next resend may go: the first queued message's `notBefore` of each run. A time
     * that has already passed is never returned for a message that cannot go, so a driver does
     * not spin.
     * @returns {number | null}
     */
    nextResend(): number | null;
    /**
     * Picks what to send now and marks it in flight: each run in creation order, stopping at the
     * first message that must wait — for its resend time, its deadline, the window, or its files.
     * This is the one place where a conversation's order is kept: a message whose uploads are not
     * complete holds up every later message of its conversation, text or not.
     * @param {number} now
     * @param {number} window
     * @returns {Entry[]}
     */
    sendable(now: number, window: number): Entry[];
}
/**
 * The smallest of some optional times.
 * @param {(number | null | undefined)[]} values
 * @returns {number | null}
 */
export declare function min(values: (number | null | undefined)[]): number | null;
