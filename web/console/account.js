// The console's sign-in side: the session (an HttpOnly cookie the page never sees), the short
// operator tokens it mints for the WebSocket and the API, signing out, and the panels an account
// has: the second factor for everyone, the team and the security log for admins.
//
// Every state-changing call carries the session's CSRF token; admin calls go with the cookie only
// (no Authorization header), which is how the server knows a signed-in admin is asking.

import { t, fullDate } from './lang.js';

/** @typedef {{ operator_id: string, name: string | null, email: string, role: 'admin' | 'agent', totp_enabled: boolean, csrf_token: string, expires_at: number, method: string }} SessionInfo */

/** Set once the page is on its way to the sign-in page: one navigation, not two racing. */
let leaving = false;

/** The sign-in page, keeping the fragment (a conversation to open after signing in). */
function toSignIn(hash = location.hash) {
  if (!leaving) {
    leaving = true;
    location.replace(`sign-in.html${location.search}${hash}`);
  }
  // Nothing after this runs: the page is going away.
  return new Promise(() => {});
}

/**
 * The signed-in session, or (not signed in) off to the sign-in page.
 * @returns {Promise<SessionInfo>}
 */
export async function loadSession() {
  const response = await fetch('/v1/session', { credentials: 'same-origin' });
  if (response.status === 401) return /** @type {Promise<never>} */ (toSignIn());
  if (!response.ok) throw new Error(`the session could not be read (HTTP ${response.status})`);
  return response.json();
}

/**
 * A call with the session cookie and its CSRF token; throws the problem's detail.
 * @param {SessionInfo} session
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function sessionApi(session, method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { 'X-CSRF-Token': session.csrf_token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && path.startsWith('/v1/session')) return toSignIn();
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw Object.assign(new Error(problem.detail || `HTTP ${response.status}`), { code: problem.code });
  }
  return response.status === 204 ? null : response.json();
}

/**
 * A fresh operator token from the session (the client's `getToken`). A session that ended
 * (signed out elsewhere, the operator disabled) goes to the sign-in page.
 * @param {SessionInfo} session
 * @returns {Promise<string>}
 */
export async function sessionToken(session) {
  const { token } = await sessionApi(session, 'POST', '/v1/session/token');
  return token;
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** A user id for a new account: its email, with what ids cannot hold replaced. @param {string} email */
function idFor(email) {
  return email.trim().toLowerCase().replace(/[^A-Za-z0-9\-_.:@]/g, '_').slice(0, 128);
}

/**
 * Shows who is signed in with a sign-out button, the second-factor panel, and for admins the
 * team and the security log.
 * @param {SessionInfo} session
 */
export function accountPanels(session) {
  const bar = /** @type {HTMLElement} */ (document.getElementById('account'));
  bar.hidden = false;
  /** @type {HTMLElement} */ (document.getElementById('who')).textContent = t('account.who', { name: session.name ?? session.operator_id, role: t(`console.role.${session.role}`) });
  /** @type {HTMLElement} */ (document.getElementById('sign-out')).addEventListener('click', async () => {
    // Signing out closes this page's connection too (its token is revoked): the client's
    // attempt to get a new one must not navigate first.
    leaving = true;
    await fetch('/v1/session', { method: 'DELETE', headers: { 'X-CSRF-Token': session.csrf_token }, credentials: 'same-origin' }).catch(() => {});
    leaving = false;
    toSignIn('');
  });
  secondFactor(session);
  if (session.role === 'admin') {
    team(session);
    securityLog(session);
  }
}

/** @param {SessionInfo} session */
function secondFactor(session) {
  const panel = /** @type {HTMLElement} */ (document.getElementById('totp'));
  panel.hidden = false;
  const body = /** @type {HTMLElement} */ (panel.querySelector('.body'));
  const message = (/** @type {string} */ text) => el('p', { role: 'status' }, [text]);
  const render = () => {
    if (session.totp_enabled) {
      const code = el('input', { inputmode: 'numeric', autocomplete: 'one-time-code', 'aria-label': t('account.totp.current'), pattern: '[0-9]{6}' });
      const off = el('button', { type: 'button' }, [t('account.totp.off')]);
      off.addEventListener('click', async () => {
        try {
          await sessionApi(session, 'DELETE', '/v1/session/totp', { code: /** @type {HTMLInputElement} */ (code).value });
          session.totp_enabled = false;
          render();
        } catch (e) { body.append(message(/** @type {Error} */ (e).message)); }
      });
      body.replaceChildren(el('p', {}, [t('account.totp.on')]), code, off);
      return;
    }
    const start = el('button', { type: 'button', id: 'totp-start' }, [t('account.totp.setup')]);
    start.addEventListener('click', async () => {
      const { secret, otpauth_url: url } = await sessionApi(session, 'POST', '/v1/session/totp');
      const code = el('input', { id: 'totp-code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}' });
      const confirm = el('button', { type: 'submit' }, [t('account.totp.turnOn')]);
      const form = el('form', {}, [
        el('p', {}, [t('account.totp.instructions')]),
        el('p', {}, [t('account.totp.key'), ' ', el('code', { id: 'totp-secret' }, [secret])]),
        el('p', {}, [el('a', { href: url }, [t('account.totp.open')])]),
        el('label', { for: 'totp-code' }, [t('account.totp.code')]), code, confirm,
      ]);
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        try {
          await sessionApi(session, 'POST', '/v1/session/totp/confirm', { code: /** @type {HTMLInputElement} */ (code).value });
          session.totp_enabled = true;
          render();
        } catch (e) { form.append(message(/** @type {Error} */ (e).message)); }
      });
      body.replaceChildren(form);
    });
    body.replaceChildren(start);
  };
  render();
}

