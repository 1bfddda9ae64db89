// FormData, with multipart/form-data serialisation and parsing.
import { Blob, File, blobBytes } from "./blob.js";
import { concatU8 } from "./bytes.js";
import { TextDecoder, TextEncoder } from "./encoding.js";

const kEntries = Symbol("entries");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toEntryValue(value, filename) {
  if (value instanceof Blob) {
    if (!(value instanceof File) || filename !== undefined) {
      return new File([value], filename !== undefined ? String(filename) : value instanceof File ? value.name : "blob", { type: value.type });
    }
    return value;
  }
  return String(value);
}

export class FormData {
  constructor(form = undefined) {
    if (form !== undefined) throw new TypeError("FormData: form elements are not supported");
    Object.defineProperty(this, kEntries, { value: [], writable: true });
  }
  append(name, value, filename = undefined) { this[kEntries].push([String(name), toEntryValue(value, filename)]); }
  delete(name) { name = String(name); this[kEntries] = this[kEntries].filter(([k]) => k !== name); }
  get(name) { name = String(name); const e = this[kEntries].find(([k]) => k === name); return e ? e[1] : null; }
  getAll(name) { name = String(name); return this[kEntries].filter(([k]) => k === name).map(([, v]) => v); }
  has(name) { name = String(name); return this[kEntries].some(([k]) => k === name); }
  set(name, value, filename = undefined) {
    name = String(name);
    const v = toEntryValue(value, filename);
    const i = this[kEntries].findIndex(([k]) => k === name);
    if (i < 0) { this[kEntries].push([name, v]); return; }
    this[kEntries][i] = [name, v];
    this[kEntries] = this[kEntries].filter(([k], j) => k !== name || j <= i);
  }
  forEach(cb, thisArg = undefined) { for (const [k, v] of this[kEntries]) cb.call(thisArg, v, k, this); }
  *entries() { yield* this[kEntries].map((e) => [e[0], e[1]]); }
  *keys() { for (const [k] of this[kEntries]) yield k; }
  *values() { for (const [, v] of this[kEntries]) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "FormData"; }
}

const esc = (s) => s.replace(/\r/g, "%0D").replace(/\n/g, "%0A").replace(/"/g, "%22");

export function serializeMultipart(fd) {
  const boundary = "----noslate" + Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
  const parts = [];
  for (const [name, value] of fd[kEntries]) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${esc(name)}"`;
    if (typeof value === "string") {
      parts.push(encoder.encode(head + "\r\n\r\n" + value.replace(/\r(?!\n)|(?<!\r)\n/g, "\r\n") + "\r\n"));
    } else {
      head += `; filename="${esc(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
      parts.push(encoder.encode(head), blobBytes(value), encoder.encode("\r\n"));
    }
  }
  parts.push(encoder.encode(`--${boundary}--\r\n`));
  return [concatU8(parts), boundary];
}

function indexOf(hay, needle, from) {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

export function parseMultipart(bytes, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) throw new TypeError("multipart/form-data without a boundary");
  const delim = encoder.encode("--" + (m[1] || m[2]).trim());
  const fd = new FormData();
  let pos = indexOf(bytes, delim, 0);
  if (pos < 0) throw new TypeError("Could not parse multipart body");
  for (;;) {
    pos += delim.length;
    if (bytes[pos] === 45 && bytes[pos + 1] === 45) break; // "--"
    pos += 2; // CRLF
    const headEnd = indexOf(bytes, encoder.encode("\r\n\r\n"), pos);
    if (headEnd < 0) throw new TypeError("Could not parse multipart body");
    const head = decoder.decode(bytes.subarray(pos, headEnd));
    const next = indexOf(bytes, delim, headEnd + 4);
    if (next < 0) throw new TypeError("Could not parse multipart body");
    const data = bytes.slice(headEnd + 4, next - 2);
    const name = /name="([^"]*)"/i.exec(head);
    const filename = /filename="([^"]*)"/i.exec(head);
    const ctype = /content-type:\s*([^\r\n]+)/i.exec(head);
    if (!name) throw new TypeError("multipart part without a name");
    if (filename) fd.append(name[1], new File([data], filename[1], { type: ctype ? ctype[1] : "" }));
    else fd.append(name[1], decoder.decode(data));
    pos = next;
  }
  return fd;
}
