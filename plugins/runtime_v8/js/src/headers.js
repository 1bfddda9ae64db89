// Headers (Fetch Standard): normalised names, combined values, getSetCookie, guards.
const kList = Symbol("list");
export const kGuard = Symbol("guard");

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORBIDDEN_VALUE = /[\0\r\n]/;

function normName(name) {
  name = String(name);
  if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: "${name}"`);
  return name.toLowerCase();
}

function normValue(value) {
  value = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  if (FORBIDDEN_VALUE.test(value)) throw new TypeError(`Invalid header value: "${value}"`);
  return value;
}

export class Headers {
  constructor(init = undefined) {
    Object.defineProperty(this, kList, { value: [], writable: true });
    this[kGuard] = "none";
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [k, v] of init[kList]) this[kList].push([k, v]);
    } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
      for (const pair of init) {
        const arr = [...pair];
        if (arr.length !== 2) throw new TypeError("Header pairs must contain exactly two items");
        this.append(arr[0], arr[1]);
      }
    } else if (typeof init === "object") {
      for (const k of Reflect.ownKeys(init)) {
        if (typeof k !== "string") continue;
        const d = Reflect.getOwnPropertyDescriptor(init, k);
        if (d && d.enumerable) this.append(k, init[k]);
      }
    } else {
      throw new TypeError("Failed to construct 'Headers': invalid init");
    }
  }
  #check() {
    if (this[kGuard] === "immutable") throw new TypeError("Headers are immutable");
  }
  append(name, value) {
    this.#check();
    this[kList].push([normName(name), normValue(value)]);
  }
  delete(name) {
    this.#check();
    name = normName(name);
    this[kList] = this[kList].filter(([k]) => k !== name);
  }
  get(name) {
    name = normName(name);
    const vals = [];
    for (const [k, v] of this[kList]) if (k === name) vals.push(v);
    return vals.length ? vals.join(", ") : null;
  }
  getSetCookie() {
    return this[kList].filter(([k]) => k === "set-cookie").map(([, v]) => v);
  }
  has(name) {
    name = normName(name);
    return this[kList].some(([k]) => k === name);
  }
  set(name, value) {
    this.#check();
    name = normName(name);
    value = normValue(value);
    const i = this[kList].findIndex(([k]) => k === name);
    if (i < 0) {
      this[kList].push([name, value]);
      return;
    }
    this[kList][i] = [name, value];
    this[kList] = this[kList].filter(([k], j) => k !== name || j <= i);
  }
  #sorted() {
    const names = [...new Set(this[kList].map(([k]) => k))].sort();
    const out = [];
    for (const n of names) {
      if (n === "set-cookie") for (const v of this.getSetCookie()) out.push([n, v]);
      else out.push([n, this.get(n)]);
    }
    return out;
  }
  forEach(callback, thisArg = undefined) {
    for (const [k, v] of this.#sorted()) callback.call(thisArg, v, k, this);
  }
  *entries() { yield* this.#sorted(); }
  *keys() { for (const [k] of this.#sorted()) yield k; }
  *values() { for (const [, v] of this.#sorted()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "Headers"; }
}

/** Raw [name, value] pairs in insertion order (for the wire). */
export function headerList(h) {
  return h[kList];
}

export function headersFromList(list, guard = "none") {
  const h = new Headers();
  h[kList] = list.map(([k, v]) => [String(k).toLowerCase(), String(v)]);
  h[kGuard] = guard;
  return h;
}
