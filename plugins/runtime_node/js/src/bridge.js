// The host bridge of runtime_v8's Web API layer (plugins/runtime_v8/bridge.py), in
// Node: the same methods with the same primitive-only arguments, turned into kernel
// protocol frames (wire.js). Bytes cross as latin-1 strings, as in runtime_v8.
import { fitsInFrame, send, MAX_CHUNK, WINDOW } from "./wire.js";
import { NodeBuffer, nodeCrypto, nodePerformance, nodeProcess, nodeTimers, zlib } from "./node.js";

const MAX_EARLY_FRAMES = 1000;
export const LOG_LEVELS = { debug: 0, info: 1, warn: 2, warning: 2, error: 3 };
const DIGESTS = new Set(["sha1", "sha256", "sha384", "sha512"]);
/** The most a DecompressionStream may inflate to here (runtime_v8: per chunk written):
 * beyond, a TypeError instead of an instance killed for memory by a decompression bomb. */
const ZMAX_OUT = 64 * 1024 * 1024;
const ZTOO_LARGE = 1;
const ZLIB = {
  gzip: [zlib.gzipSync, zlib.gunzipSync],
  deflate: [zlib.deflateSync, zlib.inflateSync],
  "deflate-raw": [zlib.deflateRawSync, zlib.inflateRawSync],
};

/** Host state: what runtime_v8's Python ``Host`` keeps. */
export const hs = {
  attached: false,
  sinkIds: new Set(), // warm-up request ids of a snapshot build: their frames are dropped
  warm: null, // while warm-up requests run (warm.js): answers calls and fetches, sees frames
  early: [],
  streams: new Map(), // sid -> {sid, data, offset, inflight}
  settleLater: new Set(),
  active: new Set(),
  currentRid: 0,
  loading: false,
  minLogLevel: 0,
  origin: 0,
  originMs: 0, // performance.timeOrigin: the wall-clock time of `origin`
  timers: [], // [tid, delay] armed before start (snapshot build): armed at start
  fire: null, // api.timer, set at start
  zstreams: new Map(),
  nextZ: 1,
};

function emit(frame) {
  if (hs.sinkIds.size && hs.sinkIds.has(frame[0] === "log" ? frame[3] : frame[1])) {
    if (hs.warm) hs.warm.frame(frame);
    return;
  }
  if (hs.attached) send(frame);
  else if (hs.early.length < MAX_EARLY_FRAMES) hs.early.push(frame);
}

/** Forget the state of the warm-up requests of a snapshot build. */
export function resetAfterWarmUp() {
  hs.sinkIds.clear();
  hs.warm = null;
  hs.active.clear();
  hs.streams.clear();
  hs.settleLater.clear();
}

/** Start writing frames to the channel (after Hello); flush the early ones. */
export function attach() {
  hs.attached = true;
  const early = hs.early;
  hs.early = [];
  for (const frame of early) send(frame);
}

function warn(name, err) {
  try {
    nodeProcess.stderr.write(`runtime_node: bridge ${name} failed: ${(err && err.stack) || err}\n`);
  } catch {}
}

/** Like bridge.py's ``@safe``: a failure is reported to stderr, JS gets ``fallback``. */
function safe(name, fn, fallback = undefined) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      warn(name, err);
      return fallback;
    }
  };
}

const latin1 = (s) => NodeBuffer.from(String(s), "latin1");
export const toLatin1 = (u8) => NodeBuffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString("latin1");

function payload(kind, data) {
  kind = Number(kind);
  if (kind === 1) return NodeBuffer.from(String(data), "utf8");
  if (kind === 2) return latin1(data);
  return null;
}

function pump(st) {
  const n = st.data.length;
  while (st.offset < n && st.inflight < WINDOW) {
    emit(["chunk", st.sid, st.data.subarray(st.offset, st.offset + MAX_CHUNK)]);
    st.offset += MAX_CHUNK;
    st.inflight += 1;
  }
  if (st.offset >= n) {
    emit(["end", st.sid]);
    hs.streams.delete(st.sid);
    if (hs.settleLater.delete(st.sid)) {
      hs.active.delete(st.sid);
      emit(["settled", st.sid]);
    }
  }
}

