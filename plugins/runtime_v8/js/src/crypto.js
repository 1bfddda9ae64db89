// crypto.getRandomValues / randomUUID / subtle.digest, and a reseedable Math.random.
import { host } from "./host.js";
import { binToU8, toU8, u8ToBin } from "./bytes.js";
import { DOMException } from "./domexception.js";

// xorshift128+ state for Math.random, reseeded from os.urandom after every fork.
let s0 = 1, s1 = 2, s2 = 3, s3 = 4;

export function reseed(hex) {
  const w = [];
  for (let i = 0; i < 8; i++) w.push(parseInt(hex.slice(i * 8, i * 8 + 8), 16) >>> 0);
  s0 = w[0] | 1; s1 = w[1]; s2 = w[2]; s3 = w[3] | 1;
}

// xoshiro128** (32-bit words), two outputs per double.
function next32() {
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
  s3 = rotl(s3, 11);
  return result;
}
function rotl(x, k) { return (x << k) | (x >>> (32 - k)); }

export function mathRandom() {
  const hi = next32() >>> 5; // 27 bits
  const lo = next32() >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992;
}

const INTEGER_ARRAYS = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"];

function getRandomValues(array) {
  if (!ArrayBuffer.isView(array) || array instanceof DataView || !INTEGER_ARRAYS.includes(array.constructor.name)) {
    throw new DOMException("The data argument must be an integer-type TypedArray", "TypeMismatchError");
  }
  if (array.byteLength > 65536) {
    throw new DOMException(`The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, "QuotaExceededError");
  }
  const bytes = binToU8(host.bridge.random(array.byteLength));
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
  return array;
}

function randomUUID() {
  const b = binToU8(host.bridge.random(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const DIGESTS = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

class SubtleCrypto {
  constructor(key) {
    if (key !== DIGESTS) throw new TypeError("Illegal constructor");
  }
  async digest(algorithm, data) {
    const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
    const alg = DIGESTS[String(name).toUpperCase()];
    if (!alg) throw new DOMException(`Unrecognized algorithm name: ${name}`, "NotSupportedError");
    let u8;
    try { u8 = toU8(data); } catch { throw new TypeError("digest: data must be a BufferSource"); }
    const out = host.bridge.digest(alg, u8ToBin(u8));
    if (typeof out !== "string") throw new DOMException("digest failed", "OperationError");
    return binToU8(out).buffer;
  }
}
for (const m of ["encrypt", "decrypt", "sign", "verify", "generateKey", "deriveKey", "deriveBits", "importKey", "exportKey", "wrapKey", "unwrapKey"]) {
  SubtleCrypto.prototype[m] = async function () {
    throw new DOMException(`crypto.subtle.${m} is not supported by this runtime`, "NotSupportedError");
  };
}

class Crypto {
  #subtle = new SubtleCrypto(DIGESTS);
  constructor(key) {
    if (key !== DIGESTS) throw new TypeError("Illegal constructor");
  }
  get subtle() { return this.#subtle; }
  getRandomValues(array) { return getRandomValues(array); }
  randomUUID() { return randomUUID(); }
}

export const crypto = new Crypto(DIGESTS);
export { Crypto, SubtleCrypto };
