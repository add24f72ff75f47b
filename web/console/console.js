// The operator console: the inbox (views mine / unassigned / all, longest waiting first), the
// selected conversation with its booking data, assignment, status and timeline (system entries
// and private notes included), the presence switch, and typing both ways.
//
// How the inbox stays right: the rows are always exactly what `GET /v1/inbox` last answered,
// never patched locally. The live WebSocket stream says *when* to read it again: every message
// (system entries for assignment and status included), receipt and `synced` of any conversation,
// and every (re)connect, coalesced into one request; an answer older than a request made after it
// is dropped. So after a reconnect the inbox equals a fresh load without reloading the page. In
// the `all` view, conversations the operator does not take part in send nothing over the
// WebSocket: that view is also read again every 15 s.
//
// Signed in (the sign-in page, `/console`), the tokens come from the session, refreshed before
// they expire; the demo opens it with a token in the URL fragment instead. Either way, optionally
// a conversation and a view in the fragment: #token=…&conversation=…&view=mine|unassigned|all

import { SurechatClient } from '../client.js';
import { Attention } from '../attention.js';
import { enablePush, pushSupported } from '../push.js';
import { accountPanels, loadSession, sessionToken } from './account.js';
import '../components.js';

// The app shell works offline too (registered here rather than in an inline script, which the
// page's Content-Security-Policy forbids).
if ('serviceWorker' in navigator) navigator.serviceWorker.register('../sw.js').catch(() => {});

const REFRESH_DELAY_MS = 100;
/** Texts of the transfer picker. */
const PICKER_PROMPT = 'Choose an operator…';
const PICKER_EMPTY = 'No other active operator';
const ALL_VIEW_POLL_MS = 15000;
/** System entries newer than this are announced when they arrive. */
const ANNOUNCE_WITHIN_MS = 60000;

const params = new URLSearchParams(location.hash.slice(1));
/** Signed in through the sign-in page: no token in the fragment. */
const session = params.get('token') ? null : await loadSession();
let token = session ? await sessionToken(session) : params.get('token') ?? '';
const claims = readClaims(token);
const me = String(claims.sub ?? '');
const seesAll = claims.scope === 'all';
let view = params.get('view') ?? (seesAll ? 'all' : 'mine');
if (!['mine', 'unassigned', 'all'].includes(view) || (view === 'all' && !seesAll)) view = 'mine';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const chat = /** @type {any} */ ($('chat'));
const list = $('inbox');
const announcer = $('announce');
const problem = $('problem');
const presence = /** @type {HTMLSelectElement} */ ($('presence'));
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
chat.client = client;
chat.userName = (/** @type {string} */ id) => nameOf(id);
// A transfer's note travels in the entry's data (only operators receive it): show it after the summary.
chat.systemText = (/** @type {any} */ m) => (m.data && m.data.note ? `${m.body}: ${m.data.note}` : m.body);
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
 * An HTTP call with the operator's token; throws the problem's detail.
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
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return response.json();
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

