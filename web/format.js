// How the chat element writes what it shows: links found in text, emoji-only messages, day and
// time labels, business hours. Pure functions of their arguments (the clock is passed in), so
// they are tested without a browser; DOM is built from their results as elements, never HTML.

/** A web address in text: http or https only; any other scheme stays text. */
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/giu;
/** Punctuation that ends a sentence rather than the address it follows. */
const TRAILING = /[.,;:!?)\]}»”’]$/u;

/** @param {string} s @param {string} c */
const count = (s, c) => s.split(c).length - 1;

/**
 * Splits text into plain runs and web addresses (`{ href }` parts are http(s) URLs that parse).
 * @param {string} text
 * @returns {({ text: string, href?: string })[]}
 */
export function linkParts(text) {
  /** @type {({ text: string, href?: string })[]} */
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    // Keep a closing parenthesis that closes one opened inside the address (wiki links).
    while (TRAILING.test(url) && !(url.endsWith(')') && count(url, '(') >= count(url, ')'))) url = url.slice(0, -1);
    const start = match.index ?? 0;
    let href = '';
    try {
      const parsed = new URL(url);
      if (parsed.protocol === 'http:' || parsed.protocol === 'https:') href = parsed.href;
    } catch { /* not an address after all: text */ }
    if (!href) continue;
    if (start > at) parts.push({ text: text.slice(at, start) });
    parts.push({ text: url, href });
    at = start + url.length;
  }
  if (at < text.length) parts.push({ text: text.slice(at) });
  return parts;
}

/** Emoji (with their joiners, skin tones and variation selectors) and nothing else. */
const EMOJI_ONLY = /^(?:\p{Extended_Pictographic}|\p{Emoji_Modifier}|\p{Regional_Indicator}|\u200d|\ufe0f|\u20e3|\s)+$/u;

/**
 * Whether a message is a few emoji and nothing else (shown large).
 * @param {string} text
 */
export function emojiOnly(text) {
  const t = text.trim();
  return t.length > 0 && EMOJI_ONLY.test(t) && /\p{Extended_Pictographic}|\p{Regional_Indicator}/u.test(t)
    && [...t.replace(/\s/g, '')].length <= 16;
}

/**
 * The calendar day of a time in the reader's time zone, as a number (days since the epoch of
 * local midnight), to compare days.
 * @param {number} ms
 */
export function dayNumber(ms) {
  const d = new Date(ms);
  return Math.round(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86400000);
}

/**
 * The label of a day separator: "today", "yesterday" (as `t` says them) or the date in the
 * reader's locale (with the year only when it is not this year).
 * @param {number} ms
 * @param {number} now
 * @param {string} locale
 * @param {(key: string) => string} t
 */
export function dayLabel(ms, now, locale, t) {
  const days = dayNumber(now) - dayNumber(ms);
  if (days === 0) return t('chat.today');
  if (days === 1) return t('chat.yesterday');
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  return new Intl.DateTimeFormat(locale, {
    weekday: days < 7 && days > 0 ? 'long' : undefined, day: 'numeric', month: 'long', year: sameYear ? undefined : 'numeric',
  }).format(ms);
}

/**
 * @typedef {object} Hours One opening period: on these days (`mon` … `sun`), from `open` to
 *   `close` (`HH:MM`, the business's wall clock).
 * @property {string[]} days
 * @property {string} open
 * @property {string} close
 */

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** @param {string} hhmm */
const minutes = (hhmm) => {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + (m || 0);
};

/**
 * The business's weekday (0 = Sunday) and minute of the day at `now`, in `timeZone`.
 * @param {number} now
 * @param {string} timeZone
 */
function wallClock(now, timeZone) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(now);
  const get = (/** @type {string} */ type) => parts.find((p) => p.type === type)?.value ?? '';
  return { day: WEEKDAYS.indexOf(get('weekday').toLowerCase().slice(0, 3)), minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

/**
 * Whether the business is open at `now` and, if not, when it opens next (a time, so the reader
 * sees it in their own zone). `null` when no hours are given.
 * @param {Hours[]} hours
 * @param {string} timeZone
 * @param {number} now
 * @returns {{ open: true } | { open: false, next: number | null } | null}
 */
export function openState(hours, timeZone, now) {
  if (!Array.isArray(hours) || !hours.length) return null;
  let clock;
  try {
    clock = wallClock(now, timeZone || 'UTC');
  } catch {
    clock = wallClock(now, 'UTC'); // an unknown zone: read the hours as UTC rather than not at all
  }
  /** @param {number} offset days from today */
  const periods = (offset) => hours.filter((p) => (p.days ?? []).map((d) => d.toLowerCase().slice(0, 3)).includes(WEEKDAYS[(clock.day + offset) % 7]));
  for (const p of periods(0)) {
    if (clock.minute >= minutes(p.open) && clock.minute < minutes(p.close)) return { open: true };
  }
  for (let offset = 0; offset < 8; offset++) {
    const starts = periods(offset).map((p) => minutes(p.open)).filter((m) => offset > 0 || m > clock.minute);
    if (starts.length) {
      const delta = offset * 1440 + Math.min(...starts) - clock.minute;
      // Whole minutes from now: the seconds of `now` are dropped so the time reads 09:00.
      return { open: false, next: Math.floor(now / 60000) * 60000 + delta * 60000 };
    }
  }
  return { open: false, next: null };
}

/**
 * A size in the reader's language and digits (`2.4 MB`, `٢٫٤ ميغابايت`).
 * @param {number} bytes
 * @param {string} locale
 */
export function formatBytes(bytes, locale) {
  const [unit, value] = bytes >= 1e6 ? ['megabyte', bytes / 1e6] : bytes >= 1e3 ? ['kilobyte', bytes / 1e3] : ['byte', bytes];
  try {
    return new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'short', maximumFractionDigits: value < 10 ? 1 : 0 }).format(value);
  } catch {
    return `${Math.round(value)} ${unit}`;
  }
}

/** A type's short name for a file card: `application/pdf` → `PDF`. @param {string} type */
export function typeLabel(type) {
  const sub = (type.split('/')[1] ?? '').split(/[+;]/)[0];
  return sub ? sub.toUpperCase() : '';
}
