// Entry of the Node worker host. The per-function entry file (built at deploy) is
// this bundle followed by `__noslateHost.boot({kind, filename, code}, env)`:
//   node --snapshot-blob B --build-snapshot entry.js  -> user code runs now, main() at start
//   node entry.js --fd 3 --init fd:4                   -> user code and main() now
import { nodeProcess, util, vm, v8, fs } from "./node.js";
import { wire, feed, send } from "./wire.js";
import { onChunk, onEnd, onAck, abortIncoming } from "./streams.js";
import { dispatch, errorDetail, ExtendableEvent, log, onRequest, onRequestAbort, state } from "./dispatch.js";
import { onResult } from "./calls.js";
import { onFetchError, onFetchResponse } from "./fetch.js";
import { als } from "./context.js";
import { installGlobals, SHADOWED } from "./globals.js";

const RUNTIME = "nodejs";
const LOAD_ERROR = "__NOSLATE_LOAD_ERROR__ ";
const denyImport = () => {
  throw new TypeError("import() is not available in workers: bundle your dependencies at deploy");
};

function runScript(source, filename = "noslate:host") {
  return new vm.Script(source, { filename, importModuleDynamically: denyImport }).runInThisContext();
}

class LoadError extends Error {}

function location(err, filename) {
  const stack = (err && typeof err.stack === "string" && err.stack) || "";
  const m = stack.match(new RegExp(filename.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + ":(\\d+):(\\d+)"));
  return m ? `${filename}:${m[1]}:${m[2]}` : "";
}

function loadUser(art) {
  const wrapped = `(function (${SHADOWED.join(", ")}) {${art.kind === "module" ? "return " : ""}${art.code}\n})`;
  let fn;
  try {
    fn = runScript(wrapped, art.filename);
  } catch (err) {
    throw Object.assign(new LoadError(`syntax error: ${err && err.message}`), { where: location(err, art.filename) });
  }
  let exports;
  try {
    exports = fn.call(globalThis);
  } catch (err) {
    throw Object.assign(new LoadError(`top-level code failed: ${errorDetail(err).split("\n")[0]}`), { where: location(err, art.filename) });
  }
  if (art.kind === "module" && exports !== null && exports !== undefined) {
    const mod = exports.default !== undefined ? exports.default : typeof exports.fetch === "function" ? exports : undefined;
    if (mod !== undefined) {
      if (!mod || typeof mod.fetch !== "function") {
        throw new LoadError("the module's default export has no fetch() method: export default { async fetch(request, env, ctx) { ... } }");
      }
      state.module = mod;
    }
  }
  if (!state.module) {
    const errors = [];
    state.errorSink = (err) => errors.push(err);
    try {
      for (const type of ["install", "activate"]) dispatch(new ExtendableEvent(type));
    } finally {
      state.errorSink = null;
    }
    if (errors.length) throw new LoadError(`install event handler threw: ${errorDetail(errors[0]).split("\n")[0]}`);
  }
  if (!state.module && !(state.listeners.get("fetch") || []).length) {
    throw new LoadError("no fetch handler: call addEventListener('fetch', ...) or export default { fetch(request, env, ctx) { ... } }");
  }
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
  const text = source.startsWith("fd:") ? fs.readFileSync(Number(source.slice(3)), "utf8") : source;
  if (source.startsWith("fd:")) fs.closeSync(Number(source.slice(3)));
  return text ? JSON.parse(text) : {};
}

async function warm() {
  // undici cannot live in the snapshot: load it now, before Hello, not on the first request
  const req = new Request("http://warm.invalid/", { method: "POST", body: "x", headers: [["a", "b"]] });
  await req.text();
  await new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(1)); c.close(); } })).arrayBuffer();
  void [...new Headers({ a: "1" })];
}

function exit(code) {
  nodeProcess.exit(code);
}

async function main(art, env, fromSnapshot) {
  const tMain = performance.now();
  installGlobals(env, runScript);
  const { AsyncLocalStorage } = require("node:async_hooks");
  const net = require("node:net");
  als.init(AsyncLocalStorage);
  const opts = args();
  const init = readInit(opts.init);
  nodeProcess.on("uncaughtException", (err) => log("error", "Uncaught " + errorDetail(err)));
  nodeProcess.on("unhandledRejection", (err) => log("error", "Unhandled promise rejection: " + errorDetail(err)));
  if (!fromSnapshot) {
    try {
      loadUser(art);
    } catch (err) {
      const where = err.where ? err.where + ": " : "";
      const sock = new net.Socket({ fd: opts.fd, readable: false, writable: true });
      wire.sock = sock;
      send(["log", "error", `${where}${err.message}`, 0]);
      setTimeout(() => exit(1), 0);
      return;
    }
  }
  const tLoaded = performance.now();
  await warm();
  const sock = new net.Socket({ fd: opts.fd, readable: true, writable: true });
  wire.sock = sock;
  wire.handlers = {
    req: onRequest,
    chunk: (sid, data) => onChunk(sid, data),
    end: onEnd,
    ack: onAck,
    abort: (sid, reason) => (sid > 0 ? onRequestAbort(sid, reason) : abortIncoming(sid, reason)),
    result: onResult,
    fresp: onFetchResponse,
    ferr: onFetchError,
    shutdown: (graceMs) => shutdown(graceMs),
  };
  sock.on("data", (data) => {
    try {
      feed(data);
    } catch (err) {
      log("error", "protocol error: " + errorDetail(err));
      exit(1);
    }
  });
  sock.on("end", () => exit(0));
  sock.on("error", () => exit(1));
  send(["hello", nodeProcess.pid, RUNTIME, {
    node: nodeProcess.version, snapshot: !!fromSnapshot, instance: init.instance || "",
    // milliseconds since the process started: host ready, user code loaded, hello
    ms: [Math.round(tMain * 10) / 10, Math.round(tLoaded * 10) / 10, Math.round(performance.now() * 10) / 10],
  }]);
}

function shutdown(graceMs) {
  const deadline = Date.now() + (graceMs || 0);
  const poll = () => {
    if (state.inflight.size === 0 || Date.now() >= deadline) exit(0);
    else setTimeout(poll, 5);
  };
  poll();
}

function start(art, env, fromSnapshot) {
  main(art, env, fromSnapshot).catch((err) => {
    nodeProcess.stderr.write(`noslate node worker failed to start: ${errorDetail(err)}\n`);
    nodeProcess.exit(1);
  });
}

/** Called by the generated entry file. */
export function boot(art, env) {
  if (v8.startupSnapshot.isBuildingSnapshot()) {
    installGlobals(env, runScript);
    try {
      loadUser(art);
    } catch (err) {
      if (!(err instanceof LoadError)) throw err;
      nodeProcess.stderr.write(LOAD_ERROR + JSON.stringify({ message: err.message, where: err.where || "" }) + "\n");
      nodeProcess.exit(1);
    }
    v8.startupSnapshot.setDeserializeMainFunction(() => start(art, env, true));
  } else {
    start(art, env, false);
  }
}
void util;
