// The device's memory in IndexedDB: the outbox (with the bytes of its files), the cursors and the
// messages held, one database per user. A message is in the outbox before it shows as
// "sending" — its files with it, in the same transaction — and received messages are stored
// before the receipt that reports them. Tabs: docs/architecture.md (web/).

/** Version of the records' format. An upgrade migrates pending messages, never drops them. */
export const FORMAT_VERSION = 3;

/**
 * The status kept with a held message: only `delivered` and `read` (anything else restarts from
 * `sent`), so that ticks shown before a reload are shown after it, also offline.
 * @param {import('./types.js').DeliveryStatus | null | undefined} status
 */
function kept(status) {
  return status && (status.name === 'delivered' || status.name === 'read') ? { name: status.name } : null;
}

/**
 * An outbox record.
 * @typedef {object} OutboxRecord
 * @property {string} id
 * @property {string} conversation
 * @property {string} body
 * @property {[string, string] | null} failed
 * @property {string} owner The tab that sends it.
 * @property {number} created Creation time (ms), for order.
 * @property {string | null} [kind]
 * @property {import('./types.js').AttachmentDraft[]} [attachments] Its files (bytes in `files`).
 * @property {number} v Format version.
 */

/**
 * A file of a pending message, with its bytes: kept until the message is stored on the server
 * (or discarded).
 * @typedef {object} FileRecord
 * @property {string} id The upload id.
 * @property {string} message The message it belongs to.
 * @property {number} position Its place among the message's files.
 * @property {string} name
 * @property {string} type
 * @property {number} size
 * @property {Blob} blob
 */

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** @param {IDBTransaction} tx @returns {Promise<void>} */
function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** The IndexedDB store of one user on this origin. */
export class Store {
  /** @param {IDBDatabase} db @param {string} name */
  constructor(db, name) {
    this.db = db;
    this.name = name;
  }

  /**
   * Opens (and creates or migrates) the database `name`.
   * @param {string} name
   */
  static async open(name) {
    const request = indexedDB.open(name, FORMAT_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      // Version 1 creates everything; later versions migrate records here, store by store.
      if (!db.objectStoreNames.contains('outbox')) db.createObjectStore('outbox', { keyPath: 'id' });
      if (!db.objectStoreNames.contains('messages')) db.createObjectStore('messages', { keyPath: ['conversation', 'seq'] });
      if (!db.objectStoreNames.contains('conversations')) db.createObjectStore('conversations', { keyPath: 'id' });
      // Version 2: held messages found by id, to keep their `delivered` / `read` status.
      const messages = /** @type {IDBTransaction} */ (request.transaction).objectStore('messages');
      if (!messages.indexNames.contains('by_id')) messages.createIndex('by_id', ['conversation', 'id']);
      // Version 3: the bytes of pending messages' files (outbox records of version 2 have none).
      if (!db.objectStoreNames.contains('files')) {
        db.createObjectStore('files', { keyPath: 'id' }).createIndex('by_message', 'message');
      }
    };
    return new Store(await done(request), name);
  }

