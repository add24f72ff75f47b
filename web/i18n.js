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
import es from './locales/es.js';
import ar from './locales/ar.js';

/** @typedef {string | Partial<Record<Intl.LDMLPluralRule, string>>} Text */
/** @typedef {Record<string, Text>} Catalog */

/** The shipped catalogs, by language tag. @type {Record<string, Catalog>} */
export const CATALOGS = { en: { ...en }, es: { ...es }, ar: { ...ar } };

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
  if (tag in CATALOGS) return tag;
  const primary = tag.split(/[-_]/)[0];
  return primary in CATALOGS ? primary : 'en';
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
 * A lookup function for one language: `t(key, vars)`. A key missing in that language falls back
 * to English, and a key missing everywhere reads as itself (visible, so a test can catch it).
 * @param {string} locale
 * @returns {(key: string, vars?: Record<string, string | number>) => string}
 */
export function translator(locale) {
  const lang = supported(locale);
  const catalog = CATALOGS[lang];
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
