// The operator console as a working day needs it, in Chromium at 1280×800 and 360×740: two views
// with Back at 360 px, the status filter, "waiting" only where somebody waits, search over
// messages (and never for clients), canned responses managed in the panel and inserted with `/`,
// keyboard shortcuts and their help dialog, the skip link, and Arabic right to left. axe-core
// checks every state reached. Every wait is for a DOM state, bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, badge, assertAccessible, WAIT_MS, until } from './harness.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/**
 * A server with three bookings (ana's, ben's, cy's), each with olga as operator, and olga's
 * token with scope `all`.
 */
async function start(t) {
  const server = await new Server().start();
  t.after(() => server.stop());
  const guests = { 'booking-1001': 'ana', 'booking-1002': 'ben', 'booking-1003': 'cy' };
  for (const [id, guest] of Object.entries(guests)) {
    await server.admin('POST', '/v1/conversations', {
      id, participants: [{ user_id: guest, role: 'client' }, { user_id: 'olga', role: 'operator' }],
    });
    // Booking data is set with PUT (POST takes only the id and participants).
    await server.admin('PUT', `/v1/conversations/${id}`, { metadata: { guest: guest[0].toUpperCase() + guest.slice(1) } });
  }
  const olga = await server.token('olga', 'operator', 'all');
  const tokens = {};
  for (const guest of Object.values(guests)) tokens[guest] = await server.token(guest, 'client');
  return { server, olga, tokens };
}

/** Posts a message over HTTP as `token`. */
const post = (server, token, conversation, body) => server.as(token, 'POST', `/v1/conversations/${conversation}/messages`,
  { id: crypto.randomUUID(), body });

/** The console in a fresh context of the given size; waits for the connection and the rows. */
async function open(t, url, viewport = DESKTOP, rowsAtLeast = 1) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url);
  await badge(page, 'connected');
  await until('the inbox rows', async () => (await page.locator('#inbox [data-conversation]').count()) >= rowsAtLeast);
  return page;
}


/** The conversation the console has selected (the row marked current). */
const selected = (page) => page.evaluate(() => document.querySelector('#inbox [aria-current="true"]')?.dataset.conversation ?? '');

/** The focused element, looking into shadow roots: its tag and id. */
const focused = (page) => page.evaluate(() => {
  let node = document.activeElement;
  while (node?.shadowRoot?.activeElement) node = node.shadowRoot.activeElement;
  return { tag: node?.tagName ?? '', id: node?.id ?? '', inDialog: Boolean(node?.closest?.('dialog')) };
});

test('360 px: the list and the conversation are two views; the back button and the browser\'s Back return to the list', async (t) => {
  const { server, olga, tokens } = await start(t);
  await post(server, tokens.ana, 'booking-1001', 'Is there a crib in the room?');
  const page = await open(t, server.operatorUrl(olga, '', 'all'), PHONE, 3);
  const list = page.locator('#inbox');
  const conversation = page.locator('#conversation');
  assert.ok(await list.isVisible(), 'the list shows first');
  assert.ok(!(await conversation.isVisible()), 'the conversation is not below the list');
  await assertAccessible(page, '360 px list view');
  // Dark: the colours change through the custom properties, and still read well.
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(238, 241, 244)');
  await assertAccessible(page, '360 px list view, dark');
  await page.emulateMedia({ colorScheme: 'light' });

  await page.locator('#inbox [data-conversation="booking-1001"]').click();
  await conversation.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.ok(!(await list.isVisible()), 'the list gives way to the conversation');
  assert.match(page.url(), /conversation=booking-1001/);
  // The chat fills the view: its composer is on the first screen, not 600 px down.
  const composer = await page.locator('surechat-chat textarea').boundingBox();
  assert.ok(composer && composer.y + composer.height <= PHONE.height * 1.5, `composer at ${JSON.stringify(composer)}`);
  await until('the guest\'s message', async () => /crib/.test(await page.locator('surechat-chat').evaluate((c) => c.shadowRoot.textContent)));
  await assertAccessible(page, '360 px conversation view');

  await page.locator('#back').click();
  await list.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.ok(!(await conversation.isVisible()));
  assert.doesNotMatch(page.url(), /conversation=/);

  await page.locator('#inbox [data-conversation="booking-1002"]').click();
  await conversation.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await selected(page), 'booking-1002');
  await page.goBack();
  await list.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.ok(!(await conversation.isVisible()), 'Back shows the list');
  await page.goForward();
  await conversation.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await selected(page), 'booking-1002');
});

