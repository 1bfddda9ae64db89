// Byte helpers: the host bridge carries bytes as latin-1 "binary strings"
// (one char per byte), which cross STPyV8 without per-element conversion.

export function toU8(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer)) {
    return new Uint8Array(data);
  }
  throw new TypeError("expected an ArrayBuffer or ArrayBufferView");
}

export function binToU8(s) {
  const n = s.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function u8ToBin(u8) {
  const n = u8.length;
  if (n < 1024) return String.fromCharCode.apply(null, u8);
  const parts = [];
  for (let i = 0; i < n; i += 8192) parts.push(String.fromCharCode.apply(null, u8.subarray(i, i + 8192)));
  return parts.join("");
}

export function concatU8(chunks, total) {
  if (chunks.length === 1) return chunks[0];
  if (total === undefined) total = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export function copyBuffer(u8) {
  return u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
}
