// Keyboard shortcuts and their help dialog: j / k (or Alt+↓ / Alt+↑) move through the inbox,
// r or c write in the open conversation, s or Ctrl+K search, ? shows the help. They apply only
// when the focus is not in a field one types in (Ctrl+K anywhere). Also the skip link, which
// goes straight to the conversation.

import { t } from './lang.js';
import { $, announce, guest } from './common.js';
import { open, opened } from './navigation.js';
import { rowButton } from './inbox.js';
import { composer } from './case.js';
import { focusSearch } from './search.js';

const list = $('inbox');
const help = /** @type {HTMLDialogElement} */ ($('help'));
/** Where the focus was before the help opened (it returns there). @type {Element | null} */
let beforeHelp = null;

/**
 * The conversation `step` rows after the selected one (wrapping at neither end).
 * @param {import('./common.js').Console} ctx
 * @param {number} step
 */
function move(ctx, step) {
  const ids = [...list.querySelectorAll('[data-conversation]')].map((b) => /** @type {HTMLElement} */ (b).dataset.conversation ?? '');
  if (!ids.length) return;
  const at = ids.indexOf(ctx.selected);
  const next = ids[at < 0 ? 0 : Math.max(0, Math.min(ids.length - 1, at + step))];
  const focusRow = document.activeElement?.closest?.('#inbox');
  open(ctx, next);
  if (focusRow) rowButton(next)?.focus();
  const row = ctx.rows.find((r) => r.id === next);
  announce(t('console.moved', { name: guest(row?.metadata) || next, n: ids.indexOf(next) + 1, total: ids.length }));
}

/** @param {import('./common.js').Console} ctx */
function focusComposer(ctx) {
  if (!ctx.selected) return;
  if (!opened()) open(ctx, ctx.selected);
  composer(ctx)?.focus();
}

function openHelp() {
  if (help.open) return;
  beforeHelp = document.activeElement;
  help.showModal();
  /** @type {HTMLElement} */ ($('help-close')).focus();
}

/** The shortcuts, the help dialog and the skip link. @param {import('./common.js').Console} ctx */
export function shortcuts(ctx) {
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
      move(ctx, e.key === 'ArrowDown' ? 1 : -1);
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    /** @type {Record<string, () => void>} */
    const actions = { j: () => move(ctx, 1), k: () => move(ctx, -1), r: () => focusComposer(ctx), c: () => focusComposer(ctx), s: focusSearch, '?': openHelp };
    const action = actions[e.key];
    if (!action) return;
    e.preventDefault();
    action();
  });

  // The skip link: straight to the conversation, its composer when one is open (the fragment
  // holds the page's state, so the link's own `#conversation` is not followed).
  $('skip').addEventListener('click', (e) => {
    e.preventDefault();
    if (ctx.selected) focusComposer(ctx);
    else $('conversation').focus();
  });
}
