/** A link is asked for again once it has less than this left (a click must not land on an expired one). */
export declare const LINK_REFRESH_AHEAD_MS = 60000;
/** Links kept at most (the least recently used go first). */
export declare const LINK_CACHE_MAX = 200;
export type AttachmentLink = {
    /**
     * The file.
     */
    url: string;
    /**
     * Its thumbnail (JPEG; images only).
     */
    thumb_url: string;
    /**
     * When they stop working, ms since the Unix epoch.
     */
    expires_at: number;
};
/**
 * Absolute signed links to one attachment.
 * @typedef {object} AttachmentLink
 * @property {string} url The file.
 * @property {string} thumb_url Its thumbnail (JPEG; images only).
 * @property {number} expires_at When they stop working, ms since the Unix epoch.
 */
/**
 * When a link expires, in ms. The server's `expires_at` is read as seconds since the epoch when
 * it is a number that small (as token expiries are), as ms otherwise, or as a date string.
 * @param {unknown} value
 * @param {number} now
 */
export declare function expiryMs(value: unknown, now: number): number;
/** Signed links by attachment id, asked for with the user's token. */
export declare class AttachmentLinks {
    io: {
        base: string;
        token: () => string;
        now?: () => number;
        fetch?: typeof fetch;
    };
    /** @type {Map<string, { link: AttachmentLink | null, pending: Promise<AttachmentLink> | null }>} */
    cache: Map<string, {
        link: AttachmentLink | null;
        pending: Promise<AttachmentLink> | null;
    }>;
    /**
     * @param {object} io
     * @param {string} io.base The server's base URL.
     * @param {() => string} io.token The user's current token.
     * @param {() => number} [io.now] Default `Date.now`.
     * @param {typeof fetch} [io.fetch] Default the global `fetch`.
     */
    constructor(io: {
        base: string;
        token: () => string;
        now?: () => number;
        fetch?: typeof fetch;
    });
    /**
     * A link still good for a while, if one is cached (for drawing without waiting).
     * @param {string} id
     * @returns {AttachmentLink | undefined}
     */
    peek(id: string): AttachmentLink | undefined;
    /**
     * Links to attachment `id`: from the cache while they have more than
     * {@link LINK_REFRESH_AHEAD_MS} left, else asked for again (one request for concurrent calls).
     * Rejects with an Error carrying the server's `code` when refused (`not_found`: the user may
     * not see this file).
     * @param {string} id
     * @returns {Promise<AttachmentLink>}
     */
    get(id: string): Promise<AttachmentLink>;
    /** @param {AttachmentLink} link */
    fresh(link: AttachmentLink): boolean;
    /**
     * @param {string} id
     * @returns {Promise<AttachmentLink>}
     */
    ask(id: string): Promise<AttachmentLink>;
}
