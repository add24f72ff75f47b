// One conversation as a device holds it (as the Rust `conversation.rs`): cursor, messages,
// receipts, and the statuses of the user's own messages.

import { rank } from './types.js';

/** @typedef {import('./types.js').ChatMessage} ChatMessage */
/** @typedef {import('./types.js').DeliveryStatus} DeliveryStatus */
/** @typedef {import('./types.js').SessionEvent} SessionEvent */
/** @typedef {import('./types.js').Role} Role */

/** A conversation's local state. */
export class Conversation {
  /** @param {string} id */
  constructor(id) {
    this.id = id;
    /** @type {number | null} */
    this.epoch = null;
    /** Every message up to this `seq` is held. */
    this.cursor = 0;
    /** The user's role here, from `welcome`. @type {Role | null} */
    this.role = null;
    /** Held messages by `seq`. @type {Map<number, ChatMessage>} */
    this.messages = new Map();
    /** Id → seq of held messages. @type {Map<string, number>} */
    this.ids = new Map();
    /** Messages received beyond `cursor + 1` (never expected); null marks a skipped position. @type {Map<number, import('./types.js').MessageFrame | null>} */
    this.early = new Map();
    /** user → role, delivered, read. @type {Map<string, { role: Role, delivered: number, read: number }>} */
    this.participants = new Map();
    /** Own messages acked but not yet held: id → status. @type {Map<string, DeliveryStatus>} */
    this.acked = new Map();
    /** Own messages (seq → id) not yet delivered, and not yet read. @type {Map<number, string>} */
    this.undeliveredOwn = new Map();
    /** @type {Map<number, string>} */
    this.unreadOwn = new Map();
    /** Seqs of the user's own private notes: clients never receive them, so only other
     * operators' receipts move their ticks. @type {Set<number>} */
    this.notes = new Set();
    /** The highest `seq` held of a message someone else wrote: receipts report progress past
     * it, never over the user's own messages alone. */
    this.fromOthers = 0;
    /** Receipt cursors last sent by (or known to the server for) this user. */
    this.deliveredSent = 0;
    this.readSent = 0;
    /** Read cursor the app asked for. */
    this.readWanted = 0;
    /** The cursor does not fit the server's conversation; a `resync` is coming. */
    this.void = false;
  }

  /**
   * @param {import('./types.js').StoredConversation} stored
   * @param {string | null} me
   */
  static restore(stored, me) {
    const conversation = new Conversation(stored.id);
    conversation.epoch = stored.epoch;
    // The stored cursor is the truth: positions under it without a message were skipped
    // (private notes this device may not see).
    for (const saved of stored.messages) {
      const seq = saved.seq;
      if (seq === null || seq > stored.cursor) break;
      const own = me === saved.sender;
      // Ticks never go back: a stored `delivered` or `read` stays; anything else restarts from
      // `sent` and moves on with the next receipts.
      const keptStatus = saved.status?.name === 'delivered' || saved.status?.name === 'read' ? saved.status : null;
      /** @type {DeliveryStatus | null} */
      const status = own ? keptStatus ?? { name: 'sent', seq } : null;
      const message = { ...saved, status };
      if (own && saved.kind === 'note') conversation.notes.add(seq);
      if (!own) conversation.fromOthers = seq;
      if (own && rank(/** @type {DeliveryStatus} */ (status)) < rank({ name: 'delivered' })) conversation.undeliveredOwn.set(seq, message.id);
      if (own && rank(/** @type {DeliveryStatus} */ (status)) < rank({ name: 'read' })) conversation.unreadOwn.set(seq, message.id);
      conversation.ids.set(message.id, seq);
      conversation.messages.set(seq, message);
    }
    conversation.cursor = stored.cursor;
    return conversation;
  }

  /** @param {string} id */
  ownStatus(id) {
    const acked = this.acked.get(id);
    if (acked) return acked;
    const seq = this.ids.get(id);
    return seq === undefined ? undefined : this.messages.get(seq)?.status ?? undefined;
  }

  /**
   * Drops everything held: the server's storage was reset.
   * @param {number} epoch
   */
  reset(epoch) {
    const role = this.role;
    Object.assign(this, new Conversation(this.id));
    this.role = role;
    this.epoch = epoch;
  }

  /**
   * @param {string} user
   * @param {Role} role
   * @param {number} delivered
   * @param {number} read
   */
  participant(user, role, delivered, read) {
    const p = this.participants.get(user) ?? { role, delivered: 0, read: 0 };
    p.role = role;
    p.delivered = Math.max(p.delivered, delivered);
    p.read = Math.max(p.read, read);
    this.participants.set(user, p);
  }

  /**
   * One of the user's messages got `seq` (its ack, or its echo came first): emits `sent`.
   * @param {string} id
   * @param {number} seq
   * @param {SessionEvent[]} events
   * @param {string | null} [kind] The message's kind (`note`), when known.
   */
  ownSent(id, seq, events, kind = null) {
    if (kind === 'note') this.notes.add(seq);
    if (this.ids.has(id) || this.acked.has(id)) return;
    this.acked.set(id, { name: 'sent', seq });
    this.undeliveredOwn.set(seq, id);
    this.unreadOwn.set(seq, id);
    events.push({ type: 'delivery_status', conversation: this.id, id, status: { name: 'sent', seq } });
  }

