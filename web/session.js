// The sans-IO session: no sockets, no clock, no global randomness inside; it mirrors the Rust
// SDK's `Session` (crates/client/src/session/mod.rs), whose docs describe the polling order
// (actions, events — persisted first —, transmits, timeout) and the invariants.

import { Conversation } from './conversation.js';
import { PROTOCOL_VERSION } from './frames.js';
import { Outbox, entryStatus, min } from './outbox.js';
import { DEFAULT_CONFIG, Jitter, backoff } from './types.js';

/** @typedef {import('./types.js').ConnectionStatus} ConnectionStatus */
/** @typedef {import('./types.js').ChatMessage} ChatMessage */
/** @typedef {import('./types.js').ClientFrame} ClientFrame */
/** @typedef {import('./types.js').ServerFrame} ServerFrame */

/** Close codes (docs/protocol.md, section 6) the session treats specially. */
const CLOSE_PROTOCOL_ERROR = 4400;
const CLOSE_UNAUTHORIZED = 4401;

/**
 * Whether a failed message may succeed if sent again unchanged: only when the app's own deadline
 * failed it (the server never refused it). A permanent refusal by the server (too large,
 * forbidden, conversation closed, invalid) never can, so a UI offers "Edit" and "Delete" for it,
 * never "Retry". The one place this rule lives (the Rust SDK: `DeliveryStatus::Failed` with the
 * same codes).
 * @param {import('./types.js').DeliveryStatus | null | undefined} status
 */
export function retryable(status) {
  return status?.name === 'failed' && status.code === 'deadline_exceeded';
}

/** A device's session. */
export class Session {
  /**
   * A session that continues from a snapshot (or starts empty): pending messages are resent in
   * order on the next connection, cursors resume where they were.
   * @param {Partial<import('./types.js').Config>} config
   * @param {string} token
   * @param {import('./types.js').Snapshot} [snapshot]
   */
  constructor(config, token, snapshot = {}) {
    this.config = { ...DEFAULT_CONFIG, ...config };
    this.token = token;
    this.jitter = new Jitter(this.config.seed);
    /** @type {ConnectionStatus} */
    this.connection = { name: 'disconnected' };
    /** @type {'idle' | 'opening' | 'greeting' | 'ready'} */
    this.transport = 'idle';
    /** The app wants to be connected (between connect and disconnect). */
    this.wanted = false;
    this.networkUp = true;
    /** Reconnect attempts since the last welcome. */
    this.attempt = 0;
    /** Identifies the current transport attempt. */
    this.attemptId = 0;
    /** @type {number | null} */ this.nextAttemptAt = null;
    /** @type {number | null} */ this.connectDeadline = null;
    /** @type {number | null} */ this.heartbeatDeadline = null;
    /** When the last welcomed connection was lost (reported in the next hello). @type {number | null} */
    this.lostAt = null;
    /** The token said in the last hello. @type {string | null} */
    this.helloToken = null;
    /** The server refused the token: nothing is tried until `setToken`. */
    this.expired = false;
    this.heartbeatTimeout = this.config.heartbeatTimeoutMs;
    /** @type {string | null} */
    this.user = snapshot.user_id ?? null;
    /** The operator's presence switch, if set. @type {string | null} */
    this.presence = null;
    /** @type {Map<string, Conversation>} */
    this.conversations = new Map();
    this.outbox = new Outbox();
    /** @type {import('./types.js').Action[]} */ this.actions = [];
    /** @type {import('./types.js').SessionEvent[]} */ this.events = [];
    /** @type {ClientFrame[]} */ this.transmits = [];
    /** Cursors before the events not yet stored. @type {Map<string, number>} */
    this.unconfirmed = new Map();
    /** Stored cursors, where storing failed: receipts stop there. @type {Map<string, number>} */
    this.unstored = new Map();
    /** @type {number | null} */ this.storeRetryAt = null;
    this.storeAttempts = 0;
    for (const stored of snapshot.conversations ?? []) {
      this.conversations.set(stored.id, Conversation.restore(stored, this.user));
    }
    for (const pending of snapshot.outbox ?? []) {
      if (!this.deliveryStatus(pending.id)) this.outbox.restore(pending);
    }
  }

  // ---- getters ------------------------------------------------------------------------------

  /** The connection status. @returns {ConnectionStatus} */
  status() {
    return this.connection;
  }

  /** Messages in the outbox that are not yet durable on the server (failed ones included). */
  pendingCount() {
    return this.outbox.length;
  }

