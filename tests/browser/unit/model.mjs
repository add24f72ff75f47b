// A model of the server for virtual-time tests of the session: one conversation `b1`, ana
// (client) and olga (operator), in memory. Mirrors the Rust SDK's test model.
import { Session } from '../../../web/session.js';

export const EPOCH = 42;

export class Model {
  constructor() {
    this.messages = [];
    /** user → { delivered, read } */
    this.receipts = new Map();
    /** Called for each send; return an error frame to refuse it. */
    this.refuse = () => null;
  }

  welcome(user) {
    const participants = [['ana', 'client'], ['olga', 'operator']].map(([u, role]) => ({
      user_id: u, role, ...(this.receipts.get(u) ?? { delivered: 0, read: 0 }),
    }));
    return {
      type: 'welcome', v: 1, user_id: user, role: user === 'ana' ? 'client' : 'operator',
      connection_id: 'c1', heartbeat_ms: 25000, timeout_ms: 35000,
      conversations: [{ id: 'b1', epoch: EPOCH, last_seq: this.messages.length, participants }],
    };
  }

  append(id, sender, body) {
    const found = this.messages.find((m) => m.id === id);
    if (found) return found;
    const m = {
      type: 'message', conversation: 'b1', id, seq: this.messages.length + 1, sender,
      role: sender === 'ana' ? 'client' : 'operator', body, ts: 1,
    };
    this.messages.push(m);
    return m;
  }

  answer(user, frame) {
    switch (frame.type) {
      case 'hello': {
        const cursor = frame.cursors.find((c) => c.conversation === 'b1')?.seq ?? 0;
        return [this.welcome(user), ...this.messages.slice(cursor),
          { type: 'synced', conversation: 'b1', seq: this.messages.length }];
      }
      case 'send': {
        const refusal = this.refuse(frame);
        if (refusal) return [{ type: 'error', ref: frame.id, ...refusal }];
        const m = this.append(frame.id, user, frame.body);
        return [{ type: 'ack', id: m.id, conversation: 'b1', seq: m.seq, ts: m.ts }, m];
      }
      case 'receipt': {
        const r = this.receipts.get(user) ?? { delivered: 0, read: 0 };
        r.delivered = Math.max(r.delivered, frame.delivered ?? 0, frame.read ?? 0);
        r.read = Math.max(r.read, frame.read ?? 0);
        this.receipts.set(user, r);
        return [];
      }
      default: return [];
    }
  }
}

/** A session wired to the model through a pretend transport. */
export class Rig {
  constructor(user, config = {}, snapshot = {}) {
    this.session = new Session(config, 'token', snapshot);
    this.user = user;
    this.open = null;
    this.events = [];
    this.sent = [];
  }

  /**
   * Drains the session's outputs; the transport opens at once when `reachable`, and frames
   * reach the model (whose answers come straight back) while it is open.
   */
  pump(now, model, reachable = true) {
    for (;;) {
      let progressed = false;
      for (let a = this.session.pollAction(); a; a = this.session.pollAction()) {
        progressed = true;
        if (a.type === 'connect') {
          if (reachable) {
            this.open = a.attempt;
            this.session.handleOpen(now, a.attempt);
          } else {
            this.session.handleClose(now, a.attempt, null);
          }
        } else {
          this.open = null;
        }
      }
      for (let e = this.session.pollEvent(); e; e = this.session.pollEvent()) {
        progressed = true;
        this.events.push(e);
      }
      for (let f = this.session.pollTransmit(); f; f = this.session.pollTransmit()) {
        progressed = true;
        this.sent.push(f);
        if (this.open !== null && reachable) {
          for (const answer of model.answer(this.user, f)) this.session.handleFrame(now, answer);
        }
      }
      if (!progressed) return;
    }
  }

  statuses() {
    return this.events.filter((e) => e.type === 'connection_status').map((e) => e.status.name);
  }

  /** Delivery statuses of one message, in the order they were emitted. */
  history(id) {
    return this.events.filter((e) => e.type === 'delivery_status' && e.id === id).map((e) => e.status.name);
  }
}

/** A lowercase UUID-shaped id, deterministic for tests. */
export const uuid = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
