// Body streams over the channel with WINDOW/Ack flow control (kernel/protocol.py).
import { send, MAX_CHUNK, WINDOW } from "./wire.js";

const inbound = new Map(); // sid -> {queue, waiter, done, error}
const credits = new Map(); // sid -> {n, waiters}

/** A ReadableStream fed by Chunk(sid) frames; each chunk delivered to JS is acked. */
export function incoming(sid) {
  const st = { queue: [], waiter: null, done: false, error: null };
  inbound.set(sid, st);
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      while (st.queue.length === 0 && !st.done && !st.error) {
        await new Promise((resolve) => (st.waiter = resolve));
      }
      if (st.queue.length) {
        controller.enqueue(st.queue.shift());
        send(["ack", sid, 1]);
        return;
      }
      inbound.delete(sid);
      if (st.error) controller.error(st.error);
      else controller.close();
    },
    cancel() {
      inbound.delete(sid);
      st.done = true;
    },
  });
}

function wake(st) {
  const w = st.waiter;
  st.waiter = null;
  if (w) w();
}

export function onChunk(sid, data) {
  const st = inbound.get(sid);
  if (!st) return;
  st.queue.push(new Uint8Array(data)); // copy: the frame buffer is reused
  wake(st);
}

export function onEnd(sid) {
  const st = inbound.get(sid);
  if (st) {
    st.done = true;
    wake(st);
  }
}

export function abortIncoming(sid, reason) {
  const st = inbound.get(sid);
  if (st) {
    st.error = new DOMException(reason || "The stream was aborted", "AbortError");
    wake(st);
  }
  const c = credits.get(sid);
  if (c) {
    c.aborted = true;
    for (const w of c.waiters.splice(0)) w();
  }
}

export function onAck(sid, n) {
  const c = credits.get(sid);
  if (!c) return;
  c.n += n;
  while (c.n > 0 && c.waiters.length) {
    c.n -= 1;
    c.waiters.shift()();
  }
}

function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (typeof value === "string") return new TextEncoder().encode(value);
  throw new TypeError("a body stream must yield Uint8Array chunks");
}

/** Send ``stream`` as Chunk(sid) frames and End(sid); resolves when done, false when aborted. */
export async function pumpOut(sid, stream) {
  const c = { n: WINDOW, waiters: [], aborted: false };
  credits.set(sid, c);
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = toBytes(value);
      for (let i = 0; i < bytes.length; i += MAX_CHUNK) {
        if (c.n === 0) await new Promise((resolve) => c.waiters.push(resolve));
        else c.n -= 1;
        if (c.aborted) {
          reader.cancel().catch(() => {});
          return false;
        }
        send(["chunk", sid, bytes.subarray(i, i + MAX_CHUNK)]);
      }
      if (c.aborted) {
        reader.cancel().catch(() => {});
        return false;
      }
    }
    send(["end", sid]);
    return true;
  } catch (err) {
    send(["abort", sid, String((err && err.message) || err)]);
    throw err;
  } finally {
    credits.delete(sid);
  }
}
