// Host calls (Call/Result frames): noslate.kvStorages and the Cache API (caches).
import { send } from "./wire.js";

const pending = new Map();
let nextCid = 1;

function makeError(name, message) {
  switch (name) {
    case "TypeError": return new TypeError(message);
    case "RangeError": return new RangeError(message);
    case "SyntaxError": return new SyntaxError(message);
    case "Error": case "": case undefined: return new Error(message);
    default: return new DOMException(message, name);
  }
}

export function callHost(op, args) {
  const cid = nextCid++;
  return new Promise((resolve, reject) => {
    pending.set(cid, { resolve, reject });
    if (!send(["call", cid, op, args])) {
      pending.delete(cid);
      reject(new DOMException(`host call ${op} could not be sent`, "InvalidStateError"));
    }
  });
}

export function onResult(cid, ok, value, errorName, errorMessage) {
  const p = pending.get(cid);
  if (!p) return;
  pending.delete(cid);
  if (ok) p.resolve(value === null ? undefined : value);
  else p.reject(makeError(errorName, errorMessage));
}

// ---- KV ------------------------------------------------------------------------------
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const kName = Symbol("name");
const kKey = Symbol("key");

function checkKey(key) {
  if (typeof key !== "string") throw new TypeError("KV keys must be strings");
  return key;
}

function valueBytes(value) {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  throw new TypeError("KV values must be a string, an ArrayBuffer or a typed array");
}

export class KVStorage {
  constructor(key, name) {
    if (key !== kKey) throw new TypeError("Illegal constructor");
    Object.defineProperty(this, kName, { value: name });
  }
  get name() { return this[kName]; }
  async get(key, options = undefined) {
    checkKey(key);
    let value = await callHost("kv.get", [this[kName], key]);
    if (value === undefined || value === null) return undefined;
    value = new Uint8Array(value);
    const type = typeof options === "string" ? options : options && options.type;
    switch (type) {
      case undefined: case null: case "bytes": case "uint8array": return value;
      case "text": return decoder.decode(value);
      case "json": return JSON.parse(decoder.decode(value));
      case "arrayBuffer": return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
      default: throw new TypeError(`Unknown type "${type}": use "text", "json" or "arrayBuffer"`);
    }
  }
  async set(key, value, options = undefined) {
    checkKey(key);
    const bytes = valueBytes(value);
    let ttl = null;
    if (options && options.ttlMs !== undefined && options.ttlMs !== null) {
      ttl = Number(options.ttlMs);
      if (!(ttl > 0) || !Number.isFinite(ttl)) throw new TypeError("ttlMs must be a positive number");
    }
    await callHost("kv.set", [this[kName], key, bytes, ttl]);
  }
  async delete(key) {
    checkKey(key);
    return !!(await callHost("kv.delete", [this[kName], key]));
  }
  async list() {
    return (await callHost("kv.list", [this[kName]])) || [];
  }
  get [Symbol.toStringTag]() { return "KVStorage"; }
}

export const kvStorages = Object.freeze({
  async open(name, options = {}) {
    if (typeof name !== "string" || name === "") throw new TypeError("KV storage name must be a non-empty string");
    const opts = { evictionStrategy: (options && options.evictionStrategy) || "lru" };
    if (opts.evictionStrategy !== "lru") throw new TypeError(`Unsupported evictionStrategy "${opts.evictionStrategy}": only "lru"`);
    await callHost("kv.open", [name, opts]);
    return new KVStorage(kKey, name);
  },
});

// ---- Cache API -----------------------------------------------------------------------
function toRequest(req) {
  return req instanceof Request ? req : new Request(req);
}

function checkUrl(url) {
  if (!/^https?:/i.test(url)) throw new TypeError(`Cache only supports http and https URLs, got ${url}`);
}

function optsOf(o) {
  return { ignoreMethod: !!(o && o.ignoreMethod), ignoreSearch: !!(o && o.ignoreSearch), ignoreVary: !!(o && o.ignoreVary) };
}

export class Cache {
  constructor(key, name) {
    if (key !== kKey) throw new TypeError("Illegal constructor");
    Object.defineProperty(this, kName, { value: name });
  }
  async match(request, options = undefined) {
    const req = toRequest(request);
    checkUrl(req.url);
    const opts = optsOf(options);
    if (req.method !== "GET" && !opts.ignoreMethod) return undefined;
    const hit = await callHost("cache.match", [this[kName], req.url, req.method, [...req.headers], opts]);
    if (!hit) return undefined;
    const [status, headers, body] = hit;
    const resp = new Response(body && body.length && !NULL_BODY.has(status) ? new Uint8Array(body) : null, { status, headers });
    Object.defineProperty(resp, "url", { value: req.url });
    return resp;
  }
  async matchAll(request = undefined, options = undefined) {
    if (request === undefined) return [];
    const r = await this.match(request, options);
    return r ? [r] : [];
  }
  async put(request, response) {
    const req = toRequest(request);
    checkUrl(req.url);
    if (req.method !== "GET") throw new TypeError("Cache.put only accepts GET requests");
    if (!(response instanceof Response)) throw new TypeError("Cache.put expects a Response");
    if (response.status === 206) throw new TypeError("Cache.put cannot store a partial (206) response");
    const vary = response.headers.get("vary");
    if (vary && vary.split(",").some((v) => v.trim() === "*")) throw new TypeError("Cache.put cannot store a response with 'Vary: *'");
    if (response.bodyUsed) throw new TypeError("Response body is already used");
    const body = new Uint8Array(await response.arrayBuffer());
    await callHost("cache.put", [this[kName], req.url, [...req.headers], response.status, [...response.headers], body]);
  }
  async add(request) {
    const req = toRequest(request);
    checkUrl(req.url);
    if (req.method !== "GET") throw new TypeError("Cache.add only accepts GET requests");
    const resp = await globalThis.fetch(req);
    if (!resp.ok) throw new TypeError(`Cache.add: the response status was ${resp.status}`);
    await this.put(req, resp);
  }
  async addAll(requests) {
    for (const r of requests) await this.add(r);
  }
  async delete(request, options = undefined) {
    const req = toRequest(request);
    checkUrl(req.url);
    return !!(await callHost("cache.delete", [this[kName], req.url, req.method, optsOf(options)]));
  }
  async keys(request = undefined, options = undefined) {
    const url = request === undefined ? null : toRequest(request).url;
    const urls = (await callHost("cache.keys", [this[kName], url, optsOf(options)])) || [];
    return urls.map((u) => new Request(u));
  }
  get [Symbol.toStringTag]() { return "Cache"; }
}
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export class CacheStorage {
  #default = new Cache(kKey, "default");
  constructor(key) {
    if (key !== kKey) throw new TypeError("Illegal constructor");
  }
  get default() { return this.#default; }
  async open(name) {
    name = String(name);
    await callHost("cache.open", [name]);
    return new Cache(kKey, name);
  }
  async has(name) { return !!(await callHost("cache.has", [String(name)])); }
  async delete(name) { return !!(await callHost("cache.drop", [String(name)])); }
  async keys() { return (await callHost("cache.names", [])) || []; }
  async match(request, options = undefined) {
    for (const n of ["default", ...(await this.keys())]) {
      const hit = await new Cache(kKey, n).match(request, options);
      if (hit) return hit;
    }
    return undefined;
  }
}

export const caches = new CacheStorage(kKey);
