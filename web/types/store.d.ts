/** Version of the records' format. An upgrade migrates pending messages, never drops them. */
export declare const FORMAT_VERSION = 3;
export type OutboxRecord = {
    id: string;
    conversation: string;
    body: string;
    failed: [string, string] | null;
    /**
     * The tab that sends it.
     */
    owner: string;
    /**
     * Creation time (ms), for order.
     */
    created: number;
    kind?: string | null;
    /**
     * Its files (bytes in `files`).
     */
    attachments?: import('./types.js').AttachmentDraft[];
    /**
     * Format version.
     */
    v: number;
};
export type FileRecord = {
    /**
     * The upload id.
     */
    id: string;
    /**
     * The message it belongs to.
     */
    message: string;
    /**
     * Its place among the message's files.
     */
    position: number;
    name: string;
    type: string;
    size: number;
    blob: Blob;
};
/** The IndexedDB store of one user on this origin. */
export declare class Store {
    db: IDBDatabase;
    name: string;
    /** @param {IDBDatabase} db @param {string} name */
    constructor(db: IDBDatabase, name: string);
    /**
     * Opens (and creates or migrates) the database `name`.
     * @param {string} name
     */
    static open(name: string): Promise<Store>;
    /**
     * What this tab starts from: conversations with their messages, and the outbox records it
     * owns — after adopting those whose tab is gone.
     * @param {string} tab This tab's id.
     * @param {Set<string>} live Tabs alive now.
     * @param {string | null} user
     * @returns {Promise<import('./types.js').Snapshot>}
     */
    load(tab: string, live: Set<string>, user: string | null): Promise<import('./types.js').Snapshot>;
    /**
     * Writes a new outbox record and its files' bytes, in one transaction (before the message is
     * shown): a photo chosen offline survives closing the tab, and no message is kept without its
     * files nor files without their message.
     * @param {Omit<OutboxRecord, 'v'>} record
     * @param {{ id: string, name: string, type: string, blob: Blob }[]} [files] In the order of `record.attachments`.
     */
    addPending(record: Omit<OutboxRecord, 'v'>, files?: {
        id: string;
        name: string;
        type: string;
        blob: Blob;
    }[]): Promise<void>;
    /**
     * The files of a pending message, with their bytes, in order.
     * @param {string} message
     * @returns {Promise<FileRecord[]>}
     */
    files(message: string): Promise<FileRecord[]>;
    /**
     * Persists what a batch of session events says, in one transaction.
     * @param {import('./types.js').SessionEvent[]} events
     */
    apply(events: import('./types.js').SessionEvent[]): Promise<void>;
}
/**
 * A store that keeps nothing across page loads, where IndexedDB is not available (some private
 * modes): only the files of this page's pending messages, in memory, so they can be uploaded.
 */
export declare class MemoryStore {
    /** @type {Map<string, FileRecord[]>} */
    pendingFiles: Map<string, FileRecord[]>;
    constructor();
    /** @returns {Promise<import('./types.js').Snapshot>} */
    load(): Promise<import('./types.js').Snapshot>;
    /**
     * @param {{ id: string }} record
     * @param {{ id: string, name: string, type: string, blob: Blob }[]} [files]
     */
    addPending(record: {
        id: string;
    }, files?: {
        id: string;
        name: string;
        type: string;
        blob: Blob;
    }[]): Promise<void>;
    /** @param {string} message @returns {Promise<FileRecord[]>} */
    files(message: string): Promise<FileRecord[]>;
    /** @param {import('./types.js').SessionEvent[]} events */
    apply(events: import('./types.js').SessionEvent[]): Promise<void>;
}
