export type Role = 'client' | 'operator';
export type ConnectionStatus = {
    name: 'connecting' | 'connected' | 'offline' | 'disconnected';
} | {
    name: 'reconnecting';
    nextAttemptAt: number;
} | {
    name: 'expired';
};
export type DeliveryStatus = {
    name: 'sending';
} | {
    name: 'sent';
    seq: number;
} | {
    name: 'delivered';
} | {
    name: 'read';
} | {
    name: 'failed';
    code: string;
    message: string;
};
export type ChatMessage = {
    /**
     * Conversation id.
     */
    conversation: string;
    /**
     * The id chosen by the sending device (lowercase UUID).
     */
    id: string;
    /**
     * Position in the conversation.
     */
    seq: number | null;
    /**
     * Sender's user id.
     */
    sender: string;
    /**
     * Sender's role.
     */
    role: Role;
    /**
     * The text. Render it as text, never as HTML.
     */
    body: string;
    /**
     * Server time of storing, ms since the Unix epoch.
     */
    ts: number | null;
    /**
     * Where the user's own message is.
     */
    status: DeliveryStatus | null;
    /**
     * `note` (private between operators) or `system` (assignment, status).
     */
    kind?: string;
    /**
     * For `system` entries, the change.
     */
    data?: Record<string, unknown>;
    /**
     * Files, in the order shown: as the
     * server describes them once stored, as the device does while the message is in the outbox
     * (`local: true`).
     */
    attachments?: (Attachment | AttachmentDraft)[];
};
export type Attachment = {
    /**
     * The upload id.
     */
    id: string;
    /**
     * The file name as the sender knew it: show it as text, never use it as a path.
     */
    name: string;
    /**
     * The type found in the content (`image/jpeg`, `application/pdf`, …).
     */
    type: string;
    /**
     * Bytes as stored.
     */
    size: number;
    /**
     * Hex SHA-256 of the stored bytes.
     */
    sha256: string;
    /**
     * Images: pixels.
     */
    width?: number;
    /**
     * Images: pixels.
     */
    height?: number;
    /**
     * A thumbnail exists.
     */
    thumb?: boolean;
};
export type AttachmentDraft = {
    /**
     * The upload id (a UUID made on the device).
     */
    id: string;
    /**
     * File name.
     */
    name: string;
    /**
     * The type the device believes (informational; the server decides).
     */
    type: string;
    /**
     * Bytes.
     */
    size: number;
    /**
     * Set in `ChatMessage.attachments`: not on the server yet.
     */
    local?: true;
};
export type UploadProgress = {
    conversation: string;
    id: string;
    bytes: number;
    length: number;
};
export type SessionEvent = {
    type: 'connection_status';
    status: ConnectionStatus;
} | {
    type: 'delivery_status';
    conversation: string;
    id: string;
    status: DeliveryStatus;
} | {
    type: 'message';
    message: ChatMessage;
} | {
    type: 'cursor';
    conversation: string;
    epoch: number;
    seq: number;
} | {
    type: 'synced';
    conversation: string;
    seq: number;
} | {
    type: 'resync';
    conversation: string;
    epoch: number;
} | {
    type: 'receipt';
    conversation: string;
    user_id: string;
    role: Role;
    delivered: number;
    read: number;
} | {
    type: 'typing';
    conversation: string;
    user_id: string;
    active: boolean;
} | {
    type: 'presence';
    conversation: string;
    user_id: string;
    status: string;
} | {
    type: 'discarded';
    conversation: string;
    id: string;
} | {
    type: 'token_expired';
} | {
    type: 'error';
    code: string;
    message: string;
};
export type Action = {
    type: 'connect';
    attempt: number;
} | {
    type: 'disconnect';
};
export type PendingMessage = {
    /**
     * Message id.
     */
    id: string;
    /**
     * Conversation id.
     */
    conversation: string;
    /**
     * Text.
     */
    body: string;
    /**
     * `[code, message]` if it failed for good.
     */
    failed: [string, string] | null;
    /**
     * `note`: a private note.
     */
    kind?: string | null;
    /**
     * Its files (their bytes are kept by the store).
     */
    attachments?: AttachmentDraft[];
};
export type StoredConversation = {
    /**
     * Conversation id.
     */
    id: string;
    /**
     * Epoch of the cursor.
     */
    epoch: number | null;
    /**
     * Contiguous cursor.
     */
    cursor: number;
    /**
     * Messages held, ascending by `seq`, `1..=cursor`.
     */
    messages: ChatMessage[];
};
export type Snapshot = {
    /**
     * The user this device belongs to, if known.
     */
    user_id?: string | null;
    /**
     * Outbox, in creation order.
     */
    outbox?: PendingMessage[];
    /**
     * Conversations with cursors and messages.
     */
    conversations?: StoredConversation[];
};
export type Config = {
    /**
     * Upper bound of the first retry's delay: most outages are a blip.
     */
    backoffFirstMs: number;
    /**
     * Base of the exponential backoff from the second retry on.
     */
    backoffBaseMs: number;
    /**
     * Cap of the backoff.
     */
    backoffCapMs: number;
    /**
     * How long opening a connection and getting `welcome` may take.
     */
    connectTimeoutMs: number;
    /**
     * Silence after which the connection is dead, until `welcome` says.
     */
    heartbeatTimeoutMs: number;
    /**
     * Most messages in flight (sent, not yet answered) at once.
     */
    sendWindow: number;
    /**
     * Seed of the jitter generator (the driver passes real randomness).
     */
    seed: number;
};
/** @typedef {'client' | 'operator'} Role */
/**
 * The connection as a user sees it. `nextAttemptAt` is set for `reconnecting` only.
 * @typedef {{ name: 'connecting' | 'connected' | 'offline' | 'disconnected' }
 *   | { name: 'reconnecting', nextAttemptAt: number }
 *   | { name: 'expired' }} ConnectionStatus
 */