function startStream(sid, data) {
  const st = { sid, data, offset: 0, inflight: 0 };
  hs.streams.set(sid, st);
  pump(st);
}

/** An Ack for a host-managed stream: send more. False if JS owns ``sid``. */
export function hostAck(sid, n) {
  const st = hs.streams.get(sid);
  if (!st) return false;
  st.inflight -= n;
  pump(st);
  return true;
}

/** The kernel aborted ``sid``: forget a host-managed body. */
export function dropStream(sid) {
  const st = hs.streams.get(sid);
  if (!st) return false;
  hs.streams.delete(sid);
  if (hs.settleLater.delete(sid)) {
    hs.active.delete(sid);
    emit(["settled", sid]);
  }
  return true;
}

function guessRid() {
  if (hs.loading) return 0; // the user's top-level code and install event
  if (hs.active.size === 1) return hs.active.values().next().value;
  return 0;
}

function fromJsonArgs(text) {
  return JSON.parse(text, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === "$b" && typeof v.$b === "string") return latin1(v.$b);
    }
    return v;
  });
}

/** A Result value for JS: byte strings become ``{"$b": latin1}`` (bridge.py ``to_json_value``). */
export function toJsonValue(value) {
  const conv = (v) => {
    if (v instanceof Uint8Array) return { $b: toLatin1(v) };
    if (Array.isArray(v)) return v.map(conv);
    if (v && typeof v === "object") {
      const out = {};
      for (const [k, x] of Object.entries(v)) out[String(k)] = conv(x);
      return out;
    }
    return v === undefined ? null : v;
  };
  return JSON.stringify(conv(value));
}

export function now() {
  return nodePerformance.now() - hs.origin;
}

function armTimer(tid, delay) {
  nodeTimers.setTimeout(() => hs.fire(tid), delay);
}

/** Arm the timers user code set while the snapshot was built; from now on timers are live. */
export function startTimers(fire) {
  hs.fire = fire;
  const pending = hs.timers;
  hs.timers = null;
  for (const [tid, delay] of pending) armTimer(tid, delay);
}

