// The chat widget as people read and use it, on the client demo page, at 1280×800 and 360×740:
// groups and day separators over messages from earlier days (their server times moved back in
// the server's own database), safe links, long messages by keyboard, Arabic right to left,
// permanent and transient failures with where focus goes, the composer on a touch screen, and
// axe-core in each state reached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Server, launch, waitRows, type, badge, assertAccessible, WAIT_MS } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const VIEWPORTS = [['desktop', { width: 1280, height: 800 }], ['phone', { width: 360, height: 740 }]];
const DAY = 86400000;

/** A fresh server with one booking. */
async function start(t) {
  const server = await new Server().start();
  t.after(() => server.stop());
  return { server, booking: await server.booking() };
}

/** The client page in a fresh context, connected. */
async function open(t, server, booking, viewport, { fragment = '', context = {} } = {}) {
  const ctx = await browser.newContext({ viewport, ...context });
  t.after(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(server.clientUrl(booking.ana, booking.id) + fragment);
  await badge(page, 'connected');
  return page;
}

/** A message stored by the server as `token`'s user (returns its id). */
async function post(server, token, conversation, body) {
  const id = crypto.randomUUID();
  await server.as(token, 'POST', `/v1/conversations/${conversation}/messages`, { id, body });
  return id;
}

/** The element that has focus, through shadow roots, as `tag.class`. */
function focused(page) {
  return page.evaluate(() => {
    let el = document.activeElement;
    while (el?.shadowRoot?.activeElement) el = el.shadowRoot.activeElement;
    return el ? `${el.tagName.toLowerCase()}${el.classList.length ? `.${[...el.classList].join('.')}` : ''}` : 'none';
  });
}

/** Evaluates `fn(chat, arg)` with the chat element (its `shadowRoot` destructured as `root` by callers). */
function inChat(page, fn, arg) {
  return page.locator('surechat-chat').evaluate(fn, arg);
}

for (const [name, viewport] of VIEWPORTS) {
  test(`${name}: messages of earlier days are grouped by sender, under Today / Yesterday / date separators`, async (t) => {
    const { server, booking } = await start(t);
    const older = [
      await post(server, booking.olga, booking.id, 'Welcome to Sea View 3B!'),
      await post(server, booking.olga, booking.id, 'The key box code is 4711.'),
      await post(server, booking.ana, booking.id, 'Thank you!'),
      await post(server, booking.olga, booking.id, 'Is everything fine with the flat?'),
    ];
    await post(server, booking.ana, booking.id, 'Yes, all good 👍');
    // Move the first three to three days ago (a minute apart, one group and one reply) and the
    // fourth to yesterday, in the server's database while it is down.
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    const times = [midnight - 3 * DAY + 10 * 3600000, midnight - 3 * DAY + 10 * 3600000 + 60000,
      midnight - 3 * DAY + 10 * 3600000 + 120000, midnight - DAY + 15 * 3600000];
    await server.kill();
    execFileSync('python3', ['-c', `
import sqlite3, sys, json
db = sqlite3.connect(sys.argv[1])
for id, ts in json.loads(sys.argv[2]):
    assert db.execute('UPDATE messages SET created_at = ? WHERE id = ?', (ts, id)).rowcount == 1
db.commit()
`, join(server.data, 'surechat.db'), JSON.stringify(older.map((id, i) => [id, times[i]]))]);
    await server.restart();
    const page = await open(t, server, booking, viewport);
    await waitRows(page, 'five messages', (r) => r.length === 5);
    const items = await inChat(page, ({ shadowRoot: root }) => [...root.querySelectorAll('ol > li')].map((li) => ({
      day: li.classList.contains('day') ? li.textContent : null,
      body: li.querySelector('.body')?.textContent,
      first: li.classList.contains('first'),
      name: li.querySelector('.who-line') ? getComputedStyle(li.querySelector('.who-line')).display !== 'none' : false,
      time: li.querySelector('time') ? getComputedStyle(li.querySelector('time')).display !== 'none' : false,
      title: li.querySelector('time')?.title,
      datetime: li.querySelector('time')?.getAttribute('datetime'),
    })));
    const expectedDate = await page.evaluate((ms) => new Intl.DateTimeFormat('en', { weekday: 'long', day: 'numeric', month: 'long' }).format(ms), times[0]);
    assert.deepEqual(items.filter((i) => i.day).map((i) => i.day), [expectedDate, 'Yesterday', 'Today']);
    assert.deepEqual(items.map((i) => i.day ?? i.body), [expectedDate, 'Welcome to Sea View 3B!', 'The key box code is 4711.',
      'Thank you!', 'Yesterday', 'Is everything fine with the flat?', 'Today', 'Yes, all good 👍']);
    const [welcome, code] = [items[1], items[2]];
    // One group: the name once (on the first), the time once (on the last).
    assert.deepEqual([welcome.first, welcome.name, welcome.time], [true, true, false]);
    assert.deepEqual([code.first, code.name, code.time], [false, false, true]);
    // Full date and time: the datetime attribute and the title (hover) of every message.
    assert.equal(new Date(code.datetime).getTime(), times[1]);
    assert.match(code.title, new RegExp(String(new Date(times[1]).getFullYear())));
    // …and on focus: arrow keys move between messages, the focused one shows its time in full.
    await page.locator('surechat-chat ol').focus();
    await page.keyboard.press('Home');
    assert.equal(await focused(page), 'li.other.first');
    const shown = await inChat(page, ({ shadowRoot: root }) => {
      const time = root.activeElement.querySelector('time');
      return [getComputedStyle(time).display, getComputedStyle(time, '::after').content];
    });
    assert.notEqual(shown[0], 'none');
    assert.match(shown[1], /attr\(title\)|\d{4}/); // the full date (the title) after the time
    // Emoji only: large.
    const sizes = await inChat(page, ({ shadowRoot: root }) => [...root.querySelectorAll('.body')].map((b) => parseFloat(getComputedStyle(b).fontSize)));
    assert.ok(sizes[4] === sizes[3] && !(await inChat(page, ({ shadowRoot: root }) => root.querySelectorAll('.body.emoji').length)), 'text with an emoji is not emoji-only');
    await post(server, booking.olga, booking.id, '🎉🎉');
    await waitRows(page, 'six', (r) => r.length === 6);
    const big = await inChat(page, ({ shadowRoot: root }) => [...root.querySelectorAll('.body')].map((b) => parseFloat(getComputedStyle(b).fontSize)));
    assert.ok(big[5] > 1.5 * big[0], `emoji-only at ${big[5]}px, text at ${big[0]}px`);
    await assertAccessible(page, 'connected, grouped over days');
  });

  test(`${name}: a link opens a new page without an opener; javascript: and HTML stay text`, async (t) => {
    const { server, booking } = await start(t);
    const target = `${server.base}/web/demo/demo.css`;
    await post(server, booking.olga, booking.id, `Directions: ${target}. Not this: javascript:alert(1) <a href="javascript:alert(2)">x</a>`);
    const page = await open(t, server, booking, viewport);
    await waitRows(page, 'the message', (r) => r.length === 1);
    const links = await inChat(page, ({ shadowRoot: root }) => [...root.querySelectorAll('.body a')].map((a) => ({
      href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent,
    })));
    assert.deepEqual(links, [{ href: target, rel: 'noopener noreferrer', target: '_blank', text: target }]);
    assert.match(await page.locator('surechat-chat .body').textContent(), /<a href="javascript:alert\(2\)">x<\/a>/);
    const popup = page.context().waitForEvent('page', { timeout: WAIT_MS });
    await page.locator('surechat-chat .body a').click();
    const opened = await popup;
    await opened.waitForLoadState('domcontentloaded');
    assert.equal(opened.url(), target);
    assert.equal(await opened.evaluate(() => window.opener), null);
    await opened.close();
  });

  test(`${name}: a long message shows its start and "Show more", reachable and working by keyboard`, async (t) => {
    const { server, booking } = await start(t);
    const long = Array.from({ length: 30 }, (_, i) => `Line ${i + 1} of the house rules.`).join('\n');
    await post(server, booking.olga, booking.id, long);
    const page = await open(t, server, booking, viewport);
    await waitRows(page, 'the long message', (r) => r.length === 1);
    const body = page.locator('surechat-chat .body');
    const clipped = await body.evaluate((b) => [b.scrollHeight > b.clientHeight + 1, getComputedStyle(b).overflowY]);
    assert.deepEqual(clipped, [true, 'hidden']); // clipped, and not a scroll region of its own
    await assertAccessible(page, 'long message, collapsed');
    // From the message list, Tab reaches the button; Enter shows it all.
    await page.locator('surechat-chat ol').focus();
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'button.more');
    assert.equal(await page.locator('surechat-chat button.more').getAttribute('aria-expanded'), 'false');
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('surechat-chat button.more').getAttribute('aria-expanded'), 'true');
    assert.equal(await body.evaluate((b) => b.scrollHeight <= b.clientHeight + 1), true);
    assert.equal(await page.locator('surechat-chat button.more').textContent(), 'Show less');
    assert.equal(await focused(page), 'button.more');
    await assertAccessible(page, 'long message, expanded');
  });

  test(`${name}: in Arabic the widget is right to left, own messages on the left, texts each in their direction`, async (t) => {
    const { server, booking } = await start(t);
    await post(server, booking.olga, booking.id, 'مرحبًا! هل وصلت إلى الشقة؟');
    const page = await open(t, server, booking, viewport, { fragment: '&lang=ar' });
    await type(page, 'Yes, thank you!');
    await waitRows(page, 'both', (r) => r.length === 2 && r[1][1] !== 'sending');
    const look = await page.evaluate(() => {
      const chat = document.querySelector('surechat-chat');
      const root = chat.shadowRoot;
      const [other, own] = root.querySelectorAll('li[data-id]');
      const list = root.querySelector('ol').getBoundingClientRect();
      return {
        host: getComputedStyle(chat).direction,
        arabic: getComputedStyle(other.querySelector('.body')).direction,
        english: getComputedStyle(own.querySelector('.body')).direction,
        ownLeft: own.getBoundingClientRect().left - list.left,
        otherRight: list.right - other.getBoundingClientRect().right,
        send: root.querySelector('form button[type=submit]').textContent,
        today: root.querySelector('li.day').textContent,
      };
    });
    assert.equal(look.host, 'rtl');
    assert.equal(look.arabic, 'rtl');
    assert.equal(look.english, 'ltr'); // dir="auto": an English text inside an Arabic page
    assert.ok(look.ownLeft < 30, `own message ${look.ownLeft}px from the left`);
    assert.ok(look.otherRight < 30, `the operator's message ${look.otherRight}px from the right`);
    assert.equal(look.send, 'إرسال');
    assert.equal(look.today, 'اليوم');
    await assertAccessible(page, 'Arabic, right to left');
  });

  test(`${name}: refused for good (too large, conversation closed): failed with the reason, Edit and Delete, never Retry, never waiting`, async (t) => {
    const { server, booking } = await start(t);
    const page = await open(t, server, booking, viewport);
    await type(page, 'hello');
    await waitRows(page, 'sent', (r) => r.length === 1 && r[0][1] === 'sent');
    // The announcement of the latest message's status, once.
    assert.equal(await inChat(page, ({ shadowRoot: root }) => root.querySelector('[role=status].sr').textContent), 'Your message was sent');
    await page.evaluate((id) => window.surechat.send(id, 'x'.repeat(17000)), booking.id);
    await waitRows(page, 'failed', (r) => r.length === 2 && r[1][1] === 'failed');
    const row = page.locator('surechat-chat li[data-status="failed"]');
    assert.equal(await row.locator('.reason').textContent(), 'Not sent: it is too long for this chat.');
    assert.equal(await row.locator('button.retry').count(), 0);
    assert.deepEqual(await row.locator('.failure button').allTextContents(), ['Edit', 'Delete']);
    assert.equal(await page.locator('surechat-chat surechat-pending-banner .banner').count(), 0);
    assert.equal(await page.evaluate(() => window.surechat.waitingCount), 0);
    await assertAccessible(page, 'failed, too large');
    // Delete: the row goes, focus goes to the composer (nothing after it), never to the body.
    await row.locator('button.delete').click();
    await waitRows(page, 'deleted', (r) => r.length === 1);
    assert.equal(await focused(page), 'textarea');
    // Closed conversation: typed in the composer, refused for good.
    await server.admin('POST', `/v1/conversations/${booking.id}/close`);
    await type(page, 'one more question');
    await waitRows(page, 'failed again', (r) => r.length === 2 && r[1][1] === 'failed');
    assert.equal(await row.locator('.reason').textContent(), 'Not sent: this conversation is closed.');
    assert.equal(await row.locator('button.retry').count(), 0);
    await row.locator('button.edit').click();
    await waitRows(page, 'edited away', (r) => r.length === 1);
    assert.equal(await page.locator('surechat-chat textarea').inputValue(), 'one more question');
    assert.equal(await focused(page), 'textarea');
  });

  test(`${name}: offline and waiting are announced once; "Retry now" keeps focus, then hands it to the composer`, async (t) => {
    const { server, booking } = await start(t);
    const page = await open(t, server, booking, viewport);
    // Offline: the banner appears inside a live region that was there all along.
    assert.equal(await page.locator('surechat-chat surechat-offline-banner').evaluate((el) => el.shadowRoot.querySelector('[role=status]').children.length), 0);
    await page.context().setOffline(true);
    await badge(page, 'offline');
    await page.locator('surechat-chat surechat-offline-banner .banner').waitFor({ timeout: WAIT_MS });
    await assertAccessible(page, 'offline');
    await page.context().setOffline(false);
    await badge(page, 'connected');
    // The server goes away: a message waits (transient), the countdown ticks on screen only.
    await server.kill();
    await page.locator('surechat-connection-status[status="reconnecting"]').waitFor({ timeout: WAIT_MS });
    const spoken = await page.locator('surechat-connection-status').evaluate((el) => [
      el.shadowRoot.querySelector('[role=status]').textContent, el.shadowRoot.querySelector('.label').getAttribute('aria-hidden'),
    ]);
    assert.deepEqual(spoken, ['Reconnecting…', 'true']);
    await type(page, 'are you there?');
    const banner = page.locator('surechat-chat surechat-pending-banner .banner');
    await banner.filter({ hasText: '1 message waiting to be sent' }).waitFor({ timeout: WAIT_MS });
    await assertAccessible(page, 'pending');
    const retry = banner.locator('button');
    await retry.focus();
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'button'); // still there: the server is still down
    await server.restart();
    await page.keyboard.press('Enter'); // Retry now, with the server back
    await waitRows(page, 'sent', (r) => r.length === 1 && r[0][1] === 'sent');
    await banner.waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.equal(await focused(page), 'textarea');
  });

  test(`${name}: the composer grows with its text and counts characters near the limit`, async (t) => {
    const { server, booking } = await start(t);
    const page = await open(t, server, booking, viewport);
    const input = page.locator('surechat-chat textarea');
    const one = await input.evaluate((el) => el.getBoundingClientRect().height);
    await input.fill('a\nb\nc\nd');
    const four = await input.evaluate((el) => el.getBoundingClientRect().height);
    assert.ok(four > one * 1.8, `${one}px → ${four}px`);
    await input.fill('x\n'.repeat(60));
    const many = await input.evaluate((el) => [el.getBoundingClientRect().height, parseFloat(getComputedStyle(el).fontSize)]);
    assert.ok(many[0] <= 10.5 * many[1], `capped at ${many[0]}px`);
    // Near the limit: characters, counted as code points (an emoji is one).
    await input.fill('😀'.repeat(3700));
    assert.equal(await page.locator('surechat-chat .counter').textContent(), '396 characters left');
    await input.fill('');
    assert.equal(await page.locator('surechat-chat .counter').textContent(), '');
  });
}

