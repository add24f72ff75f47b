// Wire frames of protocol version 1 (docs/protocol.md), decoded by the Rust crate's rules and
// encoded in canonical form; the shared vectors hold both SDKs to it.

/** The protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;

/**
 * A field's kind: `str`, `uint`, `bool`, `role`, `obj` (any JSON object), a nested shape, or a list of one; a leading
 * `?` marks an optional field (absent or null), `[]` a list, {@link Optional} an optional list or shape.
 * @typedef {string | Shape | [Kind] | Optional} Kind
 * @typedef {{ [field: string]: Kind }} Shape
 */

/** An optional field (absent or null) of a kind that is not a plain string. */
class Optional {
  /** @param {Kind} kind */
  constructor(kind) {
    this.kind = kind;
  }
}

/** A file a stored message carries (docs/protocol.md, section 14.2). @type {Shape} */
const ATTACHMENT = {
  id: 'str', name: 'str', type: 'str', size: 'uint', sha256: 'str', width: '?uint', height: '?uint',
  thumb: '?bool',
};

/** @type {Shape} */
const CURSOR = { conversation: 'str', seq: 'uint', epoch: '?uint' };
/** @type {Shape} */
const PARTICIPANT = { user_id: 'str', role: 'role', delivered: 'uint', read: 'uint' };
/** @type {Shape} */
const STATE = {
  id: 'str', epoch: 'uint', last_seq: 'uint', participants: [PARTICIPANT], status: '?str',
  assignee: '?str', metadata: '?obj', closed: '?bool',
};

/** Client frames (device → server), fields in canonical order. @type {Record<string, Shape>} */
export const CLIENT_FRAMES = {
  hello: { v: 'uint', token: 'str', cursors: [CURSOR], offline_ms: '?uint', pending: '?uint' },
  send: { id: 'str', conversation: 'str', body: 'str', kind: '?str', attachments: new Optional(['str']) },
  receipt: { ref: '?str', conversation: 'str', delivered: '?uint', read: '?uint' },
  typing: { conversation: 'str', active: 'bool' },
  presence: { status: 'str' },
  ping: { ref: '?str' },
  pong: {},
};

/** Server frames (server → device), fields in canonical order. @type {Record<string, Shape>} */
export const SERVER_FRAMES = {
  welcome: {
    v: 'uint', user_id: 'str', role: 'role', connection_id: 'str', heartbeat_ms: 'uint',
    timeout_ms: 'uint', conversations: [STATE],
  },
  message: {
    conversation: 'str', id: 'str', seq: 'uint', sender: 'str', role: 'role', body: 'str',
    ts: 'uint', kind: '?str', data: '?obj', attachments: new Optional([ATTACHMENT]),
  },
  ack: { id: 'str', conversation: 'str', seq: 'uint', ts: 'uint' },
  synced: { conversation: 'str', seq: 'uint' },
  receipt: { conversation: 'str', user_id: 'str', role: 'role', delivered: 'uint', read: 'uint' },
  typing: { conversation: 'str', user_id: 'str', role: 'role', active: 'bool' },
  joined: { conversation: STATE },
  left: { conversation: 'str' },
  resync: { conversation: 'str', epoch: 'uint', last_seq: 'uint' },
  error: {
    ref: '?str', frame: '?str', code: 'str', message: 'str', permanent: 'bool',
    retry_after_ms: '?uint',
  },
  skip: { conversation: 'str', seq: 'uint' },
  presence: { conversation: 'str', user_id: 'str', status: 'str' },
  ping: { ts: 'uint' },
  pong: { ref: '?str' },
};

/** Why a text did not decode: the error the server would answer with. */
export class FrameError extends Error {
  /**
   * @param {'malformed_frame' | 'unknown_frame'} code
   * @param {string} message
   * @param {string | null} ref The request it names, if any.
   * @param {string | null} frame The frame's `type`, when it is a string.
   */
  constructor(code, message, ref, frame) {
    super(message);
    this.code = code;
    this.ref = ref;
    this.frame = frame;
  }
}

/**
 * Checks `value` against `kind`; returns the canonical value or throws a message.
 * @param {unknown} value
 * @param {Kind} kind
 * @param {string} path
 * @returns {unknown}
 */
