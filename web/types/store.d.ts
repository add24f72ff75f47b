/** Version of the records' format. An upgrade migrates pending messages, never drops them. */
export declare const FORMAT_VERSION = 2;
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
     * Format version.
     */
    v: number;
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
     * Writes a new outbox record (before the message is shown).
     * @param {Omit<OutboxRecord, 'v'>} record
     */
    addPending(record: Omit<OutboxRecord, 'v'>): Promise<void>;
    /**
     * Persists what a batch of session events says, in one transaction.
     * @param {import('./types.js').SessionEvent[]} events
     */
    apply(events: import('./types.js').SessionEvent[]): Promise<void>;
}
/** A store that keeps nothing, where IndexedDB is not available (some private modes). */
export declare class MemoryStore {
    /** @returns {Promise<import('./types.js').Snapshot>} */
    load(): Promise<import('./types.js').Snapshot>;
    /** @param {unknown} _record */
    addPending(_record: unknown): Promise<void>;
    /** @param {unknown} _events */
    apply(_events: unknown): Promise<void>;
}
