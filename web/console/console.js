// The operator console: the inbox (filtered by assignee — mine / unassigned / anyone — and by
// status, longest waiting first), full-text search over messages, the selected conversation with
// its booking data, assignment, status and timeline (system entries and private notes included),
// canned responses (managed in a panel, inserted with `/` in the composer), keyboard shortcuts,
// the presence switch, and typing both ways.
//
// How the inbox stays right: the rows are always exactly what `GET /v1/inbox` last answered,
// never patched locally. The live WebSocket stream says *when* to read it again: every message
// (system entries for assignment and status included), receipt and `synced` of any conversation,
// and every (re)connect, coalesced into one request; an answer older than a request made after it
// is dropped. So after a reconnect the inbox equals a fresh load without reloading the page. In
// the `all` view, conversations the operator does not take part in send nothing over the
// WebSocket: that view is also read again every 15 s.
//
// Narrower than 768 px the list and the conversation are two views. Which one shows follows the
// URL fragment: opening a conversation adds `conversation=…` to it as a new history entry, so the
// browser's Back (and the page's back button) return to the list.
//
// Signed in (the sign-in page, `/console`), the tokens come from the session, refreshed before
// they expire; the demo opens it with a token in the URL fragment instead. Either way, optionally
// a conversation, a view, a status filter and a language in the fragment:
// #token=…&conversation=…&view=mine|unassigned|all&status=open|pending|resolved&lang=en|es|ar

import { t, elapsed, fullDate, shortDate } from './lang.js';
import { SurechatClient } from '../client.js';
import { Attention } from '../attention.js';
import { enablePush, pushSupported } from '../push.js';
import { accountPanels, loadSession, sessionToken } from './account.js';
import '../components.js';

// The app shell works offline too (registered here rather than in an inline script, which the
// page's Content-Security-Policy forbids).
if ('serviceWorker' in navigator) navigator.serviceWorker.register('../sw.js').catch(() => {});

const REFRESH_DELAY_MS = 100;
const ALL_VIEW_POLL_MS = 15000;
/** System entries newer than this are announced when they arrive. */
const ANNOUNCE_WITHIN_MS = 60000;
/** Search as one types, once typing pauses this long. */
const SEARCH_DELAY_MS = 300;
const STATUSES = ['open', 'pending', 'resolved'];
/** Where the page switches to two views (the CSS says the same). */
const narrow = matchMedia('(max-width: 767.98px)');

const params = new URLSearchParams(location.hash.slice(1));
/** Signed in through the sign-in page: no token in the fragment. */
const session = params.get('token') ? null : await loadSession();
let token = session ? await sessionToken(session) : params.get('token') ?? '';
const claims = readClaims(token);
const me = String(claims.sub ?? '');
const seesAll = claims.scope === 'all';
let view = params.get('view') ?? (seesAll ? 'all' : 'mine');
if (!['mine', 'unassigned', 'all'].includes(view) || (view === 'all' && !seesAll)) view = 'mine';
/** The status filter; '' for any. */
let statusFilter = STATUSES.includes(params.get('status') ?? '') ? String(params.get('status')) : '';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const chat = /** @type {any} */ ($('chat'));
const list = $('inbox');
const announcer = $('announce');
const problem = $('problem');
const presence = /** @type {HTMLSelectElement} */ ($('presence'));
const searchInput = /** @type {HTMLInputElement} */ ($('search-input'));
const help = /** @type {HTMLDialogElement} */ ($('help'));
const client = new SurechatClient({
  token,
  // A session's tokens are short: a new one before each expires, and when the server refuses
  // one (a disabled operator's session is gone: then the sign-in page).
  getToken: session ? async () => (token = await sessionToken(session)) : undefined,
});
if (session) accountPanels(session);
let selected = params.get('conversation') ?? '';
/** The rows of the last inbox answer. @type {any[]} */
let rows = [];
/** The selected conversation's state (conversation view, or its inbox row). @type {any} */
let current = null;
/** The active operators of the directory, by id (`GET /v1/operators`). @type {Map<string, any>} */
let directory = new Map();
/** @param {string} id An operator's display name, or the id while the directory is unknown. */
const nameOf = (id) => directory.get(id)?.name ?? id;

/** @type {any} */ ($('badge')).client = client;
chat.setAttribute('heading', t('console.noneSelected'));
chat.client = client;
chat.userName = (/** @type {string} */ id) => nameOf(id);
// A transfer's note travels in the entry's data (only operators receive it): show it after the summary.
chat.systemText = (/** @type {any} */ m) => (m.data && m.data.note ? `${chat.describe(m)}: ${m.data.note}` : chat.describe(m));
/** @type {any} */ (window).surechat = client; // for the browser tests

