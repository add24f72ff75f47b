// The operator console: the inbox (filtered by assignee — mine / unassigned / anyone — and by
// status, longest waiting first), full-text search over messages, the selected conversation with
// its booking data, assignment, status and timeline (system entries and private notes included),
// canned responses (managed in a panel, inserted with `/` in the composer), keyboard shortcuts,
// the presence switch, and typing both ways.
//
// This file signs in, makes the state the parts share (`Console`, in common.js) and wires them
// together, in this order: navigation.js (the URL fragment; below 768 px the list and the
// conversation are two views), inbox.js (the list and its filters), search.js, case.js (the
// selected conversation), canned.js (canned responses and the `/` suggestions), keyboard.js
// (shortcuts and their help), live.js (what the WebSocket says, and the alerts for guests).
//
// Signed in (the sign-in page, `/console`), the tokens come from the session, refreshed before
// they expire; the demo opens it with a token in the URL fragment instead. Either way, optionally
// a conversation, a view, a status filter and a language in the fragment:
// #token=…&conversation=…&view=mine|unassigned|all&status=open|pending|resolved&lang=en|es|ar

import { t } from './lang.js';
import { SurechatClient } from '../client.js';
import { accountPanels, loadSession, sessionToken } from './account.js';
import { $, STATUSES, announce, nameOf } from './common.js';
import { followNavigation, showPane } from './navigation.js';
import { inboxFilters, loadInbox, renderInbox } from './inbox.js';
import { searchBox } from './search.js';
import { caseControls, loadDirectory, select } from './case.js';
import { cannedPanel, cannedSuggestions, loadCanned } from './canned.js';
import { shortcuts } from './keyboard.js';
import { followLive } from './live.js';
import '../components.js';

// The app shell works offline too (registered here rather than in an inline script, which the
// page's Content-Security-Policy forbids).
if ('serviceWorker' in navigator) navigator.serviceWorker.register('../sw.js').catch(() => {});

const params = new URLSearchParams(location.hash.slice(1));
/** Signed in through the sign-in page: no token in the fragment. */
const session = params.get('token') ? null : await loadSession();
const token = session ? await sessionToken(session) : params.get('token') ?? '';
const claims = readClaims(token);
const seesAll = claims.scope === 'all';
let view = params.get('view') ?? (seesAll ? 'all' : 'mine');
if (!['mine', 'unassigned', 'all'].includes(view) || (view === 'all' && !seesAll)) view = 'mine';

const chat = /** @type {any} */ ($('chat'));
const presence = /** @type {HTMLSelectElement} */ ($('presence'));
const client = new SurechatClient({
  token,
  // A session's tokens are short: a new one before each expires, and when the server refuses
  // one (a disabled operator's session is gone: then the sign-in page).
  getToken: session ? async () => (ctx.token = await sessionToken(session)) : undefined,
});
/** @type {import('./common.js').Console} */
const ctx = {
  client,
  chat,
  attention: null,
  token,
  me: String(claims.sub ?? ''),
  seesAll,
  view,
  statusFilter: STATUSES.includes(params.get('status') ?? '') ? String(params.get('status')) : '',
  selected: params.get('conversation') ?? '',
  rows: [],
  current: null,
  directory: new Map(),
  assignees: new Map(),
};
if (session) accountPanels(session);

/** @type {any} */ ($('badge')).client = client;
chat.setAttribute('heading', t('console.noneSelected'));
chat.client = client;
chat.userName = (/** @type {string} */ id) => nameOf(ctx, id);
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

followNavigation(ctx);
inboxFilters(ctx);
searchBox(ctx);
caseControls(ctx);
presence.addEventListener('change', () => {
  client.setPresence(/** @type {'available' | 'away'} */ (presence.value));
  announce(t('console.presence.now', { status: presence.selectedOptions[0]?.textContent ?? presence.value }));
});
cannedPanel(ctx);
shortcuts(ctx);
followLive(ctx);
client.start();
loadDirectory(ctx);
loadCanned(ctx);
cannedSuggestions(ctx);
renderInbox(ctx);
if (ctx.selected) select(ctx, ctx.selected);
showPane(ctx);
loadInbox(ctx);
