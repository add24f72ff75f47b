// The inbox: the list of conversations for the chosen view (mine / unassigned / anyone) and
// status, longest waiting first, and the buttons that choose them.
// The rows are always exactly what `GET /v1/inbox` last answered, never patched locally; the live
// stream (live.js) only says when to read it again, and an answer older than a request made after
// it is dropped. Each answer also tells which conversations are new, to alert the operator.

import { t, elapsed, fullDate, shortDate } from './lang.js';
import { $, api, bookingFacts, el, guest, nameOf, preview, statusText } from './common.js';
import { fragment, open, opened } from './navigation.js';
import { select } from './case.js';

const list = $('inbox');
let generation = 0;
/** Conversations some inbox answer showed; `null` until the first answer. @type {Set<string> | null} */
let known = null;

/** Reads the inbox view; only the answer to the newest request is shown. @param {import('./common.js').Console} ctx */
export async function loadInbox(ctx) {
  const mine = ++generation;
  try {
    const inbox = await api(ctx, 'GET', `/v1/inbox?view=${ctx.view}${ctx.statusFilter ? `&status=${ctx.statusFilter}` : ''}`);
    if (mine !== generation) return;
    // The server filters by status; this keeps the list right against one that does not yet.
    ctx.rows = inbox.conversations.filter((/** @type {any} */ r) => !ctx.statusFilter || r.status === ctx.statusFilter);
    learn(ctx, inbox.conversations, ctx.view);
    renderInbox(ctx);
    if (!ctx.selected && ctx.rows[0]) select(ctx, ctx.rows[0].id);
  } catch {
    // Offline or refused: the rows stay as they were; the next (re)connect reads them again.
  }
}

/**
 * Takes note of an inbox answer: assignees (which messages are news for this operator), and
 * conversations new since the previous answers, which are announced when they are the
 * operator's own or unassigned.
 * @param {import('./common.js').Console} ctx
 * @param {any[]} answer
 * @param {string} answerView
 */
function learn(ctx, answer, answerView) {
  for (const r of answer) ctx.assignees.set(r.id, r.assignee ?? null);
  const first = known === null;
  known ??= new Set();
  for (const r of answer) {
    if (known.has(r.id)) continue;
    known.add(r.id);
    if (!first && (r.assignee === ctx.me || r.assignee == null) && answerView !== 'all') {
      ctx.attention?.alert({ conversation: r.id, title: t('console.newConversation'), body: guest(r.metadata) ? `${guest(r.metadata)} (${r.id})` : r.id });
    }
  }
}

/** New unassigned conversations come to no operator's WebSocket: look for them now and then. @param {import('./common.js').Console} ctx */
export async function pollUnassigned(ctx) {
  if (ctx.view === 'unassigned' || known === null) return;
  try {
    learn(ctx, (await api(ctx, 'GET', '/v1/inbox?view=unassigned')).conversations, 'unassigned');
  } catch {
    // Offline: the next poll looks again.
  }
}

/** The inbox row's button of a conversation. @param {string} id */
export function rowButton(id) {
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

/** @param {import('./common.js').Console} ctx */
function renderFilters(ctx) {
  for (const button of document.querySelectorAll('.views button')) {
    const b = /** @type {HTMLElement} */ (button);
    b.setAttribute('aria-pressed', String(b.dataset.view === ctx.view));
    if (b.dataset.view === 'all') b.hidden = !ctx.seesAll;
  }
  for (const button of document.querySelectorAll('.statuses button')) {
    const b = /** @type {HTMLElement} */ (button);
    b.setAttribute('aria-pressed', String(b.dataset.filterStatus === ctx.statusFilter));
  }
}

/** @param {import('./common.js').Console} ctx */
export function renderInbox(ctx) {
  renderFilters(ctx);
  const focused = /** @type {HTMLElement | null} */ (document.activeElement)?.closest?.('#inbox [data-conversation]');
  const focusedId = focused instanceof HTMLElement ? focused.dataset.conversation : null;
  if (ctx.client.status.name === 'expired') {
    // Refused by the server: an empty list would say "nothing to do" when nothing can be read.
    list.replaceChildren(el('li', { class: 'empty' }, [t('console.list.expired')]));
    return;
  }
  if (!ctx.rows.length) {
    list.replaceChildren(el('li', { class: 'empty' }, [t('console.list.empty')]));
    return;
  }
  list.replaceChildren(...ctx.rows.map((r) => {
    const name = guest(r.metadata);
    const unread = r.unread;
    const count = el('span', { class: 'unread', 'data-count': String(unread) }, [el('span', { class: 'sr' }, [t('console.row.unread', { n: unread })]), el('span', { 'aria-hidden': 'true' }, [String(unread)])]);
    const waiting = waitingFact(r);
    const facts = el('span', { class: 'facts' }, [
      el('span', { class: `chip ${r.status}` }, [statusText(r.status)]),
      el('span', { class: 'assignee' }, [r.assignee
        ? t(r.assignee === ctx.me ? 'console.row.assigneeYou' : 'console.row.assignee', { name: nameOf(ctx, r.assignee) })
        : t('console.row.unassigned')]),
      ...(waiting ? [waiting] : []),
    ]);
    const booking = bookingFacts(r.metadata).filter(([k]) => !['guest', 'guest name', 'name'].includes(k)).slice(0, 4).map(([, v]) => v).join(' · ');
    const last = r.last_message;
    const button = el('button', {
      type: 'button', 'aria-current': String(r.id === ctx.selected), 'data-conversation': r.id, 'data-status': r.status,
      'data-assignee': r.assignee ?? '', 'data-unread': String(r.unread), 'data-waiting-since': String(r.waiting_since ?? ''),
      'data-last': last?.id ?? '',
    }, [
      el('span', { class: 'id' }, [el('bdi', {}, [name ? `${name} · ${r.id}` : r.id])]),
      last?.ts ? el('time', { class: 'when', datetime: new Date(last.ts).toISOString(), title: fullDate(last.ts) }, [shortDate(last.ts)]) : el('span'),
      count,
      ...(booking ? [el('span', { class: 'booking' }, [el('bdi', {}, [booking])])] : []),
      el('span', { class: 'last' }, [el('bdi', {}, [preview(ctx, last)])]), facts,
    ]);
    button.addEventListener('click', () => open(ctx, r.id));
    return el('li', {}, [button]);
  }));
  if (focusedId) rowButton(focusedId)?.focus();
}

/** @param {import('./common.js').Console} ctx @param {string} nextView @param {string} nextStatus */
function filter(ctx, nextView, nextStatus) {
  ctx.view = nextView;
  ctx.statusFilter = nextStatus;
  history.replaceState(history.state, '', fragment(ctx, opened() ? ctx.selected : ''));
  ctx.rows = [];
  renderInbox(ctx);
  loadInbox(ctx);
}

/** The view and status buttons above the list. @param {import('./common.js').Console} ctx */
export function inboxFilters(ctx) {
  for (const button of document.querySelectorAll('.views button')) {
    button.addEventListener('click', () => filter(ctx, /** @type {HTMLElement} */ (button).dataset.view ?? 'mine', ctx.statusFilter));
  }
  for (const button of document.querySelectorAll('.statuses button')) {
    button.addEventListener('click', () => filter(ctx, ctx.view, /** @type {HTMLElement} */ (button).dataset.filterStatus ?? ''));
  }
}