/**
 * The token's claims, read without checking the signature (the server does): who we are and
 * whether we may see every conversation.
 * @param {string} jwt
 * @returns {Record<string, unknown>}
 */
function readClaims(jwt) {
  try {
    return JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    return {};
  }
}

/**
 * An HTTP call with the operator's token; throws the problem's detail (with its HTTP status).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    const detail = await response.json().then((p) => p.detail, () => '');
    throw Object.assign(new Error(detail || `HTTP ${response.status}`), { status: response.status });
  }
  return response.status === 204 ? null : response.json();
}

/**
 * Creates an element with attributes and text or element children (text is never parsed).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** @param {string} text */
function announce(text) {
  // A change of content is what screen readers announce; clear first so a repeat is heard.
  announcer.textContent = '';
  requestAnimationFrame(() => { announcer.textContent = text; });
}

/** The guest's name in the booking data, if any. @param {any} metadata */
function guest(metadata) {
  const name = metadata?.guest ?? metadata?.guest_name ?? metadata?.name;
  return typeof name === 'string' ? name : '';
}

/** The booking data as `[key, text]` pairs (scalar values only). @param {any} metadata */
function bookingFacts(metadata) {
  return Object.entries(metadata ?? {})
    .filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => [k.replace(/_/g, ' '), String(v)]);
}

/** Who wrote a message, for a preview line. @param {any} m */
function senderOf(m) {
  if (m.sender === me) return t('console.you');
  return m.role === 'operator' ? nameOf(m.sender) : m.sender;
}

/** @param {any} m a message */
function preview(m) {
  if (!m) return t('console.row.empty');
  if (m.kind === 'system') return m.body;
  const line = t('console.row.line', { who: senderOf(m), body: m.body });
  return m.kind === 'note' ? t('console.row.note', { line }) : line;
}

/** @param {string} status */
const statusText = (status) => (STATUSES.includes(status) ? t(`console.status.${status}`) : status);

// ---- the URL fragment and the two views ---------------------------------------------------

/**
 * The fragment for the current filters and `conversation` (none: the list).
 * @param {string} conversation
 */
function fragment(conversation) {
  const next = new URLSearchParams(location.hash.slice(1));
  next.set('view', view);
  if (statusFilter) next.set('status', statusFilter); else next.delete('status');
  if (conversation) next.set('conversation', conversation); else next.delete('conversation');
  return `#${next}`;
}

/** Whether the fragment names an open conversation (the conversation view below 768 px). */
const opened = () => new URLSearchParams(location.hash.slice(1)).has('conversation');

/** Shows the list or the conversation (both side by side from 768 px). */
function showPane() {
  document.body.dataset.pane = opened() && selected ? 'conversation' : 'list';
}

/**
 * Opens a conversation: selected, named in the fragment (a history entry of its own when coming
 * from the list, so Back returns there), and below 768 px the conversation view with the focus in it.
 * @param {string} id
 */
function open(id) {
  const fromList = !opened();
  select(id);
  if (fromList) history.pushState({ open: true }, '', fragment(id));
  else history.replaceState(history.state, '', fragment(id));
  showPane();
  if (narrow.matches && fromList) $('conversation').focus();
}

/** Back to the list: the history entry before the conversation, or the list in its place. */
function back() {
  if (history.state?.open) {
    history.back();
    return;
  }
  history.replaceState(null, '', fragment(''));
  afterNavigation();
}

/** The fragment changed (Back, Forward, the back button): show what it says. */
function afterNavigation() {
  const id = new URLSearchParams(location.hash.slice(1)).get('conversation');
  if (id && id !== selected) select(id);
  showPane();
  if (narrow.matches && !id) rowButton(selected)?.focus();
}

window.addEventListener('popstate', afterNavigation);
narrow.addEventListener('change', showPane);
$('back').addEventListener('click', back);

// Opened with a conversation in the fragment: the list goes into the history beneath it.
if (selected) {
  history.replaceState(null, '', fragment(''));
  history.pushState({ open: true }, '', fragment(selected));
}

// ---- the inbox ----------------------------------------------------------------------------

let generation = 0;
/** Reads the inbox view; only the answer to the newest request is shown. */
async function loadInbox() {
  const mine = ++generation;
  try {
    const inbox = await api('GET', `/v1/inbox?view=${view}${statusFilter ? `&status=${statusFilter}` : ''}`);
    if (mine !== generation) return;
    // The server filters by status; this keeps the list right against one that does not yet.
    rows = inbox.conversations.filter((/** @type {any} */ r) => !statusFilter || r.status === statusFilter);
    learn(inbox.conversations, view);
    renderInbox();
    if (!selected && rows[0]) select(rows[0].id);
  } catch {
    // Offline or refused: the rows stay as they were; the next (re)connect reads them again.
  }
}

