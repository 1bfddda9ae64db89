// The global scope user code sees: Web APIs (Node's own where they are Web-compatible,
// ours for fetch/caches/console/timers/events) and no Node globals.
import { util } from "./node.js";
import { callHost, Cache, CacheStorage, caches, kvStorages, KVStorage } from "./calls.js";
import { dispatch, ExtendableEvent, FetchEvent, log, state } from "./dispatch.js";
import { fetch } from "./fetch.js";

/** Node globals removed from globalThis. ``Buffer`` stays reachable only by Node's own code. */
export const REMOVED = ["process", "Buffer", "global", "setImmediate", "clearImmediate", "require", "module",
  "exports", "__filename", "__dirname", "WebSocket", "EventSource", "localStorage", "sessionStorage", "Navigator"];
/** Names shadowed (undefined) in the scope user code runs in. */
export const SHADOWED = ["Buffer", "process", "global", "require", "module", "exports", "__filename", "__dirname",
  "setImmediate", "clearImmediate"];

const USER_AGENT = "Noslate-Workers/0.1 (nodejs)";

function define(name, value) {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

function makeConsole() {
  const fmt = (args) => util.format(...args);
  const counts = new Map();
  const times = new Map();
  const c = {
    log: (...a) => log("info", fmt(a)),
    info: (...a) => log("info", fmt(a)),
    debug: (...a) => log("debug", fmt(a)),
    warn: (...a) => log("warning", fmt(a)),
    error: (...a) => log("error", fmt(a)),
    trace: (...a) => log("info", fmt(a) + "\n" + new Error().stack.split("\n").slice(2).join("\n")),
    dir: (v) => log("info", util.inspect(v)),
    table: (v) => log("info", util.inspect(v)),
    assert: (cond, ...a) => { if (!cond) log("error", "Assertion failed" + (a.length ? ": " + fmt(a) : "")); },
    count: (label = "default") => { counts.set(label, (counts.get(label) || 0) + 1); log("info", `${label}: ${counts.get(label)}`); },
    countReset: (label = "default") => void counts.delete(label),
    time: (label = "default") => void times.set(label, performance.now()),
    timeLog: (label = "default", ...a) => log("info", `${label}: ${(performance.now() - (times.get(label) || 0)).toFixed(3)}ms ${fmt(a)}`.trim()),
    timeEnd: (label = "default") => { c.timeLog(label); times.delete(label); },
    group: () => {}, groupCollapsed: () => {}, groupEnd: () => {},
  };
  return Object.freeze(c);
}

function makeTimers(nodeTimers) {
  const live = new Map();
  let next = 1;
  const add = (repeat) => (fn, ms = 0, ...args) => {
    if (typeof fn !== "function") throw new TypeError("the callback must be a function");
    const id = next++;
    const run = () => {
      if (!repeat) live.delete(id);
      fn(...args);
    };
    live.set(id, (repeat ? nodeTimers.setInterval : nodeTimers.setTimeout)(run, Number(ms) || 0));
    return id;
  };
  const clear = (id) => {
    const t = live.get(Number(id));
    if (t !== undefined) {
      nodeTimers.clearTimeout(t);
      live.delete(Number(id));
    }
  };
  return { setTimeout: add(false), setInterval: add(true), clearTimeout: clear, clearInterval: clear };
}

class Navigator {
  get userAgent() { return USER_AGENT; }
  get hardwareConcurrency() { return 1; }
  get language() { return "en"; }
  get languages() { return ["en"]; }
}

/** Install our globals and remove Node's (idempotent: runs again after deserialization). */
export function installGlobals(env, runScript) {
  if (!state.installed) {
    state.timers = makeTimers({ setTimeout, setInterval, clearTimeout });
    state.console = makeConsole();
    state.navigator = new Navigator();
  }
  // defined again after deserialization: Node re-installs some of its globals then
  for (const [k, v] of Object.entries(state.timers)) define(k, v);
  define("console", state.console);
  define("navigator", state.navigator);
  if (!state.installed) {
    define("fetch", fetch);
    define("caches", caches);
    define("Cache", Cache);
    define("CacheStorage", CacheStorage);
    define("FetchEvent", FetchEvent);
    define("ExtendableEvent", ExtendableEvent);
    define("self", globalThis);
    define("addEventListener", (type, fn, options) => {
      if (fn === null || fn === undefined) return;
      const list = state.listeners.get(String(type)) || [];
      if (!list.some((e) => e.fn === fn)) list.push({ fn, once: !!(options && options.once) });
      state.listeners.set(String(type), list);
    });
    define("removeEventListener", (type, fn) => {
      const list = state.listeners.get(String(type)) || [];
      const i = list.findIndex((e) => e.fn === fn);
      if (i >= 0) list.splice(i, 1);
    });
    define("dispatchEvent", (event) => {
      dispatch(event);
      return !event.defaultPrevented;
    });
    define("reportError", (err) => log("error", "Uncaught " + ((err && err.stack) || String(err))));
    state.env = Object.freeze({ ...(env || {}) });
    define("noslate", Object.freeze({ kvStorages, KVStorage, env: state.env, version: "0.1", _call: undefined }));
    void callHost;
    state.installed = true;
  }
  const buffer = globalThis.Buffer;
  for (const name of REMOVED) delete globalThis[name];
  if (buffer !== undefined && !state.lexicalBuffer) {
    // Node's bundled undici reads the global name `Buffer`: keep it as a global lexical
    // binding (not a property of globalThis); user code runs with `Buffer` shadowed.
    globalThis.__noslate_buffer = buffer;
    runScript("const Buffer = globalThis.__noslate_buffer; delete globalThis.__noslate_buffer;");
    state.lexicalBuffer = true;
  }
}
