// setTimeout / setInterval / clear* / queueMicrotask on the host's timer heap.
import { host } from "./host.js";

const timers = new Map();
let nextId = 1;
let onError = (err) => { throw err; };
export function setTimerErrorHandler(fn) { onError = fn; }

function schedule(callback, delay, args, repeat) {
  if (typeof callback !== "function") {
    const code = String(callback);
    callback = () => (0, eval)(code);
  }
  delay = Number(delay);
  if (!(delay >= 0) || !Number.isFinite(delay)) delay = 0;
  const id = nextId++;
  timers.set(id, { callback, args, delay, repeat });
  host.bridge.timer(id, delay);
  return id;
}

export function setTimeout(callback, delay = 0, ...args) {
  return schedule(callback, delay, args, false);
}
export function setInterval(callback, delay = 0, ...args) {
  return schedule(callback, delay, args, true);
}
export function clearTimeout(id) {
  timers.delete(Number(id));
}
export const clearInterval = clearTimeout;

export function queueMicrotask(callback) {
  if (typeof callback !== "function") throw new TypeError("queueMicrotask expects a function");
  Promise.resolve().then(() => {
    try { callback(); } catch (err) { onError(err); }
  });
}

/** Called by the host when timer ``id`` is due. */
export function fireTimer(id) {
  const t = timers.get(id);
  if (!t) return;
  if (t.repeat) host.bridge.timer(id, t.delay);
  else timers.delete(id);
  try {
    t.callback(...t.args);
  } catch (err) {
    onError(err);
  }
}

export function pendingTimers() {
  return timers.size;
}
