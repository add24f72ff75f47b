// The browser client's token refresh, on mocked timers: asked shortly before the token expires
// (at most half its remaining life ahead), and `auth_expired` when there is no way to refresh.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SurechatClient, tokenExpiry } from '../../../web/client.js';

/** An unsigned token expiring `inS` seconds from `now` (only `exp` is read). */
function token(now, inS) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64({ sub: 'ana', exp: Math.floor(now / 1000) + inS })}.sig`;
}

test('the expiry of a token is read from its claims', () => {
  assert.equal(tokenExpiry(token(0, 60)), 60_000);
  assert.equal(tokenExpiry('not a token'), null);
});

test('a token is refreshed before it expires, and the next one is scheduled in turn', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const fresh = token(1_000_000, 3600);
    let asked = 0;
    const client = new SurechatClient({
      token: token(1_000_000, 10), server: 'http://127.0.0.1:9',
      getToken: async () => { asked += 1; return fresh; },
    });
    client.scheduleRefresh();
    // 10 s of life: refreshed at half of it, not later.
    mock.timers.tick(4_900);
    assert.equal(asked, 0);
    mock.timers.tick(200);
    await client.refreshing;
    assert.equal(asked, 1);
    assert.equal(client.token, fresh);
    assert.equal(client.session.token, fresh);
    // An hour of life (from now, 5.1 s after the start): refreshed a minute ahead.
    mock.timers.tick(3_600_000 - 5_100 - 60_000 - 100);
    assert.equal(asked, 1);
    mock.timers.tick(200);
    await client.refreshing;
    assert.equal(asked, 2);
    client.stop();
  } finally {
    mock.timers.reset();
  }
});

test('without getToken, or when it fails, the app hears auth_expired', async () => {
  const bare = new SurechatClient({ token: 't', server: 'http://127.0.0.1:9' });
  let heard = 0;
  bare.addEventListener('auth_expired', () => { heard += 1; });
  await bare.refreshToken();
  assert.equal(heard, 1);
  const failing = new SurechatClient({
    token: 't', server: 'http://127.0.0.1:9', getToken: async () => { throw new Error('signed out'); },
  });
  failing.addEventListener('auth_expired', () => { heard += 1; });
  await failing.refreshToken();
  assert.equal(heard, 2);
});