/** Each conversation's assignee as the inbox last said (`null`: unassigned). @type {Map<string, string | null>} */
const assignees = new Map();
/** Conversations some inbox answer showed; `null` until the first answer. @type {Set<string> | null} */
let known = null;

/**
 * Takes note of an inbox answer: assignees (which messages are news for this operator), and
 * conversations new since the previous answers, which are announced when they are the
 * operator's own or unassigned.
 * @param {any[]} answer
 * @param {string} answerView
 */
function learn(answer, answerView) {
  for (const r of answer) assignees.set(r.id, r.assignee ?? null);
  const first = known === null;
  known ??= new Set();
  for (const r of answer) {
    if (known.has(r.id)) continue;
    known.add(r.id);
    if (!first && (r.assignee === me || r.assignee == null) && answerView !== 'all') {
      attention.alert({ conversation: r.id, title: t('console.newConversation'), body: guest(r.metadata) ? `${guest(r.metadata)} (${r.id})` : r.id });
    }
  }
}

/** New unassigned conversations come to no operator's WebSocket: look for them now and then. */
async function pollUnassigned() {
  if (view === 'unassigned' || known === null) return;
  try {
    learn((await api('GET', '/v1/inbox?view=unassigned')).conversations, 'unassigned');
  } catch {
    // Offline: the next poll looks again.
  }
}

/** The inbox row's button of a conversation. @param {string} id */
function rowButton(id) {
  return id ? /** @type {HTMLElement | null} */ (list.querySelector(`[data-conversation="${CSS.escape(id)}"]`)) : null;
}

/**
 * What a row says about waiting: only a conversation somebody waits in says "Waiting"; a resolved
 * or empty one says nothing.
 * @param {any} r
 */
function waitingFact(r) {
  if (r.waiting_since && r.status !== 'resolved') {
    return el('span', { class: 'waiting' }, [t('console.row.waiting'), ' ',
      el('time', { datetime: new Date(r.waiting_since).toISOString(), title: fullDate(r.waiting_since) }, [elapsed(r.waiting_since)])]);
  }
  if (r.last_message && r.status !== 'resolved') return el('span', { class: 'answered' }, [t('console.row.answered')]);
  return null;
}

function renderFilters() {
  for (const button of document.querySelectorAll('.views button')) {
    const b = /** @type {HTMLElement} */ (button);
    b.setAttribute('aria-pressed', String(b.dataset.view === view));
    if (b.dataset.view === 'all') b.hidden = !seesAll;
  }
  for (const button of document.querySelectorAll('.statuses button')) {
    const b = /** @type {HTMLElement} */ (button);
    b.setAttribute('aria-pressed', String(b.dataset.filterStatus === statusFilter));
  }
}

function renderInbox() {
  renderFilters();
  const focused = /** @type {HTMLElement | null} */ (document.activeElement)?.closest?.('#inbox [data-conversation]');
  const focusedId = focused instanceof HTMLElement ? focused.dataset.conversation : null;
  if (client.status.name === 'expired') {
    // Refused by the server: an empty list would say "nothing to do" when nothing can be read.
    list.replaceChildren(el('li', { class: 'empty' }, [t('console.list.expired')]));
    return;
  }
  if (!rows.length) {
    list.replaceChildren(el('li', { class: 'empty' }, [t('console.list.empty')]));
    return;
  }
  list.replaceChildren(...rows.map((r) => {
    const name = guest(r.metadata);
    const unread = r.unread;
    const count = el('span', { class: 'unread', 'data-count': String(unread) }, [el('span', { class: 'sr' }, [t('console.row.unread', { n: unread })]), el('span', { 'aria-hidden': 'true' }, [String(unread)])]);
    const waiting = waitingFact(r);
    const facts = el('span', { class: 'facts' }, [
      el('span', { class: `chip ${r.status}` }, [statusText(r.status)]),
      el('span', { class: 'assignee' }, [r.assignee
        ? t(r.assignee === me ? 'console.row.assigneeYou' : 'console.row.assignee', { name: nameOf(r.assignee) })
        : t('console.row.unassigned')]),
      ...(waiting ? [waiting] : []),
    ]);
    const booking = bookingFacts(r.metadata).filter(([k]) => !['guest', 'guest name', 'name'].includes(k)).slice(0, 4).map(([, v]) => v).join(' · ');
    const last = r.last_message;
    const button = el('button', {
      type: 'button', 'aria-current': String(r.id === selected), 'data-conversation': r.id, 'data-status': r.status,
      'data-assignee': r.assignee ?? '', 'data-unread': String(r.unread), 'data-waiting-since': String(r.waiting_since ?? ''),
      'data-last': last?.id ?? '',
    }, [
      el('span', { class: 'id' }, [el('bdi', {}, [name ? `${name} · ${r.id}` : r.id])]),
      last?.ts ? el('time', { class: 'when', datetime: new Date(last.ts).toISOString(), title: fullDate(last.ts) }, [shortDate(last.ts)]) : el('span'),
      count,
      ...(booking ? [el('span', { class: 'booking' }, [el('bdi', {}, [booking])])] : []),
      el('span', { class: 'last' }, [el('bdi', {}, [preview(last)])]), facts,
    ]);
    button.addEventListener('click', () => open(r.id));
    return el('li', {}, [button]);
  }));
  if (focusedId) rowButton(focusedId)?.focus();
}

