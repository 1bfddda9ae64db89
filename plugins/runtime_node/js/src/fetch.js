// fetch(): subrequests go to the kernel as Fetch frames (never to the network directly).
import { send } from "./wire.js";
import { incoming, abortIncoming, pumpOut } from "./streams.js";
import { als } from "./context.js";

const pending = new Map(); // fid -> {resolve, reject, url}
let nextFid = 1;
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export function fetch(input, init = undefined) {
  let req;
  try {
    req = new Request(input, init);
  } catch (err) {
    return Promise.reject(err);
  }
  if (req.signal.aborted) return Promise.reject(req.signal.reason);
  const fid = nextFid++;
  return new Promise((resolve, reject) => {
    pending.set(fid, { resolve, reject, url: req.url });
    const hasBody = req.body !== null;
    send(["fetch", fid, req.method, req.url, [...req.headers], hasBody, req.redirect, als.getStore() || 0]);
    if (hasBody) pumpOut(-fid, req.body).catch(() => {});
    req.signal.addEventListener("abort", () => {
      if (pending.has(fid)) {
        pending.delete(fid);
        send(["abort", -fid, "aborted by the worker"]);
        reject(req.signal.reason);
      }
      abortIncoming(-fid, "aborted by the worker");
    }, { once: true });
  });
}

export function onFetchResponse(fid, status, statusText, headers, url, hasBody) {
  const p = pending.get(fid);
  if (!p) return;
  pending.delete(fid);
  const body = hasBody ? incoming(-fid) : null;
  let resp;
  try {
    resp = new Response(NULL_BODY.has(status) ? null : body, { status, statusText, headers });
  } catch (err) {
    p.reject(err);
    return;
  }
  if (NULL_BODY.has(status) && body) body.cancel().catch(() => {});
  Object.defineProperty(resp, "url", { value: url || p.url });
  Object.defineProperty(resp, "redirected", { value: !!url && url !== p.url });
  p.resolve(resp);
}

export function onFetchError(fid, errorName, message) {
  const p = pending.get(fid);
  if (!p) return;
  pending.delete(fid);
  const err = errorName === "TypeError" || !errorName ? new TypeError(message) : new DOMException(message, errorName);
  p.reject(err);
}
