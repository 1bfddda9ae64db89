// structuredClone (HTML structured serialize/deserialize, in-process).
import { DOMException } from "./domexception.js";

const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

function cloneError(msg) {
  return new DOMException(msg, "DataCloneError");
}

export function structuredClone(value, options = undefined) {
  if (arguments.length === 0) throw new TypeError("structuredClone requires 1 argument");
  void options;
  const memory = new Map();
  const walk = (v) => {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) {
      if (typeof v === "symbol") throw cloneError("Symbol values cannot be cloned");
      return v;
    }
    if (typeof v === "function") throw cloneError(`${v.name || "function"} could not be cloned`);
    if (memory.has(v)) return memory.get(v);
    let out;
    const tag = Object.prototype.toString.call(v);
    if (tag === "[object Date]") out = new Date(v.getTime());
    else if (tag === "[object RegExp]") out = new RegExp(v.source, v.flags);
    else if (tag === "[object Boolean]") out = Object(Boolean.prototype.valueOf.call(v));
    else if (tag === "[object Number]") out = Object(Number.prototype.valueOf.call(v));
    else if (tag === "[object String]") out = Object(String.prototype.valueOf.call(v));
    else if (tag === "[object BigInt]") out = Object(BigInt.prototype.valueOf.call(v));
    else if (v instanceof ArrayBuffer) out = v.slice(0);
    else if (ArrayBuffer.isView(v)) {
      const buf = walk(v.buffer);
      out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength) : new v.constructor(buf, v.byteOffset, v.length);
    } else if (v instanceof Map) {
      out = new Map();
      memory.set(v, out);
      for (const [k, x] of v) out.set(walk(k), walk(x));
      return out;
    } else if (v instanceof Set) {
      out = new Set();
      memory.set(v, out);
      for (const x of v) out.add(walk(x));
      return out;
    } else if (v instanceof Error) {
      const Ctor = ERRORS[v.name] || Error;
      out = new Ctor(String(v.message));
      memory.set(v, out);
      if ("stack" in v) Object.defineProperty(out, "stack", { value: String(v.stack), writable: true, configurable: true });
      if ("cause" in v) out.cause = walk(v.cause);
      return out;
    } else if (Array.isArray(v)) {
      out = new Array(v.length);
      memory.set(v, out);
      for (const k of Object.keys(v)) out[k] = walk(v[k]);
      return out;
    } else if (typeof v.constructor === "function" && v.constructor.name === "Blob" && typeof v.slice === "function") {
      out = v.slice(0, v.size, v.type);
    } else if (tag === "[object Object]" || Object.getPrototypeOf(v) === null || Object.getPrototypeOf(v) === Object.prototype) {
      out = {};
      memory.set(v, out);
      for (const k of Object.keys(v)) out[k] = walk(v[k]);
      return out;
    } else if (tag === "[object Promise]" || tag === "[object WeakMap]" || tag === "[object WeakSet]" || v instanceof Symbol) {
      throw cloneError(`${tag.slice(8, -1)} object could not be cloned`);
    } else {
      throw cloneError(`${tag.slice(8, -1)} object could not be cloned`);
    }
    memory.set(v, out);
    return out;
  };
  return walk(value);
}
