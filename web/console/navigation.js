// The URL fragment and, narrower than 768 px, the two views (the list, or the conversation).
// The fragment holds the page's state: the filters and the open conversation. Opening a
// conversation from the list adds a history entry, so the browser's Back (and the page's back
// button) return to the list; which view shows always follows the fragment.

import { $ } from './common.js';
import { rowButton } from './inbox.js';
import { select } from './case.js';

/** Where the page switches to two views (the CSS says the same). */
const narrow = matchMedia('(max-width: 767.98px)');

/**
 * The fragment for the current filters and `conversation` (none: the list).
 * @param {import('./common.js').Console} ctx
 * @param {string} conversation
 */
export function fragment(ctx, conversation) {
  const next = new URLSearchParams(location.hash.slice(1));
  next.set('view', ctx.view);
  if (ctx.statusFilter) next.set('status', ctx.statusFilter); else next.delete('status');
  if (conversation) next.set('conversation', conversation); else next.delete('conversation');
  return `#${next}`;
}

/** Whether the fragment names an open conversation (the conversation view below 768 px). */
export function opened() {
  return new URLSearchParams(location.hash.slice(1)).has('conversation');
}

/** Shows the list or the conversation (both side by side from 768 px). @param {import('./common.js').Console} ctx */
export function showPane(ctx) {
  document.body.dataset.pane = opened() && ctx.selected ? 'conversation' : 'list';
}

/**
 * Opens a conversation: selected, named in the fragment (a history entry of its own when coming
 * from the list, so Back returns there), and below 768 px the conversation view with the focus in it.
 * @param {import('./common.js').Console} ctx
 * @param {string} id
 */
export function open(ctx, id) {
  const fromList = !opened();
  select(ctx, id);
  if (fromList) history.pushState({ open: true }, '', fragment(ctx, id));
  else history.replaceState(history.state, '', fragment(ctx, id));
  showPane(ctx);
  if (narrow.matches && fromList) $('conversation').focus();
}

/** Back to the list: the history entry before the conversation, or the list in its place. @param {import('./common.js').Console} ctx */
function back(ctx) {
  if (history.state?.open) {
    history.back();
    return;
  }
  history.replaceState(null, '', fragment(ctx, ''));
  afterNavigation(ctx);
}

/** The fragment changed (Back, Forward, the back button): show what it says. @param {import('./common.js').Console} ctx */
function afterNavigation(ctx) {
  const id = new URLSearchParams(location.hash.slice(1)).get('conversation');
  if (id && id !== ctx.selected) select(ctx, id);
  showPane(ctx);
  if (narrow.matches && !id) rowButton(ctx.selected)?.focus();
}

/**
 * Follows Back, Forward, the back button and the width crossing 768 px; opened with a
 * conversation in the fragment, puts the list into the history beneath it.
 * @param {import('./common.js').Console} ctx
 */
export function followNavigation(ctx) {
  window.addEventListener('popstate', () => afterNavigation(ctx));
  narrow.addEventListener('change', () => showPane(ctx));
  $('back').addEventListener('click', () => back(ctx));
  if (ctx.selected) {
    history.replaceState(null, '', fragment(ctx, ''));
    history.pushState({ open: true }, '', fragment(ctx, ctx.selected));
  }
}
