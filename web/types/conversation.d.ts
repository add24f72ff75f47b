export type ChatMessage = import('./types.js').ChatMessage;
export type DeliveryStatus = import('./types.js').DeliveryStatus;
export type SessionEvent = import('./types.js').SessionEvent;
export type Role = import('./types.js').Role;
/** @typedef {import('./types.js').ChatMessage} ChatMessage */
/** @typedef {import('./types.js').DeliveryStatus} DeliveryStatus */
/** @typedef {import('./types.js').SessionEvent} SessionEvent */
/** @typedef {import('./types.js').Role} Role */
/** A conversation's local state. */
export declare class Conversation {
    id: string;
    /** @type {number | null} */
    epoch: number | null;
    /** Every message up to this `seq` is held. */
    cursor: number;
    /** The user's role here, from `welcome`. @type {Role | null} */
    role: Role | null;
    /** Held messages by `seq`. @type {Map<number, ChatMessage>} */
    messages: Map<number, ChatMessage>;
    /** Id → seq of held messages. @type {Map<string, number>} */
    ids: Map<string, number>;
    /** Messages received beyond `cursor + 1` (never expected); null marks a skipped position. @type {Map<number, import('./types.js').MessageFrame | null>} */
    early: Map<number, import('./types.js').MessageFrame | null>;
    /** user → role, delivered, read. @type {Map<string, { role: Role, delivered: number, read: number }>} */
    participants: Map<string, {
        role: Role;
        delivered: number;
        read: number;
    }>;
    /** Own messages acked but not yet held: id → status. @type {Map<string, DeliveryStatus>} */
    acked: Map<string, DeliveryStatus>;
    /** Own messages (seq → id) not yet delivered, and not yet read. @type {Map<number, string>} */
    undeliveredOwn: Map<number, string>;
    /** @type {Map<number, string>} */
    unreadOwn: Map<number, string>;
    /** Seqs of the user's own private notes: clients never receive them, so only other
     * operators' receipts move their ticks. @type {Set<number>} */
    notes: Set<number>;
    /** The highest `seq` held of a message someone else wrote: receipts report progress past
     * it, never over the user's own messages alone. */
    fromOthers: number;
    /** Receipt cursors last sent by (or known to the server for) this user. */
    deliveredSent: number;
    readSent: number;
    /** Read cursor the app asked for. */
    readWanted: number;
    /** The cursor does not fit the server's conversation; a `resync` is coming. */
    void: boolean;
    /** @param {string} id */
    constructor(id: string);
    /**
     * @param {import('./types.js').StoredConversation} stored
     * @param {string | null} me
     */
    static restore(stored: import('./types.js').StoredConversation, me: string | null): Conversation;
    /** @param {string} id */
    ownStatus(id: string): import("./types.js").DeliveryStatus | undefined;
    /**
     * Drops everything held: the server's storage was reset.
     * @param {number} epoch
     */
    reset(epoch: number): void;
    /**
     * @param {string} user
     * @param {Role} role
     * @param {number} delivered
     * @param {number} read
     */
    participant(user: string, role: Role, delivered: number, read: number): void;
    /**
     * One of the user's messages got `seq` (its ack, or its echo came first): emits `sent`.
     * @param {string} id
     * @param {number} seq
     * @param {SessionEvent[]} events
     * @param {string | null} [kind] The message's kind (`note`), when known.
     */
    ownSent(id: string, seq: number, events: SessionEvent[], kind?: string | null): void;
    /**
     * Records a status of an own message, emitting it if it moved forward.
     * @param {string} id
     * @param {DeliveryStatus} status
     * @param {SessionEvent[]} events
     */
    noteStatus(id: string, status: DeliveryStatus, events: SessionEvent[]): void;
    /**
     * A message from the server (`null`: a skipped position, a private note this device may not
     * see): hold it if it continues the cursor, then any early ones.
     * @param {number} seq
     * @param {import('./types.js').MessageFrame | null} message
     * @param {string | null} me
     * @param {SessionEvent[]} events
     */
    receive(seq: number, message: import('./types.js').MessageFrame | null, me: string | null, events: SessionEvent[]): void;
    /**
     * @param {number} seq
     * @param {import('./types.js').MessageFrame | null} message
     * @param {string | null} me
     * @param {SessionEvent[]} events
     */
    take(seq: number, message: import('./types.js').MessageFrame | null, me: string | null, events: SessionEvent[]): void;
    /**
     * @param {import('./types.js').MessageFrame} message
     * @param {string | null} me
     * @param {SessionEvent[]} events
     */
    hold(message: import('./types.js').MessageFrame, me: string | null, events: SessionEvent[]): void;
    /**
     * Moves own messages to `delivered` / `read` from the other side's receipts: a client's
     * message counts once any operator has it, an operator's once any client has it.
     * @param {string | null} me
     * @param {SessionEvent[]} events
     */
    recompute(me: string | null, events: SessionEvent[]): void;
}
