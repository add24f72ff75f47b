// Resumable uploads of attachments (docs/protocol.md, section 14.1): `PUT` creates the upload
// under the device's id, `PATCH` appends chunks at the offset the server stored, and after any
// interruption `GET` says where to resume — the server's offset is the only truth, never what
// this side believes it sent. The clock, the network, the token and randomness come from the
// driver, so tests cut requests anywhere and run on virtual time.

import { DEFAULT_CONFIG, backoff } from './types.js';

/** Bytes per `PATCH`: small enough that a cut on a phone costs little, large enough to be few. */
export const CHUNK_BYTES = 512 * 1024;

/**
 * Codes after which the same request can never succeed: the message fails with the code as its
 * reason. (`not_found` on an existing upload is not one: an upload past its time is made again.)
 */
const PERMANENT = new Set([
  'attachment_too_large', 'unsupported_type', 'attachment_not_found', 'id_conflict', 'invalid_id',
  'invalid_conversation_id', 'bad_request', 'forbidden', 'frame_too_large', 'method_not_allowed',
]);

/** Codes that mean the token must be renewed before anything else works. */
const AUTH = new Set(['token_expired', 'token_invalid', 'unauthorized']);

/** Why an upload stopped: the server's code, and whether trying again can help. */
export class UploadError extends Error {
  /**
   * @param {string} code The server's code (`unsupported_type`, …), or `network` when no answer came.
   * @param {string} message
   * @param {boolean} permanent
   * @param {number | null} [retryAfterMs] The server's `retry_after_ms`, when it gave one.
   */
  constructor(code, message, permanent, retryAfterMs = null) {
    super(message);
    this.name = 'UploadError';
    this.code = code;
    this.permanent = permanent;
    this.retryAfterMs = retryAfterMs;
  }
}

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
export class Uploader {
  /** @param {UploaderIo} io */
  constructor(io) {
    this.io = io;
    this.config = { ...DEFAULT_CONFIG, ...io.config };
    this.chunkBytes = io.chunkBytes ?? CHUNK_BYTES;
    /** Uploads created (or found) by this uploader: after an interruption they are asked, not made. @type {Set<string>} */
    this.known = new Set();
  }

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
  async upload(file, onProgress = () => {}, signal) {
    let attempt = 0;
    for (;;) {
      signal?.throwIfAborted();
      await this.io.online?.(signal);
      try {
        return await this.transfer(file, onProgress, signal, () => { attempt = 0; });
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        const error = asUploadError(e);
        if (error.permanent) throw error;
        if (AUTH.has(error.code)) this.io.authFailed?.();
        const delay = error.retryAfterMs ?? backoff(this.config, attempt, this.io.random());
        attempt += 1;
        await this.io.sleep(delay, signal);
      }
    }
  }

  /**
   * One attempt: find where the server is, then send the rest chunk by chunk.
   * @param {UploadFile} file
   * @param {(offset: number) => void} onProgress
   * @param {AbortSignal | undefined} signal
   * @param {() => void} progressed A chunk was stored: the backoff starts over.
   * @returns {Promise<UploadState>}
   */
  async transfer(file, onProgress, signal, progressed) {
    const length = file.blob.size;
    let current = this.known.has(file.id) ? await this.state(file, signal) : await this.create(file, signal);
    this.known.add(file.id);
    for (;;) {
      if (current.state === 'complete') {
        onProgress(length);
        return current;
      }
      if (current.state === 'refused') {
        throw new UploadError('unsupported_type', 'the file is not of a type this server accepts', true);
      }
      const offset = current.offset;
      onProgress(offset);
      if (offset >= length) {
        // Every byte is stored but the answer that said so was lost: an empty PATCH at the
        // stored offset is answered like GET.
        current = await this.patch(file, offset, new Blob([]), signal);
        if (current.state === 'receiving') throw new UploadError('unavailable', 'the upload is not complete yet', false);
        continue;
      }
      const chunk = file.blob.slice(offset, Math.min(offset + this.chunkBytes, length));
      current = await this.patch(file, offset, chunk, signal);
      if (current.offset > offset) progressed();
    }
  }

