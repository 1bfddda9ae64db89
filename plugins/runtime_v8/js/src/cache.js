// The Cache API (caches.default, caches.open) backed by the daemon's LRU.
import { callHost } from "./calls.js";
import { readAll, sourceToBytes, kBody, BodyState } from "./body.js";
import { headerList } from "./headers.js";
import { Request, Response, wireResponse } from "./fetchapi.js";
import { headersFromList } from "./headers.js";

const kName = Symbol("name");
const kKey = Symbol("key");

function toRequest(req) {
  return req instanceof Request ? req : new Request(req);
}

function checkUrl(url) {
  if (!/^https?:/i.test(url)) throw new TypeError(`Cache only supports http and https URLs, got ${url}`);
}

function optsOf(options) {
  return { ignoreMethod: !!(options && options.ignoreMethod), ignoreSearch: !!(options && options.ignoreSearch), ignoreVary: !!(options && options.ignoreVary) };
}

async function bodyBytes(resp) {
  const state = resp[kBody];
  if (state === null) return new Uint8Array(0);
  if (resp.bodyUsed) throw new TypeError("Response body is already used");
  state.used = true;
  if (state.stream === null) return sourceToBytes(state.source);
  return readAll(state.stream);
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
    const hit = await callHost("cache.match", [this[kName], req.url, req.method, headerList(req.headers), opts]);
    if (!hit) return undefined;
    const [status, headers, body] = hit;
    return wireResponse(status, "", headersFromList(headers), body && body.length ? new BodyState(body, null) : null, req.url);
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
    const body = await bodyBytes(response);
    await callHost("cache.put", [this[kName], req.url, headerList(req.headers), response.status, headerList(response.headers), body]);
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
    let url = null;
    if (request !== undefined) url = toRequest(request).url;
    const urls = (await callHost("cache.keys", [this[kName], url, optsOf(options)])) || [];
    return urls.map((u) => new Request(u));
  }
  get [Symbol.toStringTag]() { return "Cache"; }
}

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
    const names = await this.keys();
    for (const n of ["default", ...names]) {
      const hit = await new Cache(kKey, n).match(request, options);
      if (hit) return hit;
    }
    return undefined;
  }
}

export const caches = new CacheStorage(kKey);
