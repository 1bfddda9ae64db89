// noslate.kvStorages: the daemon's shared LRU KV store (Aworker-compatible API).
import { callHost } from "./calls.js";
import { toU8 } from "./bytes.js";
import { TextDecoder, TextEncoder } from "./encoding.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const kName = Symbol("name");
const kKey = Symbol("key");

function checkKey(key) {
  if (typeof key !== "string") throw new TypeError("KV keys must be strings");
  return key;
}

function toValueBytes(value) {
  if (typeof value === "string") return encoder.encode(value);
  try {
    return toU8(value).slice();
  } catch {
    throw new TypeError("KV values must be a string, an ArrayBuffer or a typed array");
  }
}

export class KVStorage {
  constructor(key, name) {
    if (key !== kKey) throw new TypeError("Illegal constructor");
    Object.defineProperty(this, kName, { value: name });
  }
  get name() { return this[kName]; }
  async get(key, options = undefined) {
    checkKey(key);
    const value = await callHost("kv.get", [this[kName], key]);
    if (value === undefined || value === null) return undefined;
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
    const bytes = toValueBytes(value);
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
