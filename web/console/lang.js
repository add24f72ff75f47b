// The language of the console's pages (console, sign-in, reset): a `lang=` parameter in the query
// or the fragment wins, else the page's own `lang` attribute. The chosen language is written back
// to `<html lang dir>`, so the SDK's components inside (which read the nearest `lang`) speak it
// too, and right-to-left languages lay the page out right to left. Static texts of the HTML carry
// `data-i18n="key"` (their text) and `data-i18n-attr="attr:key;attr:key"` (attributes); they are
// filled from the console's catalogs here, once, before the page's script runs.

import { dirOf, load, register, supported, translator } from '../i18n.js';
import en from './locales/en.js';
import es from './locales/es.js';
import ar from './locales/ar.js';

register('en', en);
register('es', es);
register('ar', ar);

const wanted = new URLSearchParams(location.search).get('lang')
  ?? new URLSearchParams(location.hash.slice(1)).get('lang')
  ?? document.documentElement.lang;

/** The language the pages speak (a shipped one). */
export const locale = supported(wanted);
document.documentElement.lang = locale;
document.documentElement.dir = dirOf(locale);

await load(locale).catch(() => {});

/** The lookup of the chosen language. */
export const t = translator(locale);

/**
 * Fills the `data-i18n` texts and `data-i18n-attr` attributes under `root`.
 * @param {ParentNode} root
 */
export function translate(root) {
  for (const node of root.querySelectorAll('[data-i18n]')) {
    node.textContent = t(/** @type {HTMLElement} */ (node).dataset.i18n ?? '');
  }
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of (/** @type {HTMLElement} */ (node).dataset.i18nAttr ?? '').split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) node.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}
translate(document);

const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(locale, { timeStyle: 'short' });
const dayOnly = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short' });
const minutes = new Intl.NumberFormat(locale, { style: 'unit', unit: 'minute', unitDisplay: 'short' });
const hours = new Intl.NumberFormat(locale, { style: 'unit', unit: 'hour', unitDisplay: 'short' });
const days = new Intl.NumberFormat(locale, { style: 'unit', unit: 'day', unitDisplay: 'short' });

/** A date and time in the page's language. @param {number} ms */
export function fullDate(ms) {
  return dateTime.format(new Date(ms));
}

/** The time today, else the day. @param {number} ms @param {number} [now] */
export function shortDate(ms, now = Date.now()) {
  const then = new Date(ms);
  return then.toDateString() === new Date(now).toDateString() ? timeOnly.format(then) : dayOnly.format(then);
}

/**
 * How long since `ms`, short ("5 min", "2 h 10 min", "3 d"), in the page's language.
 * @param {number} ms
 * @param {number} [now]
 */
export function elapsed(ms, now = Date.now()) {
  const m = Math.floor(Math.max(0, now - ms) / 60000);
  if (m < 1) return t('console.time.now');
  if (m < 60) return minutes.format(m);
  if (m < 24 * 60) return m % 60 ? `${hours.format(Math.floor(m / 60))} ${minutes.format(m % 60)}` : hours.format(m / 60);
  return days.format(Math.floor(m / (24 * 60)));
}