  /**
   * `PUT /v1/uploads/{id}`: creates the upload, or answers the existing one (same id, same
   * conversation, length and name) with its offset.
   * @param {UploadFile} file
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<UploadState>}
   */
  async create(file, signal) {
    const body = { conversation: file.conversation, length: file.blob.size, name: file.name, ...(file.type && { type: file.type }) };
    const response = await this.request('PUT', file.id, { 'Content-Type': 'application/json' }, JSON.stringify(body), signal);
    if (!response.ok) throw await problem(response);
    return asUpload(await response.json());
  }

  /**
   * `GET /v1/uploads/{id}`: where the server is; an upload it no longer has (past
   * `upload_ttl_s`) is made again.
   * @param {UploadFile} file
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<UploadState>}
   */
  async state(file, signal) {
    const response = await this.request('GET', file.id, {}, undefined, signal);
    if (response.status === 404) return this.create(file, signal);
    if (!response.ok) throw await problem(response);
    return asUpload(await response.json());
  }

  /**
   * `PATCH /v1/uploads/{id}` with `chunk` at `offset`. A 409 `offset_mismatch` is no failure:
   * the answer carries the server's offset, from which the next chunk goes.
   * @param {UploadFile} file
   * @param {number} offset
   * @param {Blob} chunk
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<UploadState>}
   */
  async patch(file, offset, chunk, signal) {
    const headers = { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' };
    const response = await this.request('PATCH', file.id, headers, chunk, signal);
    if (response.status === 404) return this.create(file, signal);
    if (response.status === 409) {
      const error = await problem(response);
      const stored = error.offset;
      if (error.code === 'offset_mismatch' && stored !== undefined && stored !== offset) {
        return { id: file.id, conversation: file.conversation, name: file.name, length: file.blob.size, offset: stored, state: 'receiving' };
      }
      throw error;
    }
    if (!response.ok) throw await problem(response);
    const answer = asUpload(await response.json());
    const header = Number(response.headers.get('Upload-Offset'));
    if (!Number.isSafeInteger(answer.offset) && Number.isSafeInteger(header)) answer.offset = header;
    return answer;
  }

  /**
   * @param {string} method
   * @param {string} id
   * @param {Record<string, string>} headers
   * @param {BodyInit | undefined} body
   * @param {AbortSignal | undefined} signal
   */
  request(method, id, headers, body, signal) {
    const f = this.io.fetch ?? globalThis.fetch;
    const url = `${this.io.base.replace(/\/$/, '')}/v1/uploads/${encodeURIComponent(id)}`;
    return f(url, { method, headers: { ...headers, Authorization: `Bearer ${this.io.token()}` }, body, signal });
  }
}

/**
 * Checks the fields this module relies on.
 * @param {any} value
 * @returns {UploadState}
 */
function asUpload(value) {
  if (!value || typeof value !== 'object' || !Number.isSafeInteger(value.offset) || typeof value.state !== 'string') {
    throw new UploadError('unavailable', 'the server answered an upload without `offset` and `state`', false);
  }
  return value;
}

/**
 * The problem document of an error answer as an {@link UploadError} (with the server's offset
 * of an `offset_mismatch`).
 * @param {Response} response
 * @returns {Promise<UploadError & { offset?: number }>}
 */
async function problem(response) {
  /** @type {any} */
  let doc = {};
  try {
    doc = await response.json();
  } catch {
    // No JSON (a proxy's page): judged by the status alone.
  }
  const code = typeof doc?.code === 'string' ? doc.code : response.status >= 500 ? 'unavailable' : `http_${response.status}`;
  const retryHeader = Number(response.headers.get('Retry-After'));
  const retryAfterMs = Number.isSafeInteger(doc?.retry_after_ms) ? doc.retry_after_ms
    : Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader * 1000 : null;
  const permanent = PERMANENT.has(code) || (response.status === 404 && code === 'not_found');
  /** @type {UploadError & { offset?: number }} */
  const error = new UploadError(code, String(doc?.detail ?? response.statusText ?? code), permanent, retryAfterMs);
  const offset = Number.isSafeInteger(doc?.offset) ? doc.offset : Number(response.headers.get('Upload-Offset'));
  if (Number.isSafeInteger(offset)) error.offset = offset;
  return error;
}

/** @param {unknown} e @returns {UploadError} */
function asUploadError(e) {
  if (e instanceof UploadError) return e;
  // fetch rejects with a TypeError when no answer came (offline, reset, cut mid-body).
  return new UploadError('network', e instanceof Error ? e.message : String(e), false);
}