/**
 * Where one of the user's messages is: `sending` (in the outbox) → `sent` (durable on the
 * server, with its `seq`) → `delivered` → `read`; or `failed` with the server's reason.
 * @typedef {{ name: 'sending' }
 *   | { name: 'sent', seq: number }
 *   | { name: 'delivered' }
 *   | { name: 'read' }
 *   | { name: 'failed', code: string, message: string }} DeliveryStatus
 */
/**
 * A message as the app shows it. `seq` and `ts` are null while it is only in the outbox;
 * `status` is null for other people's messages.
 * @typedef {object} ChatMessage
 * @property {string} conversation Conversation id.
 * @property {string} id The id chosen by the sending device (lowercase UUID).
 * @property {number | null} seq Position in the conversation.
 * @property {string} sender Sender's user id.
 * @property {Role} role Sender's role.
 * @property {string} body The text. Render it as text, never as HTML.
 * @property {number | null} ts Server time of storing, ms since the Unix epoch.
 * @property {DeliveryStatus | null} status Where the user's own message is.
 * @property {string} [kind] `note` (private between operators) or `system` (assignment, status).
 * @property {Record<string, unknown>} [data] For `system` entries, the change.
 * @property {(Attachment | AttachmentDraft)[]} [attachments] Files, in the order shown: as the
 *   server describes them once stored, as the device does while the message is in the outbox
 *   (`local: true`).
 */
/**
 * A file of a stored message, as the server describes it (docs/protocol.md, section 14.2).
 * Fetch it with a signed link (`SurechatClient.attachmentLink`).
 * @typedef {object} Attachment
 * @property {string} id The upload id.
 * @property {string} name The file name as the sender knew it: show it as text, never use it as a path.
 * @property {string} type The type found in the content (`image/jpeg`, `application/pdf`, …).
 * @property {number} size Bytes as stored.
 * @property {string} sha256 Hex SHA-256 of the stored bytes.
 * @property {number} [width] Images: pixels.
 * @property {number} [height] Images: pixels.
 * @property {boolean} [thumb] A thumbnail exists.
 */
/**
 * A file of a message still in the outbox: its bytes are in local storage until the message is
 * stored on the server.
 * @typedef {object} AttachmentDraft
 * @property {string} id The upload id (a UUID made on the device).
 * @property {string} name File name.
 * @property {string} type The type the device believes (informational; the server decides).
 * @property {number} size Bytes.
 * @property {true} [local] Set in `ChatMessage.attachments`: not on the server yet.
 */
/**
 * How far a message's files have been uploaded (all its files together).
 * @typedef {{ conversation: string, id: string, bytes: number, length: number }} UploadProgress
 */
/**
 * What the session tells the app (and the driver, which persists some of it).
 * @typedef {{ type: 'connection_status', status: ConnectionStatus }
 *   | { type: 'delivery_status', conversation: string, id: string, status: DeliveryStatus }
 *   | { type: 'message', message: ChatMessage }
 *   | { type: 'cursor', conversation: string, epoch: number, seq: number }
 *   | { type: 'synced', conversation: string, seq: number }
 *   | { type: 'resync', conversation: string, epoch: number }
 *   | { type: 'receipt', conversation: string, user_id: string, role: Role, delivered: number, read: number }
 *   | { type: 'typing', conversation: string, user_id: string, active: boolean }
 *   | { type: 'presence', conversation: string, user_id: string, status: string }
 *   | { type: 'discarded', conversation: string, id: string }
 *   | { type: 'token_expired' }
 *   | { type: 'error', code: string, message: string }} SessionEvent
 */
