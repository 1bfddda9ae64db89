// Event, EventTarget, CustomEvent, AbortController, AbortSignal (DOM Standard subset).
import { DOMException } from "./domexception.js";
import { setTimeout } from "./timers.js";

const kStop = Symbol("stop");
const kStopImmediate = Symbol("stopImmediate");
const kCanceled = Symbol("canceled");
const kDispatching = Symbol("dispatching");
const kTarget = Symbol("target");
const kPhase = Symbol("phase");
const kTimestamp = Symbol("timeStamp");
const kInit = Symbol("init");

export class Event {
  constructor(type, init = {}) {
    if (arguments.length === 0) throw new TypeError("Event constructor requires a type");
    this[kInit] = {
      type: String(type),
      bubbles: !!(init && init.bubbles),
      cancelable: !!(init && init.cancelable),
      composed: !!(init && init.composed),
    };
    this[kCanceled] = false;
    this[kStop] = false;
    this[kStopImmediate] = false;
    this[kDispatching] = false;
    this[kTarget] = null;
    this[kPhase] = 0;
    this[kTimestamp] = Date.now();
    Object.defineProperty(this, "isTrusted", { value: false, enumerable: true });
  }
  get type() { return this[kInit].type; }
  get bubbles() { return this[kInit].bubbles; }
  get cancelable() { return this[kInit].cancelable; }
  get composed() { return this[kInit].composed; }
  get defaultPrevented() { return this[kCanceled]; }
  get target() { return this[kTarget]; }
  get currentTarget() { return this[kDispatching] ? this[kTarget] : null; }
  get srcElement() { return this[kTarget]; }
  get eventPhase() { return this[kPhase]; }
  get timeStamp() { return this[kTimestamp]; }
  get returnValue() { return !this[kCanceled]; }
  set returnValue(v) { if (!v) this.preventDefault(); }
  get cancelBubble() { return this[kStop]; }
  set cancelBubble(v) { if (v) this[kStop] = true; }
  composedPath() { return this[kDispatching] ? [this[kTarget]] : []; }
  preventDefault() { if (this[kInit].cancelable) this[kCanceled] = true; }
  stopPropagation() { this[kStop] = true; }
  stopImmediatePropagation() { this[kStop] = true; this[kStopImmediate] = true; }
}
for (const [k, v] of Object.entries({ NONE: 0, CAPTURING_PHASE: 1, AT_TARGET: 2, BUBBLING_PHASE: 3 })) {
  Object.defineProperty(Event, k, { value: v, enumerable: true });
  Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
}

export class CustomEvent extends Event {
  #detail;
  constructor(type, init = {}) {
    super(type, init);
    this.#detail = init && init.detail !== undefined ? init.detail : null;
  }
  get detail() { return this.#detail; }
}

const kListeners = Symbol("listeners");
let reportError = (err) => { throw err; };
export function setErrorReporter(fn) { reportError = fn; }

export class EventTarget {
  constructor() {
    Object.defineProperty(this, kListeners, { value: new Map() });
  }
  addEventListener(type, callback, options) {
    if (callback === null || callback === undefined) return;
    if (typeof callback !== "function" && typeof callback !== "object") throw new TypeError("listener must be a function or an object");
    const capture = typeof options === "boolean" ? options : !!(options && options.capture);
    const once = !!(options && typeof options === "object" && options.once);
    const signal = options && typeof options === "object" ? options.signal : undefined;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
    if (signal && signal.aborted) return;
    type = String(type);
    let list = this[kListeners].get(type);
    if (!list) this[kListeners].set(type, (list = []));
    if (list.some((l) => l.callback === callback && l.capture === capture)) return;
    const entry = { callback, capture, once, removed: false };
    list.push(entry);
    if (signal) signal.addEventListener("abort", () => this.removeEventListener(type, callback, { capture }));
  }
  removeEventListener(type, callback, options) {
    const capture = typeof options === "boolean" ? options : !!(options && options.capture);
    const list = this[kListeners].get(String(type));
    if (!list) return;
    const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
    if (i >= 0) {
      list[i].removed = true;
      list.splice(i, 1);
    }
  }
  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new TypeError("dispatchEvent expects an Event");
    if (event[kDispatching]) throw new DOMException("The event is already being dispatched.", "InvalidStateError");
    event[kTarget] = this;
    event[kDispatching] = true;
    event[kPhase] = 2;
    const list = this[kListeners].get(event.type);
    if (list) {
      for (const l of list.slice()) {
        if (l.removed) continue;
        if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
        try {
          if (typeof l.callback === "function") l.callback.call(this, event);
          else if (typeof l.callback.handleEvent === "function") l.callback.handleEvent(event);
        } catch (err) {
          reportError(err, event);
        }
        if (event[kStopImmediate]) break;
      }
    }
    event[kDispatching] = false;
    event[kPhase] = 0;
    return !event[kCanceled];
  }
}

// ---- AbortController / AbortSignal ----

const kAborted = Symbol("aborted");
const kReason = Symbol("reason");
const kCreate = Symbol("create");

export class AbortSignal extends EventTarget {
  constructor(key) {
    if (key !== kCreate) throw new TypeError("Illegal constructor");
    super();
    this[kAborted] = false;
    this[kReason] = undefined;
    this.onabort = null;
  }
  get aborted() { return this[kAborted]; }
  get reason() { return this[kReason]; }
  throwIfAborted() { if (this[kAborted]) throw this[kReason]; }
  static abort(reason) {
    const s = new AbortSignal(kCreate);
    s[kAborted] = true;
    s[kReason] = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
    return s;
  }
  static timeout(ms) {
    ms = Number(ms);
    if (!(ms >= 0)) throw new TypeError("timeout must be a non-negative number");
    const s = new AbortSignal(kCreate);
    setTimeout(() => signalAbort(s, new DOMException("The operation timed out.", "TimeoutError")), ms);
    return s;
  }
  static any(signals) {
    const s = new AbortSignal(kCreate);
    for (const src of signals) {
      if (!(src instanceof AbortSignal)) throw new TypeError("AbortSignal.any expects AbortSignals");
      if (src.aborted) {
        s[kAborted] = true;
        s[kReason] = src.reason;
        return s;
      }
    }
    for (const src of signals) src.addEventListener("abort", () => signalAbort(s, src.reason), { once: true });
    return s;
  }
}

export function signalAbort(signal, reason) {
  if (signal[kAborted]) return;
  signal[kAborted] = true;
  signal[kReason] = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
  const ev = new Event("abort");
  if (typeof signal.onabort === "function") {
    try { signal.onabort.call(signal, ev); } catch (err) { reportError(err); }
  }
  signal.dispatchEvent(ev);
}

export function newAbortSignal() {
  return new AbortSignal(kCreate);
}

export class AbortController {
  #signal = new AbortSignal(kCreate);
  get signal() { return this.#signal; }
  abort(reason) { signalAbort(this.#signal, reason); }
}
