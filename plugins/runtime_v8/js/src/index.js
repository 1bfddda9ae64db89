// The runtime bundle entry: boot(bridge, initJson) installs the Web globals and
// returns the functions the host calls. The bridge stays in module closures only.
import "./globals-first.js";
import * as streams from "web-streams-polyfill";
import { URL, URLSearchParams } from "whatwg-url";
import { TextDecoderStream, TextEncoderStream } from "@exodus/bytes/encoding-lite.js";
import { setBridge, host } from "./host.js";
import { Blob, File } from "./blob.js";
import { caches, Cache, CacheStorage } from "./cache.js";
import { onResult } from "./calls.js";
import { structuredClone } from "./clone.js";
import { console } from "./console.js";
import { crypto, Crypto, CryptoKey, SubtleCrypto, mathRandom, reseed } from "./crypto.js";
import { ExtendableEvent, FetchEvent, onRequest, onRequestAbort, recordPristine, reportListenerError, state, warmRequestPath } from "./dispatch.js";
import { DOMException } from "./domexception.js";
import { atob, btoa, TextDecoder, TextEncoder } from "./encoding.js";
import { AbortController, AbortSignal, CustomEvent, Event, EventTarget, setErrorReporter } from "./events.js";
import { fetch, onFetchError, onFetchResponse } from "./fetch.js";
import { Request, Response } from "./fetchapi.js";
import { FormData } from "./formdata.js";
import { Headers } from "./headers.js";
import { CompressionStream, DecompressionStream, installWasmStreaming } from "./compression.js";
import { URLPattern } from "urlpattern-polyfill/urlpattern";
import { onAck, onChunk, onEnd } from "./io.js";
import { kvStorages, KVStorage } from "./kv.js";
import { clearInterval, clearTimeout, fireTimer, queueMicrotask, setInterval, setTimeout, setTimerErrorHandler } from "./timers.js";

const USER_AGENT = "Noslate-Workers/0.1 (aworker)";

class Navigator {
  get userAgent() { return USER_AGENT; }
  get hardwareConcurrency() { return 1; }
  get language() { return "en"; }
  get languages() { return ["en"]; }
}

// The time origin lives in the host (Host.origin / origin_ms): a new instance gets a
// new one without a call into the engine.
class Performance extends EventTarget {
  get timeOrigin() { return host.bridge.time_origin(); }
  now() { return host.bridge.now(); }
  toJSON() { return { timeOrigin: this.timeOrigin }; }
}

function define(name, value) {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

function atomicsWaitRefused() {
  throw new TypeError("Atomics.wait cannot be called in this context: a worker has one thread, so it would only block its event loop (use Atomics.waitAsync)");
}

export function boot(bridge, initJson) {
  setBridge(bridge);
  const init = JSON.parse(initJson);
  const performance = new Performance();

  const globals = {
    // events and errors
    Event, EventTarget, CustomEvent, ExtendableEvent, FetchEvent, AbortController, AbortSignal, DOMException,
    // fetch
    Headers, Request, Response, fetch, FormData, Blob, File,
    // url and encoding
    URL, URLSearchParams, URLPattern, CompressionStream, DecompressionStream, TextEncoder, TextDecoder, TextEncoderStream, TextDecoderStream, atob, btoa,
    // streams
    ReadableStream: streams.ReadableStream, WritableStream: streams.WritableStream, TransformStream: streams.TransformStream,
    ReadableStreamDefaultReader: streams.ReadableStreamDefaultReader, ReadableStreamBYOBReader: streams.ReadableStreamBYOBReader,
    ReadableStreamDefaultController: streams.ReadableStreamDefaultController, ReadableByteStreamController: streams.ReadableByteStreamController,
    ReadableStreamBYOBRequest: streams.ReadableStreamBYOBRequest, WritableStreamDefaultWriter: streams.WritableStreamDefaultWriter,
    WritableStreamDefaultController: streams.WritableStreamDefaultController, TransformStreamDefaultController: streams.TransformStreamDefaultController,
    ByteLengthQueuingStrategy: streams.ByteLengthQueuingStrategy, CountQueuingStrategy: streams.CountQueuingStrategy,
    // timers, tasks, misc
    setTimeout, setInterval, clearTimeout, clearInterval, queueMicrotask, structuredClone,
    console, crypto, Crypto, SubtleCrypto, CryptoKey,
    performance, Performance, navigator: new Navigator(), Navigator,
    caches, Cache, CacheStorage,
    reportError: (err) => reportListenerError(err),
  };
  for (const [k, v] of Object.entries(globals)) define(k, v);
  define("self", globalThis);
  installWasmStreaming();
  Object.defineProperty(Math, "random", { value: mathRandom, writable: true, configurable: true });
  // A worker has one thread: Atomics.wait could only block its event loop (at no CPU,
  // unseen by the CPU watchdog). As on a browser's main thread, it throws.
  Object.defineProperty(Atomics, "wait", { value: atomicsWaitRefused, writable: true, configurable: true });

  // globalThis is the event target user code adds its fetch listener to
  const target = new EventTarget();
  state.target = target;
  define("addEventListener", (type, listener, options) => target.addEventListener(type, listener, options));
  define("removeEventListener", (type, listener, options) => target.removeEventListener(type, listener, options));
  define("dispatchEvent", (event) => target.dispatchEvent(event));
  setErrorReporter((err) => reportListenerError(err));
  setTimerErrorHandler((err) => reportListenerError(err));

  const env = Object.freeze({ ...(init.env || {}) });
  state.env = env;
  define("noslate", Object.freeze({ kvStorages, KVStorage, env, version: "0.1" }));

  reseed(init.seed || "0123456789abcdef0123456789abcdef");
  // before any user code, in a process whose forks may warm up (a warmfork seed)
  if (init.warmable) recordPristine();

  return {
    request: onRequest,
    chunk: onChunk,
    end: onEnd,
    abort: (sid, reason) => (sid > 0 ? onRequestAbort(sid, reason) : onAbortInFetch(sid, reason)),
    ack: onAck,
    result: onResult,
    fresp: onFetchResponse,
    ferr: onFetchError,
    timer: fireTimer,
    reseed: (hex) => reseed(hex),
    warm: warmRequestPath,
    registerModule: (exports) => {
      if (exports === null || exports === undefined) return;
      const mod = exports.default !== undefined ? exports.default : typeof exports.fetch === "function" ? exports : undefined;
      if (mod === undefined) return; // no default export: listeners registered at top level
      if (!mod || typeof mod.fetch !== "function") {
        throw new TypeError("The module's default export has no fetch() method: export default { async fetch(request, env, ctx) { ... } }");
      }
      state.module = mod;
    },
    install: () => {
      if (state.module) return "";
      const errors = [];
      state.errorSink = (err) => errors.push(err);
      try {
        for (const type of ["install", "activate"]) target.dispatchEvent(new ExtendableEvent(type));
      } finally {
        state.errorSink = null;
      }
      return errors.length ? String(errors[0] && errors[0].stack ? errors[0].stack : errors[0]) : "";
    },
    hasFetchHandler: () => !!state.module || hasListener(target, "fetch"),
  };
}

import { onAbortIn } from "./io.js";
function onAbortInFetch(sid, reason) {
  onAbortIn(sid, reason);
}

function hasListener(target, type) {
  const syms = Object.getOwnPropertySymbols(target);
  for (const s of syms) {
    const m = target[s];
    if (m instanceof Map) return (m.get(type) || []).length > 0;
  }
  return false;
}

globalThis.__noslate_boot = boot;
