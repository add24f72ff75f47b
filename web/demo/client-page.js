// The client demo page (`client.html`): one booking's chat. A file of its own, not an inline
// script, so the page runs under a Content-Security-Policy that allows only the server's files.
//
// The token and conversation come in the URL fragment (#token=…&conversation=…), which the
// browser never sends to the server, so tokens stay out of access logs.
import { SurechatClient } from '../client.js';
import { Attention } from '../attention.js';
import '../components.js';

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const conversation = params.get('conversation');
const chat = /** @type {import('../chat-element.js').ChatElement} */ (document.getElementById('chat'));
if (!token || !conversation) {
  chat.replaceWith(Object.assign(document.createElement('p'), {
    className: 'problem', textContent: 'Open this page with #token=…&conversation=… (see `surechat demo`).',
  }));
} else {
  const client = new SurechatClient({ token });
  chat.setAttribute('conversation', conversation);
  // Operators by the names the server's directory gives them, never by their ids.
  /** @type {Map<string, string>} */
  const names = new Map();
  /** @param {string} id @param {string} [named] */
  const operatorName = (id, named) => named ?? names.get(id) ?? 'An operator';
  // The other participants of a client's conversation are its operators.
  chat.userName = (id) => (id === client.userId ? id : operatorName(id));
  // System entries as the client should read them (never a transfer's internal note).
  chat.systemText = (m) => {
    /** @type {{ event?: string, to?: string, to_name?: string }} */
    const data = m.data ?? {};
    if (data.event === 'status') return data.to === 'open' ? 'Conversation reopened' : `Conversation marked ${data.to}`;
    if (data.event === 'assigned') return data.to ? `${operatorName(data.to, data.to_name)} is handling your conversation` : 'Waiting for an operator';
    return m.body;
  };
  /** Reads the conversation's operators' names (again after a handover); rows follow. */
  const loadNames = async () => {
    try {
      const response = await fetch(`/v1/conversations/${encodeURIComponent(conversation)}/operators`, { headers: { Authorization: `Bearer ${token}` } });
      if (!response.ok) return;
      const { operators } = await response.json();
      const before = JSON.stringify([...names]);
      for (const o of operators) names.set(o.id, o.name);
      if (JSON.stringify([...names]) !== before) chat.rerender();
    } catch {
      // Offline: messages show "An operator" until the names can be read.
    }
  };
  loadNames();
  client.on('message', (e) => { if (e.message.conversation === conversation && e.message.data?.event === 'assigned') loadNames(); });
  client.on('connection_status', (e) => { if (e.status.name === 'connected') loadNames(); });
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
    line.textContent = online ? 'An operator is online' : 'No operator online right now';
  };
  client.on('presence', (e) => { if (e.conversation === conversation) operators.set(e.user_id, e.status); });
  client.on('connection_status', (e) => { if (e.status.name === 'connected') operators.clear(); });
  client.on('change', show);
  // The demo has no sign-in to get a fresh token from: say what to do instead.
  client.on('auth_expired', () => {
    line.hidden = false;
    line.dataset.online = 'false';
    line.textContent = 'This chat link has expired. Open the latest link from your booking to continue; your unsent messages are kept.';
  });
  // Replies while the tab is in the background: count in the title and icon; a notification
  // once the guest asked for them (a click, never on load); no sound on someone else's page.
  const attention = new Attention(client, {
    sound: false,
    describe: (m) => ({ title: `${operatorName(m.sender)} replied`, body: m.body }),
  });
  notifyButton(attention);
  /** @type {any} */ (window).surechat = client; // for the browser tests and curious developers
  /** @type {any} */ (window).surechatAttention = attention;
}
/**
 * Shows the "notify me" button where notifications exist and are not decided yet.
 * @param {Attention} attention
 */
function notifyButton(attention) {
  const button = /** @type {HTMLButtonElement | null} */ (document.getElementById('notify'));
  if (!button || !('Notification' in window) || Notification.permission !== 'default') return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    await attention.enableNotifications();
    button.hidden = true;
  });
}

// The app shell works offline too: a reload without network still shows pending messages.
if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {});
