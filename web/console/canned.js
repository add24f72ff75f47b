// Canned responses: the operator's saved replies, each with a `/shortcut`. The panel lists them
// and adds, edits and deletes them; in the composer, `/` followed by the start of a shortcut
// offers the matching ones (the ARIA combobox pattern) and inserts the chosen reply's text.

import { t } from './lang.js';
import { $, announce, api, el } from './common.js';
import { composer } from './case.js';

/** The operator's canned responses, by shortcut. @type {{ id: string, shortcut: string, title: string, body: string }[]} */
let canned = [];
const cannedList = $('canned-list');
const cannedForm = /** @type {HTMLFormElement} */ ($('canned-form'));
const cannedStatus = $('canned-status');
/** The id of the response being edited; '' when adding. */
let editing = '';

/** @param {import('./common.js').Console} ctx */
export async function loadCanned(ctx) {
  try {
    const answer = await api(ctx, 'GET', '/v1/canned');
    canned = (Array.isArray(answer) ? answer : answer.replies ?? answer.canned ?? [])
      .slice().sort((/** @type {any} */ a, /** @type {any} */ b) => a.shortcut.localeCompare(b.shortcut));
    renderCanned(ctx);
  } catch {
    // Offline, or a server without canned responses: the panel stays as it was.
  }
}

/** @param {import('./common.js').Console} ctx */
function renderCanned(ctx) {
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
        await api(ctx, 'DELETE', `/v1/canned/${encodeURIComponent(c.id)}`);
        cannedStatus.textContent = t('console.canned.deleted', { shortcut: c.shortcut });
        if (editing === c.id) resetCannedForm();
        await loadCanned(ctx);
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

/** The panel's form (add or edit), its cancel button, and reading the list when it opens. @param {import('./common.js').Console} ctx */
export function cannedPanel(ctx) {
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
      if (editing) await api(ctx, 'PUT', `/v1/canned/${encodeURIComponent(editing)}`, body);
      else await api(ctx, 'POST', '/v1/canned', body);
      cannedStatus.textContent = t(editing ? 'console.canned.updated' : 'console.canned.added', { shortcut: body.shortcut });
      resetCannedForm();
      loadCanned(ctx);
    } catch (err) {
      cannedStatus.textContent = /** @type {any} */ (err).status === 409
        ? t('console.canned.taken', { shortcut: body.shortcut })
        : t('console.canned.failed', { reason: err instanceof Error ? err.message : String(err) });
    }
  });
  $('canned-cancel').addEventListener('click', () => { resetCannedForm(); cannedStatus.textContent = ''; });
  $('canned').addEventListener('toggle', () => { if (/** @type {HTMLDetailsElement} */ ($('canned')).open) loadCanned(ctx); });
}

/**
 * `/` at the start of the composer offers the canned responses whose shortcut starts with what
 * follows, as a listbox under the composer (the ARIA combobox pattern: the composer keeps the
 * focus and points at the active option). Arrow keys move, Enter or Tab inserts, Escape closes.
 * @param {import('./common.js').Console} ctx
 */
export function cannedSuggestions(ctx) {
  const input = composer(ctx);
  const root = ctx.chat.shadowRoot;
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
  input.addEventListener('focus', () => { if (input.value.startsWith('/')) { if (!canned.length) loadCanned(ctx).then(update); else update(); } });
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
