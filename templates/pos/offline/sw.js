{% load static %}/* The till's service worker (Workbox from the npm lock, served by Django): keeps the offline till
   page and the POS scripts so the till opens and sells with the network down.  Pages are asked of
   the network first (fresh CSRF token and clerk), the cache answers when it is unreachable; a POS
   page that cannot load offline falls back to the offline till.  API and POST requests are never
   cached: the offline sales live in IndexedDB and are synced by the page. */
importScripts("{% static 'vendor/workbox-sw/workbox-sw.js' %}");
const MODULES = {
  "workbox-core": "{% static 'vendor/workbox-core/workbox-core.prod.js' %}",
  "workbox-routing": "{% static 'vendor/workbox-routing/workbox-routing.prod.js' %}",
  "workbox-strategies": "{% static 'vendor/workbox-strategies/workbox-strategies.prod.js' %}",
};
workbox.setConfig({debug: false, modulePathCb: (name) => MODULES[name]});
const {registerRoute, setCatchHandler} = workbox.routing;
const {NetworkFirst, NetworkOnly, StaleWhileRevalidate} = workbox.strategies;

const PAGES = "o2o-pos-pages-{{ version }}";
const ASSETS = "o2o-pos-assets-{{ version }}";
const OFFLINE_TILL = "{% url 'pos:offline_till' %}";
const WARM = [{% for url in assets %}"{{ url }}"{% if not forloop.last %}, {% endif %}{% endfor %}];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    await (await caches.open(ASSETS)).addAll(WARM);
    const page = await fetch(OFFLINE_TILL, {credentials: "same-origin"});
    if (page.ok && !page.redirected) { await (await caches.open(PAGES)).put(OFFLINE_TILL, page); }
    await self.skipWaiting();
  })());
});
self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("o2o-pos-") && name !== PAGES && name !== ASSETS) { await caches.delete(name); }
    }
    await self.clients.claim();
  })());
});

registerRoute(({request, url}) => request.mode === "navigate" && url.pathname === OFFLINE_TILL,
              new NetworkFirst({cacheName: PAGES, networkTimeoutSeconds: 4,
                                plugins: [{cacheWillUpdate: async ({response}) =>
                                  response && response.status === 200 && !response.redirected ? response : null}]}));
// Other POS pages need the server; when it cannot be reached the catch handler opens the offline till.
registerRoute(({request, url}) => request.mode === "navigate" && url.pathname.startsWith("{% url 'pos:home' %}"),
              new NetworkOnly());
registerRoute(({url}) => url.pathname.startsWith("{% get_static_prefix %}"),
              new StaleWhileRevalidate({cacheName: ASSETS}));
setCatchHandler(async ({request}) => {
  if (request.mode === "navigate") {
    return (await caches.match(OFFLINE_TILL, {cacheName: PAGES})) || Response.error();
  }
  return Response.error();
});
