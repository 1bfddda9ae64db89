// Entry of the Node worker host: runtime_v8's pure-JS Web API layer (the same files,
// imported read-only) on a Node implementation of its host bridge (bridge.js). All of
// it, and the user's code after its top-level init, lives in the startup snapshot.
// Import order matters: node.js captures Node's built-ins, strip.js deletes every
// non-ECMAScript global, then runtime_v8's modules initialise on a bare global object.
// The per-function entry file (built at deploy) is this bundle followed by
// `__noslateHost.boot({kind, filename, code}, env, {warmup})`:
//   node --snapshot-blob B --build-snapshot entry.js  -> warm-up + user code now, start() at start
//   node loader.cjs <fd> --fd 3 --init fd:4            -> user code and start() now
import { fs, net, nodeCrypto, nodePerformance, nodeProcess, sabStandIn, v8, vm } from "./node.js";
import { RUN_TIME_BUILTINS, stripNodeGlobals } from "./strip.js";
import { boot as bootRuntime } from "../../../runtime_v8/js/src/index.js";
import { installWasmStreaming } from "../../../runtime_v8/js/src/compression.js";
import { wire, feed, send } from "./wire.js";
import { attach, bridge, dropStream, hostAck, hs, LOG_LEVELS, resetAfterWarmUp, startTimers, toJsonValue, toLatin1 } from "./bridge.js";
import { warmRuntime, warmUserRequests } from "./warm.js";

const RUNTIME = "nodejs";
const USER_AGENT = "Noslate-Workers/0.1 (nodejs)";
const LOAD_ERROR = "__NOSLATE_LOAD_ERROR__ ";
const denyImport = () => {
  throw new TypeError("import() is not available in workers: bundle your dependencies at deploy");
};
delete globalThis.__noslate_boot;

const host = { api: null, globals: null, draining: false };

class LoadError extends Error {}

function location(err, filename) {
  const stack = (err && typeof err.stack === "string" && err.stack) || "";
  const m = stack.match(new RegExp(filename.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + ":(\\d+)(?::(\\d+))?"));
  return m ? `${filename}:${m[1]}:${m[2] || 0}` : "";
}

function firstLine(err) {
  const text = err && typeof err.stack === "string" ? err.stack : String(err);
  const lines = text.split("\n");
  // a SyntaxError's stack starts with "file:line", the source line and a caret
  return lines.find((l) => /^\w*Error\b|^[A-Z]\w*:/.test(l)) || lines[0];
}

/** After deserialization Node sets some of its globals again: restore exactly what user code had. */
function restoreGlobals() {
  const saved = host.globals;
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    if (!saved.has(name) && !RUN_TIME_BUILTINS.has(name)) Reflect.deleteProperty(globalThis, name);
  }
  for (const [name, desc] of saved) {
    const cur = Object.getOwnPropertyDescriptor(globalThis, name);
    if (!cur || cur.value !== desc.value || cur.get !== desc.get || cur.set !== desc.set) {
      Object.defineProperty(globalThis, name, desc);
    }
  }
}

function saveGlobals() {
  host.globals = new Map(Object.getOwnPropertyNames(globalThis).map((n) => [n, Object.getOwnPropertyDescriptor(globalThis, n)]));
}

function runUser(api, art) {
  let script;
  try {
    script = new vm.Script(art.code, { filename: art.filename, importModuleDynamically: denyImport });
  } catch (err) {
    throw Object.assign(new LoadError(`syntax error: ${firstLine(err)}`), { where: location(err, art.filename) });
  }
  let result;
  try {
    result = script.runInThisContext();
  } catch (err) {
    throw Object.assign(new LoadError(`top-level code failed: ${firstLine(err)}`), { where: location(err, art.filename) });
  }
  let error;
  try {
    if (art.kind === "module") api.registerModule(result);
    error = api.install();
  } catch (err) {
    throw Object.assign(new LoadError(firstLine(err)), { where: location(err, art.filename) });
  }
  if (error) throw Object.assign(new LoadError(`install event handler threw: ${error.split("\n")[0]}`), { where: location({ stack: error }, art.filename) });
  if (!api.hasFetchHandler()) {
    throw new LoadError("no fetch handler: call addEventListener('fetch', ...) or export default { fetch(request, env, ctx) { ... } }");
  }
}

function loadUser(art, env, building = false) {
  stripNodeGlobals();
  const api = bootRuntime(bridge, JSON.stringify({ env: env || {}, seed: nodeCrypto.randomBytes(16).toString("hex") }));
  host.api = api;
  if (building) warmRuntime(api, (...frame) => handlers.req(...frame));
  Object.defineProperty(globalThis.Navigator.prototype, "userAgent", { get: () => USER_AGENT, configurable: true });
  if (sabStandIn !== null && globalThis.SharedArrayBuffer === sabStandIn) delete globalThis.SharedArrayBuffer;
  hs.loading = true;
  try {
    runUser(api, art);
  } finally {
    hs.loading = false;
  }
  saveGlobals();
}

function args() {
  const argv = nodeProcess.argv;
  const get = (flag) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return { fd: Number(get("--fd")), init: get("--init") };
}

function readInit(source) {
  if (!source) return {};
  const fd = source.startsWith("fd:") ? Number(source.slice(3)) : -1;
  const text = fd >= 0 ? fs.readFileSync(fd, "utf8") : source;
  if (fd >= 0) fs.closeSync(fd);
  return text ? JSON.parse(text) : {};
}