test('the status filter shows only matching conversations; only waiting ones say "Waiting"', async (t) => {
  const { server, olga, tokens } = await start(t);
  await post(server, tokens.ana, 'booking-1001', 'Where do I park?');
  await post(server, tokens.ben, 'booking-1002', 'Thanks, all good');
  await server.as(olga, 'POST', '/v1/conversations/booking-1002/status', { status: 'resolved' });
  await server.as(olga, 'POST', '/v1/conversations/booking-1003/status', { status: 'pending' });
  const page = await open(t, server.operatorUrl(olga, '', 'all'), DESKTOP, 3);
  const row = (id) => page.locator(`#inbox [data-conversation="${id}"]`);
  await until('the resolved row', async () => (await row('booking-1002').getAttribute('data-status')) === 'resolved');
  // ana waits; ben's conversation is resolved; cy's has no messages.
  assert.match(await row('booking-1001').textContent(), /Waiting/);
  assert.doesNotMatch(await row('booking-1002').textContent(), /Waiting/);
  const empty = await row('booking-1003').textContent();
  assert.match(empty, /No messages yet/);
  assert.doesNotMatch(empty, /Waiting|Answered/);

  const statuses = async () => (await page.locator('#inbox [data-conversation]').evaluateAll((bs) => bs.map((b) => b.dataset.status)));
  for (const status of ['pending', 'resolved', 'open']) {
    await page.locator(`.statuses button[data-filter-status="${status}"]`).click();
    const shown = await until(`only ${status} rows`, async () => {
      const s = await statuses();
      return s.length === 1 && s.every((x) => x === status) && s;
    });
    assert.deepEqual(shown, [status]);
    assert.equal(await page.locator(`.statuses button[data-filter-status="${status}"]`).getAttribute('aria-pressed'), 'true');
    assert.match(page.url(), new RegExp(`status=${status}`));
  }
  await assertAccessible(page, 'status filter: open');
  await page.locator('.statuses button[data-filter-status=""]').click();
  await until('every row again', async () => (await statuses()).length === 3);
});

test('search finds a message and opening the result selects its conversation; clients cannot search', async (t) => {
  const { server, olga, tokens } = await start(t);
  await post(server, tokens.ana, 'booking-1001', 'Hello there');
  await post(server, tokens.cy, 'booking-1003', 'Could we get an extra pillow for the sofa bed?');
  await post(server, tokens.ben, 'booking-1002', 'What time is breakfast?');
  const page = await open(t, server.operatorUrl(olga, 'booking-1001', 'all'), DESKTOP, 3);
  assert.equal(await selected(page), 'booking-1001');
  await page.keyboard.press('Control+k');
  assert.equal((await focused(page)).id, 'search-input', 'Ctrl+K focuses the search');
  await page.keyboard.type('pillow');
  await page.keyboard.press('Enter');
  const result = page.locator('#results-list [data-conversation="booking-1003"]');
  await result.waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#results-list [data-conversation]').count(), 1);
  assert.match(await result.textContent(), /pillow/);
  assert.equal(await result.locator('mark').first().textContent().then((s) => s.toLowerCase()), 'pillow');
  await until('the count announced', async () => /One message matches/.test(await page.locator('#announce').textContent()));
  await assertAccessible(page, 'search results');

  await result.click();
  await until('the result\'s conversation selected', async () => (await page.locator('surechat-chat').getAttribute('conversation')) === 'booking-1003');
  assert.match(page.url(), /conversation=booking-1003/);
  await page.locator('#search-clear').click();
  await until('the inbox again', async () => (await selected(page)) === 'booking-1003');

  // A client's token is refused.
  const refused = await fetch(`${server.base}/v1/search?q=pillow`, { headers: { Authorization: `Bearer ${tokens.cy}` } });
  assert.equal(refused.status, 403);
});

