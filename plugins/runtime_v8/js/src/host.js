// The host bridge, captured once at boot and never exposed to user code.
// Every host function takes and returns only primitives (numbers, strings, booleans).
export const host = { bridge: null };

export function setBridge(b) {
  host.bridge = b;
  Object.freeze(host);
}
