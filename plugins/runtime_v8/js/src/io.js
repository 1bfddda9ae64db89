// Body streams across the host channel: inbound (Chunk -> ReadableStream, Ack on
// consumption) and outbound (ReadableStream -> Chunk, at most WINDOW unacknowledged).
import { ReadableStream } from "web-streams-polyfill";
import { host } from "./host.js";
import { binToU8, toU8, u8ToBin } from "./bytes.js";
import { DOMException } from "./domexception.js";

export const WINDOW = 8;
export const MAX_CHUNK = 65536;

const inbound = new Map(); // sid -> {queue, waiter, ended, error}
const outbound = new Map(); // sid -> {inflight, waiter, cancel}

/** A ReadableStream fed by Chunk(sid) frames. */
export function inboundStream(sid) {
  const st = { queue: [], waiter: null, ended: false, error: null };
  inbound.set(sid, st);
  return new ReadableStream(
    {
      pull(controller) {
        const take = () => {
          if (st.queue.length) {
            controller.enqueue(st.queue.shift());
            host.bridge.ack(sid, 1);
            return true;
          }
          if (st.error) {
            inbound.delete(sid);
            controller.error(st.error);
            return true;
          }
          if (st.ended) {
            inbound.delete(sid);
            controller.close();
            return true;
          }
          return false;
        };
        if (take()) return undefined;
        return new Promise((resolve) => {
          st.waiter = () => {
            st.waiter = null;
            take();
            resolve();
          };
        });
      },
      cancel(reason) {
        inbound.delete(sid);
        for (let i = 0; i < st.queue.length; i++) host.bridge.ack(sid, 1);
        st.queue.length = 0;
        // a subresponse the worker no longer wants: tell the kernel to stop it. (For a
        // request body, later chunks are acknowledged and dropped in onChunk.)
        if (sid < 0) host.bridge.abort(sid, "body stream cancelled by the worker: " + String(reason));
      },
    },
    { highWaterMark: 0 },
  );
}

export function onChunk(sid, data) {
  const st = inbound.get(sid);
  if (!st) {
    host.bridge.ack(sid, 1); // nobody reads this body (any more): drop it, never stall the sender
    return;
  }
  st.queue.push(binToU8(data));
  if (st.waiter) st.waiter();
}

export function onEnd(sid) {
  const st = inbound.get(sid);
  if (!st) return;
  st.ended = true;
  if (st.waiter) st.waiter();
}

export function onAbortIn(sid, reason) {
  const st = inbound.get(sid);
  if (st) {
    st.error = new DOMException(reason || "The body stream was aborted", "AbortError");
    st.queue.length = 0;
    if (st.waiter) st.waiter();
  }
  const out = outbound.get(sid);
  if (out) out.cancel(reason);
}

export function onAck(sid, n) {
  const st = outbound.get(sid);
  if (!st) return;
  st.inflight -= n;
  if (st.waiter && st.inflight < WINDOW) {
    const w = st.waiter;
    st.waiter = null;
    w();
  }
}

/** The request is over: forget its unread body (later chunks are acked and dropped). */
export function dropInbound(sid) {
  const st = inbound.get(sid);
  if (!st) return;
  inbound.delete(sid);
  for (let i = 0; i < st.queue.length; i++) host.bridge.ack(sid, 1);
}

/** Send a stream as Chunk(sid) frames, then End(sid). Resolves true when complete. */
export async function pumpOut(sid, stream) {
  const reader = stream.getReader();
  let cancelled = null;
  const st = {
    inflight: 0,
    waiter: null,
    cancel(reason) {
      cancelled = reason || "aborted";
      reader.cancel(new DOMException(cancelled, "AbortError")).catch(() => {});
      if (st.waiter) {
        const w = st.waiter;
        st.waiter = null;
        w();
      }
    },
  };
  outbound.set(sid, st);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (cancelled !== null) return false;
      if (done) break;
      let u8;
      try {
        u8 = toU8(value);
      } catch {
        if (typeof value === "string") throw new TypeError("This ReadableStream did not return bytes (got a string; use TextEncoder)");
        throw new TypeError("This ReadableStream did not return bytes");
      }
      for (let off = 0; off < u8.length; off += MAX_CHUNK) {
        while (st.inflight >= WINDOW && cancelled === null) await new Promise((r) => (st.waiter = r));
        if (cancelled !== null) return false;
        st.inflight += 1;
        host.bridge.chunk(sid, u8ToBin(u8.subarray(off, off + MAX_CHUNK)));
      }
    }
    host.bridge.end(sid);
    return true;
  } catch (err) {
    if (cancelled === null) {
      host.bridge.abort(sid, "body stream error: " + (err && err.message ? err.message : String(err)));
      try { reader.cancel(err).catch(() => {}); } catch { /* already errored */ }
    }
    throw err;
  } finally {
    outbound.delete(sid);
  }
}

/** Send known bytes as chunks with flow control (for sources larger than one frame). */
export async function sendBytes(sid, u8) {
  let i = 0;
  const stream = new ReadableStream({
    pull(c) {
      if (i >= u8.length) c.close();
      else {
        c.enqueue(u8.subarray(i, i + MAX_CHUNK));
        i += MAX_CHUNK;
      }
    },
  });
  return pumpOut(sid, stream);
}