/**
 * What the driver must do with the transport: open one (and report it with `handleOpen` /
 * `handleClose` under `attempt`), or close the current one (its close is not to be reported).
 * @typedef {{ type: 'connect', attempt: number } | { type: 'disconnect' }} Action
 */
/**
 * A message kept in the outbox across restarts.
 * @typedef {object} PendingMessage
 * @property {string} id Message id.
 * @property {string} conversation Conversation id.
 * @property {string} body Text.
 * @property {[string, string] | null} failed `[code, message]` if it failed for good.
 * @property {string | null} [kind] `note`: a private note.
 * @property {AttachmentDraft[]} [attachments] Its files (their bytes are kept by the store).
 */
/**
 * A conversation kept across restarts.
 * @typedef {object} StoredConversation
 * @property {string} id Conversation id.
 * @property {number | null} epoch Epoch of the cursor.
 * @property {number} cursor Contiguous cursor.
 * @property {ChatMessage[]} messages Messages held, ascending by `seq`, `1..=cursor`.
 */
/**
 * What a driver persisted, to start a session where the last one stopped.
 * @typedef {object} Snapshot
 * @property {string | null} [user_id] The user this device belongs to, if known.
 * @property {PendingMessage[]} [outbox] Outbox, in creation order.
 * @property {StoredConversation[]} [conversations] Conversations with cursors and messages.
 */
/**
 * Tunables of the session, in milliseconds.
 * @typedef {object} Config
 * @property {number} backoffFirstMs Upper bound of the first retry's delay: most outages are a blip.
 * @property {number} backoffBaseMs Base of the exponential backoff from the second retry on.
 * @property {number} backoffCapMs Cap of the backoff.
 * @property {number} connectTimeoutMs How long opening a connection and getting `welcome` may take.
 * @property {number} heartbeatTimeoutMs Silence after which the connection is dead, until `welcome` says.
 * @property {number} sendWindow Most messages in flight (sent, not yet answered) at once.
 * @property {number} seed Seed of the jitter generator (the driver passes real randomness).
 */
/** Defaults, equal to the Rust SDK's `Config::default()`. @type {Readonly<Config>} */
export declare const DEFAULT_CONFIG: Readonly<Config>;
/** Typing signals expire on the receiving device after this long unless renewed (protocol). */
export declare const TYPING_TTL_MS = 10000;
/** Default largest message body in bytes of UTF-8; the server may be configured otherwise. */
export declare const MESSAGE_BYTES_MAX = 16384;
/** Most files one message may carry (protocol `ATTACHMENTS_MAX`). */
export declare const ATTACHMENTS_MAX = 10;
/** Default largest file in bytes (`attachment_bytes_max`; `GET /v1/widget` says the server's). */
export declare const ATTACHMENT_BYTES_MAX = 26214400;
/**
 * The delay before reconnect attempt `attempt` (0 = first retry), given a uniform sample `unit`
 * in [0, 1): full jitter over an exponentially growing, capped window.
 * @param {Config} config
 * @param {number} attempt
 * @param {number} unit
 * @returns {number} milliseconds
 */
export declare function backoff(config: Config, attempt: number, unit: number): number;
/**
 * Progress rank of a delivery status: statuses only ever move to a higher rank (except a manual
 * retry of a failed message, which starts over at `sending`).
 * @param {DeliveryStatus} status
 * @returns {number}
 */
export declare function rank(status: DeliveryStatus): number;
/**
 * A deterministic generator for jitter (xorshift64*, as in the Rust SDK, so one seed gives the
 * same delays in both SDKs): seeded, never global.
 */
