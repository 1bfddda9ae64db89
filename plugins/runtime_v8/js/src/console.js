// console.* -> Log frames (with the JS stack for errors).
import { host } from "./host.js";

export const current = { rid: 0 };

function fmtValue(v, depth, seen) {
  if (typeof v === "string") return depth === 0 ? v : JSON.stringify(v);
  if (v instanceof Error) return v.stack || `${v.name}: ${v.message}`;
  if (typeof v === "function") return `[Function: ${v.name || "anonymous"}]`;
  if (typeof v === "symbol" || typeof v === "bigint") return v.toString() + (typeof v === "bigint" ? "n" : "");
  if (v === null || typeof v !== "object") return String(v);
  if (seen.has(v)) return "[Circular]";
  if (depth > 2) return Array.isArray(v) ? "[Array]" : "[Object]";
  seen.add(v);
  try {
    if (Array.isArray(v)) return "[ " + v.map((x) => fmtValue(x, depth + 1, seen)).join(", ") + " ]";
    if (v instanceof Map) return `Map(${v.size}) { ` + [...v].map(([k, x]) => `${fmtValue(k, depth + 1, seen)} => ${fmtValue(x, depth + 1, seen)}`).join(", ") + " }";
    if (v instanceof Set) return `Set(${v.size}) { ` + [...v].map((x) => fmtValue(x, depth + 1, seen)).join(", ") + " }";
    if (v instanceof Date) return v.toISOString();
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length}) [ ${Array.prototype.slice.call(v, 0, 50).join(", ")} ]`;
    const keys = Object.keys(v);
    const name = v.constructor && v.constructor !== Object ? v.constructor.name + " " : "";
    if (keys.length === 0) return name + "{}";
    return name + "{ " + keys.map((k) => `${k}: ${fmtValue(v[k], depth + 1, seen)}`).join(", ") + " }";
  } catch {
    return "[object]";
  } finally {
    seen.delete(v);
  }
}

export function format(args) {
  if (args.length === 0) return "";
  let first = args[0];
  let rest = args.slice(1);
  let out;
  if (typeof first === "string" && /%[sdifjoOc%]/.test(first)) {
    out = first.replace(/%([sdifjoOc%])/g, (m, f) => {
      if (f === "%") return "%";
      if (rest.length === 0) return m;
      const a = rest.shift();
      switch (f) {
        case "s": return typeof a === "string" ? a : fmtValue(a, 1, new Set());
        case "d": case "i": return String(parseInt(a, 10));
        case "f": return String(parseFloat(a));
        case "j": try { return JSON.stringify(a); } catch { return "[Circular]"; }
        case "c": return "";
        default: return fmtValue(a, 1, new Set());
      }
    });
  } else {
    out = fmtValue(first, 0, new Set());
  }
  for (const a of rest) out += " " + fmtValue(a, 0, new Set());
  return out;
}

function emit(level, args) {
  let msg;
  try { msg = format(args); } catch { msg = "[unprintable]"; }
  host.bridge.log(level, msg, current.rid);
}

const counts = new Map();
const timersMap = new Map();
export const console = {
  log: (...a) => emit("info", a),
  info: (...a) => emit("info", a),
  debug: (...a) => emit("debug", a),
  trace: (...a) => emit("debug", [...a, new Error("Trace").stack.replace(/^Error: Trace\n/, "")]),
  warn: (...a) => emit("warn", a),
  error: (...a) => emit("error", a),
  assert: (cond, ...a) => { if (!cond) emit("error", ["Assertion failed" + (a.length ? ":" : ""), ...a]); },
  dir: (v) => emit("info", [v]),
  table: (v) => emit("info", [v]),
  count: (label = "default") => { const n = (counts.get(label) || 0) + 1; counts.set(label, n); emit("info", [`${label}: ${n}`]); },
  countReset: (label = "default") => counts.delete(label),
  time: (label = "default") => timersMap.set(label, host.bridge.now()),
  timeEnd: (label = "default") => { const t = timersMap.get(label); if (t !== undefined) { timersMap.delete(label); emit("info", [`${label}: ${(host.bridge.now() - t).toFixed(3)}ms`]); } },
  timeLog: (label = "default", ...a) => { const t = timersMap.get(label); if (t !== undefined) emit("info", [`${label}: ${(host.bridge.now() - t).toFixed(3)}ms`, ...a]); },
  group: (...a) => { if (a.length) emit("info", a); },
  groupCollapsed: (...a) => { if (a.length) emit("info", a); },
  groupEnd: () => {},
};