/** @param {SessionInfo} session */
function team(session) {
  const panel = /** @type {HTMLElement} */ (document.getElementById('team'));
  panel.hidden = false;
  const list = /** @type {HTMLElement} */ (document.getElementById('team-list'));
  const form = /** @type {HTMLFormElement} */ (document.getElementById('team-add'));
  const status = /** @type {HTMLElement} */ (document.getElementById('team-status'));
  /** The accounts as last read. @type {any[]} */
  let known = [];
  const load = async () => {
    const { accounts } = await sessionApi(session, 'GET', '/v1/accounts');
    known = accounts;
    list.replaceChildren(...accounts.map((/** @type {any} */ a) => {
      const toggle = el('button', { type: 'button', 'data-account': a.operator_id }, [t(a.active ? 'account.team.disable' : 'account.team.enable')]);
      toggle.addEventListener('click', async () => {
        try {
          await sessionApi(session, 'PUT', `/v1/accounts/${encodeURIComponent(a.operator_id)}`, { email: a.email, name: a.name ?? a.operator_id, role: a.role, active: !a.active });
          status.textContent = t(a.active ? 'account.team.disabled' : 'account.team.enabled', { name: a.name ?? a.email });
          load();
        } catch (e) { status.textContent = /** @type {Error} */ (e).message; }
      });
      const self = a.operator_id === session.operator_id;
      return el('li', { 'data-account': a.operator_id }, [
        el('span', {}, [t(a.active ? 'account.team.row' : 'account.team.rowDisabled', { name: a.name ?? a.operator_id, email: a.email, role: t(`console.role.${a.role}`) })]),
        ...(self ? [] : [toggle]),
      ]);
    }));
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const email = String(data.get('email') ?? '');
    // Adding never replaces someone: an address whose id is taken is said so.
    if (known.some((a) => a.operator_id === idFor(email) || a.email === email.trim().toLowerCase())) {
      status.textContent = t('account.team.exists');
      return;
    }
    try {
      await sessionApi(session, 'PUT', `/v1/accounts/${encodeURIComponent(idFor(email))}`, {
        email, name: String(data.get('name') ?? ''), role: String(data.get('role') ?? 'agent'),
        password: String(data.get('password') ?? '') || undefined,
      });
      status.textContent = t('account.team.added', { name: String(data.get('name') ?? '') });
      form.reset();
      load();
    } catch (e) { status.textContent = /** @type {Error} */ (e).message; }
  });
  load().catch((e) => { status.textContent = e.message; });
}

/** @param {SessionInfo} session */
function securityLog(session) {
  const panel = /** @type {HTMLDetailsElement} */ (document.getElementById('audit'));
  panel.hidden = false;
  const list = /** @type {HTMLElement} */ (document.getElementById('audit-list'));
  panel.addEventListener('toggle', async () => {
    if (!panel.open) return;
    // Ascending pages: read to the end, keep the newest 50.
    /** @type {any[]} */
    let entries = [];
    for (let after = 0; ;) {
      const page = (await sessionApi(session, 'GET', `/v1/audit?after=${after}&limit=1000`)).entries;
      entries = [...entries, ...page].slice(-50);
      if (page.length < 1000) break;
      after = page[page.length - 1].id;
    }
    list.replaceChildren(...entries.reverse().map((/** @type {any} */ e) => el('li', {}, [
      el('time', { datetime: new Date(e.at).toISOString() }, [fullDate(e.at)]),
      ` ${e.actor} — ${e.action}${e.target ? ` — ${e.target}` : ''}`,
    ])));
  });
}