/** The object runtime_v8's JS calls (it keeps it in a module closure). */
export const bridge = Object.freeze({
  respond: safe("respond", (rid, status, headers, kind, data, settled) => {
    const body = payload(kind, data);
    const head = ["resp", rid, status, JSON.parse(headers), body !== null];
    if (body === null) {
      emit(head);
      if (settled) {
        hs.active.delete(rid);
        emit(["settled", rid]);
      }
      return;
    }
    if (body.length <= MAX_CHUNK) {
      emit(head);
      if (body.length) emit(["chunk", rid, body]);
      emit(["end", rid]);
      if (settled) {
        hs.active.delete(rid);
        emit(["settled", rid]);
      }
      return;
    }
    emit(head);
    if (settled) hs.settleLater.add(rid);
    startStream(rid, body);
  }),
  head: safe("head", (rid, status, headers) => emit(["resp", rid, status, JSON.parse(headers), true])),
  body: safe("body", (sid, kind, data) => startStream(sid, payload(kind, data) || NodeBuffer.alloc(0))),
  chunk: safe("chunk", (sid, data) => emit(["chunk", sid, latin1(data)])),
  end: safe("end", (sid) => emit(["end", sid])),
  abort: safe("abort", (sid, reason) => emit(["abort", sid, String(reason).slice(0, 500)])),
  ack: safe("ack", (sid, n) => emit(["ack", sid, n])),
  fail: safe("fail", (rid, status, message, detail) => emit(["fail", rid, status, String(message), String(detail)])),
  settled: safe("settled", (rid) => {
    if (hs.streams.has(rid)) {
      hs.settleLater.add(rid);
      return;
    }
    hs.active.delete(rid);
    emit(["settled", rid]);
  }),
  log: safe("log", (level, message, rid) => {
    if ((LOG_LEVELS[level] ?? 1) < hs.minLogLevel) return;
    emit(["log", String(level), String(message), Number(rid) || guessRid()]);
  }),
  call: safe("call", (cid, op, args) => {
    if (hs.warm) return hs.warm.call(cid, String(op), fromJsonArgs(args));
    if (!hs.attached) return false;
    const frame = ["call", cid, String(op), fromJsonArgs(args)];
    if (!fitsInFrame(frame)) return 2; // a TypeError in JS; a frame this size would end the channel
    emit(frame);
    return true;
  }, false),
  fetch: safe("fetch", (fid, method, url, headers, hasBody, redirect) => {
    if (hs.warm) return hs.warm.fetch(fid, String(url));
    if (!hs.attached) return false;
    const rid = hs.currentRid || guessRid();
    emit(["fetch", fid, String(method), String(url), JSON.parse(headers), !!hasBody, String(redirect), rid]);
    return true;
  }, false),
  timer: safe("timer", (tid, delay) => {
    delay = Math.max(0, Number(delay) || 0);
    if (hs.warm) hs.warm.timer(tid, delay);
    else if (hs.timers !== null) hs.timers.push([tid, delay]);
    else armTimer(tid, delay);
  }),
  now: safe("now", now, 0),
  time_origin: safe("time_origin", () => hs.originMs, 0),
  random: safe("random", (n) => nodeCrypto.randomBytes(Math.max(0, Math.min(Number(n) | 0, 65536))).toString("latin1"), ""),
  // Node has no synchronous streaming zlib API: input is kept and (de)compressed whole
  // at the end (the bytes are the same; output arrives at close, memory grows with input)
  zopen: safe("zopen", (fmt, mode) => {
    const run = ZLIB[fmt][mode === "c" ? 0 : 1];
    const zid = hs.nextZ++;
    hs.zstreams.set(zid, { run, parts: [], inflate: mode !== "c" });
    return zid;
  }, 0),
  zmax: () => ZMAX_OUT,
  zpush: safe("zpush", (zid, data) => {
    const st = hs.zstreams.get(zid);
    if (!st) return null;
    st.parts.push(latin1(data));
    return "";
  }, null),
  zclose: (zid) => {
    const st = hs.zstreams.get(zid);
    if (!st) return null;
    hs.zstreams.delete(zid);
    try {
      const options = st.inflate ? { maxOutputLength: ZMAX_OUT } : {};
      return st.run(NodeBuffer.concat(st.parts), options).toString("latin1");
    } catch (err) {
      // a decompression bomb (over ZMAX_OUT), or truncated or corrupt input
      return err && err.code === "ERR_BUFFER_TOO_LARGE" ? ZTOO_LARGE : null;
    }
  },
  digest: safe("digest", (alg, data) => {
    if (!DIGESTS.has(alg)) return null;
    return nodeCrypto.createHash(alg).update(latin1(data)).digest("latin1");
  }, null),
  hmac: safe("hmac", (alg, key, data) => {
    if (!DIGESTS.has(alg)) return null;
    return nodeCrypto.createHmac(alg, latin1(key)).update(latin1(data)).digest("latin1");
  }, null),
  pbkdf2: safe("pbkdf2", (alg, key, salt, iterations, n) => {
    if (!DIGESTS.has(alg)) return null;
    return nodeCrypto.pbkdf2Sync(latin1(key), latin1(salt), iterations, n, alg).toString("latin1");
  }, null),
  hkdf: safe("hkdf", (alg, key, salt, info, n) => {
    if (!DIGESTS.has(alg)) return null;
    try {
      return NodeBuffer.from(nodeCrypto.hkdfSync(alg, latin1(key), latin1(salt), latin1(info), n)).toString("latin1");
    } catch {
      return null; // n beyond 255 hash lengths
    }
  }, null),
});
