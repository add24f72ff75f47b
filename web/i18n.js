// Message catalogs: every user-visible string of the components and pages comes from here, in
// English, Spanish and Arabic. A catalog is a plain object of keys to texts; a text may hold
// `{name}` placeholders, and a plural text is an object keyed by `Intl.PluralRules` categories
// (`zero`, `one`, `two`, `few`, `many`, `other`), chosen by the `n` variable. Pages add their own
// keys with `register` (the console does), so one lookup serves the SDK and the page alike.
//
// The language is the nearest `lang` attribute (an element's own, an ancestor's, the document's),
// else the browser's; the first shipped language that matches it by full tag, then by its primary
// subtag, wins; English otherwise.

import en from './locales/en.js';

/** @typedef {string | Partial<Record<Intl.LDMLPluralRule, string>>} Text */
/** @typedef {Record<string, Text>} Catalog */

/** The catalogs in memory, by language tag. English always; others once loaded or registered. @type {Record<string, Catalog>} */
export const CATALOGS = { en: { ...en } };

/**
 * The other shipped languages, fetched when a page or element first speaks them: an English page
 * does not download Arabic. Until one arrives its lookups read English, and `load` tells when to
 * draw again.
 * @type {Record<string, () => Promise<{ default: Catalog }>>}
 */
const SHIPPED = { es: () => import('./locales/es.js'), ar: () => import('./locales/ar.js') };

/** Shipped languages whose catalog is in memory. */
const ready = new Set(['en']);
/** Catalogs on their way, by language. @type {Map<string, Promise<void>>} */
const loading = new Map();

/**
 * Whether the texts of `locale`'s language are all here: English, a shipped language already
 * loaded, or a language only a page registered.
 * @param {string} locale
 */
export function isLoaded(locale) {
  const lang = supported(locale);
  return ready.has(lang) || !(lang in SHIPPED);
}

/**
 * Fetches the catalog of `locale`'s language if it is shipped and not here yet; resolves when
 * its texts can be looked up (at once when they already can).
 * @param {string} locale
 * @returns {Promise<void>}
 */
export function load(locale) {
  const lang = supported(locale);
  if (isLoaded(lang)) return Promise.resolve();
  let pending = loading.get(lang);
  if (!pending) {
    pending = SHIPPED[lang]().then((module) => {
      // What a page registered for the language stays (its own keys).
      CATALOGS[lang] = { ...module.default, ...(CATALOGS[lang] ?? {}) };
      ready.add(lang);
    });
    loading.set(lang, pending);
  }
  return pending;
}

/** Languages written right to left (primary subtags). */
const RTL = new Set(['ar', 'fa', 'he', 'ur', 'ps', 'sd', 'ug', 'yi', 'dv']);

/**
 * Adds (or overrides) texts for a language, e.g. a page's own strings.
 * @param {string} lang
 * @param {Catalog} entries
 */
export function register(lang, entries) {
  CATALOGS[lang] = { ...(CATALOGS[lang] ?? {}), ...entries };
}

/**
 * The shipped language closest to `wanted` (a BCP 47 tag), English when none matches.
 * @param {string | null | undefined} wanted
 */
export function supported(wanted) {
  const tag = String(wanted ?? '').trim().toLowerCase();
  if (!tag) return 'en';
  const known = (/** @type {string} */ lang) => lang in CATALOGS || lang in SHIPPED;
  if (known(tag)) return tag;
  const primary = tag.split(/[-_]/)[0];
  return known(primary) ? primary : 'en';
}

/**
 * The language an element should speak: its nearest `lang` (crossing shadow roots to the host),
 * else the document's, else the browser's.
 * @param {Element | null} [el]
 */
export function localeOf(el) {
  /** @type {Node | null | undefined} */
  let node = el;
  while (node) {
    if (node instanceof Element && node.getAttribute('lang')) return node.getAttribute('lang') ?? '';
    node = node.parentNode instanceof ShadowRoot ? node.parentNode.host : node.parentNode;
  }
  return (typeof document !== 'undefined' && document.documentElement.lang)
    || (typeof navigator !== 'undefined' && navigator.language) || 'en';
}

/**
 * `rtl` for languages written right to left.
 * @param {string} locale
 * @returns {'rtl' | 'ltr'}
 */
export function dirOf(locale) {
  return RTL.has(String(locale).toLowerCase().split(/[-_]/)[0]) ? 'rtl' : 'ltr';
}

/**
 * A lookup function for one language: `t(key, vars)`. A key missing in that language (or all of
 * them, while its catalog is still on its way: see `load`) falls back to English, and a key
 * missing everywhere reads as itself (visible, so a test can catch it).
 * @param {string} locale
 * @returns {(key: string, vars?: Record<string, string | number>) => string}
 */
export function translator(locale) {
  const lang = supported(locale);
  const catalog = CATALOGS[lang] ?? {};
  const plurals = new Intl.PluralRules(lang);
  return (key, vars = {}) => {
    let text = catalog[key] ?? CATALOGS.en[key] ?? key;
    if (typeof text === 'object') {
      const n = Number(vars.n ?? 0);
      const exact = n === 0 ? text.zero : undefined;
      text = exact ?? text[plurals.select(n)] ?? text.other ?? key;
    }
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  };
}