  /** Messages in the outbox that failed for good. */
  failedCount() {
    return this.outbox.failedCount();
  }

  /** Messages still on their way: in the outbox and not failed (what a "waiting" banner counts). */
  waitingCount() {
    return this.outbox.length - this.outbox.failedCount();
  }

  /** The user, once known from welcome (or the snapshot). */
  userId() {
    return this.user;
  }

  /** Conversation ids known to the device. */
  conversationIds() {
    return [...this.conversations.keys()].sort();
  }

  /** @param {string} conversation @returns {number} a conversation's contiguous cursor */
  cursor(conversation) {
    return this.conversations.get(conversation)?.cursor ?? 0;
  }

  /**
   * A conversation's messages: those held, by seq, then the outbox's, in creation order.
   * @param {string} conversation
   * @returns {ChatMessage[]}
   */
  messages(conversation) {
    const c = this.conversations.get(conversation);
    /** @type {ChatMessage[]} */
    const out = c ? [...c.messages.values()].map((m) => ({ ...m })) : [];
    const role = c?.role ?? 'client';
    for (const e of this.outbox.entries) {
      if (e.conversation !== conversation) continue;
      out.push({
        conversation, id: e.id, seq: null, sender: this.user ?? '', role, body: e.body, ts: null,
        status: entryStatus(e), ...(e.kind && { kind: e.kind }),
        ...(e.attachments.length && { attachments: e.attachments.map((a) => ({ ...a, local: /** @type {const} */ (true) })) }),
      });
    }
    return out;
  }

  /**
   * The status of one of the user's messages.
   * @param {string} id
   * @returns {import('./types.js').DeliveryStatus | undefined}
   */
  deliveryStatus(id) {
    const entry = this.outbox.get(id);
    if (entry) return entryStatus(entry);
    for (const c of this.conversations.values()) {
      const status = c.ownStatus(id);
      if (status) return status;
    }
    return undefined;
  }

  /**
   * Messages whose files the driver is to upload (then `uploadsDone`, or `uploadFailed`), in
   * creation order: new ones, restored ones (whether their uploads finished is asked again), and
   * those the server answered `attachment_pending`.
   * @returns {{ id: string, conversation: string, attachments: import('./types.js').AttachmentDraft[] }[]}
   */
  uploadsWanted() {
    return this.outbox.uploadsWanted().map((e) => ({ id: e.id, conversation: e.conversation, attachments: [...e.attachments] }));
  }

  // ---- commands -----------------------------------------------------------------------------

  /** Starts connecting (and keeps reconnecting until disconnect). @param {number} now */
  connect(now) {
    this.wanted = true;
    if (this.transport === 'idle') {
      this.attempt = 0;
      if (this.networkUp) this.open(now);
      else this.setStatus({ name: 'offline' });
    }
  }

  /** Closes the connection and stops reconnecting. The outbox is kept. @param {number} now */
  disconnect(now) {
    this.wanted = false;
    this.dropTransport(now, true);
    this.nextAttemptAt = null;
    this.setStatus({ name: 'disconnected' });
  }

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
  send(now, id, conversation, body, deadline = null, kind = null, attachments = []) {
    // A message already held (stored, then found again in a persisted outbox) is not resent.
    if (this.deliveryStatus(id) && !this.outbox.get(id)) return id;
    this.outbox.push(id, conversation, body, deadline, kind, attachments);
    this.events.push({ type: 'delivery_status', conversation, id, status: { name: 'sending' } });
    this.flush(now);
    return id;
  }

  /**
   * Takes over a closed tab's pending messages.
   * @param {number} now
   * @param {import('./types.js').PendingMessage[]} pending
   */
  adoptPending(now, pending) {
    for (const p of pending) {
      if (this.deliveryStatus(p.id)) continue;
      this.outbox.restore(p);
      const entry = /** @type {import('./outbox.js').Entry} */ (this.outbox.get(p.id));
      this.events.push({ type: 'delivery_status', conversation: p.conversation, id: p.id, status: entryStatus(entry) });
    }
    this.flush(now);
  }

  /**
   * Queues failed messages again, with their ids (every one, or only `id`). Returns how many.
   * @param {number} now
   * @param {string} [id]
   */
  retryFailed(now, id) {
    const retried = this.outbox.retryFailed(id);
    for (const e of retried) {
      this.events.push({ type: 'delivery_status', conversation: e.conversation, id: e.id, status: { name: 'sending' } });
    }
    this.flush(now);
    return retried.length;
  }