test('touch screen (360×740): Enter starts a new line, the Send button sends', async (t) => {
  const { server, booking } = await start(t);
  const page = await open(t, server, booking, { width: 360, height: 740 }, { context: { hasTouch: true, isMobile: true } });
  const input = page.locator('surechat-chat textarea');
  await input.focus();
  await page.keyboard.type('First line');
  await page.keyboard.press('Enter');
  await page.keyboard.type('second line');
  assert.equal(await input.inputValue(), 'First line\nsecond line');
  assert.equal((await waitRows(page, 'nothing sent', () => true)).length, 0);
  await page.locator('surechat-chat form button[type=submit]').tap();
  const sent = await waitRows(page, 'sent', (r) => r.length === 1);
  assert.equal(sent[0][0], 'First line\nsecond line');
  await assertAccessible(page, 'touch, multi-line message');
});

test('the page paints its heading, the chat frame and a composer before any module has arrived', async (t) => {
  const { server, booking } = await start(t);
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
  t.after(() => ctx.close());
  const page = await ctx.newPage();
  // Hold every script until the page has been looked at: what shows comes from HTML and CSS alone.
  /** @type {(() => void)[]} */
  const held = [];
  let holding = true;
  await page.route('**/*.js', (route) => (holding ? held.push(() => route.continue()) : route.continue()));
  await page.goto(server.clientUrl(booking.ana, booking.id), { waitUntil: 'commit' });
  await page.locator('h1').waitFor({ timeout: WAIT_MS });
  const early = page.locator('surechat-chat .early textarea');
  await early.waitFor({ timeout: WAIT_MS });
  assert.equal(await page.evaluate(() => customElements.get('surechat-chat')), undefined);
  const box = await early.boundingBox();
  assert.ok(box && box.height > 20 && box.y + box.height <= 740, `composer at ${JSON.stringify(box)}`);
  // Typed before the SDK came: kept when it comes.
  await early.fill('typed early');
  holding = false;
  for (const go of held.splice(0)) go();
  await badge(page, 'connected');
  assert.equal(await page.locator('surechat-chat textarea').inputValue(), 'typed early');
  assert.equal(await page.locator('surechat-chat .early').count(), 0);
});

