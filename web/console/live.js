// Following the live stream: the WebSocket says *when* the inbox and the open conversation are
// read again — every message (system entries for assignment and status included), receipt and
// `synced` of any conversation, and every (re)connect, coalesced into one request. So after a
// reconnect the inbox equals a fresh load without reloading the page. In the `all` view,
// conversations the operator does not take part in send nothing over the WebSocket: that view is
// also read again every 15 s. Guests writing while the console is in the background are counted
// in the title and icon, with a tone and, once allowed, a notification (or a push).

import { t } from './lang.js';
import { Attention } from '../attention.js';
import { enablePush, pushSupported } from '../push.js';
import { announce } from './common.js';
import { loadInbox, pollUnassigned, renderInbox } from './inbox.js';
import { loadCase } from './case.js';

const REFRESH_DELAY_MS = 100;
const ALL_VIEW_POLL_MS = 15000;
/** System entries newer than this are announced when they arrive. */
const ANNOUNCE_WITHIN_MS = 60000;

/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;

/** Reads inbox and conversation again soon, coalescing a burst of frames into one request. @param {import('./common.js').Console} ctx */
export function refresh(ctx) {
  clearTimeout(timer);
  timer = setTimeout(() => { loadInbox(ctx); loadCase(ctx); }, REFRESH_DELAY_MS);
}

/** Subscribes to the client's events, polls, and sets up `ctx.attention`. @param {import('./common.js').Console} ctx */
export function followLive(ctx) {
  const { client } = ctx;
  client.on('message', (e) => {
    const m = e.message;
    // Assignments as they happen (before the inbox is read again): whose news a guest's message is.
    if (m.kind === 'system' && m.data?.event === 'assigned') ctx.assignees.set(m.conversation, m.data.to ?? null);
    // Entries of other conversations are said here; the open conversation's own timeline (a live
    // log) says its entries itself, so saying them here too would announce each twice.
    if (m.kind === 'system' && m.conversation !== ctx.selected && m.ts && Date.now() - m.ts < ANNOUNCE_WITHIN_MS) {
      announce(`${m.conversation}: ${m.body}`);
    }
    refresh(ctx);
  });
  client.on('receipt', () => refresh(ctx));
  client.on('synced', () => refresh(ctx));
  client.on('connection_status', (e) => {
    if (e.status.name === 'connected') refresh(ctx);
    if (e.status.name === 'expired') renderInbox(ctx);
  });
  setInterval(() => { if (ctx.view === 'all') refresh(ctx); else renderInbox(ctx); pollUnassigned(ctx); }, ALL_VIEW_POLL_MS);
  // Guests writing while the console is in the background: count in the title and icon, a tone
  // (an agent's console, so on by default), and a notification once the agent enabled them.
  const attention = new Attention(client, {
    sound: true,
    // Guests' messages in the operator's own conversations and unassigned ones (not another
    // operator's: that operator is told).
    counts: (m) => m.role === 'client' && [ctx.me, null, undefined].includes(ctx.assignees.get(m.conversation)),
    describe: (m) => ({ title: t('console.newMessage', { id: m.conversation }), body: m.body }),
  });
  ctx.attention = attention;
  const notify = /** @type {HTMLButtonElement} */ (document.getElementById('notify'));
  if ('Notification' in window && Notification.permission === 'default') {
    notify.hidden = false;
    notify.addEventListener('click', async () => {
      const allowed = await attention.enableNotifications();
      notify.hidden = true;
      // Pushes reach the agent with the console closed; without a push service, the page's own.
      if (allowed === 'granted' && pushSupported()) enablePush({ getToken: () => ctx.token }).catch(() => {});
    });
  }
  /** @type {any} */ (window).surechatAttention = attention;
}