test('a canned response created in the panel is inserted with /shortcut in the composer', async (t) => {
  const { server, olga } = await start(t);
  const page = await open(t, server.operatorUrl(olga, 'booking-1001', 'all'), DESKTOP, 3);
  await page.locator('#canned summary').click();
  await page.fill('#canned-shortcut', 'checkin');
  await page.fill('#canned-title', 'Check-in time');
  await page.fill('#canned-body', 'Check-in is from 3 pm; we keep your bags before then.');
  await page.locator('#canned-save').click();
  await page.locator('#canned-list [data-canned="checkin"]').waitFor({ timeout: WAIT_MS });
  // The same shortcut twice is refused, and said so.
  await page.fill('#canned-shortcut', 'checkin');
  await page.fill('#canned-title', 'Again');
  await page.fill('#canned-body', 'Again');
  await page.locator('#canned-save').click();
  await page.locator('#canned-status', { hasText: 'already taken' }).waitFor({ timeout: WAIT_MS });
  for (const field of ['#canned-shortcut', '#canned-title', '#canned-body']) await page.fill(field, '');
  await assertAccessible(page, 'canned panel');

  const composer = page.locator('surechat-chat textarea');
  await composer.click();
  await composer.pressSequentially('/che');
  const option = page.locator('surechat-chat [role="option"][data-shortcut="checkin"]');
  await option.waitFor({ timeout: WAIT_MS });
  assert.equal(await composer.getAttribute('aria-expanded'), 'true');
  assert.equal(await option.getAttribute('aria-selected'), 'true');
  assert.equal(await composer.getAttribute('aria-activedescendant'), await option.getAttribute('id'));
  await assertAccessible(page, 'canned suggestions open');
  await composer.press('Enter');
  assert.equal(await composer.inputValue(), 'Check-in is from 3 pm; we keep your bags before then.');
  assert.equal(await composer.getAttribute('aria-expanded'), 'false');
  // Enter inserted, it did not send.
  const sent = await server.as(olga, 'GET', '/v1/conversations/booking-1001/messages');
  assert.equal((sent.messages ?? []).filter((m) => m.kind !== 'system').length, 0);

  // A slash that matches nothing offers nothing, and Enter sends as usual.
  await composer.fill('');
  await composer.pressSequentially('/nothing');
  assert.equal(await composer.getAttribute('aria-expanded'), 'false');
});

test('keyboard: j/k and Alt+arrows move between conversations, not while typing; ? opens the help dialog', async (t) => {
  const { server, olga, tokens } = await start(t);
  await post(server, tokens.ana, 'booking-1001', 'First');
  await post(server, tokens.ben, 'booking-1002', 'Second');
  await post(server, tokens.cy, 'booking-1003', 'Third');
  const page = await open(t, server.operatorUrl(olga, '', 'all'), DESKTOP, 3);
  const order = await page.locator('#inbox [data-conversation]').evaluateAll((bs) => bs.map((b) => b.dataset.conversation));
  assert.equal(order.length, 3);
  await until('the first row selected', async () => (await selected(page)) === order[0]);
  await page.locator('h1').click();
  await page.keyboard.press('j');
  await until('the second row', async () => (await selected(page)) === order[1]);
  await page.keyboard.press('j');
  await until('the third row', async () => (await selected(page)) === order[2]);
  await page.keyboard.press('k');
  await until('back to the second', async () => (await selected(page)) === order[1]);
  await page.keyboard.press('Alt+ArrowUp');
  await until('Alt+↑: the first', async () => (await selected(page)) === order[0]);
  await page.keyboard.press('Alt+ArrowDown');
  await until('Alt+↓: the second', async () => (await selected(page)) === order[1]);
  assert.match(await page.locator('#announce').textContent(), /2 of 3/);

  // Typing a j in the search field types it.
  await page.locator('#search-input').click();
  await page.keyboard.type('j');
  assert.equal(await page.locator('#search-input').inputValue(), 'j');
  assert.equal(await selected(page), order[1]);
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#search-input').inputValue(), '');

  // r: the composer.
  await page.locator('h1').click();
  await page.keyboard.press('r');
  assert.equal((await focused(page)).tag, 'TEXTAREA');
  await page.keyboard.type('k');
  assert.equal(await page.locator('surechat-chat textarea').inputValue(), 'k');
  assert.equal(await selected(page), order[1], 'k typed in the composer does not move');

  // ?: the help dialog, modal, with the focus inside; Escape closes it and the focus returns.
  await page.locator('#help-open').focus();
  await page.locator('h1').click();
  await page.keyboard.press('Shift+?');
  await page.locator('dialog#help[open]').waitFor({ timeout: WAIT_MS });
  assert.ok((await focused(page)).inDialog, 'focus is in the dialog');
  assert.match(await page.locator('#help').textContent(), /Next conversation/);
  await assertAccessible(page, 'help dialog');
  await page.keyboard.press('Escape');
  await page.locator('dialog#help[open]').waitFor({ state: 'detached', timeout: WAIT_MS });
  // Opened from its button, the focus goes back to the button.
  await page.locator('#help-open').click();
  await page.locator('dialog#help[open]').waitFor({ timeout: WAIT_MS });
  await page.locator('#help-close').click();
  assert.equal((await focused(page)).id, 'help-open');
});