/** @param {number} ms */
function ago(ms) {
  const minutes = Math.floor(Math.max(0, Date.now() - ms) / 60000);
  if (minutes < 1) return 'under a minute';
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
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

/** @param {any} m a message */
function preview(m) {
  if (!m) return 'No messages yet';
  if (m.kind === 'system') return m.body;
  return `${m.kind === 'note' ? 'Private note — ' : ''}${m.sender === me ? 'You' : m.role === 'operator' ? nameOf(m.sender) : m.sender}: ${m.body}`;
}

// ---- the inbox ----------------------------------------------------------------------------

let generation = 0;
/** Reads the inbox view; only the answer to the newest request is shown. */
async function loadInbox() {
  const mine = ++generation;
  try {
    const inbox = await api('GET', `/v1/inbox?view=${view}`);
    if (mine !== generation) return;
    rows = inbox.conversations;
    learn(rows, view);
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
      attention.alert({ conversation: r.id, title: 'New conversation', body: guest(r.metadata) ? `${guest(r.metadata)} (${r.id})` : r.id });
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

function renderInbox() {
  for (const button of document.querySelectorAll('.views button')) {
    const b = /** @type {HTMLElement} */ (button);
    b.setAttribute('aria-pressed', String(b.dataset.view === view));
    if (b.dataset.view === 'all') b.hidden = !seesAll;
  }
  const focused = /** @type {HTMLElement | null} */ (document.activeElement)?.closest?.('#inbox [data-conversation]');
  const focusedId = focused instanceof HTMLElement ? focused.dataset.conversation : null;
  if (client.status.name === 'expired') {
    // Refused by the server: an empty list would say "nothing to do" when nothing can be read.
    list.replaceChildren(el('li', { class: 'empty' }, ['Your session has expired. Sign in again to see your conversations.']));
    return;
  }
  if (!rows.length) {
    list.replaceChildren(el('li', { class: 'empty' }, [`No conversations in this view.`]));
    return;
  }
  list.replaceChildren(...rows.map((r) => {
    const name = guest(r.metadata);
    const unread = r.unread;
    const count = el('span', { class: 'unread', 'data-count': String(unread) }, [String(unread), el('span', { class: 'sr' }, [' unread'])]);
    const facts = el('span', { class: 'facts' }, [
      el('span', { class: `chip ${r.status}` }, [r.status]),
      el('span', { class: 'assignee' }, [r.assignee ? `Assignee: ${r.assignee === me ? `${nameOf(r.assignee)} (you)` : nameOf(r.assignee)}` : 'Unassigned']),
      r.waiting_since
        ? el('span', { class: 'waiting' }, ['Waiting ', el('time', { datetime: new Date(r.waiting_since).toISOString(), title: new Date(r.waiting_since).toLocaleString() }, [ago(r.waiting_since)])])
        : el('span', {}, ['Answered']),
    ]);
    const booking = bookingFacts(r.metadata).filter(([k]) => !['guest', 'guest name', 'name'].includes(k)).slice(0, 4).map(([, v]) => v).join(' · ');
    const button = el('button', {
      type: 'button', 'aria-current': String(r.id === selected), 'data-conversation': r.id, 'data-status': r.status,
      'data-assignee': r.assignee ?? '', 'data-unread': String(r.unread), 'data-waiting-since': String(r.waiting_since ?? ''),
      'data-last': r.last_message?.id ?? '',
    }, [
      el('span', { class: 'id' }, [name ? `${name} · ${r.id}` : r.id]), count,
      ...(booking ? [el('span', { class: 'booking' }, [booking])] : []),
      el('span', { class: 'last' }, [preview(r.last_message)]), facts,
    ]);
    button.addEventListener('click', () => select(r.id));
    return el('li', {}, [button]);
  }));
  if (focusedId) /** @type {HTMLElement | null} */ (list.querySelector(`[data-conversation="${CSS.escape(focusedId)}"]`))?.focus();
}

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
  $('case').hidden = !c;
  if (!c) return;
  const name = guest(c.metadata);
  $('case-title').textContent = name ? `${name} — ${c.id}` : c.id;
  const facts = [['Status', c.status], ['Assignee', c.assignee ? nameOf(c.assignee) : 'nobody'], ...bookingFacts(c.metadata)];
  if (c.closed) facts.push(['Closed', 'yes']);
  $('facts').replaceChildren(...facts.map(([k, v]) => el('div', {}, [el('dt', {}, [`${k}:`]), el('dd', { 'data-fact': k }, [v])])));
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
  const prompt = el('option', { value: '' }, [choices.length ? PICKER_PROMPT : PICKER_EMPTY]);
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
  chat.setAttribute('heading', `Conversation ${id}`);
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
    problem.textContent = `Could not ${what}: ${e instanceof Error ? e.message : e}`;
    return false;
  }
}

$('assign-me').addEventListener('click', () => change('assign', { operator_id: me }, 'assign it to you'));
$('unassign').addEventListener('click', () => change('assign', { operator_id: null }, 'unassign it'));
for (const button of document.querySelectorAll('#status-buttons button')) {
  const status = /** @type {HTMLElement} */ (button).dataset.status;
  button.addEventListener('click', () => change('status', { status }, `set the status to ${status}`));
}
$('transfer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const to = /** @type {HTMLSelectElement} */ ($('transfer-to'));
  const note = /** @type {HTMLInputElement} */ ($('transfer-note'));
  if (!to.value) return;
  const body = note.value.trim() ? { operator_id: to.value, note: note.value.trim() } : { operator_id: to.value };
  if (await change('assign', body, `transfer it to ${nameOf(to.value)}`)) {
    to.value = '';
    note.value = '';
  }
});
$('transfer-to').addEventListener('focus', loadDirectory);
for (const button of document.querySelectorAll('.views button')) {
  button.addEventListener('click', () => {
    view = /** @type {HTMLElement} */ (button).dataset.view ?? 'mine';
    rows = [];
    renderInbox();
    loadInbox();
  });
}
const noteSwitch = /** @type {HTMLInputElement} */ ($('note-switch'));
noteSwitch.addEventListener('change', () => {
  chat.sendOptions = noteSwitch.checked ? { kind: 'note' } : {};
  chat.input.placeholder = noteSwitch.checked ? 'Private note, only operators see it…' : 'Write a message…';
  chat.input.style.background = noteSwitch.checked ? '#fff8c5' : '';
  if (noteSwitch.checked) chat.stopTyping();
});
presence.addEventListener('change', () => {
  client.setPresence(/** @type {'available' | 'away'} */ (presence.value));
  announce(`Your status: ${presence.value}`);
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
  if (m.kind === 'system' && m.ts && Date.now() - m.ts < ANNOUNCE_WITHIN_MS) announce(`${m.conversation}: ${m.body}`);
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
  describe: (m) => ({ title: `New message in ${m.conversation}`, body: m.body }),
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
renderInbox();
if (selected) select(selected);
loadInbox();
