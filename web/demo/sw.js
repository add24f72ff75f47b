// Service worker of the demo pages: keeps the app shell (pages, styles, SDK modules) so a
// reload without network still opens the chat and shows the messages waiting in IndexedDB.
// Network first, so a new server binary's SDK is picked up whenever the network is there.

const CACHE = 'surechat-shell-v3';
const SHELL = [
  'client.html', 'client-page.js', 'operator.html', 'operator.js', 'operator.css', 'demo.css',
  '../client.js', '../components.js', '../chat-element.js', '../session.js', '../frames.js',
  '../outbox.js', '../conversation.js', '../store.js', '../types.js', '../index.js', '../attention.js',
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
