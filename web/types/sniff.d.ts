/** Bytes to read from the start of a file to know its type. */
export declare const SNIFF_BYTES = 16;
/**
 * Each type and the bytes it starts with (`null`: any byte at that position).
 * @type {{ type: string, magic: (number | null)[] }[]}
 */
export declare const SIGNATURES: {
    type: string;
    magic: (number | null)[];
}[];
/** The types the server accepts unless configured otherwise (`attachment_types`). */
export declare const DEFAULT_ATTACHMENT_TYPES: string[];
/**
 * The type `bytes` (a file's start) shows, or null when it is none of {@link SIGNATURES}.
 * @param {Uint8Array} bytes
 * @returns {string | null}
 */
export declare function sniffType(bytes: Uint8Array): string | null;
/**
 * The type of a file or blob from its first bytes.
 * @param {Blob} blob
 * @returns {Promise<string | null>}
 */
export declare function sniffBlob(blob: Blob): Promise<string | null>;
/** Whether files of `type` are shown as pictures (thumbnail, full-size view). @param {string} type */
export declare function isImage(type: string): boolean;
export type FileLimits = {
    attachment_bytes_max?: number;
    attachment_types?: string[];
};
/**
 * What the widget knows of the server's limits on files (`GET /v1/widget`).
 * @typedef {{ attachment_bytes_max?: number, attachment_types?: string[] }} FileLimits
 */
/**
 * Why `file` cannot be sent, as a catalog key and its variables; null when it may go (the
 * server has the last word). Its size against `attachment_bytes_max`, its type read from its
 * first bytes against `attachment_types` — a type this SDK cannot read (the server was configured
 * with more) is left for the server to decide.
 * @param {Blob} file
 * @param {FileLimits} limits
 * @param {string} locale
 * @returns {Promise<{ key: string, vars: Record<string, string | number> } | null>}
 */
export declare function refusal(file: Blob, limits: FileLimits, locale: string): Promise<{
    key: string;
    vars: Record<string, string | number>;
} | null>;
