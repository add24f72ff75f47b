/**
 * Splits text into plain runs and web addresses (`{ href }` parts are http(s) URLs that parse).
 * @param {string} text
 * @returns {({ text: string, href?: string })[]}
 */
export declare function linkParts(text: string): ({
    text: string;
    href?: string;
})[];
/**
 * Whether a message is a few emoji and nothing else (shown large).
 * @param {string} text
 */
export declare function emojiOnly(text: string): boolean;
/**
 * The calendar day of a time in the reader's time zone, as a number (days since the epoch of
 * local midnight), to compare days.
 * @param {number} ms
 */
export declare function dayNumber(ms: number): number;
/**
 * The label of a day separator: "today", "yesterday" (as `t` says them) or the date in the
 * reader's locale (with the year only when it is not this year).
 * @param {number} ms
 * @param {number} now
 * @param {string} locale
 * @param {(key: string) => string} t
 */
export declare function dayLabel(ms: number, now: number, locale: string, t: (key: string) => string): string;
export type Hours = {
    days: string[];
    open: string;
    close: string;
};
/**
 * Whether the business is open at `now` and, if not, when it opens next (a time, so the reader
 * sees it in their own zone). `null` when no hours are given.
 * @param {Hours[]} hours
 * @param {string} timeZone
 * @param {number} now
 * @returns {{ open: true } | { open: false, next: number | null } | null}
 */
export declare function openState(hours: Hours[], timeZone: string, now: number): {
    open: true;
} | {
    open: false;
    next: number | null;
} | null;
/**
 * A size in the reader's language and digits (`2.4 MB`, `٢٫٤ ميغابايت`).
 * @param {number} bytes
 * @param {string} locale
 */
export declare function formatBytes(bytes: number, locale: string): string;
/** A type's short name for a file card: `application/pdf` → `PDF`. @param {string} type */
export declare function typeLabel(type: string): string;
