// Inbound requests: FetchEvent (service worker) or `export default { fetch }` (module),
// the response back to the host, waitUntil accounting, failures.
import { host } from "./host.js";
import { BodyState } from "./body.js";
import { current } from "./console.js";
import { DOMException } from "./domexception.js";
import { Event, newAbortSignal, signalAbort } from "./events.js";
import { headersFromList, headerList } from "./headers.js";
import { Response, incomingRequest, responseState } from "./fetchapi.js";
import { kBody } from "./body.js";
import { dropInbound, inboundStream, onAbortIn, pumpOut } from "./io.js";
import { encodeSource } from "./send.js";

export const state = { target: null, module: null, env: {}, inflight: new Map() };

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
    Object.defineProperty(this, kRespond, { value: { called: false, dispatching: true, value: undefined }, writable: false });
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

function fail(rid, status, message, detail) {
  host.bridge.fail(rid, status, message, detail);
}

function finish(rid, waits) {
  const done = () => {
    state.inflight.delete(rid);
    dropInbound(rid);
    host.bridge.settled(rid);
  };
  if (waits.length === 0) return done();
  Promise.allSettled(waits).then(done);
  return undefined;
}

/** Called by the host for every Request frame. */
export function onRequest(rid, method, url, headersJson, hasBody) {
  const signal = newAbortSignal();
  const bodyState = hasBody ? new BodyState(null, inboundStream(rid)) : null;
  const request = incomingRequest(method, url, headersFromList(JSON.parse(headersJson)), bodyState, signal);
  const entry = { signal, aborted: false };
  state.inflight.set(rid, entry);
  const waits = [];
  let result;
  current.rid = rid;
  try {
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
        state.target.dispatchEvent(event);
      } finally {
        state.errorSink = null;
        event[kRespond].dispatching = false;
      }
      for (const w of event[kWaits]) waits.push(w);
      const st = event[kRespond];
      if (!st.called) {
        if (thrown !== null) {
          fail(rid, 500, "Internal Server Error: the worker threw an exception", errorDetail(thrown.err));
        } else {
          host.bridge.log("error", "fetch event handler did not call respondWith(); the client gets 502", rid);
          fail(rid, 502, "Bad Gateway: the worker produced no response", "no respondWith() for this request");
        }
        finish(rid, waits);
        return;
      }
      if (thrown !== null) host.bridge.log("error", errorDetail(thrown.err), rid);
      result = st.value;
    }
  } finally {
    current.rid = 0;
  }
  result.then(
    (resp) => sendResponse(rid, resp, waits, entry),
    (err) => {
      if (!entry.aborted) fail(rid, 500, "Internal Server Error: the worker threw an exception", errorDetail(err));
      finish(rid, waits);
    },
  );
}

// What reaches the host is checked here, not trusted from the Response's internal
// state (user code can reach its symbol-keyed slots): a status 200-599, header names
// that are tokens and values without CR, LF, NUL or characters above U+00FF (the
// Fetch standard), hop-by-hop headers dropped. Anything else fails the request with
// a TypeError in the function's log.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]|[^\x00-\xff]/;
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);

function checkedStatus(status) {
  if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new TypeError(`invalid response status ${typeof status === "bigint" ? status + "n" : String(status)}: must be an integer from 200 to 599`);
  }
  return status;
}