test('the skip link is the first stop and moves the focus to the composer; landmarks; other conversations\' changes announced', async (t) => {
  const { server, olga } = await start(t);
  const page = await open(t, server.operatorUrl(olga, 'booking-1002', 'all'), DESKTOP, 3);
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).id, 'skip');
  assert.ok(await page.locator('#skip').isVisible(), 'visible when focused');
  await assertAccessible(page, 'skip link focused');
  await page.keyboard.press('Enter');
  assert.equal((await focused(page)).tag, 'TEXTAREA');
  // Landmarks: one main, one navigation, one h1.
  const landmarks = await page.evaluate(() => ({
    main: document.querySelectorAll('main').length, nav: document.querySelectorAll('nav').length, h1: document.querySelectorAll('h1').length,
  }));
  assert.deepEqual(landmarks, { main: 1, nav: 1, h1: 1 });
  // Another conversation's change is said once, by the console's live region.
  await server.as(olga, 'POST', '/v1/conversations/booking-1003/status', { status: 'pending' });
  await until('the change announced', async () => /^booking-1003: .*pending/.test(await page.locator('#announce').textContent()));
});

test('Arabic: the console is right to left with Arabic texts, at 1280 and 360 px', async (t) => {
  const { server, olga, tokens } = await start(t);
  await post(server, tokens.ana, 'booking-1001', 'مرحبا، هل الفطور متاح؟');
  for (const viewport of [DESKTOP, PHONE]) {
    const page = await open(t, `${server.operatorUrl(olga, '', 'all')}&lang=ar`, viewport, 3);
    assert.equal(await page.evaluate(() => document.documentElement.dir), 'rtl');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'ar');
    assert.equal(await page.locator('h1').textContent(), 'صندوق الوارد');
    assert.equal(await page.locator('.statuses button[data-filter-status="resolved"]').textContent(), 'محلولة');
    assert.equal(await page.locator('#skip').textContent(), 'انتقل إلى المحادثة');
    assert.equal(await page.locator('#search-input').getAttribute('placeholder'), 'البحث في الرسائل…');
    // Right to left: the list is on the right at desktop width.
    if (viewport === DESKTOP) {
      const nav = await page.locator('nav.inbox').boundingBox();
      const main = await page.locator('main').boundingBox();
      assert.ok(nav.x > main.x, `nav at ${nav.x}, main at ${main.x}`);
    }
    await assertAccessible(page, `Arabic at ${viewport.width} px`);
  }
});

test('sign-in and reset pages speak the chosen language', async (t) => {
  const server = await new Server().start();
  t.after(() => server.stop());
  const context = await browser.newContext({ viewport: PHONE });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(`${server.base}/web/console/sign-in.html?lang=es`);
  await until('Spanish heading', async () => (await page.locator('h1').textContent()) === 'Inicia sesión en la consola');
  assert.equal(await page.locator('label[for="password"]').textContent(), 'Contraseña');
  await assertAccessible(page, 'sign-in in Spanish');
  await page.goto(`${server.base}/web/console/reset.html?lang=ar#token=x`);
  await until('Arabic heading', async () => (await page.locator('h1').textContent()) === 'اختر كلمة مرور جديدة');
  assert.equal(await page.evaluate(() => document.documentElement.dir), 'rtl');
  await assertAccessible(page, 'reset in Arabic');
  await page.emulateMedia({ colorScheme: 'dark' });
  await assertAccessible(page, 'reset in Arabic, dark');
  await page.goto(`${server.base}/web/console/sign-in.html?lang=es`);
  await until('Spanish heading, dark', async () => (await page.locator('h1').textContent()) === 'Inicia sesión en la consola');
  await assertAccessible(page, 'sign-in in Spanish, dark');
});
