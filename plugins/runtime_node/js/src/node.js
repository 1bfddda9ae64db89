// Node built-ins the host uses, taken once while the bundle loads (before the Node
// globals are removed). User code never sees `require`, `process` or `Buffer`.
export const nodeProcess = process;
export const NodeBuffer = Buffer;
export const vm = require("node:vm");
export const v8 = require("node:v8");
export const fs = require("node:fs");
export const net = require("node:net");
export const zlib = require("node:zlib");
export const nodeCrypto = require("node:crypto");
export const nodeTimers = require("node:timers");
export const nodePerformance = globalThis.performance;

// While a snapshot is built Node hides SharedArrayBuffer (and WebAssembly); it is back
// at run time. whatwg-url's webidl-conversions reads SharedArrayBuffer.prototype while
// it loads: give it a stand-in whose getters reject everything (no SAB exists then).
export let sabStandIn = null;
if (typeof SharedArrayBuffer === "undefined") {
  const reject = () => {
    throw new TypeError("not a SharedArrayBuffer");
  };
  class SharedArrayBufferStandIn {}
  for (const name of ["byteLength", "growable", "maxByteLength"]) {
    Object.defineProperty(SharedArrayBufferStandIn.prototype, name, { get: reject, configurable: true });
  }
  Object.defineProperty(globalThis, "SharedArrayBuffer", { value: SharedArrayBufferStandIn, configurable: true, writable: true });
  sabStandIn = SharedArrayBufferStandIn;
}