  /**
   * Every file of message `id` is uploaded and complete on the server: it may be sent, in its
   * turn.
   * @param {number} now
   * @param {string} id
   */
  uploadsDone(now, id) {
    const entry = this.outbox.get(id);
    if (entry && entry.state !== 'failed') entry.uploaded = true;
    this.flush(now);
  }

  /**
   * A file of message `id` was refused for good (`unsupported_type`, `attachment_too_large`,
   * `attachment_not_found`, …): the message fails with that reason, like a refused text.
   * @param {number} now
   * @param {string} id
   * @param {string} code
   * @param {string} message
   */
  uploadFailed(now, id, code, message) {
    const entry = this.outbox.get(id);
    if (!entry || entry.state === 'failed') return;
    this.outbox.fail(id, code, message);
    this.events.push({ type: 'delivery_status', conversation: entry.conversation, id, status: { name: 'failed', code, message } });
    this.flush(now);
  }

  /**
   * Drops a failed message from the outbox (the user edits it and sends the new text as a new
   * message, with a new id). Only a failed message can be discarded: any other may already be
   * stored. Returns whether it was.
   * @param {number} _now
   * @param {string} id
   */
  discard(_now, id) {
    if (this.outbox.get(id)?.state !== 'failed') return false;
    const entry = /** @type {import('./outbox.js').Entry} */ (this.outbox.take(id));
    this.events.push({ type: 'discarded', conversation: entry.conversation, id });
    return true;
  }

  /**
   * Marks what is held in `conversation` as read: everything, or up to `upTo` (the last message
   * the reader saw). Never moves back.
   * @param {number} now
   * @param {string} conversation
   * @param {number} [upTo]
   */
  markRead(now, conversation, upTo) {
    const c = this.conversations.get(conversation);
    if (c) c.readWanted = Math.max(c.readWanted, Math.min(upTo ?? c.cursor, c.cursor));
    this.flush(now);
  }

  /**
   * Sends a typing signal if connected (ephemeral: never queued).
   * @param {number} _now
   * @param {string} conversation
   * @param {boolean} active
   */
  setTyping(_now, conversation, active) {
    if (this.transport === 'ready') this.transmits.push({ type: 'typing', conversation, active });
  }

  /** An operator's `available` / `away`, sent now and after each welcome. @param {number} _now @param {string} status */
  setPresence(_now, status) {
    this.presence = status;
    if (this.transport === 'ready') this.transmits.push({ type: 'presence', status });
  }

  /** Replaces the token; if the session was waiting for one, reconnects at once. @param {number} now @param {string} token */
  setToken(now, token) {
    this.token = token;
    this.expired = false;
    if (this.wanted && this.transport === 'idle' && this.networkUp) {
      this.attempt = 0;
      this.open(now);
    }
  }

