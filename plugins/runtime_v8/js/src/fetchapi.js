// Request and Response (Fetch Standard).
import { URL } from "whatwg-url";
import { BodyState, cloneBody, extractBody, kBody, mixinBody } from "./body.js";
import { AbortSignal, newAbortSignal } from "./events.js";
import { Headers, headerList, kGuard } from "./headers.js";

const kState = Symbol("state");
const METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]);
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

function normMethod(m) {
  m = String(m);
  if (!TOKEN.test(m)) throw new TypeError(`'${m}' is not a valid HTTP method.`);
  const up = m.toUpperCase();
  if (FORBIDDEN_METHODS.has(up)) throw new TypeError(`'${m}' HTTP method is unsupported.`);
  return METHODS.has(up) ? up : m;
}

function parseUrl(input) {
  try {
    return new URL(String(input));
  } catch {
    throw new TypeError(`Failed to parse URL from ${String(input)}`);
  }
}

export class Request {
  constructor(input, init = {}) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': 1 argument required");
    init = init === null || init === undefined ? {} : init;
    let st;
    let bodyFromInput = null;
    if (input instanceof Request) {
      const s = input[kState];
      st = { ...s, headers: new Headers(s.headers) };
      if (input[kBody] !== null && init.body === undefined) {
        if (input.bodyUsed) throw new TypeError("Cannot construct a Request with a Request whose body has already been used");
        bodyFromInput = input[kBody];
        input[kBody] = new BodyState(null, null);
        input[kBody].used = true;
      }
    } else {
      const url = parseUrl(input);
      if (url.username || url.password) throw new TypeError("Request cannot be constructed from a URL that includes credentials");
      st = { url: url.href, method: "GET", headers: new Headers(), redirect: "follow", signal: null, cache: "default", mode: "cors", credentials: "same-origin", integrity: "", keepalive: false, referrer: "about:client", referrerPolicy: "" };
    }
    if (init.method !== undefined) st.method = normMethod(init.method);
    if (init.headers !== undefined) st.headers = new Headers(init.headers);
    if (init.redirect !== undefined) {
      if (!["follow", "error", "manual"].includes(init.redirect)) throw new TypeError(`Invalid redirect mode: ${init.redirect}`);
      st.redirect = init.redirect;
    }
    for (const k of ["cache", "mode", "credentials", "integrity", "referrer", "referrerPolicy"]) if (init[k] !== undefined) st[k] = String(init[k]);
    if (init.keepalive !== undefined) st.keepalive = !!init.keepalive;
    if (init.signal !== undefined && init.signal !== null && !(init.signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
    st.signal = init.signal !== undefined ? init.signal : st.signal || null;
    if (!st.signal) st.signal = newAbortSignal();
    let body = bodyFromInput;
    if (init.body !== undefined && init.body !== null) {
      if (st.method === "GET" || st.method === "HEAD") throw new TypeError("Request with GET/HEAD method cannot have body.");
      const [b, type] = extractBody(init.body);
      body = b;
      if (type && !st.headers.has("content-type")) st.headers.append("content-type", type);
    } else if (body !== null && (st.method === "GET" || st.method === "HEAD")) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    st.duplex = init.duplex;
    Object.defineProperty(this, kState, { value: st });
    Object.defineProperty(this, kBody, { value: body, writable: true });
  }
  get method() { return this[kState].method; }
  get url() { return this[kState].url; }
  get headers() { return this[kState].headers; }
  get redirect() { return this[kState].redirect; }
  get signal() { return this[kState].signal; }
  get cache() { return this[kState].cache; }
  get mode() { return this[kState].mode; }
  get credentials() { return this[kState].credentials; }
  get integrity() { return this[kState].integrity; }
  get keepalive() { return this[kState].keepalive; }
  get referrer() { return this[kState].referrer; }
  get referrerPolicy() { return this[kState].referrerPolicy; }
  get destination() { return ""; }
  get duplex() { return "half"; }
  clone() {
    const r = new Request(this.url, { method: this.method, headers: this.headers, redirect: this.redirect, signal: this.signal });
    r[kBody] = cloneBody(this);
    return r;
  }
  get [Symbol.toStringTag]() { return "Request"; }
}
mixinBody(Request, (r) => r.headers.get("content-type"));

/** An incoming request from the kernel: immutable headers, body from the wire. */
export function incomingRequest(method, url, headers, bodyState, signal) {
  const r = Object.create(Request.prototype);
  headers[kGuard] = "immutable";
  Object.defineProperty(r, kState, {
    value: { url, method, headers, redirect: "manual", signal, cache: "default", mode: "navigate", credentials: "include", integrity: "", keepalive: false, referrer: "", referrerPolicy: "" },
  });
  Object.defineProperty(r, kBody, { value: bodyState, writable: true });
  return r;
}

export function requestState(r) {
  return r[kState];
}

export class Response {
  constructor(body = null, init = {}) {
    init = init === null || init === undefined ? {} : init;
    const status = init.status === undefined ? 200 : Number(init.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError(`Failed to construct 'Response': The status provided (${init.status}) is outside the range [200, 599].`);
    }
    const statusText = init.statusText === undefined ? "" : String(init.statusText);
    if (/[^\t\x20-\x7e\x80-\xff]/.test(statusText)) throw new TypeError("Invalid statusText");
    const headers = new Headers(init.headers);
    let state = null;
    if (body !== null && body !== undefined) {
      if ([101, 204, 205, 304].includes(status)) throw new TypeError(`Response with null body status (${status}) cannot have body`);
      const [b, type] = extractBody(body);
      state = b;
      if (type && !headers.has("content-type")) headers.append("content-type", type);
    }
    Object.defineProperty(this, kState, { value: { status, statusText, headers, type: "default", url: "", redirected: false }, writable: true });
    Object.defineProperty(this, kBody, { value: state, writable: true });
  }
  static error() {
    const r = new Response(null, { status: 200 });
    r[kState] = { ...r[kState], status: 0, type: "error" };
    r[kState].headers[kGuard] = "immutable";
    return r;
  }
  static redirect(url, status = 302) {
    const u = parseUrl(url);
    if (!REDIRECT_STATUSES.has(status)) throw new RangeError(`Invalid status code ${status}`);
    const r = new Response(null, { status, headers: { location: u.href } });
    r[kState].headers[kGuard] = "immutable";
    return r;
  }
  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable");
    const headers = new Headers(init && init.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new Response(text, { ...init, headers });
  }
  get status() { return this[kState].status; }
  get statusText() { return this[kState].statusText; }
  get ok() { return this[kState].status >= 200 && this[kState].status < 300; }
  get headers() { return this[kState].headers; }
  get type() { return this[kState].type; }
  get url() { return this[kState].url; }
  get redirected() { return this[kState].redirected; }
  clone() {
    const r = new Response(null, { status: 200 });
    r[kState] = { ...this[kState], headers: new Headers(this[kState].headers) };
    r[kBody] = cloneBody(this);
    return r;
  }
  get [Symbol.toStringTag]() { return "Response"; }
}
mixinBody(Response, (r) => r.headers.get("content-type"));

export function responseState(r) {
  return r[kState];
}

/** A Response from the wire (subrequest): any status, given headers and body. */
export function wireResponse(status, statusText, headers, bodyState, url) {
  const r = new Response(null, { status: 200 });
  headers[kGuard] = "immutable";
  r[kState] = { status, statusText, headers, type: "basic", url, redirected: false };
  r[kBody] = bodyState;
  return r;
}

export { headerList };
