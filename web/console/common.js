// What every part of the operator console uses: the state they share (`Console`, one object that
// console.js makes and hands to each part, so what changes where stays visible at the call), the
// HTTP call with the operator's token, building DOM without parsing text, announcing to screen
// readers, and how a conversation's booking data, status and messages are put into words.

import { t } from './lang.js';

/**
 * The console's shared state. Only console.js creates it; each part reads and writes the fields
 * it needs.
 * @typedef {object} Console
 * @property {import('../client.js').SurechatClient} client The live connection.
 * @property {any} chat The `<surechat-chat>` element showing the selected conversation.
 * @property {import('../attention.js').Attention | null} attention Counts and tells of guests'
 *   messages in the background; `null` until the live stream is followed.
 * @property {string} token The operator's access token (a session's is renewed before it expires).
 * @property {string} me The operator's id.
 * @property {boolean} seesAll Whether the token may read every conversation (the `all` view).
 * @property {string} view The inbox view: `mine`, `unassigned` or `all`.
 * @property {string} statusFilter The status filter; '' for any.
 * @property {string} selected The selected conversation's id; '' for none.
 * @property {any[]} rows The rows of the last inbox answer.
 * @property {any} current The selected conversation's state (conversation view, or its inbox row).
 * @property {Map<string, any>} directory The active operators of the directory, by id (`GET /v1/operators`).
 * @property {Map<string, string | null>} assignees Each conversation's assignee as the inbox last
 *   said (`null`: unassigned).
 */

export const STATUSES = ['open', 'pending', 'resolved'];

/** @param {string} id */
export function $(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/**
 * An HTTP call with the operator's token; throws the problem's detail (with its HTTP status).
 * @param {Console} ctx
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function api(ctx, method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${ctx.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    const detail = await response.json().then((p) => p.detail, () => '');
    throw Object.assign(new Error(detail || `HTTP ${response.status}`), { status: response.status });
  }
  return response.status === 204 ? null : response.json();
}

/**
 * Creates an element with attributes and text or element children (text is never parsed).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** @param {string} text */
export function announce(text) {
  const announcer = $('announce');
  // A change of content is what screen readers announce; clear first so a repeat is heard.
  announcer.textContent = '';
  requestAnimationFrame(() => { announcer.textContent = text; });
}

/** The guest's name in the booking data, if any. @param {any} metadata */
export function guest(metadata) {
  const name = metadata?.guest ?? metadata?.guest_name ?? metadata?.name;
  return typeof name === 'string' ? name : '';
}

/** The booking data as `[key, text]` pairs (scalar values only). @param {any} metadata */
export function bookingFacts(metadata) {
  return Object.entries(metadata ?? {})
    .filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => [k.replace(/_/g, ' '), String(v)]);
}

/** @param {string} status */
export function statusText(status) {
  return STATUSES.includes(status) ? t(`console.status.${status}`) : status;
}

/**
 * An operator's display name, or the id while the directory is unknown.
 * @param {Console} ctx
 * @param {string} id
 */
export function nameOf(ctx, id) {
  return ctx.directory.get(id)?.name ?? id;
}

/** Who wrote a message, for a preview line. @param {Console} ctx @param {any} m */
export function senderOf(ctx, m) {
  if (m.sender === ctx.me) return t('console.you');
  return m.role === 'operator' ? nameOf(ctx, m.sender) : m.sender;
}

/** @param {Console} ctx @param {any} m a message */
export function preview(ctx, m) {
  if (!m) return t('console.row.empty');
  if (m.kind === 'system') return m.body;
  // A message of files alone says which files (names are shown as text, like bodies).
  const files = (m.attachments ?? []).map((/** @type {{ name: string }} */ a) => a.name).join(', ');
  const body = m.body || (files ? t('console.row.attachment', { names: files }) : '');
  const line = t('console.row.line', { who: senderOf(ctx, m), body });
  return m.kind === 'note' ? t('console.row.note', { line }) : line;
}
