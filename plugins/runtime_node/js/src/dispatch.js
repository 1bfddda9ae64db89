// Inbound requests: FetchEvent (service worker) or `export default { fetch }` (module).
import { send } from "./wire.js";
import { incoming, abortIncoming, pumpOut } from "./streams.js";
import { als } from "./context.js";

export const state = { listeners: new Map(), module: null, env: {}, inflight: new Map(), errorSink: null };
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const kRespond = Symbol("respond");
const kWaits = Symbol("waits");

export class ExtendableEvent extends Event {
  constructor(type, init = undefined) {
    super(type, init);
    Object.defineProperty(this, kWaits, { value: [] });
  }
  waitUntil(promise) {
    this[kWaits].push(Promise.resolve(promise));
  }
}

export class FetchEvent extends ExtendableEvent {
  #request;
  constructor(type, init = {}) {
    super(type, init);
    if (!init || !init.request) throw new TypeError("FetchEvent requires a request");
    this.#request = init.request;
    Object.defineProperty(this, kRespond, { value: { called: false, dispatching: true, value: undefined } });
  }
  get request() { return this.#request; }
  get clientId() { return ""; }
  get resultingClientId() { return ""; }
  respondWith(r) {
    const st = this[kRespond];
    if (!st.dispatching) throw new DOMException("respondWith() must be called synchronously in the fetch event handler", "InvalidStateError");
    if (st.called) throw new DOMException("respondWith() has already been called", "InvalidStateError");
    st.called = true;
    st.value = Promise.resolve(r);
    this.stopImmediatePropagation();
  }
  passThroughOnException() {}
}

export function errorDetail(err) {
  try {
    if (err && typeof err === "object" && typeof err.stack === "string") return err.stack;
    return "Uncaught " + String(err);
  } catch {
    return "Uncaught exception (unprintable)";
  }
}

export function log(level, message, rid = 0) {
  send(["log", level, message, rid || als.getStore() || 0]);
}

/** Call listeners like EventTarget.dispatchEvent, but report each listener's throw. */
export function dispatch(event) {
  const list = state.listeners.get(event.type) || [];
  for (const entry of [...list]) {
    try {
      if (typeof entry.fn === "function") entry.fn.call(globalThis, event);
      else entry.fn.handleEvent(event);
    } catch (err) {
      if (state.errorSink) state.errorSink(err);
      else log("error", "Uncaught " + errorDetail(err));
    }
    if (entry.once) list.splice(list.indexOf(entry), 1);
    if (event[kStop]) break;
  }
}
const kStop = Symbol("stop");
const origStop = Event.prototype.stopImmediatePropagation;
Object.defineProperty(ExtendableEvent.prototype, "stopImmediatePropagation", {
  value: function stopImmediatePropagation() {
    this[kStop] = true;
    return origStop.call(this);
  },
  writable: true,
  configurable: true,
});

function fail(rid, status, message, detail) {
  send(["fail", rid, status, message, detail]);
}

function finish(rid, waits) {
  const done = () => {
    state.inflight.delete(rid);
    send(["settled", rid]);
  };
  if (waits.length === 0) return done();
  Promise.allSettled(waits).then(done);
  return undefined;
}

/** A Request frame from the kernel. */
export function onRequest(rid, method, url, headers, hasBody) {
  const ac = new AbortController();
  const init = { method, headers, signal: ac.signal };
  if (hasBody) {
    init.body = incoming(rid);
    init.duplex = "half";
  }
  const entry = { ac, aborted: false };
  state.inflight.set(rid, entry);
  als.run(rid, () => handle(rid, new Request(url, init), entry));
}

function handle(rid, request, entry) {
  const waits = [];
  let result;
  if (state.module) {
    const ctx = Object.freeze({ waitUntil: (p) => void waits.push(Promise.resolve(p)), passThroughOnException() {} });
    try {
      result = Promise.resolve(state.module.fetch(request, state.env, ctx));
    } catch (err) {
      result = Promise.reject(err);
    }
  } else {
    const event = new FetchEvent("fetch", { request, cancelable: true });
    let thrown = null;
    state.errorSink = (err) => {
      if (thrown === null) thrown = { err };
    };
    try {
      dispatch(event);
    } finally {
      state.errorSink = null;
      event[kRespond].dispatching = false;
    }
    waits.push(...event[kWaits]);
    const st = event[kRespond];
    if (!st.called) {
      if (thrown !== null) {
        fail(rid, 500, "Internal Server Error: the worker threw an exception", errorDetail(thrown.err));
      } else {
        log("error", "fetch event handler did not call respondWith(); the client gets 502", rid);
        fail(rid, 502, "Bad Gateway: the worker produced no response", "no respondWith() for this request");
      }
      finish(rid, waits);
      return;
    }
    if (thrown !== null) log("error", errorDetail(thrown.err), rid);
    result = st.value;
  }
  result.then(
    (resp) => respond(rid, resp, waits, entry),
    (err) => {
      if (!entry.aborted) fail(rid, 500, "Internal Server Error: the worker threw an exception", errorDetail(err));
      finish(rid, waits);
    },
  );
}

function respond(rid, resp, waits, entry) {
  if (entry.aborted) return finish(rid, waits);
  if (!(resp instanceof Response)) {
    fail(rid, 500, "Internal Server Error: the worker did not return a Response",
      "TypeError: the value given to respondWith()/returned from fetch() is not a Response: " + Object.prototype.toString.call(resp));
    return finish(rid, waits);
  }
  if (resp.type === "error") {
    fail(rid, 502, "Bad Gateway: the worker returned Response.error()", "Response.error() returned");
    return finish(rid, waits);
  }
  if (resp.bodyUsed) {
    fail(rid, 500, "Internal Server Error: the response body was already used", "TypeError: Response body is already used");
    return finish(rid, waits);
  }
  const headers = [...resp.headers];
  const body = NULL_BODY.has(resp.status) ? null : resp.body;
  send(["resp", rid, resp.status, headers, body !== null]);
  if (body !== null) {
    waits.push(
      pumpOut(rid, body).catch((err) => log("error", "response body stream failed: " + errorDetail(err), rid)),
    );
  }
  return finish(rid, waits);
}

/** The kernel aborted request ``rid`` (client gone, deadline). */
export function onRequestAbort(rid, reason) {
  const entry = state.inflight.get(rid);
  if (entry) {
    entry.aborted = true;
    entry.ac.abort(new DOMException(reason || "The request was aborted", "AbortError"));
  }
  abortIncoming(rid, reason);
}