/** @param {string} nextView @param {string} nextStatus */
function filter(nextView, nextStatus) {
  view = nextView;
  statusFilter = nextStatus;
  history.replaceState(history.state, '', fragment(opened() ? selected : ''));
  rows = [];
  renderInbox();
  loadInbox();
}

for (const button of document.querySelectorAll('.views button')) {
  button.addEventListener('click', () => filter(/** @type {HTMLElement} */ (button).dataset.view ?? 'mine', statusFilter));
}
for (const button of document.querySelectorAll('.statuses button')) {
  button.addEventListener('click', () => filter(view, /** @type {HTMLElement} */ (button).dataset.filterStatus ?? ''));
}

// ---- search -------------------------------------------------------------------------------

const results = $('results');
const resultList = $('results-list');
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

/** @param {string} query */
async function search(query) {
  const mine = ++searchGeneration;
  const q = query.trim();
  if (!q) {
    closeSearch(false);
    return;
  }
  let answer;
  try {
    answer = await api('GET', `/v1/search?q=${encodeURIComponent(q)}&limit=50`);
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
      const row = rows.find((x) => x.id === conversation);
      const name = guest(row?.metadata);
      const button = el('button', { type: 'button', 'data-conversation': conversation, 'data-message': r.id ?? '' }, [
        el('span', { class: 'id' }, [el('bdi', {}, [name ? `${name} · ${conversation}` : conversation])]),
        r.sent_at ? el('time', { class: 'when', datetime: new Date(r.sent_at).toISOString(), title: fullDate(r.sent_at) }, [shortDate(r.sent_at)]) : el('span'),
        el('span', { class: 'last' }, [
          r.kind === 'note' ? `${t('console.search.note')} ` : '',
          el('bdi', {}, [senderOf({ sender: r.sender, role: r.sender_role })]), ': ',
          el('bdi', {}, highlighted(String(r.snippet ?? r.body ?? ''), r.highlights ?? [])),
        ]),
      ]);
      button.addEventListener('click', () => open(conversation));
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

$('search').addEventListener('submit', (e) => {
  e.preventDefault();
  clearTimeout(searchTimer);
  search(searchInput.value);
});
searchInput.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => search(searchInput.value), SEARCH_DELAY_MS);
});
searchInput.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && (searchInput.value || !results.hidden)) {
    e.preventDefault();
    closeSearch(true);
  }
});
$('search-clear').addEventListener('click', () => closeSearch(true));

// ---- the selected conversation ------------------------------------------------------------

let caseGeneration = 0;
/** Reads the selected conversation's state (falling back to its inbox row). */
async function loadCase() {
  const id = selected;
  if (!id) return;
  const mine = ++caseGeneration;
  let state;
  try {
    state = await api('GET', `/v1/conversations/${encodeURIComponent(id)}`);
  } catch {
    state = rows.find((r) => r.id === id);
  }
  if (mine !== caseGeneration || !state) return;
  current = state;
  renderCase();
}

