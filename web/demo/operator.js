// The operator console: an inbox of conversations with unread counts and last messages, from
// `GET /v1/conversations` and kept current by the live WebSocket stream, and the selected
// conversation with its ticks. Token (and optionally a conversation) in the URL fragment.

import { SurechatClient } from '../client.js';
import '../components.js';

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token') ?? '';
const chat = /** @type {any} */ (document.getElementById('chat'));
const badge = /** @type {any} */ (document.getElementById('badge'));
const list = /** @type {HTMLElement} */ (document.getElementById('inbox'));
const client = new SurechatClient({ token });
let selected = params.get('conversation') ?? '';
/** @type {any[]} */
let summaries = [];

badge.client = client;
chat.client = client;
if (selected) select(selected);
/** @type {any} */ (window).surechat = client; // for the browser tests

/** @param {string} id */
function select(id) {
  selected = id;
  chat.setAttribute('heading', `Booking ${id}`);
  chat.conversation = id;
  render();
}

/** Unread counts come from the server, then follow the live stream until the next refresh. */
function render() {
  const me = client.userId;
  list.replaceChildren(...summaries.map((s) => {
    const held = client.messages(s.id);
    const last = held.at(-1) ?? s.last_message;
    const unread = s.id === selected ? 0
      : Math.max(s.unread, held.filter((m) => m.sender !== me && (m.seq ?? 0) > s.read).length);
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.conversation = s.id;
    button.setAttribute('aria-current', String(s.id === selected));
    const name = Object.assign(document.createElement('span'), { className: 'id', textContent: s.id });
    const count = Object.assign(document.createElement('span'), { className: 'unread', textContent: String(unread) });
    count.dataset.count = String(unread);
    count.setAttribute('aria-label', `${unread} unread`);
    const preview = Object.assign(document.createElement('span'), { className: 'last', textContent: last ? `${last.sender}: ${last.body}` : 'No messages yet' });
    button.append(name, count, preview);
    button.addEventListener('click', () => select(s.id));
    const li = document.createElement('li');
    li.append(button);
    return li;
  }));
}

let timer = 0;
/** Re-reads the inbox soon (coalescing bursts of frames into one request). */
function refresh() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    try {
      const response = await fetch('/v1/conversations', { headers: { Authorization: `Bearer ${token}` } });
      if (!response.ok) return;
      summaries = (await response.json()).conversations;
      if (!selected && summaries[0]) select(summaries[0].id);
      render();
    } catch {
      // Offline: the inbox stays as it was; the live stream catches up on reconnect.
    }
  }, 150);
}

client.on('message', () => { render(); refresh(); });
client.on('receipt', refresh);
client.on('connection_status', (e) => { if (e.status.name === 'connected') refresh(); });
client.start();
refresh();
