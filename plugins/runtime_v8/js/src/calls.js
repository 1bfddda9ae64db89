// Host calls (Call/Result frames) and the error mapping for their failures.
import { host } from "./host.js";
import { binToU8, u8ToBin } from "./bytes.js";
import { DOMException } from "./domexception.js";

const pending = new Map();
let nextCid = 1;

function replacer(_key, value) {
  if (value instanceof Uint8Array) return { $b: u8ToBin(value) };
  return value;
}

function reviver(_key, value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && typeof value.$b === "string" && Object.keys(value).length === 1) {
    return binToU8(value.$b);
  }
  return value;
}

export function makeError(name, message) {
  switch (name) {
    case "TypeError": return new TypeError(message);
    case "RangeError": return new RangeError(message);
    case "SyntaxError": return new SyntaxError(message);
    case "Error": case "": return new Error(message);
    default: return new DOMException(message, name);
  }
}

/** Perform host call ``op``; resolves with the decoded value. */
export function callHost(op, args) {
  const cid = nextCid++;
  return new Promise((resolve, reject) => {
    pending.set(cid, { resolve, reject });
    const sent = host.bridge.call(cid, op, JSON.stringify(args, replacer));
    if (sent === 2) {
      pending.delete(cid);
      reject(new TypeError(`${op}: the arguments are too large for one host call (at most 1 MiB; KV keys are at most 512 bytes)`));
    } else if (!sent) {
      pending.delete(cid);
      reject(new DOMException(`host call ${op} could not be sent`, "InvalidStateError"));
    }
  });
}

export function onResult(cid, ok, valueJson, errorName, errorMessage) {
  const p = pending.get(cid);
  if (!p) return;
  pending.delete(cid);
  if (ok) {
    let v;
    try { v = valueJson === "" ? undefined : JSON.parse(valueJson, reviver); } catch (err) { p.reject(err); return; }
    p.resolve(v === null ? undefined : v);
  } else {
    p.reject(makeError(errorName, errorMessage));
  }
}
