// The kernel <-> worker channel: 4-byte big-endian length + msgpack array frames
// (kernel/protocol.py: msgspec tagged, array-like structs: [tag, field, ...]).
import { Encoder, Decoder } from "@msgpack/msgpack";

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const MAX_FRAME = 1024 * 1024;
export const MAX_CHUNK = 64 * 1024;
export const WINDOW = 8;

export const wire = { sock: null, handlers: null, pending: [], scheduled: false, closed: false };

function flush() {
  wire.scheduled = false;
  if (wire.pending.length === 0 || wire.closed || wire.sock === null) return;
  const out = wire.pending.length === 1 ? wire.pending[0] : concat(wire.pending);
  wire.pending = [];
  wire.sock.write(out);
}

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Queue one frame (an array whose first item is the tag); frames of one tick go in one write. */
/** Whether ``frame`` encodes within MAX_FRAME (the kernel ends a channel that sends more). */
export function fitsInFrame(frame) {
  return encoder.encode(frame).length <= MAX_FRAME;
}

export function send(frame) {
  if (wire.closed) return false;
  const body = encoder.encode(frame);
  const buf = new Uint8Array(4 + body.length);
  new DataView(buf.buffer).setUint32(0, body.length);
  buf.set(body, 4);
  wire.pending.push(buf);
  if (!wire.scheduled) {
    wire.scheduled = true;
    queueMicrotask(flush);
  }
  return true;
}

/** Feed received bytes; dispatch every complete frame to ``wire.handlers[tag](...fields)``. */
let inbuf = new Uint8Array(0);
export function feed(data) {
  inbuf = inbuf.length ? concat([inbuf, data]) : data;
  let off = 0;
  while (inbuf.length - off >= 4) {
    const size = new DataView(inbuf.buffer, inbuf.byteOffset + off, 4).getUint32(0);
    if (size > MAX_FRAME) throw new Error(`frame of ${size} bytes exceeds ${MAX_FRAME}`);
    if (inbuf.length - off < 4 + size) break;
    const frame = decoder.decode(inbuf.subarray(off + 4, off + 4 + size));
    off += 4 + size;
    const handler = wire.handlers[frame[0]];
    if (handler) handler(...frame.slice(1));
  }
  inbuf = off === inbuf.length ? new Uint8Array(0) : inbuf.slice(off);
}
