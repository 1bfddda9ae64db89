// Globals some bundled libraries read while their modules initialise (whatwg-url
// creates a TextEncoder at load time). Replaced by boot() with the same objects.
import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";

if (typeof globalThis.TextEncoder === "undefined") {
  Object.defineProperty(globalThis, "TextEncoder", { value: TextEncoder, writable: true, configurable: true });
  Object.defineProperty(globalThis, "TextDecoder", { value: TextDecoder, writable: true, configurable: true });
}
