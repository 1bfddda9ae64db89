// CompressionStream / DecompressionStream (Compression Standard) on the host's zlib,
// and WebAssembly.compileStreaming / instantiateStreaming.
import { TransformStream } from "web-streams-polyfill";
import { host } from "./host.js";
import { binToU8, toU8, u8ToBin } from "./bytes.js";

const FORMATS = new Set(["gzip", "deflate", "deflate-raw"]);

function makeStream(format, mode) {
  format = String(format);
  if (!FORMATS.has(format)) throw new TypeError(`Unsupported compression format: '${format}'`);
  let id = 0;
  const emit = (controller, out) => {
    if (out === 1) {
      const mib = Math.round(host.bridge.zmax() / 1048576);
      throw new TypeError(`Decompression failed: the data inflates to more than ${mib} MiB at once (a decompression bomb?); the limit applies per chunk written`);
    }
    if (typeof out !== "string") throw new TypeError(`${mode === "c" ? "Compression" : "Decompression"} failed: invalid data`);
    if (out.length) controller.enqueue(binToU8(out));
  };
  return new TransformStream({
    start() {
      id = host.bridge.zopen(format, mode);
      if (!id) throw new TypeError("compression is unavailable");
    },
    transform(chunk, controller) {
      let u8;
      try { u8 = toU8(chunk); } catch { throw new TypeError("The chunk must be a BufferSource"); }
      emit(controller, host.bridge.zpush(id, u8ToBin(u8)));
    },
    flush(controller) {
      emit(controller, host.bridge.zclose(id));
    },
  });
}

export class CompressionStream {
  #ts;
  constructor(format) { this.#ts = makeStream(format, "c"); }
  get readable() { return this.#ts.readable; }
  get writable() { return this.#ts.writable; }
}

export class DecompressionStream {
  #ts;
  constructor(format) { this.#ts = makeStream(format, "d"); }
  get readable() { return this.#ts.readable; }
  get writable() { return this.#ts.writable; }
}

export function installWasmStreaming() {
  const W = globalThis.WebAssembly;
  if (!W) return;
  const bytesOf = async (source) => {
    const resp = await source;
    if (!resp || typeof resp.arrayBuffer !== "function") throw new TypeError("expected a Response or a promise of one");
    return resp.arrayBuffer();
  };
  Object.defineProperty(W, "compileStreaming", { value: async (source) => W.compile(await bytesOf(source)), writable: true, configurable: true });
  Object.defineProperty(W, "instantiateStreaming", { value: async (source, imports) => W.instantiate(await bytesOf(source), imports), writable: true, configurable: true });
}