  /**
   * Tries now instead of at the end of the backoff (the page became visible, the user pressed
   * "reconnect"). Does nothing while connected or offline.
   * @param {number} now
   */
  reconnectNow(now) {
    if (this.wanted && this.networkUp && this.transport === 'idle' && !this.expired) {
      this.attempt = 0;
      this.open(now);
    }
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** The transport of attempt `attempt` is open: say hello with the cursors. @param {number} now @param {number} attempt */
  handleOpen(now, attempt) {
    if (attempt !== this.attemptId || this.transport !== 'opening') return;
    this.transport = 'greeting';
    this.heartbeatDeadline = now + this.heartbeatTimeout;
    const cursors = [...this.conversations.values()].map((c) => (
      c.epoch === null ? { conversation: c.id, seq: c.cursor } : { conversation: c.id, seq: c.cursor, epoch: c.epoch }));
    this.helloToken = this.token;
    /** @type {import('./types.js').ClientFrame} */
    const hello = { type: 'hello', v: PROTOCOL_VERSION, token: this.token, cursors, pending: this.outbox.length };
    if (this.lostAt !== null) hello.offline_ms = Math.max(0, Math.round(now - this.lostAt));
    this.transmits.push(hello);
  }

  /**
   * The transport of attempt `attempt` closed (or failed to open), with the close code if one
   * was received.
   * @param {number} now
   * @param {number} attempt
   * @param {number | null} code
   */
  handleClose(now, attempt, code) {
    if (attempt !== this.attemptId || this.transport === 'idle') return;
    this.dropTransport(now, false);
    if (code === CLOSE_PROTOCOL_ERROR) {
      this.wanted = false;
      this.nextAttemptAt = null;
      this.setStatus({ name: 'disconnected' });
    } else if (code === CLOSE_UNAUTHORIZED && this.token === this.helloToken) {
      // Trying again with a refused token cannot succeed: wait for a new one (`setToken`),
      // keeping the outbox.
      this.expired = true;
      this.nextAttemptAt = null;
      this.events.push({ type: 'token_expired' });
      this.setStatus({ name: 'expired' });
    } else {
      // A token refreshed since that hello is tried at the next attempt.
      this.scheduleReconnect(now);
    }
  }

  /** A frame from the server. @param {number} now @param {ServerFrame} frame */
  handleFrame(now, frame) {
    if (this.transport === 'idle' || this.transport === 'opening') return;
    this.heartbeatDeadline = now + this.heartbeatTimeout;
    const me = this.user;
    switch (frame.type) {
      case 'welcome': this.welcome(now, frame); break;
      case 'message': {
        const c = this.received(frame.conversation);
        const taken = me === frame.sender ? this.outbox.take(frame.id) : undefined;
        if (taken) {
          // Our own message came back before (or instead of) its ack.
          c.ownSent(frame.id, frame.seq, this.events, taken.kind);
        }
        c.receive(frame.seq, frame, me, this.events);
        break;
      }
      case 'skip': this.received(frame.conversation).receive(frame.seq, null, me, this.events); break;
      case 'presence': {
        const { conversation, user_id, status } = frame;
        this.events.push({ type: 'presence', conversation, user_id, status });
        break;
      }
      case 'ack':
        const taken = this.outbox.take(frame.id);
        if (taken) {
          const c = this.conversation(frame.conversation);
          c.ownSent(frame.id, frame.seq, this.events, taken.kind);
          c.recompute(me, this.events);
        }
        break;
      case 'error': this.error(now, frame); break;
      case 'receipt': {
        const c = this.conversations.get(frame.conversation);
        if (c) {
          c.participant(frame.user_id, frame.role, frame.delivered, frame.read);
          if (me === frame.user_id) {
            // Another device of ours moved our cursors.
            c.deliveredSent = Math.max(c.deliveredSent, frame.delivered);
            c.readSent = Math.max(c.readSent, frame.read);
          }
          c.recompute(me, this.events);
        }
        const { conversation, user_id, role, delivered, read } = frame;
        this.events.push({ type: 'receipt', conversation, user_id, role, delivered, read });
        break;
      }
      case 'synced': this.events.push({ type: 'synced', conversation: frame.conversation, seq: frame.seq }); break;
      case 'typing': {
        const { conversation, user_id, active } = frame;
        this.events.push({ type: 'typing', conversation, user_id, active });
        break;
      }
      case 'joined': this.adopt(frame.conversation, me); break;
      case 'resync':
        this.conversation(frame.conversation).reset(frame.epoch);
        this.events.push({ type: 'resync', conversation: frame.conversation, epoch: frame.epoch });
        break;
      case 'ping': this.transmits.push({ type: 'pong' }); break;
      default: break; // left, pong: nothing to do
    }
    this.flush(now);
  }

  /** Storing the events just polled failed (see the Rust SDK). @param {number} now */
  handleStoreFailure(now) {
    for (const [id, before] of this.unconfirmed) {
      const stored = Math.min(before, this.unstored.get(id) ?? before);
      this.unstored.set(id, stored);
      const c = this.conversation(id);
      c.deliveredSent = Math.min(c.deliveredSent, stored);
      c.readSent = Math.min(c.readSent, stored);
    }
    this.unconfirmed.clear();
    this.transmits = this.transmits.filter((f) => f.type !== 'receipt' || !this.unstored.has(f.conversation));
    this.storeRetryAt = now + backoff(this.config, this.storeAttempts++, this.jitter.unit());
  }

  /** Time passed: reconnect attempts, dead connections, deadlines and resend delays. @param {number} now */
  handleTimeout(now) {
    if (this.storeRetryAt !== null && this.storeRetryAt <= now) {
      this.storeRetryAt = null;
      for (const [id, stored] of this.unstored) this.unconfirmed.set(id, stored);
      this.unstored.clear();
    }
    if (this.nextAttemptAt !== null && this.nextAttemptAt <= now) {
      this.nextAttemptAt = null;
      if (this.wanted && this.networkUp && this.transport === 'idle') this.open(now);
    }
    /** @param {number | null} at */
    const expired = (at) => at !== null && at <= now;
    if ((this.transport !== 'ready' && expired(this.connectDeadline))
      || (this.transport !== 'idle' && expired(this.heartbeatDeadline))) {
      // Half-open or stuck: give up on this connection and try again.
      this.dropTransport(now, true);
      this.scheduleReconnect(now);
    }
    let refusedThenExpired = false;
    for (const e of this.outbox.expire(now)) {
      refusedThenExpired ||= e.attempts > 0;
      this.events.push({ type: 'delivery_status', conversation: e.conversation, id: e.id, status: entryStatus(e) });
    }
    // The server may wait for a refused message that expired: reconnect without it.
    if (refusedThenExpired && this.transport !== 'idle') {
      this.dropTransport(now, true);
      this.scheduleReconnect(now);
    }
    this.flush(now);
  }

  /** The device's network went down or came back. @param {number} now @param {boolean} up */
  handleNetwork(now, up) {
    if (up === this.networkUp) return;
    this.networkUp = up;
    if (up) {
      if (this.wanted && this.transport === 'idle' && !this.expired) {
        // The network is back: try now, not at the end of a long backoff.
        this.attempt = 0;
        this.nextAttemptAt = null;
        this.open(now);
      }
    } else {
      this.dropTransport(now, true);
      this.nextAttemptAt = null;
      if (this.wanted && !this.expired) this.setStatus({ name: 'offline' });
    }
  }

  // ---- outputs ------------------------------------------------------------------------------

  /** The next thing to do with the transport. */
  pollAction() {
    return this.actions.shift();
  }

  /** The next event for the app (and for persistence). */
  pollEvent() {
    return this.events.shift();
  }

  /** The next frame to write (the events are stored by now). */
  pollTransmit() {
    if (this.unconfirmed.size) {
      this.unconfirmed.clear();
      if (!this.unstored.size) this.storeAttempts = 0;
    }
    return this.transmits.shift();
  }

  /** When handleTimeout must be called next. @returns {number | null} */
  pollTimeout() {
    const deadlines = [this.nextAttemptAt, this.outbox.nextDeadline(), this.storeRetryAt];
    if (this.transport !== 'idle') deadlines.push(this.heartbeatDeadline);
    if (this.transport !== 'ready') deadlines.push(this.connectDeadline);
    if (this.transport === 'ready') deadlines.push(this.outbox.nextResend());
    return min(deadlines);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** @param {string} id */
  conversation(id) {
    let c = this.conversations.get(id);
    if (!c) this.conversations.set(id, (c = new Conversation(id)));
    return c;
  }

  /** @param {string} id */
  received(id) {
    const c = this.conversation(id);
    if (!this.unconfirmed.has(id)) this.unconfirmed.set(id, c.cursor);
    return c;
  }

  /** @param {ConnectionStatus} status */
  setStatus(status) {
    if (JSON.stringify(status) !== JSON.stringify(this.connection)) {
      this.connection = status;
      this.events.push({ type: 'connection_status', status });
    }
  }

  /** @param {number} now */
  open(now) {
    this.attemptId += 1;
    this.nextAttemptAt = null;
    this.transport = 'opening';
    this.connectDeadline = now + this.config.connectTimeoutMs;
    this.actions.push({ type: 'connect', attempt: this.attemptId });
    this.setStatus({ name: 'connecting' });
  }

  /**
   * Forgets the transport: frames not yet written are dropped, messages in flight go back to
   * the queue (they are resent with the same ids). `tellDriver` asks the driver to close it.
   * @param {number} now
   * @param {boolean} tellDriver
   */
  dropTransport(now, tellDriver) {
    if (this.transport === 'idle') return;
    if (this.transport === 'ready') this.lostAt = now;
    if (tellDriver) this.actions.push({ type: 'disconnect' });
    this.transport = 'idle';
    this.transmits = [];
    this.heartbeatDeadline = null;
    this.connectDeadline = null;
    this.outbox.requeueInFlight();
  }

  /** @param {number} now */
  scheduleReconnect(now) {
    if (!this.wanted) return this.setStatus({ name: 'disconnected' });
    if (!this.networkUp) return this.setStatus({ name: 'offline' });
    const at = now + backoff(this.config, this.attempt, this.jitter.unit());
    this.attempt += 1;
    this.nextAttemptAt = at;
    this.setStatus({ name: 'reconnecting', nextAttemptAt: at });
  }

  /**
   * @param {import('./types.js').ConversationState} state
   * @param {string | null} me
   */
  adopt(state, me) {
    const c = this.conversation(state.id);
    if (c.epoch === null) c.epoch = state.epoch;
    // A cursor of another epoch, or past the end, is void: the server sends `resync` next, and
    // a receipt for it now would be refused (cursor_out_of_range).
    c.void = c.epoch !== state.epoch || c.cursor > state.last_seq;
    for (const p of state.participants) {
      c.participant(p.user_id, p.role, p.delivered, p.read);
      if (me === p.user_id) {
        c.role = p.role;
        c.deliveredSent = p.delivered;
        c.readSent = p.read;
      }
    }
    c.recompute(me, this.events);
  }

  /**
   * @param {number} now
   * @param {Extract<ServerFrame, { type: 'welcome' }>} welcome
   */
  welcome(now, welcome) {
    this.transport = 'ready';
    this.lostAt = null;
    this.connectDeadline = null;
    this.attempt = 0;
    this.heartbeatTimeout = Math.max(welcome.timeout_ms, 1);
    this.heartbeatDeadline = now + this.heartbeatTimeout;
    this.user = welcome.user_id;
    for (const state of welcome.conversations) this.adopt(state, welcome.user_id);
    if (this.presence) this.transmits.push({ type: 'presence', status: this.presence });
    this.setStatus({ name: 'connected' });
  }

  /**
   * @param {number} now
   * @param {Extract<ServerFrame, { type: 'error' }>} error
   */
  error(now, error) {
    const ref = error.ref ?? '';
    const entry = this.outbox.get(ref);
    if (!entry) {
      // A refused token is followed by close 4401, which decides what happens next.
      if (error.code !== 'token_expired' && error.code !== 'token_invalid') {
        this.events.push({ type: 'error', code: error.code, message: error.message });
      }
      return;
    }
    if (error.permanent) {
      this.outbox.fail(ref, error.code, error.message);
      this.events.push({
        type: 'delivery_status', conversation: entry.conversation, id: ref,
        status: { name: 'failed', code: error.code, message: error.message },
      });
      return;
    }
    // A file still `receiving` on the server: upload it again (resuming), then resend — with
    // backoff, so a server that keeps saying so is not asked in a loop.
    if (error.code === 'attachment_pending') entry.uploaded = false;
    const unit = this.jitter.unit();
    // out_of_order is a consequence of an earlier message's refusal, not a failure of its own:
    // it goes again right behind that one (which sets the pace). Only with no earlier message of
    // this device pending does a repeat back off: the one the server waits for may not come.
    const consequence = entry.attempts === 0 || this.outbox.behindAnother(ref);
    const delay = error.code === 'out_of_order' && consequence ? 0
      : error.retry_after_ms ?? backoff(this.config, entry.attempts, unit);
    this.outbox.retryLater(ref, delay === 0 ? null : now + delay);
  }

  /**
   * Writes what can be written now: the outbox (window, go-back-N per conversation) and
   * receipts.
   * @param {number} now
   */
  flush(now) {
    if (this.transport !== 'ready') return;
    for (const e of this.outbox.sendable(now, this.config.sendWindow)) {
      this.transmits.push({
        type: 'send', id: e.id, conversation: e.conversation, body: e.body, ...(e.kind && { kind: e.kind }),
        ...(e.attachments.length && { attachments: e.attachments.map((a) => a.id) }),
      });
    }
    for (const c of this.conversations.values()) {
      if (c.void) continue;
      const held = Math.min(c.cursor, this.unstored.get(c.id) ?? Infinity);
      // Progress over the user's own messages alone is not reported: no status follows from it,
      // and each would cost the server a write (one per message sent).
      const delivered = held > c.deliveredSent && c.fromOthers > c.deliveredSent ? held : undefined;
      const readTo = Math.min(c.readWanted, held);
      const read = readTo > c.readSent && c.fromOthers > c.readSent ? readTo : undefined;
      if (delivered === undefined && read === undefined) continue;
      c.deliveredSent = Math.max(c.deliveredSent, delivered ?? 0, read ?? 0);
      c.readSent = Math.max(c.readSent, read ?? 0);
      /** @type {ClientFrame} */
      const receipt = { type: 'receipt', conversation: c.id };
      if (delivered !== undefined) receipt.delivered = delivered;
      if (read !== undefined) receipt.read = read;
      this.transmits.push(receipt);
    }
  }
}
