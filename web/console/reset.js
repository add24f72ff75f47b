// A password reset link's page: the token is in the fragment (never sent in a request line, so
// it stays out of logs) and is used once, with the new password.

import { t } from './lang.js';

const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
const form = /** @type {HTMLFormElement} */ (document.getElementById('reset'));
const problem = /** @type {HTMLElement} */ (document.getElementById('problem'));
const field = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id)).value;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (field('password') !== field('again')) {
    problem.textContent = t('reset.mismatch');
    return;
  }
  const response = await fetch('/v1/password-reset/complete', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token, password: field('password') }),
  }).catch(() => null);
  if (response?.ok) {
    location.replace(`sign-in.html${location.search}`);
    return;
  }
  const { detail } = (await response?.json().catch(() => ({}))) ?? {};
  problem.textContent = detail ?? t('signin.offline');
});

