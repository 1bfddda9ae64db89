// Warm-up while a snapshot is built. V8 compiles functions lazily, on their first call,
// and keeps the bytecode in the snapshot: code that ran during the build starts compiled.
// warmRuntime runs the runtime's own request path (before user code, with a temporary
// listener, frames dropped), so it has no effect user code can see. warmUserRequest
// (opt-in: [plugins.runtime_node] warmup_path) sends one GET to the user's handler.
import { hs } from "./bridge.js";

const WARM_RID = -1;
const USER_RID = -2;

/** Exercise Request/Response/Headers/URL/streams and the dispatch path of ``api``. */
export function warmRuntime(api, request) {
  hs.sinkIds.add(WARM_RID);
  const listener = (event) => event.respondWith(warmResponse(event.request));
  globalThis.addEventListener("fetch", listener);
  try {
    request(WARM_RID, "GET", "http://warm.invalid/path?q=1", [["accept", "text/html"], ["x-warm", "1"]], false);
  } finally {
    globalThis.removeEventListener("fetch", listener);
  }
  void api;
}

async function warmResponse(request) {
  const url = new URL(request.url);
  void url.searchParams.get("q");
  void [...request.headers];
  const post = new Request(url, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" });
  await post.clone().text();
  await post.arrayBuffer();
  await Response.json({ ok: true }).json();
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode("warm"));
      c.close();
    },
  });
  await new Response(stream).text();
  return new Response("warm", { status: 200, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** Send one GET ``path`` to the user's fetch handler; its frames are dropped. */
export function warmUserRequest(request, path) {
  hs.sinkIds.add(USER_RID);
  const target = String(path).startsWith("/") ? String(path) : `/${path}`;
  request(USER_RID, "GET", `http://localhost${target}`, [["accept", "*/*"], ["user-agent", "noslate-snapshot-warmup"]], false);
}
