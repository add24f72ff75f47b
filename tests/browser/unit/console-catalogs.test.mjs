// The console's catalogs: every key the console pages use (in their HTML and scripts) is in
// English, Spanish and Arabic; the languages have the same keys and the same placeholders; plural
// texts cover the categories each language needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import en from '../../../web/console/locales/en.js';
import es from '../../../web/console/locales/es.js';
import ar from '../../../web/console/locales/ar.js';

const DIR = fileURLToPath(new URL('../../../web/console/', import.meta.url));
const CATALOGS = { en, es, ar };

/** Keys named in the console's files: data-i18n, data-i18n-attr, and t('…') calls. */
function usedKeys() {
  const keys = new Set();
  for (const file of readdirSync(DIR).filter((f) => /\.(html|js)$/.test(f))) {
    const text = readFileSync(DIR + file, 'utf8');
    for (const m of text.matchAll(/data-i18n="([^"]+)"/g)) keys.add(m[1]);
    for (const m of text.matchAll(/data-i18n-attr="([^"]+)"/g)) for (const pair of m[1].split(';')) keys.add(pair.split(':')[1]);
    for (const m of text.matchAll(/\bt\(\s*'([^']+)'/g)) keys.add(m[1]);
    for (const m of text.matchAll(/'((?:console|account|signin|reset)\.[\w.]+)'/g)) keys.add(m[1]);
  }
  // Keys built at run time: statuses and roles.
  for (const s of ['open', 'pending', 'resolved']) keys.add(`console.status.${s}`);
  for (const r of ['agent', 'admin']) keys.add(`console.role.${r}`);
  // Only the catalogs' namespaces (the comments of lang.js name a `key` as an example).
  return [...keys].filter((k) => /^(console|account|signin|reset)\./.test(k));
}

/** @param {unknown} text */
const placeholders = (text) => [...new Set(JSON.stringify(text).match(/\{\w+\}/g) ?? [])].filter((p) => p !== '{n}').sort();

test('every key the console uses is in every language', () => {
  const keys = usedKeys();
  assert.ok(keys.length > 100, `found ${keys.length} keys`);
  for (const [lang, catalog] of Object.entries(CATALOGS)) {
    const missing = keys.filter((k) => !(k in catalog));
    assert.deepEqual(missing, [], `missing in ${lang}`);
  }
});

test('the languages have the same keys and placeholders, and no text is empty', () => {
  for (const [lang, catalog] of Object.entries(CATALOGS)) {
    assert.deepEqual(Object.keys(catalog).sort(), Object.keys(en).sort(), `keys of ${lang}`);
    for (const [key, text] of Object.entries(catalog)) {
      assert.deepEqual(placeholders(text), placeholders(en[key]), `placeholders of ${lang} ${key}`);
      const texts = typeof text === 'string' ? [text] : Object.values(text);
      assert.ok(texts.every((s) => s.trim()), `${lang} ${key} is empty`);
    }
  }
});

test('plural texts cover each language\'s categories', () => {
  for (const [lang, catalog] of Object.entries(CATALOGS)) {
    const needed = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
    for (const [key, text] of Object.entries(catalog)) {
      if (typeof text === 'string') continue;
      for (const category of needed) assert.ok(category in text, `${lang} ${key} lacks "${category}"`);
    }
  }
});

test('Spanish and Arabic are translations, not copies of the English', () => {
  const same = (catalog) => Object.keys(en).filter((k) => typeof en[k] === 'string' && catalog[k] === en[k] && /[a-z]{4}/.test(en[k].replace(/\{\w+\}/g, '')));
  assert.deepEqual(same(es), []);
  assert.deepEqual(same(ar), []);
});
