export type Text = string | Partial<Record<Intl.LDMLPluralRule, string>>;
export type Catalog = Record<string, Text>;
/** @typedef {string | Partial<Record<Intl.LDMLPluralRule, string>>} Text */
/** @typedef {Record<string, Text>} Catalog */
/** The catalogs in memory, by language tag. English always; others once loaded or registered. @type {Record<string, Catalog>} */
export declare const CATALOGS: Record<string, Catalog>;
/**
 * Whether the texts of `locale`'s language are all here: English, a shipped language already
 * loaded, or a language only a page registered.
 * @param {string} locale
 */
export declare function isLoaded(locale: string): boolean;
/**
 * Fetches the catalog of `locale`'s language if it is shipped and not here yet; resolves when
 * its texts can be looked up (at once when they already can).
 * @param {string} locale
 * @returns {Promise<void>}
 */
export declare function load(locale: string): Promise<void>;
/**
 * Adds (or overrides) texts for a language, e.g. a page's own strings.
 * @param {string} lang
 * @param {Catalog} entries
 */
export declare function register(lang: string, entries: Catalog): void;
/**
 * The shipped language closest to `wanted` (a BCP 47 tag), English when none matches.
 * @param {string | null | undefined} wanted
 */
export declare function supported(wanted: string | null | undefined): string;
/**
 * The language an element should speak: its nearest `lang` (crossing shadow roots to the host),
 * else the document's, else the browser's.
 * @param {Element | null} [el]
 */
export declare function localeOf(el?: Element | null): string;
/**
 * `rtl` for languages written right to left.
 * @param {string} locale
 * @returns {'rtl' | 'ltr'}
 */
export declare function dirOf(locale: string): 'rtl' | 'ltr';
/**
 * A lookup function for one language: `t(key, vars)`. A key missing in that language (or all of
 * them, while its catalog is still on its way: see `load`) falls back to English, and a key
 * missing everywhere reads as itself (visible, so a test can catch it).
 * @param {string} locale
 * @returns {(key: string, vars?: Record<string, string | number>) => string}
 */
export declare function translator(locale: string): (key: string, vars?: Record<string, string | number>) => string;