test('light and dark: the system\'s scheme, overridden by theme=', async (t) => {
  const { server, booking } = await start(t);
  const ctx = await browser.newContext({ colorScheme: 'dark' });
  t.after(() => ctx.close());
  const page = await ctx.newPage();
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  const background = () => page.locator('surechat-chat').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(await background(), 'rgb(13, 17, 23)');
  await assertAccessible(page, 'dark');
  await page.locator('surechat-chat').evaluate((el) => el.setAttribute('theme', 'light'));
  assert.equal(await background(), 'rgb(255, 255, 255)');
  // A page's own colour reaches into the shadow root.
  await page.locator('surechat-chat').evaluate((el) => el.style.setProperty('--surechat-bg', 'rgb(1, 2, 3)'));
  assert.equal(await background(), 'rgb(1, 2, 3)');
});

test('an empty conversation invites the first message; welcome, hours, reply time and limits come from /v1/widget', async (t) => {
  const { server, booking } = await start(t);
  await server.admin('PUT', '/v1/operators/olga', { name: 'Olga Petrova' });
  // Without settings (404): a default invitation, the protocol's limits, no hours line.
  const plain = await open(t, server, booking, { width: 360, height: 740 });
  await plain.locator('surechat-chat .empty .welcome').filter({ hasText: 'Ask us anything' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await plain.locator('surechat-chat .info').textContent(), '');
  await assertAccessible(plain, 'empty conversation');
  // With settings: open on weekdays all day in the reader's zone, so "open" holds whenever this runs.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Madrid' });
  t.after(() => ctx.close());
  const page = await ctx.newPage();
  const settings = {
    welcome: 'Hello! Ask us about your stay.', timezone: 'Europe/Madrid', reply_minutes: 10,
    hours: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '00:00', close: '24:00' }],
    message_chars_max: 20, message_bytes_max: 16384,
  };
  let asked = '';
  await page.route('**/v1/widget', (route) => {
    asked = route.request().headers().authorization ?? '';
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(settings) });
  });
  await page.goto(server.clientUrl(booking.ana, booking.id));
  await badge(page, 'connected');
  await page.locator('surechat-chat .welcome').filter({ hasText: settings.welcome }).waitFor({ timeout: WAIT_MS });
  assert.equal(asked, `Bearer ${booking.ana}`);
  assert.equal(await page.locator('surechat-chat .info').textContent(), 'We are open now · We usually reply within 10 minutes');
  // The limit in characters from the settings: 21 are refused, 20 go.
  await type(page, 'a'.repeat(21));
  await page.locator('surechat-chat .error').filter({ hasText: '20 characters' }).waitFor({ timeout: WAIT_MS });
  await type(page, 'a'.repeat(20));
  await waitRows(page, 'sent', (r) => r.length === 1);
  assert.equal(await page.locator('surechat-chat .empty').isVisible(), false);
  // People by name and initials, never by id.
  await post(server, booking.olga, booking.id, 'Hi, I am Olga.');
  await waitRows(page, 'the reply', (r) => r.length === 2);
  const who = page.locator('surechat-chat li.other .who-line');
  assert.equal(await who.locator('.who').textContent(), 'Olga Petrova');
  assert.equal(await who.locator('.avatar').textContent(), 'OP');
});

test('each page downloads only its own language: English nothing more, Arabic its catalog, then draws in it', async (t) => {
  const { server, booking } = await start(t);
  for (const [lang, fragment, send] of [['en', '', 'Send'], ['ar', '&lang=ar', 'إرسال']]) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    t.after(() => ctx.close());
    const page = await ctx.newPage();
    /** @type {string[]} */
    const catalogs = [];
    page.on('request', (request) => {
      const m = new URL(request.url()).pathname.match(/^\/web\/locales\/(\w+)\.js$/);
      if (m) catalogs.push(m[1]);
    });
    await page.goto(server.clientUrl(booking.ana, booking.id) + fragment);
    await badge(page, 'connected');
    await page.waitForFunction((text) => document.querySelector('surechat-chat')?.shadowRoot
      ?.querySelector('form button[type=submit]')?.textContent === text, send, { timeout: WAIT_MS });
    assert.deepEqual([...new Set(catalogs)].sort(), lang === 'en' ? ['en'] : ['ar', 'en'], lang);
  }
});
