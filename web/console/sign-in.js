// The console's sign-in page: email and password (and the authenticator code when the account
// has one), single sign-on buttons for the configured providers, and "forgot your password".
// On success the session cookie is set (HttpOnly: this page never sees it) and the console opens.

import { t } from './lang.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const form = /** @type {HTMLFormElement} */ ($('signin'));
const problem = $('problem');
const codeRow = $('code-row');

/** Why single sign-on sent the person back, from the fragment (`#error=…`). */
const SSO_ERRORS = {
  no_account: t('signin.sso.noAccount'),
  disabled: t('signin.sso.disabled'),
  failed: t('signin.sso.failed'),
};
const back = new URLSearchParams(location.hash.slice(1)).get('error');
if (back) problem.textContent = SSO_ERRORS[/** @type {keyof typeof SSO_ERRORS} */ (back)] ?? SSO_ERRORS.failed;

/** @param {number} seconds */
function wait(seconds) {
  return t('signin.minutes', { n: Math.max(1, Math.ceil(seconds / 60)) });
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  problem.textContent = '';
  const data = new FormData(form);
  const body = { email: String(data.get('email') ?? ''), password: String(data.get('password') ?? '') };
  const code = String(data.get('code') ?? '').trim();
  const response = await fetch('/v1/session', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin',
    body: JSON.stringify(code ? { ...body, totp: code } : body),
  }).catch(() => null);
  if (!response) {
    problem.textContent = t('signin.offline');
    return;
  }
  if (response.ok) {
    location.replace(`./${location.search}${location.hash.startsWith('#error') ? '' : location.hash}`);
    return;
  }
  const { code: reason, detail } = await response.json().catch(() => ({}));
  if (reason === 'totp_required') {
    codeRow.hidden = false;
    /** @type {HTMLInputElement} */ ($('code')).focus();
    problem.textContent = code ? detail : t('signin.enterCode');
  } else if (reason === 'account_locked') {
    problem.textContent = t('signin.locked', { wait: wait(Number(response.headers.get('retry-after') ?? 60)) });
  } else if (reason === 'signin_failed') {
    problem.textContent = t('signin.wrong');
  } else {
    problem.textContent = detail ?? t('signin.failed', { status: response.status });
  }
});

// Single sign-on: one button per provider the server has.
fetch('/v1/oidc').then((r) => (r.ok ? r.json() : { providers: [] })).then(({ providers }) => {
  const box = $('sso');
  for (const p of providers) {
    const link = Object.assign(document.createElement('a'), { className: 'button', href: `/v1/oidc/${encodeURIComponent(p.name)}/start`, textContent: t('signin.with', { provider: p.label }) });
    box.append(link);
  }
}).catch(() => {});

const forgot = /** @type {HTMLFormElement} */ ($('forgot'));
forgot.addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = /** @type {HTMLInputElement} */ ($('forgot-email')).value;
  const response = await fetch('/v1/password-reset', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email }) }).catch(() => null);
  $('forgot-status').textContent = response?.ok
    ? t('signin.forgot.sent')
    : t('signin.forgot.failed');
});