  /**
   * Records a status of an own message, emitting it if it moved forward.
   * @param {string} id
   * @param {DeliveryStatus} status
   * @param {SessionEvent[]} events
   */
  noteStatus(id, status, events) {
    let current = this.acked.get(id);
    const seq = this.ids.get(id);
    const held = seq === undefined ? undefined : this.messages.get(seq);
    if (!current) current = held?.status ?? undefined;
    if (!current || rank(status) <= rank(current)) return;
    if (this.acked.has(id)) this.acked.set(id, status);
    else if (held) held.status = status;
    events.push({ type: 'delivery_status', conversation: this.id, id, status });
  }

  /**
   * A message from the server (`null`: a skipped position, a private note this device may not
   * see): hold it if it continues the cursor, then any early ones.
   * @param {number} seq
   * @param {import('./types.js').MessageFrame | null} message
   * @param {string | null} me
   * @param {SessionEvent[]} events
   */
  receive(seq, message, me, events) {
    if (seq <= this.cursor || (message && this.ids.has(message.id))) return;
    if (seq > this.cursor + 1) {
      this.early.set(seq, message);
      return;
    }
    this.take(seq, message, me, events);
    while (this.early.has(this.cursor + 1)) {
      const next = this.cursor + 1;
      const early = /** @type {import('./types.js').MessageFrame | null} */ (this.early.get(next));
      this.early.delete(next);
      this.take(next, early, me, events);
    }
    for (const s of this.early.keys()) if (s <= this.cursor) this.early.delete(s);
    events.push({ type: 'cursor', conversation: this.id, epoch: this.epoch ?? 0, seq: this.cursor });
    this.recompute(me, events);
  }

  /**
   * @param {number} seq
   * @param {import('./types.js').MessageFrame | null} message
   * @param {string | null} me
   * @param {SessionEvent[]} events
   */
  take(seq, message, me, events) {
    if (message) this.hold(message, me, events);
    else this.cursor = seq;
  }

  /**
   * @param {import('./types.js').MessageFrame} message
   * @param {string | null} me
   * @param {SessionEvent[]} events
   */
  hold(message, me, events) {
    /** @type {DeliveryStatus | null} */
    let status = null;
    if (me === message.sender) {
      if (message.kind === 'note') this.notes.add(message.seq);
      status = this.acked.get(message.id) ?? null;
      this.acked.delete(message.id);
      if (!status) {
        // Sent from another device of ours (or acked before a restart).
        this.undeliveredOwn.set(message.seq, message.id);
        this.unreadOwn.set(message.seq, message.id);
        status = { name: 'sent', seq: message.seq };
      }
    } else {
      this.fromOthers = Math.max(this.fromOthers, message.seq);
    }
    /** @type {ChatMessage} */
    const held = {
      conversation: message.conversation, id: message.id, seq: message.seq, sender: message.sender,
      role: message.role, body: message.body, ts: message.ts, status,
    };
    if (message.kind) held.kind = message.kind;
    if (message.data) held.data = message.data;
    if (message.attachments?.length) held.attachments = message.attachments;
    this.cursor = message.seq;
    this.ids.set(held.id, message.seq);
    this.messages.set(message.seq, held);
    events.push({ type: 'message', message: { ...held } });
  }

  /**
   * Moves own messages to `delivered` / `read` from the other side's receipts: a client's
   * message counts once any operator has it, an operator's once any client has it.
   * @param {string | null} me
   * @param {SessionEvent[]} events
   */
  recompute(me, events) {
    if (me === null) return;
    const myRole = this.role ?? this.participants.get(me)?.role;
    if (!myRole) return;
    // The other side's cursors move ordinary messages; other operators' move private notes.
    let [delivered, read, notesDelivered, notesRead] = [0, 0, 0, 0];
    for (const [user, p] of this.participants) {
      if (user !== me && p.role !== myRole) {
        delivered = Math.max(delivered, p.delivered);
        read = Math.max(read, p.read);
      } else if (user !== me && p.role === 'operator') {
        notesDelivered = Math.max(notesDelivered, p.delivered);
        notesRead = Math.max(notesRead, p.read);
      }
    }
    delivered = Math.max(delivered, read);
    notesDelivered = Math.max(notesDelivered, notesRead);
    /** @param {number} seq @param {number} other @param {number} operators */
    const reached = (seq, other, operators) => seq <= (this.notes.has(seq) ? operators : other);
    for (const [seq, id] of [...this.undeliveredOwn].sort((a, b) => a[0] - b[0])) {
      if (!reached(seq, delivered, notesDelivered)) continue;
      this.undeliveredOwn.delete(seq);
      this.noteStatus(id, { name: 'delivered' }, events);
    }
    for (const [seq, id] of [...this.unreadOwn].sort((a, b) => a[0] - b[0])) {
      if (!reached(seq, read, notesRead)) continue;
      this.unreadOwn.delete(seq);
      this.noteStatus(id, { name: 'read' }, events);
    }
  }
}
