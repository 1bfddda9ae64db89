// Service-worker style: the smallest useful function.
addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  event.respondWith(
    new Response(`Hello from noslate! You asked for ${url.pathname}${url.search}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    }),
  );
});
