// Signed links to attachments (docs/protocol.md, section 14.3): `<img src>` and download links
// cannot carry the token, so the SDK asks `GET /v1/attachments/{id}/link` for links that name the
// user and expire. A small cache answers again with the same links until shortly before they
// expire, so a conversation's thumbnails are asked for once, not at every render.

/** A link is asked for again once it has less than this left (a click must not land on an expired one). */
export const LINK_REFRESH_AHEAD_MS = 60_000;
/** Links kept at most (the least recently used go first). */
export const LINK_CACHE_MAX = 200;

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
export function expiryMs(value, now) {
  if (typeof value === 'number' && Number.isFinite(value)) return value < 1e11 ? value * 1000 : value;
  if (typeof value === 'string') {
    const parsed = Date.parse(value);
    if (Number.isFinite(parsed)) return parsed;
  }
  // Unknown: good for the protocol's default lifetime from now, less the margin.
  return now + 300_000;
}

/** Signed links by attachment id, asked for with the user's token. */
export class AttachmentLinks {
  /**
   * @param {object} io
   * @param {string} io.base The server's base URL.
   * @param {() => string} io.token The user's current token.
   * @param {() => number} [io.now] Default `Date.now`.
   * @param {typeof fetch} [io.fetch] Default the global `fetch`.
   */
  constructor(io) {
    this.io = io;
    /** @type {Map<string, { link: AttachmentLink | null, pending: Promise<AttachmentLink> | null }>} */
    this.cache = new Map();
  }

  /**
   * A link still good for a while, if one is cached (for drawing without waiting).
   * @param {string} id
   * @returns {AttachmentLink | undefined}
   */
  peek(id) {
    const link = this.cache.get(id)?.link;
    return link && this.fresh(link) ? link : undefined;
  }

  /**
   * Links to attachment `id`: from the cache while they have more than
   * {@link LINK_REFRESH_AHEAD_MS} left, else asked for again (one request for concurrent calls).
   * Rejects with an Error carrying the server's `code` when refused (`not_found`: the user may
   * not see this file).
   * @param {string} id
   * @returns {Promise<AttachmentLink>}
   */
  get(id) {
    const entry = this.cache.get(id) ?? { link: null, pending: null };
    this.cache.delete(id);
    this.cache.set(id, entry); // most recently used last
    if (entry.link && this.fresh(entry.link)) return Promise.resolve(entry.link);
    entry.pending ??= this.ask(id).then((link) => {
      entry.link = link;
      return link;
    }).finally(() => { entry.pending = null; });
    while (this.cache.size > LINK_CACHE_MAX) this.cache.delete(/** @type {string} */ (this.cache.keys().next().value));
    return entry.pending;
  }

  /** @param {AttachmentLink} link */
  fresh(link) {
    return link.expires_at - (this.io.now ?? Date.now)() > LINK_REFRESH_AHEAD_MS;
  }

  /**
   * @param {string} id
   * @returns {Promise<AttachmentLink>}
   */
  async ask(id) {
    const base = this.io.base.replace(/\/$/, '');
    const f = this.io.fetch ?? globalThis.fetch;
    const response = await f(`${base}/v1/attachments/${encodeURIComponent(id)}/link`, {
      headers: { Authorization: `Bearer ${this.io.token()}` },
    });
    /** @type {any} */
    const doc = await response.json().catch(() => ({}));
    if (!response.ok || typeof doc.url !== 'string') {
      throw Object.assign(new Error(doc.detail ?? `attachment link: HTTP ${response.status}`), { code: doc.code ?? `http_${response.status}` });
    }
    // Relative to the server, which may not be this page's origin.
    const absolute = (/** @type {string} */ path) => new URL(path, `${base}/`).href;
    return {
      url: absolute(doc.url),
      thumb_url: typeof doc.thumb_url === 'string' ? absolute(doc.thumb_url) : '',
      expires_at: expiryMs(doc.expires_at, (this.io.now ?? Date.now)()),
    };
  }
}
