// The message catalogs: every key the components and pages look up (`t('…')` in web/*.js,
// web/demo/*.js and web/console/*.js, and the keys they build from a status or code) is in every
// shipped language; every language has the same keys; a plural text has every category its
// language's plural rules use (Arabic: zero, one, two, few, many, other). Also the pure helpers
// the chat draws with (links, emoji, days, opening hours).
// Run with: node --test tests/browser/unit/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../../../web/', import.meta.url));
const { CATALOGS, register, translator, load, isLoaded } = await import(join(WEB, 'i18n.js'));
// Only English is there at first; the others come when asked for.
assert.deepEqual(Object.keys(CATALOGS), ['en']);
assert.equal(isLoaded('ar-EG'), false);
assert.equal(translator('ar')('chat.send'), CATALOGS.en['chat.send'], 'English until Arabic arrives');
await Promise.all([load('es'), load('ar-EG')]);
assert.equal(isLoaded('ar'), true);
const { linkParts, emojiOnly, dayLabel, openState } = await import(join(WEB, 'format.js'));
await import(join(WEB, 'demo/strings.js'));
// The console's own catalogs, registered as console.js does.
for (const lang of ['en', 'es', 'ar']) {
  const file = join(WEB, `console/locales/${lang}.js`);
  if (existsSync(file)) register(lang, (await import(file)).default);
}

const LANGS = ['en', 'es', 'ar'];
const DIRS = ['', 'demo', 'console'];

