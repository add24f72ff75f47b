/** The protocol version this SDK speaks. */
export declare const PROTOCOL_VERSION = 1;
export type Kind = string | Shape | [Kind] | Optional;
export type Shape = {
    [field: string]: Kind;
};
/**
 * A field's kind: `str`, `uint`, `bool`, `role`, `obj` (any JSON object), a nested shape, or a list of one; a leading
 * `?` marks an optional field (absent or null), `[]` a list, {@link Optional} an optional list or shape.
 * @typedef {string | Shape | [Kind] | Optional} Kind
 * @typedef {{ [field: string]: Kind }} Shape
 */
/** An optional field (absent or null) of a kind that is not a plain string. */
declare class Optional {
    kind: Kind;
    /** @param {Kind} kind */
    constructor(kind: Kind);
}
/** Client frames (device → server), fields in canonical order. @type {Record<string, Shape>} */
export declare const CLIENT_FRAMES: Record<string, Shape>;
/** Server frames (server → device), fields in canonical order. @type {Record<string, Shape>} */
export declare const SERVER_FRAMES: Record<string, Shape>;
/** Why a text did not decode: the error the server would answer with. */
export declare class FrameError extends Error {
    code: "malformed_frame" | "unknown_frame";
    ref: string | null;
    frame: string | null;
    /**
     * @param {'malformed_frame' | 'unknown_frame'} code
     * @param {string} message
     * @param {string | null} ref The request it names, if any.
     * @param {string | null} frame The frame's `type`, when it is a string.
     */
    constructor(code: 'malformed_frame' | 'unknown_frame', message: string, ref: string | null, frame: string | null);
}
/**
 * Decodes a frame from the server. Throws a {@link FrameError} if it is not one.
 * @param {string} text One WebSocket text message.
 * @returns {import('./types.js').ServerFrame}
 */
export declare function decodeServerFrame(text: string): import('./types.js').ServerFrame;
/**
 * Decodes a frame a device sends, with the server's rules (used by tests and tools).
 * Throws a {@link FrameError} carrying the code, `ref` and frame type the server would answer.
 * @param {string} text
 * @returns {import('./types.js').ClientFrame}
 */
export declare function decodeClientFrame(text: string): import('./types.js').ClientFrame;
/**
 * Encodes a frame a device sends, in canonical form: fields in protocol order, absent optional
 * fields omitted.
 * @param {import('./types.js').ClientFrame} frame
 * @returns {string}
 */
export declare function encodeClientFrame(frame: import('./types.js').ClientFrame): string;
/**
 * Encodes a server frame in canonical form (for tests and model servers).
 * @param {import('./types.js').ServerFrame} frame
 * @returns {string}
 */
export declare function encodeServerFrame(frame: import('./types.js').ServerFrame): string;
export {};
