// A counter kept in the daemon's KV store (shared by every instance of the function).
let store;

addEventListener('fetch', (event) => {
  event.respondWith(handle(event.request));
});

async function handle(request) {
  store ??= await noslate.kvStorages.open('counter', { evictionStrategy: 'lru' });
  const url = new URL(request.url);
  const key = url.searchParams.get('key') || 'hits';
  if (request.method === 'DELETE') {
    await store.delete(key);
    return Response.json({ key, value: 0 });
  }
  const current = Number((await store.get(key, { type: 'text' })) ?? '0');
  const value = current + 1;
  await store.set(key, String(value));
  return Response.json({ key, value });
}