  /**
   * What this tab starts from: conversations with their messages, and the outbox records it
   * owns — after adopting those whose tab is gone.
   * @param {string} tab This tab's id.
   * @param {Set<string>} live Tabs alive now.
   * @param {string | null} user
   * @returns {Promise<import('./types.js').Snapshot>}
   */
  async load(tab, live, user) {
    const tx = this.db.transaction(['outbox', 'messages', 'conversations'], 'readwrite');
    const outbox = tx.objectStore('outbox');
    const [records, conversations, messages] = await Promise.all([
      done(/** @type {IDBRequest<OutboxRecord[]>} */ (outbox.getAll())),
      done(tx.objectStore('conversations').getAll()),
      done(tx.objectStore('messages').getAll()),
    ]);
    const mine = [];
    for (const record of records.sort((a, b) => a.created - b.created)) {
      if (record.owner !== tab && live.has(record.owner)) continue;
      if (record.owner !== tab) outbox.put({ ...record, owner: tab });
      mine.push({
        id: record.id, conversation: record.conversation, body: record.body, failed: record.failed, kind: record.kind,
        ...(record.attachments?.length && { attachments: record.attachments }),
      });
    }
    await committed(tx);
    /** @type {Map<string, import('./types.js').ChatMessage[]>} */
    const byConversation = new Map();
    for (const m of messages) {
      const list = byConversation.get(m.conversation) ?? [];
      list.push(m);
      byConversation.set(m.conversation, list);
    }
    const snapshot = {
      user_id: user,
      outbox: mine,
      conversations: conversations.map((c) => ({
        id: c.id, epoch: c.epoch, cursor: c.cursor,
        messages: (byConversation.get(c.id) ?? []).sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0)),
      })),
    };
    return snapshot;
  }

  /**
   * Writes a new outbox record and its files' bytes, in one transaction (before the message is
   * shown): a photo chosen offline survives closing the tab, and no message is kept without its
   * files nor files without their message.
   * @param {Omit<OutboxRecord, 'v'>} record
   * @param {{ id: string, name: string, type: string, blob: Blob }[]} [files] In the order of `record.attachments`.
   */
  async addPending(record, files = []) {
    const tx = this.db.transaction(['outbox', 'files'], 'readwrite');
    tx.objectStore('outbox').put(
      /** @type {OutboxRecord} */ ({ ...record, v: FORMAT_VERSION }));
    const store = tx.objectStore('files');
    files.forEach((f, position) => store.put(/** @type {FileRecord} */ ({
      id: f.id, message: record.id, position, name: f.name, type: f.type, size: f.blob.size, blob: f.blob,
    })));
    await committed(tx);
  }

  /**
   * The files of a pending message, with their bytes, in order.
   * @param {string} message
   * @returns {Promise<FileRecord[]>}
   */
  async files(message) {
    const tx = this.db.transaction('files', 'readonly');
    const records = await done(/** @type {IDBRequest<FileRecord[]>} */ (tx.objectStore('files').index('by_message').getAll(message)));
    return records.sort((a, b) => a.position - b.position);
  }

  /**
   * Persists what a batch of session events says, in one transaction.
   * @param {import('./types.js').SessionEvent[]} events
   */
  async apply(events) {
    const tx = this.db.transaction(['outbox', 'messages', 'conversations', 'files'], 'readwrite');
    const outbox = tx.objectStore('outbox');
    const messages = tx.objectStore('messages');
    const conversations = tx.objectStore('conversations');
    const files = tx.objectStore('files');
    /** Drops a message's files: it is stored on the server (which has them), or discarded. @param {string} id */
    const dropFiles = (id) => {
      done(files.index('by_message').getAllKeys(id)).then((keys) => { for (const key of keys) files.delete(key); });
    };
    for (const e of events) {
      switch (e.type) {
        case 'message': messages.put({ ...e.message, status: kept(e.message.status) }); break;
        case 'cursor': conversations.put({ id: e.conversation, epoch: e.epoch, cursor: e.seq }); break;
        case 'resync':
          messages.delete(IDBKeyRange.bound([e.conversation, 0], [e.conversation, Infinity]));
          conversations.put({ id: e.conversation, epoch: e.epoch, cursor: 0 });
          break;
        case 'discarded': outbox.delete(e.id); dropFiles(e.id); break;
        case 'delivery_status':
          if (kept(e.status)) {
            // Only forward: `read` is never overwritten by a late `delivered`.
            const status = kept(e.status);
            done(messages.index('by_id').get([e.conversation, e.id])).then((held) => {
              if (held && held.status?.name !== 'read') messages.put({ ...held, status });
            });
          }
          if (e.status.name === 'sent') {
            outbox.delete(e.id);
            dropFiles(e.id);
          }
          else if (e.status.name === 'failed' || e.status.name === 'sending') {
            const failed = e.status.name === 'failed' ? [e.status.code, e.status.message] : null;
            const id = e.id;
            done(outbox.get(id)).then((record) => { if (record) outbox.put({ ...record, failed }); });
          }
          break;
        default: break;
      }
    }
    await committed(tx);
  }
}

/**
 * A store that keeps nothing across page loads, where IndexedDB is not available (some private
 * modes): only the files of this page's pending messages, in memory, so they can be uploaded.
 */
export class MemoryStore {
  constructor() {
    /** @type {Map<string, FileRecord[]>} */
    this.pendingFiles = new Map();
  }

  /** @returns {Promise<import('./types.js').Snapshot>} */
  async load() {
    return {};
  }

  /**
   * @param {{ id: string }} record
   * @param {{ id: string, name: string, type: string, blob: Blob }[]} [files]
   */
  async addPending(record, files = []) {
    if (files.length) {
      this.pendingFiles.set(record.id, files.map((f, position) => ({
        id: f.id, message: record.id, position, name: f.name, type: f.type, size: f.blob.size, blob: f.blob,
      })));
    }
  }

  /** @param {string} message @returns {Promise<FileRecord[]>} */
  async files(message) {
    return this.pendingFiles.get(message) ?? [];
  }

  /** @param {import('./types.js').SessionEvent[]} events */
  async apply(events) {
    for (const e of events) {
      if (e.type === 'discarded' || (e.type === 'delivery_status' && e.status.name === 'sent')) this.pendingFiles.delete(e.id);
    }
  }
}