function renderCase() {
  const c = current;
  $('case').dataset.selected = String(Boolean(c));
  if (!c) return;
  const name = guest(c.metadata);
  $('case-title').textContent = name ? `${name} — ${c.id}` : c.id;
  const facts = [
    [t('console.fact.status'), statusText(c.status), 'Status'],
    [t('console.fact.assignee'), c.assignee ? nameOf(c.assignee) : t('console.fact.nobody'), 'Assignee'],
    ...bookingFacts(c.metadata).map(([k, v]) => [k, v, k]),
  ];
  if (c.closed) facts.push([t('console.fact.closed'), t('console.fact.yes'), 'Closed']);
  $('facts').replaceChildren(...facts.map(([k, v, key]) => el('div', {}, [el('dt', {}, [t('console.fact.label', { key: k })]), el('dd', { 'data-fact': key, dir: 'auto' }, [v])])));
  $('case').dataset.status = c.status;
  $('case').dataset.assignee = c.assignee ?? '';
  for (const button of document.querySelectorAll('#status-buttons button')) {
    button.setAttribute('aria-pressed', String(/** @type {HTMLElement} */ (button).dataset.status === c.status));
  }
  /** @type {HTMLButtonElement} */ ($('assign-me')).disabled = c.assignee === me;
  /** @type {HTMLButtonElement} */ ($('unassign')).disabled = !c.assignee;
  renderPicker();
}

/**
 * The transfer picker: active operators of the directory by name, without the caller and the
 * current assignee. A typo cannot pick someone who is not an operator.
 */
function renderPicker() {
  const picker = /** @type {HTMLSelectElement} */ ($('transfer-to'));
  const chosen = picker.value;
  const choices = [...directory.values()]
    .filter((o) => o.id !== me && o.id !== current?.assignee)
    .sort((a, b) => a.name.localeCompare(b.name));
  const prompt = el('option', { value: '' }, [t(choices.length ? 'console.transfer.prompt' : 'console.transfer.empty')]);
  picker.replaceChildren(prompt, ...choices.map((o) => el('option', { value: o.id }, [o.name])));
  if (choices.some((o) => o.id === chosen)) picker.value = chosen;
}

/** Reads the directory again (at start, and whenever the picker is opened). */
async function loadDirectory() {
  try {
    const { operators } = await api('GET', '/v1/operators');
    directory = new Map(operators.filter((/** @type {any} */ o) => o.active).map((/** @type {any} */ o) => [o.id, o]));
    renderPicker();
  } catch {
    // Offline or refused: the picker keeps what it had.
  }
}

/** @param {string} id */
function select(id) {
  selected = id;
  chat.setAttribute('heading', t('console.chatHeading', { id }));
  chat.conversation = id;
  current = rows.find((r) => r.id === id) ?? null;
  renderCase();
  renderInbox();
  loadCase();
}

/**
 * Changes the selected conversation over HTTP; the answer is its new state.
 * @param {string} action `assign` or `status`
 * @param {unknown} body
 * @param {string} what For the error message.
 */
async function change(action, body, what) {
  problem.textContent = '';
  try {
    current = await api('POST', `/v1/conversations/${encodeURIComponent(selected)}/${action}`, body);
    renderCase();
    refresh();
    return true;
  } catch (e) {
    problem.textContent = t('console.problem', { what, reason: e instanceof Error ? e.message : String(e) });
    return false;
  }
}

$('assign-me').addEventListener('click', () => change('assign', { operator_id: me }, t('console.do.assignMe')));
$('unassign').addEventListener('click', () => change('assign', { operator_id: null }, t('console.do.unassign')));
for (const button of document.querySelectorAll('#status-buttons button')) {
  const status = /** @type {HTMLElement} */ (button).dataset.status ?? '';
  button.addEventListener('click', () => change('status', { status }, t('console.do.status', { status: statusText(status) })));
}
$('transfer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const to = /** @type {HTMLSelectElement} */ ($('transfer-to'));
  const note = /** @type {HTMLInputElement} */ ($('transfer-note'));
  if (!to.value) return;
  const body = note.value.trim() ? { operator_id: to.value, note: note.value.trim() } : { operator_id: to.value };
  if (await change('assign', body, t('console.do.transfer', { name: nameOf(to.value) }))) {
    to.value = '';
    note.value = '';
  }
});
$('transfer-to').addEventListener('focus', loadDirectory);
// Below 768 px the booking data and the transfer form fold away behind "Details".
$('case-more').addEventListener('click', () => {
  const more = $('case-more');
  more.setAttribute('aria-expanded', String(more.getAttribute('aria-expanded') !== 'true'));
});

/** The chat's composer (a textarea in its shadow root). @returns {HTMLTextAreaElement | null} */
function composer() {
  return chat.input ?? chat.shadowRoot?.querySelector('textarea') ?? null;
}

