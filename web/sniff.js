// The type of a file from its first bytes, by the same magic numbers as the server
// (docs/protocol.md, section 14.1): the name and the browser's idea of the type decide nothing.
// The widget refuses a file before uploading it when this finds no allowed type; the server
// checks again, and its answer is the one that counts.

import { formatBytes } from './format.js';
import { ATTACHMENT_BYTES_MAX } from './types.js';

/** Bytes to read from the start of a file to know its type. */
export const SNIFF_BYTES = 16;

/**
 * Each type and the bytes it starts with (`null`: any byte at that position).
 * @type {{ type: string, magic: (number | null)[] }[]}
 */
export const SIGNATURES = [
  { type: 'image/jpeg', magic: [0xff, 0xd8, 0xff] },
  { type: 'image/png', magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'image/gif', magic: [...'GIF87a'].map((c) => c.charCodeAt(0)) },
  { type: 'image/gif', magic: [...'GIF89a'].map((c) => c.charCodeAt(0)) },
  // RIFF, four bytes of length, WEBP.
  { type: 'image/webp', magic: [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50] },
  { type: 'application/pdf', magic: [...'%PDF-'].map((c) => c.charCodeAt(0)) },
];

/** The types the server accepts unless configured otherwise (`attachment_types`). */
export const DEFAULT_ATTACHMENT_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'application/pdf'];

/**
 * The type `bytes` (a file's start) shows, or null when it is none of {@link SIGNATURES}.
 * @param {Uint8Array} bytes
 * @returns {string | null}
 */
export function sniffType(bytes) {
  for (const { type, magic } of SIGNATURES) {
    if (bytes.length >= magic.length && magic.every((b, i) => b === null || bytes[i] === b)) return type;
  }
  return null;
}

/**
 * The type of a file or blob from its first bytes.
 * @param {Blob} blob
 * @returns {Promise<string | null>}
 */
export async function sniffBlob(blob) {
  return sniffType(new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer()));
}

/** Whether files of `type` are shown as pictures (thumbnail, full-size view). @param {string} type */
export function isImage(type) {
  return type.startsWith('image/');
}

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
export async function refusal(file, limits, locale) {
  const name = /** @type {File} */ (file).name || '';
  const max = Number.isSafeInteger(limits.attachment_bytes_max) ? /** @type {number} */ (limits.attachment_bytes_max) : ATTACHMENT_BYTES_MAX;
  const allowed = Array.isArray(limits.attachment_types) ? limits.attachment_types : DEFAULT_ATTACHMENT_TYPES;
  if (file.size === 0) return { key: 'attach.empty', vars: { name } };
  if (file.size > max) return { key: 'attach.too_large', vars: { name, max: formatBytes(max, locale) } };
  const type = await sniffBlob(file);
  const readable = new Set(SIGNATURES.map((s) => s.type));
  if (type ? !allowed.includes(type) : allowed.every((t) => readable.has(t))) return { key: 'attach.unsupported', vars: { name } };
  return null;
}
