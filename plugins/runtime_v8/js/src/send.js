// Bodies known up front are handed to the host whole; it sends Chunk frames with
// flow control itself, so a response costs one JS -> host crossing.
import { host } from "./host.js";
import { u8ToBin } from "./bytes.js";

/** Returns [kind, payload]: 0 none, 1 text (a JS string), 2 bytes (latin-1 string). */
export function encodeSource(source) {
  if (source === null || source === undefined) return [0, ""];
  if (typeof source === "string") return [1, source.isWellFormed() ? source : source.toWellFormed()];
  return [2, u8ToBin(source)];
}

export function sendKnownBody(sid, source) {
  const [kind, payload] = encodeSource(source);
  host.bridge.body(sid, kind, payload);
}