const noteSwitch = /** @type {HTMLInputElement} */ ($('note-switch'));
noteSwitch.addEventListener('change', () => {
  chat.sendOptions = noteSwitch.checked ? { kind: 'note' } : {};
  const input = composer();
  if (input) {
    input.placeholder = t(noteSwitch.checked ? 'console.composer.note' : 'console.composer.message');
    input.style.background = noteSwitch.checked ? 'var(--surechat-note-bg)' : '';
  }
  if (noteSwitch.checked) chat.stopTyping?.();
});
presence.addEventListener('change', () => {
  client.setPresence(/** @type {'available' | 'away'} */ (presence.value));
  announce(t('console.presence.now', { status: presence.selectedOptions[0]?.textContent ?? presence.value }));
});

// ---- canned responses ---------------------------------------------------------------------

/** The operator's canned responses, by shortcut. @type {{ id: string, shortcut: string, title: string, body: string }[]} */
let canned = [];
const cannedList = $('canned-list');
const cannedForm = /** @type {HTMLFormElement} */ ($('canned-form'));
const cannedStatus = $('canned-status');
/** The id of the response being edited; '' when adding. */
let editing = '';

async function loadCanned() {
  try {
    const answer = await api('GET', '/v1/canned');
    canned = (Array.isArray(answer) ? answer : answer.replies ?? answer.canned ?? [])
      .slice().sort((/** @type {any} */ a, /** @type {any} */ b) => a.shortcut.localeCompare(b.shortcut));
    renderCanned();
  } catch {
    // Offline, or a server without canned responses: the panel stays as it was.
  }
}

function renderCanned() {
  if (!canned.length) {
    cannedList.replaceChildren(el('li', { class: 'empty' }, [t('console.canned.none')]));
    return;
  }
  cannedList.replaceChildren(...canned.map((c) => {
    const edit = el('button', { type: 'button', 'data-edit': c.id, 'aria-label': t('console.canned.editOne', { title: c.title }) }, [t('console.canned.edit')]);
    const remove = el('button', { type: 'button', 'data-delete': c.id, 'aria-label': t('console.canned.deleteOne', { title: c.title }) }, [t('console.canned.delete')]);
    edit.addEventListener('click', () => {
      editing = c.id;
      for (const name of ['shortcut', 'title', 'body']) /** @type {HTMLInputElement} */ (cannedForm.elements.namedItem(name)).value = /** @type {any} */ (c)[name];
      $('canned-form-title').textContent = t('console.canned.editing', { shortcut: c.shortcut });
      $('canned-cancel').hidden = false;
      /** @type {HTMLInputElement} */ ($('canned-shortcut')).focus();
    });
    remove.addEventListener('click', async () => {
      try {
        await api('DELETE', `/v1/canned/${encodeURIComponent(c.id)}`);
        cannedStatus.textContent = t('console.canned.deleted', { shortcut: c.shortcut });
        if (editing === c.id) resetCannedForm();
        await loadCanned();
        /** @type {HTMLElement} */ (cannedList.querySelector('button') ?? $('canned-shortcut')).focus();
      } catch (e) {
        cannedStatus.textContent = e instanceof Error ? e.message : String(e);
      }
    });
    return el('li', { 'data-canned': c.shortcut }, [
      el('span', { class: 'canned-text' }, [el('code', { dir: 'ltr' }, [`/${c.shortcut}`]), ' ', el('span', { dir: 'auto' }, [c.title])]),
      el('span', { class: 'row' }, [edit, remove]),
    ]);
  }));
}

function resetCannedForm() {
  editing = '';
  cannedForm.reset();
  $('canned-form-title').textContent = t('console.canned.add');
  $('canned-cancel').hidden = true;
}

cannedForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = new FormData(cannedForm);
  const body = { shortcut: String(data.get('shortcut') ?? '').trim(), title: String(data.get('title') ?? '').trim(), body: String(data.get('body') ?? '') };
  if (!/^[a-z0-9_-]{1,32}$/.test(body.shortcut)) {
    cannedStatus.textContent = t('console.canned.badShortcut');
    /** @type {HTMLInputElement} */ ($('canned-shortcut')).focus();
    return;
  }
  try {
    if (editing) await api('PUT', `/v1/canned/${encodeURIComponent(editing)}`, body);
    else await api('POST', '/v1/canned', body);
    cannedStatus.textContent = t(editing ? 'console.canned.updated' : 'console.canned.added', { shortcut: body.shortcut });
    resetCannedForm();
    loadCanned();
  } catch (err) {
    cannedStatus.textContent = /** @type {any} */ (err).status === 409
      ? t('console.canned.taken', { shortcut: body.shortcut })
      : t('console.canned.failed', { reason: err instanceof Error ? err.message : String(err) });
  }
});
$('canned-cancel').addEventListener('click', () => { resetCannedForm(); cannedStatus.textContent = ''; });
$('canned').addEventListener('toggle', () => { if (/** @type {HTMLDetailsElement} */ ($('canned')).open) loadCanned(); });

