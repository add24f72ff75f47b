// The client demo page (`client.html`): one booking's chat. A file of its own, not an inline
// script, so the page runs under a Content-Security-Policy that allows only the server's files.
//
// The token and conversation come in the URL fragment (#token=…&conversation=…), which the
// browser never sends to the server, so tokens stay out of access logs.
import { SurechatClient } from '../client.js';
import { Attention } from '../attention.js';
import { enablePush, pushSupported } from '../push.js';
import { dirOf, load, translator } from '../i18n.js';
import '../components.js';
import './strings.js';

// The language: `lang=` in the fragment (e.g. #…&lang=ar), else the page's.
const params = new URLSearchParams(location.hash.slice(1));
const wanted = params.get('lang');
if (wanted) {
  document.documentElement.lang = wanted;
  document.documentElement.dir = dirOf(wanted);
}
// The colour scheme: `theme=dark|light` in the fragment overrides the system's, for the page and the chat.
const theme = params.get('theme');
if (theme === 'dark' || theme === 'light') document.documentElement.dataset.theme = theme;
// The page's language's catalog first (fetched only for languages other than English), so the
// page draws once, in it.
await load(document.documentElement.lang).catch(() => {});
const t = translator(document.documentElement.lang);
for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.getAttribute('data-t') ?? '');

const chat = /** @type {import('../chat-element.js').ChatElement} */ (document.getElementById('chat'));
chat.setAttribute('heading', t('demo.heading'));
if (theme === 'dark' || theme === 'light') chat.setAttribute('theme', theme);
const problem = await openLink();
const fragment = new URLSearchParams(location.hash.slice(1)); // a redeemed link rewrote it
const token = fragment.get('token');
const conversation = fragment.get('conversation');
if (problem || !token || !conversation) {
  chat.replaceWith(Object.assign(document.createElement('p'), {
    className: 'problem', textContent: problem ?? t('demo.no_link'),
  }));
} else {
  const client = new SurechatClient({ token });
  chat.setAttribute('conversation', conversation);
  // Operators by the names the server's directory gives them (the chat reads the directory),
  // never by their ids.
  /** @param {string} id @param {string} [named] */
  const operatorName = (id, named) => named ?? chat.people.get(id)?.name ?? t('chat.operator');
  // The other participants of a client's conversation are its operators.
  chat.userName = (id) => (id === client.userId ? id : operatorName(id));
  // System entries as the client should read them (never a transfer's internal note).
  chat.systemText = (m) => {
    /** @type {{ event?: string, to?: string, to_name?: string }} */
    const data = m.data ?? {};
    if (data.event === 'status') return data.to === 'open' ? t('demo.reopened') : t(`demo.status_${data.to}`);
    if (data.event === 'assigned') return data.to ? t('demo.handling', { name: operatorName(data.to, data.to_name) }) : t('demo.waiting');
    return m.body;
  };
  chat.client = client;
  // "An operator is online": any operator of the conversation available. The server tells
  // every operator's presence again after each (re)connect, so start over then.
  /** @type {Map<string, string>} */
  const operators = new Map();
  const line = /** @type {HTMLElement} */ (document.getElementById('presence'));
  const show = () => {
    const online = [...operators.values()].includes('available');
    if (client.status.name === 'expired') return;
    line.hidden = client.status.name !== 'connected';
    line.dataset.online = String(online);
    line.textContent = online ? t('demo.online') : t('demo.nobody');
  };
  client.on('presence', (e) => { if (e.conversation === conversation) operators.set(e.user_id, e.status); });
  client.on('connection_status', (e) => { if (e.status.name === 'connected') operators.clear(); });
  client.on('change', show);
  // The demo has no sign-in to get a fresh token from: say what to do instead.
  client.on('auth_expired', () => {
    line.hidden = false;
    line.dataset.online = 'false';
    line.textContent = t('demo.expired');
  });
  // Replies while the tab is in the background: count in the title and icon; a notification
  // once the guest asked for them (a click, never on load); no sound on someone else's page.
  const attention = new Attention(client, {
    sound: false,
    describe: (m) => ({ title: t('demo.replied', { name: operatorName(m.sender) }), body: m.body }),
  });
  notifyButton(attention, token);
  /** @type {any} */ (window).surechat = client; // for the browser tests and curious developers
  /** @type {any} */ (window).surechatAttention = attention;
}
/**
 * A link from an email or a push (`?surechat_link=…`) is used once for a fresh session, which
 * then lives in the fragment like any other (a reload keeps working). The same browser opening
 * the same link again gets the session it had, from localStorage, instead of "already used".
 * @returns {Promise<string | undefined>} why the link cannot open the conversation, if it cannot
 */
async function openLink() {
  // Sessions kept for links are dropped once expired: a token stays no longer than it works.
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const name = localStorage.key(i);
    if (!name?.startsWith('surechat-link:')) continue;
    const kept = JSON.parse(localStorage.getItem(name) ?? 'null');
    if (!kept || kept.expires_at * 1000 <= Date.now()) localStorage.removeItem(name);
  }
  const link = new URLSearchParams(location.search).get('surechat_link');
  if (!link) return undefined;
  const key = `surechat-link:${link.slice(0, 24)}`;
  /** @type {{ token: string, conversation_id: string, expires_at: number } | null} */
  let session = JSON.parse(localStorage.getItem(key) ?? 'null');
  if (session && session.expires_at * 1000 <= Date.now()) session = null;
  if (!session) {
    try {
      const response = await fetch('/v1/links/redeem', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: link }),
      });
      if (!response.ok) {
        const { code } = await response.json().catch(() => ({}));
        if (code === 'link_used') return t('demo.link_used');
        if (code === 'link_expired') return t('demo.link_expired');
        return t('demo.link_bad');
      }
      session = await response.json();
      localStorage.setItem(key, JSON.stringify(session));
    } catch {
      return t('demo.link_offline');
    }
  }
  const s = /** @type {{ token: string, conversation_id: string, expires_at: number }} */ (session);
  history.replaceState(null, '', `${location.pathname}#token=${encodeURIComponent(s.token)}&conversation=${encodeURIComponent(s.conversation_id)}`);
  return undefined;
}

/**
 * Shows the "notify me" button where notifications exist and are not decided yet. A click
 * allows notifications in the page and, where the browser has a push service, subscribes to
 * pushes too, so an answer reaches the guest after the tab is closed.
 * @param {Attention} attention
 * @param {string} token
 */
function notifyButton(attention, token) {
  const button = /** @type {HTMLButtonElement | null} */ (document.getElementById('notify'));
  if (!button || !('Notification' in window) || Notification.permission !== 'default') return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    const allowed = await attention.enableNotifications();
    button.hidden = true;
    // The page's own notifications work without it: a push service out of reach is no error.
    if (allowed === 'granted' && pushSupported()) enablePush({ getToken: () => token }).catch(() => {});
  });
}

// The app shell works offline too: a reload without network still shows pending messages.
if ('serviceWorker' in navigator) navigator.serviceWorker.register('../sw.js').catch(() => {});
