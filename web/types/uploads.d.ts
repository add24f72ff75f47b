/** Bytes per `PATCH`: small enough that a cut on a phone costs little, large enough to be few. */
export declare const CHUNK_BYTES: number;
/** Why an upload stopped: the server's code, and whether trying again can help. */
export declare class UploadError extends Error {
    code: string;
    permanent: boolean;
    retryAfterMs: number | null;
    /**
     * @param {string} code The server's code (`unsupported_type`, …), or `network` when no answer came.
     * @param {string} message
     * @param {boolean} permanent
     * @param {number | null} [retryAfterMs] The server's `retry_after_ms`, when it gave one.
     */
    constructor(code: string, message: string, permanent: boolean, retryAfterMs?: number | null);
}
export type UploadState = {
    id: string;
    conversation: string;
    name: string;
    length: number;
    /**
     * Bytes stored and durable: resume from here.
     */
    offset: number;
    state: 'receiving' | 'complete' | 'refused';
    /**
     * Once complete: the type found in the content.
     */
    type?: string;
    size?: number;
    sha256?: string;
    width?: number;
    height?: number;
    thumb?: boolean;
};
export type UploadFile = {
    /**
     * The upload id (a UUID the device made).
     */
    id: string;
    conversation: string;
    name: string;
    /**
     * The type the device believes ('' when it does not know).
     */
    type: string;
    /**
     * The bytes.
     */
    blob: Blob;
};
export type UploaderIo = {
    /**
     * The server's base URL (`http://host:port`).
     */
    base: string;
    /**
     * The user's current token (it may change between requests).
     */
    token: () => string;
    /**
     * Waits up to `ms` (a
     * driver ends the wait early when the network comes back); rejects when `signal` aborts.
     */
    sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
    /**
     * A uniform sample in [0, 1), for the backoff's jitter.
     */
    random: () => number;
    /**
     * Default: the global `fetch`.
     */
    fetch?: typeof fetch;
    /**
     * Resolves once the device has a
     * network (uploads pause while it has none).
     */
    online?: (signal?: AbortSignal) => Promise<void>;
    /**
     * The token was refused: ask the app for a fresh one.
     */
    authFailed?: () => void;
    /**
     * Backoff tunables.
     */
    config?: Partial<import('./types.js').Config>;
    /**
     * Default {@link CHUNK_BYTES}.
     */
    chunkBytes?: number;
};
/**
 * An upload as the server answers it.
 * @typedef {object} UploadState
 * @property {string} id
 * @property {string} conversation
 * @property {string} name
 * @property {number} length
 * @property {number} offset Bytes stored and durable: resume from here.
 * @property {'receiving' | 'complete' | 'refused'} state
 * @property {string} [type] Once complete: the type found in the content.
 * @property {number} [size]
 * @property {string} [sha256]
 * @property {number} [width]
 * @property {number} [height]
 * @property {boolean} [thumb]
 */
/**
 * One file to upload.
 * @typedef {object} UploadFile
 * @property {string} id The upload id (a UUID the device made).
 * @property {string} conversation
 * @property {string} name
 * @property {string} type The type the device believes ('' when it does not know).
 * @property {Blob} blob The bytes.
 */
/**
 * What the uploader needs from its driver.
 * @typedef {object} UploaderIo
 * @property {string} base The server's base URL (`http://host:port`).
 * @property {() => string} token The user's current token (it may change between requests).
 * @property {(ms: number, signal?: AbortSignal) => Promise<void>} sleep Waits up to `ms` (a
 *   driver ends the wait early when the network comes back); rejects when `signal` aborts.
 * @property {() => number} random A uniform sample in [0, 1), for the backoff's jitter.
 * @property {typeof fetch} [fetch] Default: the global `fetch`.
 * @property {(signal?: AbortSignal) => Promise<void>} [online] Resolves once the device has a
 *   network (uploads pause while it has none).
 * @property {() => void} [authFailed] The token was refused: ask the app for a fresh one.
 * @property {Partial<import('./types.js').Config>} [config] Backoff tunables.
 * @property {number} [chunkBytes] Default {@link CHUNK_BYTES}.
 */
/** Uploads files, resuming after any interruption, retrying transient failures forever. */
export declare class Uploader {
    io: UploaderIo;
    config: {
        backoffFirstMs: number;
        backoffBaseMs: number;
        backoffCapMs: number;
        connectTimeoutMs: number;
        heartbeatTimeoutMs: number;
        sendWindow: number;
        seed: number;
    };
    chunkBytes: number;
    /** Uploads created (or found) by this uploader: after an interruption they are asked, not made. @type {Set<string>} */
    known: Set<string>;
    /** @param {UploaderIo} io */
    constructor(io: UploaderIo);
    /**
     * Uploads `file` until the server holds it complete; returns the server's description.
     * Transient failures (no network, a cut request, 5xx, rate limits, an expired token) are
     * retried with backoff and full jitter; a permanent refusal throws an {@link UploadError}
     * with `permanent: true`; an abort of `signal` throws its reason.
     * @param {UploadFile} file
     * @param {(offset: number) => void} [onProgress] Bytes stored on the server so far.
     * @param {AbortSignal} [signal]
     * @returns {Promise<UploadState>}
     */
    upload(file: UploadFile, onProgress?: (offset: number) => void, signal?: AbortSignal): Promise<UploadState>;
    /**
     * One attempt: find where the server is, then send the rest chunk by chunk.
     * @param {UploadFile} file
     * @param {(offset: number) => void} onProgress
     * @param {AbortSignal | undefined} signal
     * @param {() => void} progressed A chunk was stored: the backoff starts over.
     * @returns {Promise<UploadState>}
     */
    transfer(file: UploadFile, onProgress: (offset: number) => void, signal: AbortSignal | undefined, progressed: () => void): Promise<UploadState>;
    /**
     * `PUT /v1/uploads/{id}`: creates the upload, or answers the existing one (same id, same
     * conversation, length and name) with its offset.
     * @param {UploadFile} file
     * @param {AbortSignal | undefined} signal
     * @returns {Promise<UploadState>}
     */
    create(file: UploadFile, signal: AbortSignal | undefined): Promise<UploadState>;
    /**
     * `GET /v1/uploads/{id}`: where the server is; an upload it no longer has (past
     * `upload_ttl_s`) is made again.
     * @param {UploadFile} file
     * @param {AbortSignal | undefined} signal
     * @returns {Promise<UploadState>}
     */
    state(file: UploadFile, signal: AbortSignal | undefined): Promise<UploadState>;
    /**
     * `PATCH /v1/uploads/{id}` with `chunk` at `offset`. A 409 `offset_mismatch` is no failure:
     * the answer carries the server's offset, from which the next chunk goes.
     * @param {UploadFile} file
     * @param {number} offset
     * @param {Blob} chunk
     * @param {AbortSignal | undefined} signal
     * @returns {Promise<UploadState>}
     */
    patch(file: UploadFile, offset: number, chunk: Blob, signal: AbortSignal | undefined): Promise<UploadState>;
    /**
     * @param {string} method
     * @param {string} id
     * @param {Record<string, string>} headers
     * @param {BodyInit | undefined} body
     * @param {AbortSignal | undefined} signal
     */
    request(method: string, id: string, headers: Record<string, string>, body: BodyInit | undefined, signal: AbortSignal | undefined): Promise<Response>;
}
