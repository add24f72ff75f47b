// The outbox (as the Rust `outbox.rs`): messages not yet durable on the server, in order.

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
export function entryStatus(entry) {
  return entry.failure
    ? { name: 'failed', code: entry.failure.code, message: entry.failure.message }
    : { name: 'sending' };
}

/** The outbox of one session. */
export class Outbox {
  constructor() {
    /** @type {Entry[]} */
    this.entries = [];
  }

  /**
   * Queues a new message (a repeat of a known id is ignored).
   * @param {string} id
   * @param {string} conversation
   * @param {string} body
   * @param {number | null} deadline
   * @param {string | null} [kind]
   * @param {import('./types.js').AttachmentDraft[]} [attachments]
   */
  push(id, conversation, body, deadline, kind = null, attachments = []) {
    if (this.get(id)) return;
    this.entries.push({
      id, conversation, body, deadline, state: 'queued', failure: null, attempts: 0, notBefore: null, kind,
      attachments, uploaded: attachments.length === 0,
    });
  }

  /** @param {import('./types.js').PendingMessage} pending */
  restore(pending) {
    if (this.get(pending.id)) return;
    const failure = pending.failed ? { code: pending.failed[0], message: pending.failed[1] } : null;
    const attachments = pending.attachments ?? [];
    // Whether the uploads finished is not kept: the uploader asks the server again (one request
    // per file) before the message goes.
    this.entries.push({
      id: pending.id, conversation: pending.conversation, body: pending.body, deadline: null,
      state: failure ? 'failed' : 'queued', failure, attempts: 0, notBefore: null, kind: pending.kind ?? null,
      attachments, uploaded: attachments.length === 0,
    });
  }

  get length() {
    return this.entries.length;
  }

  failedCount() {
    return this.entries.filter((e) => e.state === 'failed').length;
  }

  /** @param {string} id */
  get(id) {
    return this.entries.find((e) => e.id === id);
  }

  /**
   * Removes a message that is now durable on the server (or discarded by the user).
   * @param {string} id
   */
  take(id) {
    const index = this.entries.findIndex((e) => e.id === id);
    return index < 0 ? undefined : this.entries.splice(index, 1)[0];
  }

  /**
   * Queues failed messages again, with their ids (all, or only `id`).
   * @param {string} [id]
   * @returns {Entry[]} the messages retried
   */
  retryFailed(id) {
    const retried = [];
    for (const entry of this.entries) {
      if (entry.state === 'failed' && (id === undefined || entry.id === id)) {
        // Its files are checked again (and uploaded again if the server lost them).
        Object.assign(entry, {
          state: 'queued', failure: null, attempts: 0, notBefore: null, deadline: null, uploaded: entry.attachments.length === 0,
        });
        retried.push(entry);
      }
    }
    return retried;
  }

  /**
   * Messages whose files are still to be uploaded, in creation order (failed ones aside).
   * @returns {Entry[]}
   */
  uploadsWanted() {
    return this.entries.filter((e) => !e.uploaded && e.state !== 'failed');
  }

  /**
   * Marks a message failed for good.
   * @param {string} id
   * @param {string} code
   * @param {string} message
   */
  fail(id, code, message) {
    const entry = this.get(id);
    if (!entry) throw new Error('failing a message that is not in the outbox');
    entry.state = 'failed';
    entry.failure = { code, message };
    return entry;
  }

  /**
   * Whether an earlier message of the same conversation is still pending (not failed).
   * @param {string} id
   */
  behindAnother(id) {
    const at = this.entries.findIndex((e) => e.id === id);
    if (at < 0) return false;
    const { conversation } = this.entries[at];
    return this.entries.slice(0, at).some((e) => e.conversation === conversation && e.state !== 'failed');
  }

  /**
   * A transient refusal: queue again, not before `at`.
   * @param {string} id
   * @param {number | null} at
   */
  retryLater(id, at) {
    const entry = this.get(id);
    if (entry && entry.state !== 'failed') {
      entry.state = 'queued';
      entry.attempts += 1;
      entry.notBefore = at;
    }
  }

  /** The connection is gone: what was in flight is queued again (same ids). */
  requeueInFlight() {
    for (const entry of this.entries) if (entry.state === 'in_flight') entry.state = 'queued';
  }

  /**
   * Fails queued messages whose deadline has passed.
   * @param {number} now
   * @returns {Entry[]}
   */
  expire(now) {
    const failed = [];
    for (const entry of this.entries) {
      if (entry.state === 'queued' && entry.deadline !== null && entry.deadline <= now) {
        entry.state = 'failed';
        entry.failure = { code: 'deadline_exceeded', message: 'not stored on the server before its deadline' };
        failed.push(entry);
      }
    }
    return failed;
  }

  /** @returns {number | null} */
  nextDeadline() {
    return min(this.entries.filter((e) => e.state === 'queued').map((e) => e.deadline));
  }

  /**
   * Per conversation, the live messages from the first queued one on — unless one of them is
   * in flight: its answer (an `out_of_order` refusal) must come back first (go-back-N).
   * Failed messages hold no one up.
   * @returns {Entry[][]}
   */
  runs() {
    const out = [];
    for (const conversation of new Set(this.entries.map((e) => e.conversation))) {
      const live = this.entries.filter((e) => e.conversation === conversation && e.state !== 'failed');
      const run = live.slice(live.findIndex((e) => e.state === 'queued'));
      if (run[0]?.state === 'queued' && !run.some((e) => e.state === 'in_flight')) out.push(run);
    }
    return out;
  }

  /**
   * When the next resend may go: the first queued message's `notBefore` of each run. A time
   * that has already passed is never returned for a message that cannot go, so a driver does
   * not spin.
   * @returns {number | null}
   */
  nextResend() {
    // A message waiting for its files goes when they are done (`uploadsDone`), not at a time.
    return min(this.runs().filter((run) => run[0].uploaded).map((run) => run[0].notBefore));
  }

  /**
   * Picks what to send now and marks it in flight: each run in creation order, stopping at the
   * first message that must wait — for its resend time, its deadline, the window, or its files.
   * This is the one place where a conversation's order is kept: a message whose uploads are not
   * complete holds up every later message of its conversation, text or not.
   * @param {number} now
   * @param {number} window
   * @returns {Entry[]}
   */
  sendable(now, window) {
    let room = window - this.entries.filter((e) => e.state === 'in_flight').length;
    const out = [];
    for (const run of this.runs()) {
      for (const entry of run) {
        const waiting = !entry.uploaded || (entry.notBefore !== null && entry.notBefore > now)
          || (entry.deadline !== null && entry.deadline <= now);
        if (waiting || room <= 0) break;
        entry.state = 'in_flight';
        entry.notBefore = null;
        room -= 1;
        out.push(entry);
      }
    }
    return out;
  }
}

/**
 * The smallest of some optional times.
 * @param {(number | null | undefined)[]} values
 * @returns {number | null}
 */
export function min(values) {
  let best = null;
  for (const v of values) if (v !== null && v !== undefined && (best === null || v < best)) best = v;
  return best;
}