/**
 * `/` at the start of the composer offers the canned responses whose shortcut starts with what
 * follows, as a listbox under the composer (the ARIA combobox pattern: the composer keeps the
 * focus and points at the active option). Arrow keys move, Enter or Tab inserts, Escape closes.
 */
function cannedSuggestions() {
  const input = composer();
  const root = chat.shadowRoot;
  if (!input || !root) return;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(`
.canned-suggest { list-style: none; margin: 0 .75rem; padding: .25rem; max-height: 12rem; overflow-y: auto; border: 1px solid var(--surechat-border, #8c959f); border-radius: .5rem; background: var(--surechat-surface, #fff); color: var(--surechat-fg, #1f2328); display: flex; flex-direction: column; gap: .1rem; align-self: stretch; max-width: none; }
.canned-suggest[hidden] { display: none; }
.canned-suggest [role=option] { padding: .35rem .5rem; border-radius: .35rem; cursor: pointer; display: flex; gap: .5rem; align-items: baseline; border: 0; background: none; max-width: none; align-self: stretch; }
.canned-suggest [role=option][aria-selected=true] { background: var(--surechat-accent, #0969da); color: var(--surechat-accent-fg, #fff); }
.canned-suggest code { font-weight: 600; }
`);
  root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  const box = el('ul', { id: 'canned-suggest', class: 'canned-suggest', role: 'listbox', 'aria-label': t('console.canned'), hidden: '' });
  (input.closest('form') ?? input).before(box);
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'canned-suggest');
  input.setAttribute('aria-expanded', 'false');
  /** @type {typeof canned} */
  let offered = [];
  let active = 0;

  const close = () => {
    box.hidden = true;
    offered = [];
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  };
  const paint = () => {
    [...box.children].forEach((option, i) => option.setAttribute('aria-selected', String(i === active)));
    input.setAttribute('aria-activedescendant', `canned-option-${active}`);
    box.children[active]?.scrollIntoView({ block: 'nearest' });
  };
  /** @param {typeof canned[number]} c */
  const insert = (c) => {
    input.value = c.body;
    input.setSelectionRange(c.body.length, c.body.length);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    close();
    announce(t('console.canned.inserted', { title: c.title }));
  };
  const update = () => {
    const m = /^\/([a-z0-9_-]*)$/i.exec(input.value);
    if (!m) return close();
    const q = m[1].toLowerCase();
    offered = canned.filter((c) => c.shortcut.startsWith(q)).slice(0, 8);
    if (!offered.length) return close();
    active = Math.min(active, offered.length - 1);
    box.replaceChildren(...offered.map((c, i) => {
      const option = el('li', { id: `canned-option-${i}`, role: 'option', 'aria-selected': 'false', 'data-shortcut': c.shortcut }, [
        el('code', { dir: 'ltr' }, [`/${c.shortcut}`]), el('span', { dir: 'auto' }, [c.title]),
      ]);
      // Pressed, not clicked: the composer keeps the focus.
      option.addEventListener('mousedown', (e) => { e.preventDefault(); insert(c); });
      return option;
    }));
    box.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    paint();
  };
  input.addEventListener('input', () => { if (!/^\//.test(input.value)) active = 0; update(); });
  input.addEventListener('blur', close);
  input.addEventListener('focus', () => { if (input.value.startsWith('/')) { if (!canned.length) loadCanned().then(update); else update(); } });
  // Captured at the shadow root, before the composer's own Enter (which sends).
  root.addEventListener('keydown', (/** @type {Event} */ e) => {
    const key = /** @type {KeyboardEvent} */ (e);
    if (key.target !== input || box.hidden || !offered.length) return;
    if (key.key === 'ArrowDown' || key.key === 'ArrowUp') {
      active = (active + (key.key === 'ArrowDown' ? 1 : offered.length - 1)) % offered.length;
      paint();
    } else if ((key.key === 'Enter' || key.key === 'Tab') && !key.shiftKey && !key.isComposing) {
      insert(offered[active]);
    } else if (key.key === 'Escape') {
      close();
    } else {
      return;
    }
    key.preventDefault();
    key.stopPropagation();
  }, true);
}

// ---- keyboard -----------------------------------------------------------------------------

/** The conversation `step` rows after the selected one (wrapping at neither end). @param {number} step */
function move(step) {
  const ids = [...list.querySelectorAll('[data-conversation]')].map((b) => /** @type {HTMLElement} */ (b).dataset.conversation ?? '');
  if (!ids.length) return;
  const at = ids.indexOf(selected);
  const next = ids[at < 0 ? 0 : Math.max(0, Math.min(ids.length - 1, at + step))];
  const focusRow = document.activeElement?.closest?.('#inbox');
  open(next);
  if (focusRow) rowButton(next)?.focus();
  const row = rows.find((r) => r.id === next);
  announce(t('console.moved', { name: guest(row?.metadata) || next, n: ids.indexOf(next) + 1, total: ids.length }));
}

function focusComposer() {
  if (!selected) return;
  if (!opened()) open(selected);
  composer()?.focus();
}

function focusSearch() {
  searchInput.focus();
  searchInput.select();
}

/** @type {Element | null} */
let beforeHelp = null;
function openHelp() {
  if (help.open) return;
  beforeHelp = document.activeElement;
  help.showModal();
  /** @type {HTMLElement} */ ($('help-close')).focus();
}
help.addEventListener('close', () => {
  if (beforeHelp instanceof HTMLElement && beforeHelp.isConnected) beforeHelp.focus();
  beforeHelp = null;
});
$('help-open').addEventListener('click', openHelp);

document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.isComposing) return;
  if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
    e.preventDefault();
    focusSearch();
    return;
  }
  const target = e.composedPath()[0];
  const typing = target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
  if (typing || help.open) return;
  if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
    e.preventDefault();
    move(e.key === 'ArrowDown' ? 1 : -1);
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  /** @type {Record<string, () => void>} */
  const actions = { j: () => move(1), k: () => move(-1), r: focusComposer, c: focusComposer, s: focusSearch, '?': openHelp };
  const action = actions[e.key];
  if (!action) return;
  e.preventDefault();
  action();
});