function checkedHeaders(list) {
  if (!Array.isArray(list)) throw new TypeError("invalid response headers: not a header list");
  const out = [];
  for (const pair of list) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw new TypeError("invalid response header: names and values must be strings");
    }
    const [name, value] = pair;
    if (!TOKEN.test(name)) throw new TypeError(`invalid response header name ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value)) throw new TypeError(`invalid value for response header ${JSON.stringify(name)}`);
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(pair);
  }
  return out;
}

function sendResponse(rid, resp, waits, entry) {
  if (entry.aborted) return finish(rid, waits);
  if (!(resp instanceof Response)) {
    fail(rid, 500, "Internal Server Error: the worker did not return a Response", "TypeError: the value given to respondWith()/returned from fetch() is not a Response: " + Object.prototype.toString.call(resp));
    return finish(rid, waits);
  }
  const rs = responseState(resp);
  if (rs.type === "error") {
    fail(rid, 502, "Bad Gateway: the worker returned Response.error()", "Response.error() returned");
    return finish(rid, waits);
  }
  let status, headers;
  try {
    status = checkedStatus(rs.status);
    headers = JSON.stringify(checkedHeaders(headerList(rs.headers)));
  } catch (err) {
    fail(rid, 500, "Internal Server Error: the worker's response is invalid", errorDetail(err));
    return finish(rid, waits);
  }
  const body = resp[kBody];
  if (body === null || body.stream === null) {
    if (body !== null && body.used) {
      fail(rid, 500, "Internal Server Error: the response body was already used", "TypeError: Response body is already used");
      return finish(rid, waits);
    }
    const [kind, payload] = encodeSource(body === null ? null : body.source);
    if (body !== null) body.used = true;
    // one crossing: head, body, End, and Settled when there is no waitUntil work
    host.bridge.respond(rid, status, headers, kind, payload, waits.length === 0);
    if (waits.length === 0) {
      state.inflight.delete(rid);
      dropInbound(rid);
    }
    else finish(rid, waits);
    return undefined;
  }
  if (body.stream.locked) {
    fail(rid, 500, "Internal Server Error: the response body stream is locked", "TypeError: ReadableStream is locked");
    return finish(rid, waits);
  }
  host.bridge.head(rid, status, headers);
  body.used = true;
  const pumped = pumpOut(rid, body.stream).catch((err) => {
    host.bridge.log("error", "response body stream failed: " + errorDetail(err), rid);
  });
  waits.push(pumped);
  return finish(rid, waits);
}

// What the warm-up below touches and user code could replace (a global, a prototype
// method or accessor): recorded before any user code runs (`recordPristine`, at boot),
// compared before warming. If anything differs the warm-up is skipped: it must never
// run a function the user wrote.
const WATCHED_GLOBALS = ["Object", "Array", "String", "Number", "Boolean", "Symbol", "Function",
  "Promise", "Map", "Set", "WeakMap", "WeakSet", "Reflect", "JSON", "Math", "Error", "TypeError",
  "RegExp", "Uint8Array", "ArrayBuffer", "TextEncoder", "TextDecoder", "URL", "URLSearchParams",
  "Headers", "Request", "Response", "Event", "EventTarget", "AbortSignal", "AbortController",
  "FetchEvent", "ExtendableEvent", "ReadableStream", "Blob", "FormData"];
let pristine = null;

function watchedObjects() {
  const out = [];
  for (const name of WATCHED_GLOBALS) {
    const value = globalThis[name];
    out.push(value);
    if (value && typeof value === "function" && value.prototype) out.push(value.prototype);
  }
  out.push(Object.getPrototypeOf(function* () {}), Object.getPrototypeOf(async () => {}));
  out.push(Headers.prototype, Response.prototype, FetchEvent.prototype, ExtendableEvent.prototype);
  return out;
}

function describe(obj) {
  if (!obj || (typeof obj !== "object" && typeof obj !== "function")) return [obj];
  const parts = [Object.getPrototypeOf(obj)];
  for (const key of Reflect.ownKeys(obj)) {
    const d = Reflect.getOwnPropertyDescriptor(obj, key);
    parts.push(key, d.value, d.get, d.set);
  }
  return parts;
}

/** At boot, before user code: remember what the warm-up relies on. */
export function recordPristine() {
  pristine = watchedObjects().map(describe);
}

function untouched() {
  if (pristine === null) return false;
  const now = watchedObjects();
  if (now.length !== pristine.length) return false;
  for (let i = 0; i < now.length; i++) {
    const a = describe(now[i]);
    const b = pristine[i];
    if (a.length !== b.length) return false;
    for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) return false;
  }
  return true;
}

/**
 * Runs the runtime's own request path once without any user code and without output:
 * a pre-forked warmfork spare calls it before it is taken, so the pages its first
 * real request would write (copy-on-write after the fork) are copied off the request
 * path. Nothing is dispatched to listeners or the module, and nothing is kept. When
 * user code replaced any global or prototype member it touches, it does nothing
 * (returns false).
 */
export function warmRequestPath() {
  if (!untouched()) return false;
  const signal = newAbortSignal();
  const request = incomingRequest("GET", "http://warm.invalid/", headersFromList([["accept", "*/*"]]), null, signal);
  const event = new FetchEvent("fetch", { request, cancelable: true });
  void event.request.url;
  void request.headers.get("accept");
  const resp = new Response("warm", { headers: { "content-type": "text/plain" } });
  const rs = responseState(resp);
  JSON.stringify(headerList(rs.headers));
  encodeSource(resp[kBody].source);
  return true;
}

/** The kernel aborted request ``rid`` (client gone, deadline). */
export function onRequestAbort(rid, reason) {
  const entry = state.inflight.get(rid);
  if (entry) {
    entry.aborted = true;
    signalAbort(entry.signal, new DOMException(reason || "The request was aborted", "AbortError"));
  }
  onAbortIn(rid, reason);
}

export function reportListenerError(err) {
  if (state.errorSink) state.errorSink(err);
  else host.bridge.log("error", "Uncaught " + errorDetail(err), current.rid);
}
