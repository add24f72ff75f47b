// Service worker of the pages under /web/ (the demo client page and the operator console):
// keeps the app shell (pages, styles, SDK modules, message catalogs, the icon) so a repeat visit
// paints from the cache at once, even on a slow network, and a reload without network still opens
// the chat and shows the messages waiting in IndexedDB.
// Stale-while-revalidate: a file in the cache is answered from it, and asked for again in the
// background with its ETag (`If-None-Match`); the server answers 304 when it is unchanged, or the
// new file, which the next visit uses. Files under /web/v/{build}/ never change (their URL names
// the build): answered from the cache without asking. API responses, the WebSocket and anything
// outside /web/ never go through this cache.
// It also shows the server's Web Push messages as notifications (subscribed with `push.js`).

const PREFIX = 'surechat-shell-';
const CACHE = `${PREFIX}v8`;
const SHELL = [
  'demo/client.html', 'demo/client-page.js', 'demo/strings.js', 'demo/demo.css',
  'console/index.html', 'console/console.js', 'console/console.css', 'console/sign-in.html',
  'console/sign-in.js', 'console/reset.html', 'console/reset.js', 'console/account.js',
  'console/lang.js', 'console/locales/en.js', 'console/locales/es.js', 'console/locales/ar.js',
  'console/common.js', 'console/navigation.js', 'console/inbox.js', 'console/search.js',
  'console/case.js', 'console/canned.js', 'console/keyboard.js', 'console/live.js',
  'format.js',
  'client.js', 'components.js', 'chat-element.js', 'session.js', 'frames.js', 'outbox.js',
  'conversation.js', 'store.js', 'types.js', 'index.js', 'attention.js', 'push.js', 'i18n.js',
  'uploads.js', 'links.js', 'sniff.js', 'attachments-view.js',
  'locales/en.js', 'locales/es.js', 'locales/ar.js', 'favicon.svg',
];
// Never cached: the current build's name must always be the server's.
const UNCACHED = new Set(['/web/build', '/web/sw.js']);

self.addEventListener('install', (event) => {
  // Each file on its own: a file a newer server no longer has does not stop the others.
  event.waitUntil(caches.open(CACHE)
    .then((cache) => Promise.allSettled(SHELL.map((path) => cache.add(new URL(path, self.registration.scope)))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  // Caches of earlier versions of this worker go.
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith(PREFIX) && n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

/** Whether a response may be kept: a whole, direct answer of this origin. */
function keepable(response) {
  return response.status === 200 && response.type === 'basic' && !response.redirected;
}

/**
 * Asks the server for `url` again, with the ETag of what the cache holds; stores a changed file.
 * Answers what to show: the cached response when unchanged, else the server's answer.
 * @param {Cache} cache
 * @param {Request} request
 * @param {Response | undefined} cached
 */
async function revalidate(cache, request, cached) {
  const etag = cached?.headers.get('etag');
  // `no-cache`: the browser's HTTP cache may not answer for the server (it could be staler).
  const response = etag
    ? await fetch(request.url, { headers: { 'if-none-match': etag }, cache: 'no-cache', credentials: 'same-origin' })
    : await fetch(request);
  if (response.status === 304 && cached) return cached;
  if (keepable(response)) await cache.put(request.url, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  // Only the shell under /web/; the API and the WebSocket are never cached.
  if (request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/web/')
    || UNCACHED.has(url.pathname) || request.headers.has('range')) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request.url) ?? await cache.match(request.url, { ignoreSearch: true });
    if (cached && url.pathname.startsWith('/web/v/')) return cached;
    const fresh = revalidate(cache, request, cached);
    if (!cached) return fresh;
    // Shown now; the cache catches up for the next visit.
    event.waitUntil(fresh.catch(() => {}));
    return cached;
  })());
});

// Shown for a push whose payload cannot be read. English; an app with an i18n catalog takes
// these from it (the texts of readable pushes come from the server).
const FALLBACK_TITLE = 'New message';
const FALLBACK_BODY = 'Open the chat to read it.';

/**
 * A push's payload, `{ type: 'message', conversation_id, title, body, url, seq }`, or null when
 * it has none or it is not that.
 * @param {PushMessageData | null} data
 */
function payloadOf(data) {
  try {
    const p = data?.json();
    return p && typeof p === 'object' && typeof p.title === 'string' ? p : null;
  } catch {
    return null;
  }
}

/** `url` resolved against the worker's scope, if it is a page of this origin. */
function ownUrl(url) {
  try {
    const resolved = new URL(String(url), self.registration.scope);
    return resolved.origin === self.location.origin ? resolved.href : null;
  } catch {
    return null;
  }
}

// Every push shows a notification: the subscription promised it (userVisibleOnly), and a push
// that shows nothing would let a page track the user silently. One notification per
// conversation (its tag, the same as the page's own notifications use): a new message replaces
// the previous one, and `renotify` still alerts for it.
self.addEventListener('push', (event) => {
  const p = payloadOf(event.data);
  const conversation = typeof p?.conversation_id === 'string' ? p.conversation_id : '';
  const shown = p
    ? self.registration.showNotification(p.title, {
      body: typeof p.body === 'string' ? p.body : '',
      tag: conversation ? `surechat:${conversation}` : 'surechat',
      renotify: true,
      data: { url: ownUrl(p.url ?? ''), conversation },
    })
    : self.registration.showNotification(FALLBACK_TITLE, {
      body: FALLBACK_BODY, tag: 'surechat', renotify: true, data: { url: null, conversation: '' },
    });
  event.waitUntil(shown);
});

/** The conversation a page shows: `conversation` in its fragment (the demo pages) or query. */
function conversationOf(href) {
  const url = new URL(href);
  return new URLSearchParams(url.hash.slice(1)).get('conversation') ?? url.searchParams.get('conversation') ?? '';
}

// A click brings up the page that shows the conversation if one is open (so its token and state
// are kept), else opens the push's page; a push without a page focuses any window of the app.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const { url, conversation } = event.notification.data ?? {};
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const target = url ? new URL(url) : null;
    // Windows of this origin only (matchAll gives no others), most recently focused first.
    const showing = windows.find((w) => (!target || new URL(w.url).pathname === target.pathname)
      && (!conversation || conversationOf(w.url) === conversation));
    if (showing && (target || conversation)) return showing.focus();
    if (target) return self.clients.openWindow(target.href);
    return windows[0] ? windows[0].focus() : self.clients.openWindow(self.registration.scope);
  })());
});
