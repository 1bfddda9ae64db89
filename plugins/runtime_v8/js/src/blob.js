// Blob, File (File API).
import { ReadableStream } from "web-streams-polyfill";
import { concatU8, copyBuffer, toU8 } from "./bytes.js";
import { TextDecoder, TextEncoder } from "./encoding.js";

const kBytes = Symbol("bytes");
const kType = Symbol("type");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function partBytes(part, endings) {
  if (part instanceof Blob) return part[kBytes];
  if (ArrayBuffer.isView(part) || part instanceof ArrayBuffer) return toU8(part).slice();
  let s = String(part);
  if (endings === "native") s = s.replace(/\r\n|\r/g, "\n");
  return encoder.encode(s);
}

function normType(type) {
  type = type === undefined ? "" : String(type);
  return /[^\u0020-\u007e]/.test(type) ? "" : type.toLowerCase();
}

export class Blob {
  constructor(parts = [], options = {}) {
    if (parts === null || typeof parts !== "object" || typeof parts[Symbol.iterator] !== "function") {
      if (parts !== undefined) throw new TypeError("Failed to construct 'Blob': parts must be a sequence");
      parts = [];
    }
    const chunks = [];
    for (const p of parts) chunks.push(partBytes(p, options && options.endings));
    Object.defineProperty(this, kBytes, { value: chunks.length === 0 ? new Uint8Array(0) : concatU8(chunks) });
    Object.defineProperty(this, kType, { value: normType(options && options.type), writable: true });
  }
  get size() { return this[kBytes].length; }
  get type() { return this[kType]; }
  slice(start = 0, end = undefined, contentType = "") {
    const size = this.size;
    const rel = (v, d) => (v === undefined ? d : v < 0 ? Math.max(size + v, 0) : Math.min(v, size));
    const s = rel(Math.trunc(start) || 0, 0);
    const e = rel(end === undefined ? undefined : Math.trunc(end) || 0, size);
    return blobFromBytes(this[kBytes].slice(s, Math.max(s, e)), contentType);
  }
  async arrayBuffer() { return copyBuffer(this[kBytes]); }
  async bytes() { return this[kBytes].slice(); }
  async text() { return decoder.decode(this[kBytes]); }
  stream() {
    const bytes = this[kBytes];
    let off = 0;
    return new ReadableStream({
      type: "bytes",
      pull(controller) {
        if (off >= bytes.length) {
          controller.close();
          return;
        }
        const n = Math.min(65536, bytes.length - off);
        controller.enqueue(bytes.slice(off, off + n));
        off += n;
      },
    });
  }
  get [Symbol.toStringTag]() { return "Blob"; }
}

/** A Blob over ``bytes`` (not copied). */
export function blobFromBytes(bytes, type = "") {
  const b = Object.create(Blob.prototype);
  Object.defineProperty(b, kBytes, { value: bytes });
  Object.defineProperty(b, kType, { value: normType(type), writable: true });
  return b;
}

export function blobBytes(b) {
  return b[kBytes];
}

export class File extends Blob {
  #name;
  #lastModified;
  constructor(parts, name, options = {}) {
    if (arguments.length < 2) throw new TypeError("Failed to construct 'File': 2 arguments required");
    super(parts, options);
    this.#name = String(name);
    this.#lastModified = options && options.lastModified !== undefined ? Number(options.lastModified) : Date.now();
  }
  get name() { return this.#name; }
  get lastModified() { return this.#lastModified; }
  get [Symbol.toStringTag]() { return "File"; }
}
