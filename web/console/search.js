// Full-text search over messages: as one types (once typing pauses) or on Enter, the results take
// the inbox's place, each naming its conversation with the matches marked; Escape or the clear
// button bring the inbox back. Only the answer to the newest query is shown.

import { t, fullDate, shortDate } from './lang.js';
import { $, announce, api, el, guest, senderOf } from './common.js';
import { open } from './navigation.js';

/** Search as one types, once typing pauses this long. */
const SEARCH_DELAY_MS = 300;

const list = $('inbox');
const results = $('results');
const resultList = $('results-list');
const searchInput = /** @type {HTMLInputElement} */ ($('search-input'));
let searchGeneration = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let searchTimer;

/**
 * A snippet with its matches marked, built as text nodes and `<mark>`s. `spans` are
 * `{start, end}` (or `[start, end]`) in UTF-16 code units of the snippet, as JavaScript indexes it.
 * @param {string} text
 * @param {any[]} spans
 */
function highlighted(text, spans) {
  const ranges = (Array.isArray(spans) ? spans : [])
    .map((m) => (Array.isArray(m) ? [m[0], m[1]] : [m.start, m.end]))
    .filter(([a, b]) => Number.isInteger(a) && Number.isInteger(b) && a >= 0 && a < b && b <= text.length)
    .sort((x, y) => x[0] - y[0]);
  /** @type {(Node | string)[]} */
  const parts = [];
  let at = 0;
  for (const [a, b] of ranges) {
    if (a < at) continue;
    parts.push(text.slice(at, a), el('mark', {}, [text.slice(a, b)]));
    at = b;
  }
  parts.push(text.slice(at));
  return parts;
}

/** @param {import('./common.js').Console} ctx @param {string} query */
async function search(ctx, query) {
  const mine = ++searchGeneration;
  const q = query.trim();
  if (!q) {
    closeSearch(false);
    return;
  }
  let answer;
  try {
    answer = await api(ctx, 'GET', `/v1/search?q=${encodeURIComponent(q)}&limit=50`);
  } catch (e) {
    if (mine !== searchGeneration) return;
    resultList.replaceChildren(el('li', { class: 'empty' }, [t('console.search.failed', { reason: e instanceof Error ? e.message : String(e) })]));
    results.hidden = false;
    list.hidden = true;
    return;
  }
  if (mine !== searchGeneration) return;
  /** @type {any[]} */
  const found = answer.results ?? [];
  results.hidden = false;
  list.hidden = true;
  results.dataset.query = q;
  // The results start at the top of the list's column, not under a scrolled-away place.
  /** @type {HTMLElement} */ (results.closest('nav')).scrollTop = 0;
  if (!found.length) resultList.replaceChildren(el('li', { class: 'empty' }, [t('console.search.none', { q })]));
  else {
    resultList.replaceChildren(...found.map((r) => {
      const conversation = String(r.conversation_id ?? r.conversation);
      const row = ctx.rows.find((x) => x.id === conversation);
      const name = guest(row?.metadata);
      const button = el('button', { type: 'button', 'data-conversation': conversation, 'data-message': r.id ?? '' }, [
        el('span', { class: 'id' }, [el('bdi', {}, [name ? `${name} · ${conversation}` : conversation])]),
        r.sent_at ? el('time', { class: 'when', datetime: new Date(r.sent_at).toISOString(), title: fullDate(r.sent_at) }, [shortDate(r.sent_at)]) : el('span'),
        el('span', { class: 'last' }, [
          r.kind === 'note' ? `${t('console.search.note')} ` : '',
          el('bdi', {}, [senderOf(ctx, { sender: r.sender, role: r.sender_role })]), ': ',
          el('bdi', {}, highlighted(String(r.snippet ?? r.body ?? ''), r.highlights ?? [])),
        ]),
      ]);
      button.addEventListener('click', () => open(ctx, conversation));
      return el('li', {}, [button]);
    }));
  }
  announce(t('console.search.count', { n: found.length, q }));
}

/** Leaves the search: the inbox again. @param {boolean} focus */
function closeSearch(focus) {
  ++searchGeneration;
  clearTimeout(searchTimer);
  results.hidden = true;
  list.hidden = false;
  resultList.replaceChildren();
  if (searchInput.value) searchInput.value = '';
  if (focus) searchInput.focus();
}

/** Puts the cursor into the search field, its text selected (Ctrl+K, `s`). */
export function focusSearch() {
  searchInput.focus();
  searchInput.select();
}

/** The search form: typing, Enter, Escape and the clear button. @param {import('./common.js').Console} ctx */
export function searchBox(ctx) {
  $('search').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(searchTimer);
    search(ctx, searchInput.value);
  });
  searchInput.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(ctx, searchInput.value), SEARCH_DELAY_MS);
  });
  searchInput.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && (searchInput.value || !results.hidden)) {
      e.preventDefault();
      closeSearch(true);
    }
  });
  $('search-clear').addEventListener('click', () => closeSearch(true));
}