function exit(code) {
  nodeProcess.exit(code);
}

/** Call into the runtime; an internal JS failure is logged, never thrown (loop.py ``_js``). */
function js(fn, ...a) {
  try {
    return fn(...a);
  } catch (err) {
    nodeProcess.stderr.write(`runtime_node: runtime call failed: ${(err && err.stack) || err}\n`);
    bridge.log("error", "internal runtime error (see the daemon log)", 0);
    return undefined;
  }
}

const handlers = {
  req(rid, method, url, headers, hasBody) {
    if (host.draining) {
      send(["fail", rid, 503, "Service Unavailable: the instance is stopping", ""]);
      return;
    }
    hs.active.add(rid);
    hs.currentRid = rid;
    js(host.api.request, rid, method, url, JSON.stringify(headers), hasBody);
    hs.currentRid = 0;
  },
  chunk: (sid, data) => js(host.api.chunk, sid, toLatin1(data)),
  end: (sid) => js(host.api.end, sid),
  ack(sid, n) {
    if (!hostAck(sid, n)) js(host.api.ack, sid, n);
  },
  abort(sid, reason) {
    dropStream(sid);
    js(host.api.abort, sid, reason || "");
  },
  result: (cid, ok, value, errorName, errorMessage) =>
    js(host.api.result, cid, ok, ok ? toJsonValue(value) : "", errorName || "", errorMessage || ""),
  fresp: (fid, status, statusText, headers, url, hasBody) =>
    js(host.api.fresp, fid, status, statusText, JSON.stringify(headers), url, hasBody),
  ferr: (fid, errorName, message) => js(host.api.ferr, fid, errorName, message),
  shutdown(graceMs) {
    host.draining = true;
    const deadline = Date.now() + (graceMs || 0);
    const poll = () => {
      if (hs.active.size === 0 || Date.now() >= deadline) exit(0);
      else setTimeoutNode(poll, 5);
    };
    poll();
  },
};
let setTimeoutNode = null;

function start(fromSnapshot, tReady, tLoaded) {
  if (fromSnapshot) {
    restoreGlobals();
    installWasmStreaming(); // WebAssembly is back only now
  }
  const opts = args();
  const init = readInit(opts.init);
  hs.origin = nodePerformance.now();
  hs.originMs = Date.now();
  hs.minLogLevel = LOG_LEVELS[String(init.log_level || "debug")] ?? 0;
  js(host.api.reseed, nodeCrypto.randomBytes(16).toString("hex"));
  const sock = new net.Socket({ fd: opts.fd, readable: true, writable: true });
  wire.sock = sock;
  wire.handlers = handlers;
  sock.on("data", (data) => {
    try {
      feed(data);
    } catch (err) {
      nodeProcess.stderr.write(`runtime_node: protocol error: ${(err && err.stack) || err}\n`);
      exit(1);
    }
  });
  sock.on("end", () => exit(0));
  sock.on("error", () => exit(1));
  const ms = (t) => Math.round(t * 10) / 10;
  send(["hello", nodeProcess.pid, RUNTIME, {
    function: init.function || "", version: init.version || "", instance: init.instance || "",
    node: nodeProcess.version, snapshot: !!fromSnapshot,
    // milliseconds since the process started: host ready, user code loaded, hello
    ms: [ms(tReady), ms(tLoaded), ms(nodePerformance.now())],
  }]);
  attach();
  startTimers((tid) => js(host.api.timer, tid));
}

function failStart(err) {
  const where = err.where ? err.where + ": " : "";
  const message = err instanceof LoadError ? `${where}${err.message}` : `worker start failed: ${(err && err.stack) || err}`;
  try {
    const sock = new net.Socket({ fd: args().fd, readable: false, writable: true });
    wire.sock = sock;
    send(["log", "error", message, 0]);
  } catch {}
  nodeProcess.stderr.write(message + "\n");
  setTimeoutNode(() => exit(1), 0);
}

function installProcessHandlers() {
  setTimeoutNode = require("node:timers").setTimeout;
  nodeProcess.on("uncaughtException", (err) => bridge.log("error", "Uncaught " + ((err && err.stack) || String(err)), 0));
  nodeProcess.on("unhandledRejection", (err) => bridge.log("error", "Unhandled promise rejection: " + ((err && err.stack) || String(err)), 0));
}

/** Called by the generated entry file. */
export function boot(art, env, options = {}) {
  if (v8.startupSnapshot.isBuildingSnapshot()) {
    try {
      loadUser(art, env, true);
      if (options.warmup && options.warmup.length) void warmUserRequests(handlers, (tid) => js(host.api.timer, tid), options.warmup, options.warmupBudgetMs || 10000);
    } catch (err) {
      if (!(err instanceof LoadError)) throw err;
      nodeProcess.stderr.write(LOAD_ERROR + JSON.stringify({ message: err.message, where: err.where || "" }) + "\n");
      nodeProcess.exit(1);
    }
    v8.startupSnapshot.setDeserializeMainFunction(() => {
      resetAfterWarmUp();
      installProcessHandlers();
      const t = nodePerformance.now();
      start(true, t, t);
    });
    return;
  }
  installProcessHandlers();
  const tReady = nodePerformance.now();
  try {
    loadUser(art, env);
  } catch (err) {
    failStart(err);
    return;
  }
  start(false, tReady, nodePerformance.now());
}