export declare class Jitter {
    /** @type {bigint} */
    state: bigint;
    /** @param {number | bigint} seed */
    constructor(seed: number | bigint);
    /** @returns {number} a sample in [0, 1) */
    unit(): number;
}
export type ConversationState = {
    id: string;
    epoch: number;
    last_seq: number;
    participants: {
        user_id: string;
        role: Role;
        delivered: number;
        read: number;
    }[];
    /**
     * `open`, `pending` or `resolved`.
     */
    status?: string;
    /**
     * The operator it is assigned to.
     */
    assignee?: string;
    /**
     * The business's booking data.
     */
    metadata?: Record<string, unknown>;
    /**
     * Closed to new messages.
     */
    closed?: boolean;
};
export type MessageFrame = {
    type: 'message';
    conversation: string;
    id: string;
    seq: number;
    sender: string;
    role: Role;
    body: string;
    ts: number;
    kind?: string;
    data?: Record<string, unknown>;
    attachments?: Attachment[];
};
export type ServerFrame = {
    type: 'welcome';
    v: number;
    user_id: string;
    role: Role;
    connection_id: string;
    heartbeat_ms: number;
    timeout_ms: number;
    conversations: ConversationState[];
} | MessageFrame | {
    type: 'ack';
    id: string;
    conversation: string;
    seq: number;
    ts: number;
} | {
    type: 'synced';
    conversation: string;
    seq: number;
} | {
    type: 'receipt';
    conversation: string;
    user_id: string;
    role: Role;
    delivered: number;
    read: number;
} | {
    type: 'typing';
    conversation: string;
    user_id: string;
    role: Role;
    active: boolean;
} | {
    type: 'joined';
    conversation: ConversationState;
} | {
    type: 'left';
    conversation: string;
} | {
    type: 'resync';
    conversation: string;
    epoch: number;
    last_seq: number;
} | {
    type: 'error';
    ref?: string;
    frame?: string;
    code: string;
    message: string;
    permanent: boolean;
    retry_after_ms?: number;
} | {
    type: 'skip';
    conversation: string;
    seq: number;
} | {
    type: 'presence';
    conversation: string;
    user_id: string;
    status: string;
} | {
    type: 'ping';
    ts: number;
} | {
    type: 'pong';
    ref?: string;
};
export type ClientFrame = {
    type: 'hello';
    v: number;
    token: string;
    cursors: {
        conversation: string;
        seq: number;
        epoch?: number;
    }[];
    offline_ms?: number;
    pending?: number;
} | {
    type: 'send';
    id: string;
    conversation: string;
    body: string;
    kind?: string;
    attachments?: string[];
} | {
    type: 'presence';
    status: string;
} | {
    type: 'receipt';
    ref?: string;
    conversation: string;
    delivered?: number;
    read?: number;
} | {
    type: 'typing';
    conversation: string;
    active: boolean;
} | {
    type: 'ping';
    ref?: string;
} | {
    type: 'pong';
};
/**
 * A conversation's state in `welcome` and `joined`.
 * @typedef {object} ConversationState
 * @property {string} id
 * @property {number} epoch
 * @property {number} last_seq
 * @property {{ user_id: string, role: Role, delivered: number, read: number }[]} participants
 * @property {string} [status] `open`, `pending` or `resolved`.
 * @property {string} [assignee] The operator it is assigned to.
 * @property {Record<string, unknown>} [metadata] The business's booking data.
 * @property {boolean} [closed] Closed to new messages.
 */
/**
 * A stored message as the server sends it.
 * @typedef {{ type: 'message', conversation: string, id: string, seq: number, sender: string,
 *   role: Role, body: string, ts: number, kind?: string, data?: Record<string, unknown>,
 *   attachments?: Attachment[] }} MessageFrame
 */
/**
 * A frame from the server (docs/protocol.md, section 4).
 * @typedef {{ type: 'welcome', v: number, user_id: string, role: Role, connection_id: string,
 *     heartbeat_ms: number, timeout_ms: number, conversations: ConversationState[] }
 *   | MessageFrame
 *   | { type: 'ack', id: string, conversation: string, seq: number, ts: number }
 *   | { type: 'synced', conversation: string, seq: number }
 *   | { type: 'receipt', conversation: string, user_id: string, role: Role, delivered: number, read: number }
 *   | { type: 'typing', conversation: string, user_id: string, role: Role, active: boolean }
 *   | { type: 'joined', conversation: ConversationState }
 *   | { type: 'left', conversation: string }
 *   | { type: 'resync', conversation: string, epoch: number, last_seq: number }
 *   | { type: 'error', ref?: string, frame?: string, code: string, message: string,
 *       permanent: boolean, retry_after_ms?: number }
 *   | { type: 'skip', conversation: string, seq: number }
 *   | { type: 'presence', conversation: string, user_id: string, status: string }
 *   | { type: 'ping', ts: number }
 *   | { type: 'pong', ref?: string }} ServerFrame
 */
/**
 * A frame a device sends (docs/protocol.md, section 3).
 * @typedef {{ type: 'hello', v: number, token: string,
 *     cursors: { conversation: string, seq: number, epoch?: number }[],
 *     offline_ms?: number, pending?: number }
 *   | { type: 'send', id: string, conversation: string, body: string, kind?: string, attachments?: string[] }
 *   | { type: 'presence', status: string }
 *   | { type: 'receipt', ref?: string, conversation: string, delivered?: number, read?: number }
 *   | { type: 'typing', conversation: string, active: boolean }
 *   | { type: 'ping', ref?: string }
 *   | { type: 'pong' }} ClientFrame
 */
