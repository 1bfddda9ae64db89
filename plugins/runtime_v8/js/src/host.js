// The host bridge, captured once at boot and never exposed to user code.
// Every host function takes and returns only primitives (numbers, strings, booleans).
export const host = { bridge: null };

// Bridge methods, looked up on the Python object once: every `bridge.x` lookup on
// the Python object itself goes through a property interceptor and wraps a fresh
// bound method, which cost more than the call on the request path.
const METHODS = [
  "respond", "head", "body", "chunk", "end", "abort", "ack", "fail", "settled", "log", "call", "fetch",
  "timer", "now", "time_origin", "random", "zmax", "zopen", "zpush", "zclose", "digest", "hmac", "pbkdf2", "hkdf",
];

export function setBridge(b) {
  const methods = Object.create(null);
  for (const name of METHODS) methods[name] = b[name];
  host.bridge = Object.freeze(methods);
  Object.freeze(host);
}
