// The global fetch(): subrequests through the kernel (Fetch / FetchResponse frames).
import { host } from "./host.js";
import { BodyState, kBody } from "./body.js";
import { makeError } from "./calls.js";
import { headerList, headersFromList } from "./headers.js";
import { Request, requestState, wireResponse } from "./fetchapi.js";
import { inboundStream, onAbortIn, pumpOut } from "./io.js";
import { sendKnownBody } from "./send.js";

const pending = new Map();
let nextFid = 1;

export async function fetch(input, init = undefined) {
  const req = new Request(input, init);
  const st = requestState(req);
  if (st.signal.aborted) throw st.signal.reason;
  const fid = nextFid++;
  const body = req[kBody];
  if (body !== null) {
    if (req.bodyUsed) throw new TypeError("Request body is already used");
    body.used = true;
  }
  return new Promise((resolve, reject) => {
    const entry = { resolve, reject, signal: st.signal, done: false };
    pending.set(fid, entry);
    const onAbort = () => {
      if (!pending.has(fid)) return;
      pending.delete(fid);
      host.bridge.abort(-fid, "aborted by the worker");
      onAbortIn(-fid, "aborted by the worker");
      reject(st.signal.reason);
    };
    st.signal.addEventListener("abort", onAbort, { once: true });
    entry.cleanup = () => st.signal.removeEventListener("abort", onAbort);
    // primitives only (user code can reach the Request's internal state): a string
    // for each field, and a header list that JSON can carry (else a TypeError here)
    const ok = host.bridge.fetch(fid, String(st.method), String(st.url), JSON.stringify(headerList(st.headers)), body !== null, String(st.redirect));
    if (!ok) {
      pending.delete(fid);
      reject(new TypeError("fetch failed: the request could not be sent"));
      return;
    }
    if (body !== null) {
      if (body.stream === null) sendKnownBody(-fid, body.source);
      else pumpOut(-fid, body.stream).catch(() => {});
    }
  });
}

export function onFetchResponse(fid, status, statusText, headersJson, url, hasBody) {
  const entry = pending.get(fid);
  if (!entry) {
    if (hasBody) host.bridge.abort(-fid, "response no longer wanted");
    return;
  }
  pending.delete(fid);
  entry.done = true;
  const headers = headersFromList(JSON.parse(headersJson));
  const bodyState = hasBody ? new BodyState(null, inboundStream(-fid)) : null;
  const resp = wireResponse(status, statusText, headers, bodyState, url);
  if (hasBody) {
    // an abort after the head errors the body stream
    entry.signal.addEventListener("abort", () => onAbortIn(-fid, "aborted by the worker"), { once: true });
  }
  entry.cleanup();
  entry.resolve(resp);
}

export function onFetchError(fid, errorName, message) {
  const entry = pending.get(fid);
  if (!entry) return;
  pending.delete(fid);
  entry.cleanup();
  entry.reject(makeError(errorName || "TypeError", message || "fetch failed"));
}
