// Service worker of the pages under /web/ (the demo client page and the operator console):
// keeps the app shell (pages, styles, SDK modules) so a
// reload without network still opens the chat and shows the messages waiting in IndexedDB.
// Network first, so a new server binary's SDK is picked up whenever the network is there.
// It also shows the server's Web Push messages as notifications (subscribed with `push.js`).

const CACHE = 'surechat-shell-v5';
const SHELL = [
  'demo/client.html', 'demo/client-page.js', 'demo/demo.css',
  'console/index.html', 'console/console.js', 'console/console.css', 'console/sign-in.html',
  'console/sign-in.js', 'client.js', 'components.js', 'chat-element.js', 'session.js', 'frames.js',
  'outbox.js', 'conversation.js', 'store.js', 'types.js', 'index.js', 'attention.js', 'push.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  // Only the shell under /web/; the API and the WebSocket are never cached.
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/web/')) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(event.request);
      if (response.ok) (await caches.open(CACHE)).put(event.request, response.clone());
      return response;
    } catch (error) {
      const cached = await caches.match(event.request, { ignoreSearch: true });
      if (cached) return cached;
      throw error;
    }
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
