// The Body mixin shared by Request and Response, and body extraction.
import { ReadableStream } from "web-streams-polyfill";
import { Blob, blobBytes } from "./blob.js";
import { concatU8, copyBuffer, toU8 } from "./bytes.js";
import { TextDecoder, TextEncoder } from "./encoding.js";
import { FormData, parseMultipart, serializeMultipart } from "./formdata.js";
import { URLSearchParams } from "whatwg-url";

export const kBody = Symbol("body");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Body state: `source` is a string (text) or Uint8Array known up front (fast path),
 * `stream` a ReadableStream (created lazily from `source` when `.body` is read).
 */
export class BodyState {
  constructor(source, stream) {
    this.source = source;
    this.stream = stream;
    this.used = false;
  }
  get hasStream() { return this.stream !== null; }
}

/** Extract [BodyState|null, contentType|null] from a BodyInit. */
export function extractBody(init) {
  if (init === null || init === undefined) return [null, null];
  if (typeof init === "string") return [new BodyState(init, null), "text/plain;charset=UTF-8"];
  if (init instanceof ReadableStream) {
    if (init.locked) throw new TypeError("ReadableStream is locked or disturbed");
    return [new BodyState(null, init), null];
  }
  if (init instanceof Blob) return [new BodyState(blobBytes(init), null), init.type || null];
  if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return [new BodyState(toU8(init).slice(), null), null];
  if (init instanceof URLSearchParams) return [new BodyState(init.toString(), null), "application/x-www-form-urlencoded;charset=UTF-8"];
  if (init instanceof FormData) {
    const [bytes, boundary] = serializeMultipart(init);
    return [new BodyState(bytes, null), `multipart/form-data; boundary=${boundary}`];
  }
  if (typeof init === "object" && typeof init.getReader === "function") {
    return [new BodyState(null, init), null];
  }
  return [new BodyState(String(init), null), "text/plain;charset=UTF-8"];
}

export function sourceToBytes(source) {
  return typeof source === "string" ? encoder.encode(source) : source;
}

export function streamFromSource(source) {
  let bytes = sourceToBytes(source);
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (bytes === null || bytes.length === 0) {
        controller.close();
        if (controller.byobRequest) controller.byobRequest.respond(0);
        return;
      }
      const n = Math.min(65536, bytes.length);
      const piece = bytes.slice(0, n);
      bytes = n === bytes.length ? null : bytes.subarray(n);
      controller.enqueue(piece);
    },
  });
}

export function getBodyStream(state) {
  if (state === null) return null;
  if (state.stream === null) state.stream = streamFromSource(state.source);
  return state.stream;
}

function disturbed(state) {
  return state !== null && (state.used || (state.stream !== null && (state.stream.locked || isDisturbed(state.stream))));
}

// web-streams-polyfill keeps [[disturbed]] internal; track the streams we read ourselves.
const disturbedStreams = new WeakSet();
function isDisturbed(stream) {
  return disturbedStreams.has(stream);
}

export async function readAll(stream) {
  const reader = stream.getReader();
  disturbedStreams.add(stream);
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!(value instanceof Uint8Array)) {
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
        const u = toU8(value);
        chunks.push(u);
        total += u.length;
        continue;
      }
      throw new TypeError("Body stream produced a chunk that is not a Uint8Array");
    }
    chunks.push(value);
    total += value.length;
  }
  return total === 0 ? new Uint8Array(0) : concatU8(chunks, total);
}

async function consume(obj, wantText) {
  const state = obj[kBody];
  if (state === null) return wantText ? "" : new Uint8Array(0);
  if (disturbed(state)) throw new TypeError("Body has already been used");
  state.used = true;
  if (state.stream === null) {
    const src = state.source;
    state.source = null;
    if (wantText && typeof src === "string") return src;
    return wantText ? decoder.decode(src) : sourceToBytes(src);
  }
  const bytes = await readAll(state.stream);
  return wantText ? decoder.decode(bytes) : bytes;
}

export function mixinBody(Cls, contentTypeOf) {
  Object.defineProperties(Cls.prototype, {
    body: { get() { return getBodyStream(this[kBody]); }, configurable: true, enumerable: true },
    bodyUsed: { get() { return disturbed(this[kBody]); }, configurable: true, enumerable: true },
  });
  Object.assign(Cls.prototype, {
    async arrayBuffer() { return copyBuffer(await consume(this, false)); },
    async bytes() { return consume(this, false).then((b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice())); },
    async text() { return consume(this, true); },
    async json() { return JSON.parse(await consume(this, true)); },
    async blob() {
      const bytes = await consume(this, false);
      return new Blob([bytes], { type: contentTypeOf(this) || "" });
    },
    async formData() {
      const type = contentTypeOf(this) || "";
      if (/^multipart\/form-data/i.test(type)) return parseMultipart(await consume(this, false), type);
      if (/^application\/x-www-form-urlencoded/i.test(type)) {
        const fd = new FormData();
        for (const [k, v] of new URLSearchParams(await consume(this, true))) fd.append(k, v);
        return fd;
      }
      throw new TypeError(`Could not parse content as FormData (content-type: ${type || "none"})`);
    },
  });
}

/** Tee a body for clone(); returns the new state for the clone. */
export function cloneBody(obj) {
  const state = obj[kBody];
  if (state === null) return null;
  if (disturbed(state)) throw new TypeError("Cannot clone a body that has already been used");
  if (state.stream === null) return new BodyState(state.source, null);
  const [a, b] = state.stream.tee();
  state.stream = a;
  return new BodyState(null, b);
}
