// The selected conversation: its booking data and facts, assignment (to oneself, to nobody, or a
// transfer with a note to another operator of the directory), status, the "Details" fold below
// 768 px, and the composer's switch between a message to the guest and a private note.
// What it shows is the conversation's state as the server last answered, or its inbox row until
// then; each change is a request whose answer is the new state.

import { t } from './lang.js';
import { $, api, bookingFacts, el, guest, nameOf, statusText } from './common.js';
import { renderInbox } from './inbox.js';
import { refresh } from './live.js';

let caseGeneration = 0;

/** Reads the selected conversation's state (falling back to its inbox row). @param {import('./common.js').Console} ctx */
export async function loadCase(ctx) {
  const id = ctx.selected;
  if (!id) return;
  const mine = ++caseGeneration;
  let state;
  try {
    state = await api(ctx, 'GET', `/v1/conversations/${encodeURIComponent(id)}`);
  } catch {
    state = ctx.rows.find((r) => r.id === id);
  }
  if (mine !== caseGeneration || !state) return;
  ctx.current = state;
  renderCase(ctx);
}

/** @param {import('./common.js').Console} ctx */
function renderCase(ctx) {
  const c = ctx.current;
  $('case').dataset.selected = String(Boolean(c));
  if (!c) return;
  const name = guest(c.metadata);
  $('case-title').textContent = name ? `${name} — ${c.id}` : c.id;
  const facts = [
    [t('console.fact.status'), statusText(c.status), 'Status'],
    [t('console.fact.assignee'), c.assignee ? nameOf(ctx, c.assignee) : t('console.fact.nobody'), 'Assignee'],
    ...bookingFacts(c.metadata).map(([k, v]) => [k, v, k]),
  ];
  if (c.closed) facts.push([t('console.fact.closed'), t('console.fact.yes'), 'Closed']);
  $('facts').replaceChildren(...facts.map(([k, v, key]) => el('div', {}, [el('dt', {}, [t('console.fact.label', { key: k })]), el('dd', { 'data-fact': key, dir: 'auto' }, [v])])));
  $('case').dataset.status = c.status;
  $('case').dataset.assignee = c.assignee ?? '';
  for (const button of document.querySelectorAll('#status-buttons button')) {
    button.setAttribute('aria-pressed', String(/** @type {HTMLElement} */ (button).dataset.status === c.status));
  }
  /** @type {HTMLButtonElement} */ ($('assign-me')).disabled = c.assignee === ctx.me;
  /** @type {HTMLButtonElement} */ ($('unassign')).disabled = !c.assignee;
  renderPicker(ctx);
}

/**
 * The transfer picker: active operators of the directory by name, without the caller and the
 * current assignee. A typo cannot pick someone who is not an operator.
 * @param {import('./common.js').Console} ctx
 */
function renderPicker(ctx) {
  const picker = /** @type {HTMLSelectElement} */ ($('transfer-to'));
  const chosen = picker.value;
  const choices = [...ctx.directory.values()]
    .filter((o) => o.id !== ctx.me && o.id !== ctx.current?.assignee)
    .sort((a, b) => a.name.localeCompare(b.name));
  const prompt = el('option', { value: '' }, [t(choices.length ? 'console.transfer.prompt' : 'console.transfer.empty')]);
  picker.replaceChildren(prompt, ...choices.map((o) => el('option', { value: o.id }, [o.name])));
  if (choices.some((o) => o.id === chosen)) picker.value = chosen;
}

/** Reads the directory again (at start, and whenever the picker is opened). @param {import('./common.js').Console} ctx */
export async function loadDirectory(ctx) {
  try {
    const { operators } = await api(ctx, 'GET', '/v1/operators');
    ctx.directory = new Map(operators.filter((/** @type {any} */ o) => o.active).map((/** @type {any} */ o) => [o.id, o]));
    renderPicker(ctx);
  } catch {
    // Offline or refused: the picker keeps what it had.
  }
}

/** @param {import('./common.js').Console} ctx @param {string} id */
export function select(ctx, id) {
  ctx.selected = id;
  ctx.chat.setAttribute('heading', t('console.chatHeading', { id }));
  ctx.chat.conversation = id;
  ctx.current = ctx.rows.find((r) => r.id === id) ?? null;
  renderCase(ctx);
  renderInbox(ctx);
  loadCase(ctx);
}

/**
 * Changes the selected conversation over HTTP; the answer is its new state.
 * @param {import('./common.js').Console} ctx
 * @param {string} action `assign` or `status`
 * @param {unknown} body
 * @param {string} what For the error message.
 */
async function change(ctx, action, body, what) {
  const problem = $('problem');
  problem.textContent = '';
  try {
    ctx.current = await api(ctx, 'POST', `/v1/conversations/${encodeURIComponent(ctx.selected)}/${action}`, body);
    renderCase(ctx);
    refresh(ctx);
    return true;
  } catch (e) {
    problem.textContent = t('console.problem', { what, reason: e instanceof Error ? e.message : String(e) });
    return false;
  }
}

/** The chat's composer (a textarea in its shadow root). @param {import('./common.js').Console} ctx @returns {HTMLTextAreaElement | null} */
export function composer(ctx) {
  return ctx.chat.input ?? ctx.chat.shadowRoot?.querySelector('textarea') ?? null;
}

/** The conversation panel's controls. @param {import('./common.js').Console} ctx */
export function caseControls(ctx) {
  $('assign-me').addEventListener('click', () => change(ctx, 'assign', { operator_id: ctx.me }, t('console.do.assignMe')));
  $('unassign').addEventListener('click', () => change(ctx, 'assign', { operator_id: null }, t('console.do.unassign')));
  for (const button of document.querySelectorAll('#status-buttons button')) {
    const status = /** @type {HTMLElement} */ (button).dataset.status ?? '';
    button.addEventListener('click', () => change(ctx, 'status', { status }, t('console.do.status', { status: statusText(status) })));
  }
  $('transfer').addEventListener('submit', async (e) => {
    e.preventDefault();
    const to = /** @type {HTMLSelectElement} */ ($('transfer-to'));
    const note = /** @type {HTMLInputElement} */ ($('transfer-note'));
    if (!to.value) return;
    const body = note.value.trim() ? { operator_id: to.value, note: note.value.trim() } : { operator_id: to.value };
    if (await change(ctx, 'assign', body, t('console.do.transfer', { name: nameOf(ctx, to.value) }))) {
      to.value = '';
      note.value = '';
    }
  });
  $('transfer-to').addEventListener('focus', () => loadDirectory(ctx));
  // Below 768 px the booking data and the transfer form fold away behind "Details".
  $('case-more').addEventListener('click', () => {
    const more = $('case-more');
    more.setAttribute('aria-expanded', String(more.getAttribute('aria-expanded') !== 'true'));
  });

  const noteSwitch = /** @type {HTMLInputElement} */ ($('note-switch'));
  noteSwitch.addEventListener('change', () => {
    ctx.chat.sendOptions = noteSwitch.checked ? { kind: 'note' } : {};
    const input = composer(ctx);
    if (input) {
      input.placeholder = t(noteSwitch.checked ? 'console.composer.note' : 'console.composer.message');
      input.style.background = noteSwitch.checked ? 'var(--surechat-note-bg)' : '';
    }
    if (noteSwitch.checked) ctx.chat.stopTyping?.();
  });
}