function check(value, kind, path) {
  if (kind instanceof Optional) return check(value, kind.kind, path);
  if (Array.isArray(kind)) {
    if (!Array.isArray(value)) throw `${path} must be a list`;
    return value.map((item, i) => check(item, kind[0], `${path}[${i}]`));
  }
  if (typeof kind === 'object') return shape(value, kind, path);
  const ok = {
    str: typeof value === 'string',
    uint: Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0,
    bool: typeof value === 'boolean',
    obj: typeof value === 'object' && value !== null && !Array.isArray(value),
    role: value === 'client' || value === 'operator',
  }[kind];
  if (!ok) throw `${path} must be a ${kind}`;
  return value;
}

/**
 * @param {unknown} value
 * @param {Shape} spec
 * @param {string} path
 * @returns {Record<string, unknown>}
 */
function shape(value, spec, path) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw `${path} must be an object`;
  }
  const object = /** @type {Record<string, unknown>} */ (value);
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const [field, kind] of Object.entries(spec)) {
    const optional = (typeof kind === 'string' && kind.startsWith('?')) || kind instanceof Optional;
    const present = Object.prototype.hasOwnProperty.call(object, field);
    if (optional) {
      if (present && object[field] !== null) {
        const inner = typeof kind === 'string' ? kind.slice(1) : kind;
        out[field] = check(object[field], inner, `${path}.${field}`);
      }
    } else if (!present) {
      throw `missing field \`${field}\``;
    } else {
      out[field] = check(object[field], kind, `${path}.${field}`);
    }
  }
  return out;
}

/**
 * Decodes one text message with a table of frames.
 * @param {string} text
 * @param {Record<string, Shape>} table
 * @param {Record<string, Record<string, unknown>>} defaults
 * @returns {Record<string, unknown> & { type: string }}
 */
function decode(text, table, defaults) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError('malformed_frame', 'a frame must be one JSON object', null, null);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FrameError('malformed_frame', 'a frame must be a JSON object', null, null);
  }
  const type = typeof value.type === 'string' ? value.type : null;
  // How the server names the request of a frame it cannot decode (docs/protocol.md, `error`).
  const named = value.type === 'send' ? value.id : value.ref;
  const ref = typeof named === 'string' ? named : null;
  if (type === null) {
    throw new FrameError('malformed_frame', 'a frame needs a string `type`', ref, null);
  }
  const spec = table[type];
  if (!spec) throw new FrameError('unknown_frame', `unknown frame type \`${type}\``, ref, type);
  try {
    const frame = shape({ ...defaults[type], ...value }, spec, type);
    return { type, ...frame };
  } catch (reason) {
    throw new FrameError('malformed_frame', `invalid \`${type}\` frame: ${reason}`, ref, type);
  }
}

/**
 * Decodes a frame from the server. Throws a {@link FrameError} if it is not one.
 * @param {string} text One WebSocket text message.
 * @returns {import('./types.js').ServerFrame}
 */
export function decodeServerFrame(text) {
  return /** @type {any} */ (decode(text, SERVER_FRAMES, {}));
}

/**
 * Decodes a frame a device sends, with the server's rules (used by tests and tools).
 * Throws a {@link FrameError} carrying the code, `ref` and frame type the server would answer.
 * @param {string} text
 * @returns {import('./types.js').ClientFrame}
 */
export function decodeClientFrame(text) {
  // `hello.cursors` may be left out (default []), but null is refused.
  return /** @type {any} */ (decode(text, CLIENT_FRAMES, { hello: { cursors: [] } }));
}

/**
 * Encodes a frame a device sends, in canonical form: fields in protocol order, absent optional
 * fields omitted.
 * @param {import('./types.js').ClientFrame} frame
 * @returns {string}
 */
export function encodeClientFrame(frame) {
  return JSON.stringify({ type: frame.type, ...shape(frame, CLIENT_FRAMES[frame.type], frame.type) });
}

/**
 * Encodes a server frame in canonical form (for tests and model servers).
 * @param {import('./types.js').ServerFrame} frame
 * @returns {string}
 */
export function encodeServerFrame(frame) {
  return JSON.stringify({ type: frame.type, ...shape(frame, SERVER_FRAMES[frame.type], frame.type) });
}
