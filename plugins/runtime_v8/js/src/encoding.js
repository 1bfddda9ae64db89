// TextEncoder / TextDecoder (WHATWG Encoding, all encodings, streaming and fatal),
// atob / btoa (forgiving-base64).
import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";
import { DOMException } from "./domexception.js";

export { TextDecoder, TextEncoder };

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

export function btoa(data) {
  if (arguments.length === 0) throw new TypeError("btoa requires 1 argument");
  const s = String(data);
  let out = "";
  let i = 0;
  for (; i < s.length; i++) {
    if (s.charCodeAt(i) > 255) {
      throw new DOMException("The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
    }
  }
  for (i = 0; i + 2 < s.length; i += 3) {
    const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8) | s.charCodeAt(i + 2);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = s.length - i;
  if (rest === 1) {
    const n = s.charCodeAt(i) << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63] + "==";
  } else if (rest === 2) {
    const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + "=";
  }
  return out;
}

export function atob(data) {
  if (arguments.length === 0) throw new TypeError("atob requires 1 argument");
  let s = String(data).replace(/[\t\n\f\r ]/g, "");
  if (s.length % 4 === 0) s = s.replace(/==?$/, "");
  const bad = () => new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
  if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) throw bad();
  let out = "";
  let buf = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    buf = (buf << 6) | B64_INDEX[s.charCodeAt(i)];
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((buf >> bits) & 255);
    }
  }
  return out;
}