// The skip link: straight to the conversation, its composer when one is open (the fragment
// holds the page's state, so the link's own `#conversation` is not followed).
$('skip').addEventListener('click', (e) => {
  e.preventDefault();
  if (selected) focusComposer();
  else $('conversation').focus();
});

// ---- following the live stream ------------------------------------------------------------

/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
/** Reads inbox and conversation again soon, coalescing a burst of frames into one request. */
function refresh() {
  clearTimeout(timer);
  timer = setTimeout(() => { loadInbox(); loadCase(); }, REFRESH_DELAY_MS);
}

client.on('message', (e) => {
  const m = e.message;
  // Assignments as they happen (before the inbox is read again): whose news a guest's message is.
  if (m.kind === 'system' && m.data?.event === 'assigned') assignees.set(m.conversation, m.data.to ?? null);
  // Entries of other conversations are said here; the open conversation's own timeline (a live
  // log) says its entries itself, so saying them here too would announce each twice.
  if (m.kind === 'system' && m.conversation !== selected && m.ts && Date.now() - m.ts < ANNOUNCE_WITHIN_MS) {
    announce(`${m.conversation}: ${m.body}`);
  }
  refresh();
});
client.on('receipt', refresh);
client.on('synced', refresh);
client.on('connection_status', (e) => {
  if (e.status.name === 'connected') refresh();
  if (e.status.name === 'expired') renderInbox();
});
setInterval(() => { if (view === 'all') refresh(); else renderInbox(); pollUnassigned(); }, ALL_VIEW_POLL_MS);
// Guests writing while the console is in the background: count in the title and icon, a tone
// (an agent's console, so on by default), and a notification once the agent enabled them.
const attention = new Attention(client, {
  sound: true,
  // Guests' messages in the operator's own conversations and unassigned ones (not another
  // operator's: that operator is told).
  counts: (m) => m.role === 'client' && [me, null, undefined].includes(assignees.get(m.conversation)),
  describe: (m) => ({ title: t('console.newMessage', { id: m.conversation }), body: m.body }),
});
const notify = /** @type {HTMLButtonElement} */ (document.getElementById('notify'));
if ('Notification' in window && Notification.permission === 'default') {
  notify.hidden = false;
  notify.addEventListener('click', async () => {
    const allowed = await attention.enableNotifications();
    notify.hidden = true;
    // Pushes reach the agent with the console closed; without a push service, the page's own.
    if (allowed === 'granted' && pushSupported()) enablePush({ getToken: () => token }).catch(() => {});
  });
}
/** @type {any} */ (window).surechatAttention = attention;
client.start();
loadDirectory();
loadCanned();
cannedSuggestions();
renderInbox();
if (selected) select(selected);
showPane();
loadInbox();