/** Keys looked up with a literal: `t('key')` and `t("key")` in scripts, `data-t="key"` in pages. */
function usedKeys() {
  const keys = new Map();
  for (const dir of DIRS) {
    for (const file of readdirSync(join(WEB, dir)).filter((f) => f.endsWith('.js') || f.endsWith('.html'))) {
      const text = readFileSync(join(WEB, dir, file), 'utf8');
      for (const m of text.matchAll(/\bt\(\s*(['"])([\w.-]+)\1|\bdata-t="([\w.-]+)"/g)) keys.set(m[2] ?? m[3], join(dir, file));
    }
  }
  return keys;
}

/** Keys built from a value (`t(\`conn.${status.name}\`)` and the like): every value it can take. */
const BUILT = [
  ...['connected', 'connecting', 'offline', 'disconnected', 'expired'].map((s) => `conn.${s}`),
  ...['sending', 'sent', 'delivered', 'read', 'failed'].map((s) => `tick.${s}`),
  ...['sent', 'delivered', 'read'].map((s) => `chat.announce_${s}`),
  ...['message_too_large', 'forbidden', 'conversation_closed', 'empty_message', 'not_found', 'deadline_exceeded',
    'unsupported_type', 'attachment_too_large', 'attachment_not_found'].map((c) => `reason.${c}`),
  // attachments-view.js `refusal()`: the reasons a file is refused before uploading.
  'attach.empty', 'attach.too_large', 'attach.unsupported',
  'demo.status_pending', 'demo.status_resolved',
];

test('the scan finds the keys the components use (a scan that finds nothing checks nothing)', () => {
  const keys = usedKeys();
  for (const key of ['chat.send', 'chat.show_more', 'banner.pending', 'conn.reconnecting_in', 'demo.title']) {
    assert.ok(keys.has(key), `${key} not found by the scan`);
  }
});

test('every key used is in every shipped language', () => {
  const missing = [];
  for (const [key, file] of [...usedKeys(), ...BUILT.map((k) => [k, '(built)'])]) {
    for (const lang of LANGS) if (!(key in CATALOGS[lang])) missing.push(`${lang}: ${key} (${file})`);
  }
  assert.deepEqual(missing, []);
});

test('every language has the same keys', () => {
  const english = Object.keys(CATALOGS.en).sort();
  for (const lang of LANGS) assert.deepEqual(Object.keys(CATALOGS[lang]).sort(), english, lang);
});

test('plural texts have every category of their language, and placeholders match English', () => {
  const problems = [];
  for (const lang of LANGS) {
    const categories = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
    for (const [key, text] of Object.entries(CATALOGS[lang])) {
      const english = CATALOGS.en[key];
      if (typeof english === 'object' && typeof text !== 'object') problems.push(`${lang}: ${key} is not plural`);
      if (typeof text !== 'object') continue;
      for (const c of categories) if (!(c in text)) problems.push(`${lang}: ${key} lacks "${c}"`);
      // `zero` is always allowed: i18n.js uses it for n = 0 in any language ("No results").
      for (const c of Object.keys(text)) if (c !== 'zero' && !categories.includes(c)) problems.push(`${lang}: ${key} has "${c}", which ${lang} does not use`);
    }
  }
  assert.deepEqual(problems, []);
  // Texts that are not English: a catalog copied from English would pass the key checks.
  // Texts made only of placeholders and punctuation ("{name} · {time}") are the same everywhere.
  const words = (/** @type {string} */ text) => /\p{L}/u.test(text.replace(/\{\w+\}/g, ''));
  const same = Object.keys(CATALOGS.en).filter((k) => typeof CATALOGS.en[k] === 'string' && words(CATALOGS.en[k]) && CATALOGS.ar[k] === CATALOGS.en[k]);
  assert.deepEqual(same, []);
});

test('Arabic plurals choose the right form', () => {
  const t = translator('ar');
  assert.equal(t('banner.pending', { n: 1 }), 'رسالة واحدة بانتظار الإرسال');
  assert.equal(t('banner.pending', { n: 2 }), 'رسالتان بانتظار الإرسال');
  assert.equal(t('banner.pending', { n: 5 }), '5 رسائل بانتظار الإرسال');
  assert.equal(t('banner.pending', { n: 11 }), '11 رسالة بانتظار الإرسال');
  assert.equal(translator('es')('chat.chars_left', { n: 1 }), 'Queda 1 carácter');
});

test('links: http and https only, trailing punctuation left out, everything else text', () => {
  assert.deepEqual(linkParts('See https://example.com/a?b=1. Thanks'), [
    { text: 'See ' }, { text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' }, { text: '. Thanks' },
  ]);
  assert.deepEqual(linkParts('javascript:alert(1) data:text/html,x ftp://x.org'), [{ text: 'javascript:alert(1) data:text/html,x ftp://x.org' }]);
  assert.deepEqual(linkParts('(https://en.wikipedia.org/wiki/Foo_(bar))').map((p) => p.href).filter(Boolean), ['https://en.wikipedia.org/wiki/Foo_(bar)']);
  assert.deepEqual(linkParts('<a href="https://x.org">'), [{ text: '<a href="' }, { text: 'https://x.org', href: 'https://x.org/' }, { text: '">' }]);
});

test('emoji-only messages', () => {
  assert.equal(emojiOnly('🎉'), true);
  assert.equal(emojiOnly('👍🏽 ❤️'), true);
  assert.equal(emojiOnly('👨‍👩‍👧'), true);
  assert.equal(emojiOnly('ok 👍'), false);
  assert.equal(emojiOnly('123'), false);
  assert.equal(emojiOnly(''), false);
});

test('day labels: today, yesterday, then dates in the reader\'s language', () => {
  const t = translator('en');
  const now = new Date(2026, 5, 15, 12, 0).getTime();
  assert.equal(dayLabel(now - 3600000, now, 'en', t), 'Today');
  assert.equal(dayLabel(new Date(2026, 5, 14, 23, 59).getTime(), now, 'en', t), 'Yesterday');
  assert.equal(dayLabel(new Date(2026, 5, 12, 9, 0).getTime(), now, 'en', t), 'Friday, June 12');
  assert.equal(dayLabel(new Date(2025, 11, 24, 9, 0).getTime(), now, 'es', translator('es')), '24 de diciembre de 2025');
});

test('opening hours in the business\'s time zone: open now, or when it opens next', () => {
  const hours = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], open: '09:00', close: '18:00' }];
  // Monday 2026-06-15 10:00 in Madrid (UTC+2) is 08:00 UTC.
  assert.deepEqual(openState(hours, 'Europe/Madrid', Date.UTC(2026, 5, 15, 8, 0)), { open: true });
  // Monday 20:00 in Madrid: back Tuesday 09:00 Madrid = 07:00 UTC.
  assert.deepEqual(openState(hours, 'Europe/Madrid', Date.UTC(2026, 5, 15, 18, 0)), { open: false, next: Date.UTC(2026, 5, 16, 7, 0) });
  // Saturday: back Monday.
  assert.deepEqual(openState(hours, 'Europe/Madrid', Date.UTC(2026, 5, 20, 12, 0)), { open: false, next: Date.UTC(2026, 5, 22, 7, 0) });
  // Early Monday, before opening: later today.
  assert.deepEqual(openState(hours, 'Europe/Madrid', Date.UTC(2026, 5, 15, 5, 30)), { open: false, next: Date.UTC(2026, 5, 15, 7, 0) });
  assert.equal(openState([], 'UTC', 0), null);
});
