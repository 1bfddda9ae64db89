// Warm-up while a snapshot is built. V8 compiles functions lazily, on their first call,
// and keeps the bytecode in the snapshot: code that ran during the build starts compiled.
// warmRuntime runs the runtime's own request path (before user code, with a temporary
// listener, frames dropped), so it has no effect user code can see. warmUserRequest
// (opt-in: [plugins.runtime_node] warmup_path) sends one GET to the user's handler.
import { hs } from "./bridge.js";
import { NodeBuffer, nodePerformance, nodeProcess, nodeTimers } from "./node.js";

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

export const WARMUP_REPORT = "__NOSLATE_WARMUP__ ";
const FETCH_TEXT = "outbound fetch is not available during warm-up";

/** A private store for the KV and Cache calls of the warm-up (kernel/warmup.py's
 * ScratchStore): reads see only the warm-up's own writes. */
function scratchCall(kv, op, args) {
  const table = () => {
    const name = String(args[0]);
    if (!kv.has(name)) kv.set(name, new Map());
    return kv.get(name);
  };
  switch (op) {
    case "kv.open": table(); return null;
    case "kv.get": return table().get(String(args[1])) ?? null;
    case "kv.set": table().set(String(args[1]), args[2]); return null;
    case "kv.delete": return table().delete(String(args[1]));
    case "kv.list": return [...table().keys()];
    case "cache.open": case "cache.put": case "cache.match": return null;
    case "cache.has": case "cache.drop": case "cache.delete": return false;
    case "cache.names": case "cache.keys": return [];
    default: throw new TypeError(`${op} is not available during warm-up`);
  }
}

/**
 * Send the profile's warm-up requests (``kernel.warmup.request`` data: ``{method,
 * path, url, headers, body}``) to the user's handler one after another. Their frames are dropped; KV calls go to a scratch store, fetches get
 * a local 503. The outcome goes to stderr as one ``WARMUP_REPORT`` line. */
export async function warmUserRequests(handlers, fireTimer, requests, budgetMs) {
  const kv = new Map();
  const done = new Map();
  const status = new Map();
  const timers = new Set();
  hs.warm = {
    timer(tid, delay) {
      // the warm-up's timers run now (a build's other timers wait for the start);
      // the ones still pending at its end are dropped
      const handle = nodeTimers.setTimeout(() => {
        timers.delete(handle);
        fireTimer(tid);
      }, delay);
      timers.add(handle);
    },
    call(cid, op, args) {
      let answer;
      try {
        answer = [cid, true, scratchCall(kv, op, args), "", ""];
      } catch (err) {
        answer = [cid, false, null, "TypeError", String(err.message)];
      }
      queueMicrotask(() => handlers.result(...answer));
      return true;
    },
    fetch(fid, url) {
      hs.sinkIds.add(-fid);
      queueMicrotask(() => {
        handlers.fresp(fid, 503, "Service Unavailable", [["content-type", "text/plain; charset=utf-8"], ["noslate-warmup", "1"]], url, true);
        handlers.chunk(-fid, NodeBuffer.from(FETCH_TEXT));
        handlers.end(-fid);
      });
      return true;
    },
    frame(frame) {
      const [kind, id] = frame;
      if (kind === "resp") status.set(id, frame[2]);
      else if (kind === "chunk") queueMicrotask(() => handlers.ack(id, 1));
      else if (kind === "settled") done.get(id)?.({ status: status.get(id) ?? 0 });
      else if (kind === "fail") done.get(id)?.({ status: frame[2], error: String(frame[3]) });
    },
  };
  const deadline = Date.now() + budgetMs;
  const report = [];
  for (let i = 0; i < requests.length; i++) {
    const req = requests[i];
    const rid = USER_RID - i;
    const entry = { method: req.method, path: req.path };
    report.push(entry);
    const left = deadline - Date.now();
    if (left <= 0) {
      entry.error = "no time left in the warm-up budget";
      continue;
    }
    hs.sinkIds.add(rid);
    const started = nodePerformance.now();
    let timer;
    const outcome = await new Promise((resolve) => {
      done.set(rid, resolve);
      timer = nodeTimers.setTimeout(() => resolve(null), left);
      const body = req.body ? NodeBuffer.from(String(req.body)) : null;
      handlers.req(rid, req.method, req.url, req.headers, body !== null);
      if (body !== null) {
        handlers.chunk(rid, body);
        handlers.end(rid);
      }
    });
    nodeTimers.clearTimeout(timer);
    if (outcome === null) {
      entry.error = `no response within the warm-up budget (${budgetMs / 1000} s)`;
      handlers.abort(rid, "warm-up timed out");
      continue;
    }
    entry.status = outcome.status;
    entry.ms = Math.round((nodePerformance.now() - started) * 100) / 100;
    if (outcome.error) entry.error = `${outcome.status} ${outcome.error}`;
  }
  hs.warm = null;
  for (const handle of timers) nodeTimers.clearTimeout(handle);
  nodeProcess.stderr.write(WARMUP_REPORT + JSON.stringify(report) + "\n");
}
