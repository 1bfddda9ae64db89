// crypto.getRandomValues / randomUUID / subtle (digest, HMAC, PBKDF2, HKDF), and a reseedable Math.random.
import { host } from "./host.js";
import { binToU8, toU8, u8ToBin } from "./bytes.js";
import { DOMException } from "./domexception.js";
import { atob, btoa } from "./encoding.js";

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
const BLOCK_BITS = { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 };
const JWK_ALG = { "SHA-1": "HS1", "SHA-256": "HS256", "SHA-384": "HS384", "SHA-512": "HS512" };
const HMAC_USAGES = ["sign", "verify"];
const keyBytes = new WeakMap(); // CryptoKey -> its secret, a binary string (never exposed)

class CryptoKey {
  #type; #extractable; #algorithm; #usages;
  constructor(token, type, extractable, algorithm, usages, secret) {
    if (token !== DIGESTS) throw new TypeError("Illegal constructor");
    this.#type = type;
    this.#extractable = extractable;
    this.#algorithm = Object.freeze(algorithm);
    this.#usages = Object.freeze(usages);
    keyBytes.set(this, secret);
  }
  get type() { return this.#type; }
  get extractable() { return this.#extractable; }
  get algorithm() { return this.#algorithm; }
  get usages() { return this.#usages; }
  get [Symbol.toStringTag]() { return "CryptoKey"; }
}

function algorithmName(algorithm) {
  const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
  if (typeof name !== "string") throw new TypeError("Algorithm: name is missing");
  return name.toUpperCase();
}

function hashName(hash) {
  if (hash === undefined) throw new TypeError("HMAC: the hash member is required");
  const name = algorithmName(hash);
  if (!DIGESTS[name]) throw new DOMException(`Unrecognized hash name: ${typeof hash === "string" ? hash : hash.name}`, "NotSupportedError");
  return name;
}

function requireAlgorithm(algorithm, method, supported) {
  const name = algorithmName(algorithm);
  if (!supported.includes(name)) {
    throw new DOMException(`crypto.subtle.${method}: algorithm ${typeof algorithm === "string" ? algorithm : algorithm.name} is not supported by this runtime (supported: ${supported.join(", ")})`, "NotSupportedError");
  }
  return name;
}

const KDFS = ["PBKDF2", "HKDF"];
const KDF_USAGES = ["deriveBits", "deriveKey"];

function kdfKey(name, keyData, extractable, asked) {
  if (extractable) throw new DOMException(`${name} keys cannot be extractable`, "SyntaxError");
  const usages = allowedUsages(asked, KDF_USAGES, name);
  return new CryptoKey(DIGESTS, "secret", false, { name }, usages, u8ToBin(bufferSource(keyData, "importKey: keyData")));
}

// The derived bytes (a binary string) of deriveBits/deriveKey.
function derive(algorithm, key, bits, usage, method) {
  const name = requireAlgorithm(algorithm, method, KDFS);
  checkKey(key, name, usage, method);
  if (!Number.isInteger(bits) || bits <= 0 || bits % 8) throw new DOMException(`${name}: length must be a positive multiple of 8, not ${bits}`, "OperationError");
  const hash = DIGESTS[hashName(algorithm.hash)];
  const salt = u8ToBin(bufferSource(algorithm.salt, `${name}: salt`));
  let out;
  if (name === "PBKDF2") {
    const iterations = Number(algorithm.iterations);
    if (!Number.isInteger(iterations) || iterations <= 0) throw new DOMException(`PBKDF2: iterations must be a positive integer, not ${algorithm.iterations}`, "OperationError");
    out = host.bridge.pbkdf2(hash, keyBytes.get(key), salt, iterations, bits / 8);
  } else {
    const info = u8ToBin(bufferSource(algorithm.info, "HKDF: info"));
    out = host.bridge.hkdf(hash, keyBytes.get(key), salt, info, bits / 8);
  }
  if (typeof out !== "string") throw new DOMException(`${name}: cannot derive ${bits} bits`, "OperationError");
  return out;
}

// The asked key usages in canonical order; SyntaxError for one `name` keys cannot have, or none.
function allowedUsages(asked, allowed, name) {
  const list = [...asked];
  for (const u of list) {
    if (!allowed.includes(u)) throw new DOMException(`${name} keys cannot have usage '${u}' (allowed: ${allowed.join(", ")})`, "SyntaxError");
  }
  if (!list.length) throw new DOMException("Usages cannot be empty when creating a key", "SyntaxError");
  return allowed.filter((u) => list.includes(u));
}

// A usable `name` key for `usage`, else TypeError (not a key) or InvalidAccessError.
function checkKey(key, name, usage, method) {
  if (!(key instanceof CryptoKey)) throw new TypeError(`crypto.subtle.${method}: the key must be a CryptoKey`);
  if (key.algorithm.name !== name) throw new DOMException(`crypto.subtle.${method}: the key is a ${key.algorithm.name} key, not ${name}`, "InvalidAccessError");
  if (!key.usages.includes(usage)) throw new DOMException(`crypto.subtle.${method}: the key's usages do not include '${usage}'`, "InvalidAccessError");
}

function bufferSource(data, what) {
  try { return toU8(data); } catch { throw new TypeError(`${what} must be a BufferSource`); }
}

function base64url(bin) {
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) throw new DOMException("JWK member k is not base64url", "DataError");
  try { return atob(text.replace(/-/g, "+").replace(/_/g, "/")); } catch { throw new DOMException("JWK member k is not base64url", "DataError"); }
}

function hmacKey(hash, secret, extractable, usages, length) {
  const bits = secret.length * 8;
  if (!bits) throw new DOMException("HMAC key data must not be empty", "DataError");
  if (length !== undefined && Number(length) !== bits) {
    throw new DOMException(`HMAC length ${length} does not match the key data (${bits} bits)`, "DataError");
  }
  return new CryptoKey(DIGESTS, "secret", Boolean(extractable), { name: "HMAC", hash: { name: hash }, length: bits }, usages, secret);
}

function hmacOf(key, data, usage, method) {
  checkKey(key, "HMAC", usage, method);
  const mac = host.bridge.hmac(DIGESTS[key.algorithm.hash.name], keyBytes.get(key), u8ToBin(bufferSource(data, "data")));
  if (typeof mac !== "string") throw new DOMException(`${method} failed`, "OperationError");
  return mac;
}

class SubtleCrypto {
  constructor(key) {
    if (key !== DIGESTS) throw new TypeError("Illegal constructor");
  }
  async digest(algorithm, data) {
    const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
    const alg = DIGESTS[String(name).toUpperCase()];
    if (!alg) throw new DOMException(`Unrecognized algorithm name: ${name}`, "NotSupportedError");
    const out = host.bridge.digest(alg, u8ToBin(bufferSource(data, "digest: data")));
    if (typeof out !== "string") throw new DOMException("digest failed", "OperationError");
    return binToU8(out).buffer;
  }
  async importKey(format, keyData, algorithm, extractable, keyUsages) {
    const name = requireAlgorithm(algorithm, "importKey", ["HMAC", ...KDFS]);
    if (name !== "HMAC") {
      if (format !== "raw") throw new DOMException(`importKey: format '${format}' is not supported for ${name} (raw)`, "NotSupportedError");
      return kdfKey(name, keyData, extractable, keyUsages);
    }
    const hash = hashName(algorithm.hash);
    const usages = allowedUsages(keyUsages, HMAC_USAGES, "HMAC");
    if (format === "raw") return hmacKey(hash, u8ToBin(bufferSource(keyData, "importKey: keyData")), extractable, usages, algorithm.length);
    if (format !== "jwk") throw new DOMException(`importKey: format '${format}' is not supported for HMAC (raw, jwk)`, "NotSupportedError");
    if (!keyData || typeof keyData !== "object") throw new TypeError("importKey: a JWK must be an object");
    if (keyData.kty !== "oct") throw new DOMException("JWK kty must be 'oct' for an HMAC key", "DataError");
    if (keyData.alg !== undefined && keyData.alg !== JWK_ALG[hash]) throw new DOMException(`JWK alg ${keyData.alg} does not match hash ${hash} (${JWK_ALG[hash]})`, "DataError");
    if (keyData.use !== undefined && keyData.use !== "sig") throw new DOMException("JWK use must be 'sig' for an HMAC key", "DataError");
    if (Array.isArray(keyData.key_ops) && usages.some((u) => !keyData.key_ops.includes(u))) throw new DOMException("the usages are not all in the JWK's key_ops", "DataError");
    if (keyData.ext === false && extractable) throw new DOMException("JWK ext is false but the key is asked to be extractable", "DataError");
    return hmacKey(hash, fromBase64url(keyData.k), extractable, usages, algorithm.length);
  }
  async exportKey(format, key) {
    if (!(key instanceof CryptoKey)) throw new TypeError("exportKey: key must be a CryptoKey");
    if (!key.extractable) throw new DOMException("key is not extractable", "InvalidAccessError");
    const secret = keyBytes.get(key);
    if (format === "raw") return binToU8(secret).buffer;
    if (format === "jwk") {
      return { kty: "oct", k: base64url(secret), alg: JWK_ALG[key.algorithm.hash.name], key_ops: [...key.usages], ext: true };
    }
    throw new DOMException(`exportKey: format '${format}' is not supported for HMAC (raw, jwk)`, "NotSupportedError");
  }
  async generateKey(algorithm, extractable, keyUsages) {
    requireAlgorithm(algorithm, "generateKey", ["HMAC"]);
    const hash = hashName(algorithm.hash);
    const usages = allowedUsages(keyUsages, HMAC_USAGES, "HMAC");
    const bits = algorithm.length === undefined ? BLOCK_BITS[hash] : Number(algorithm.length);
    if (!Number.isInteger(bits) || bits <= 0 || bits % 8 || bits > 65536 * 8) {
      throw new DOMException(`generateKey: HMAC length must be a positive multiple of 8 up to 524288, not ${algorithm.length}`, "OperationError");
    }
    return hmacKey(hash, host.bridge.random(bits / 8), extractable, usages);
  }
  async deriveBits(algorithm, baseKey, length) {
    return binToU8(derive(algorithm, baseKey, length, "deriveBits", "deriveBits")).buffer;
  }
  async deriveKey(algorithm, baseKey, derivedKeyType, extractable, keyUsages) {
    requireAlgorithm(derivedKeyType, "deriveKey", ["HMAC"]);
    const hash = hashName(derivedKeyType.hash);
    const usages = allowedUsages(keyUsages, HMAC_USAGES, "HMAC");
    const bits = derivedKeyType.length === undefined ? BLOCK_BITS[hash] : Number(derivedKeyType.length);
    return hmacKey(hash, derive(algorithm, baseKey, bits, "deriveKey", "deriveKey"), extractable, usages);
  }
  async sign(algorithm, key, data) {
    requireAlgorithm(algorithm, "sign", ["HMAC"]);
    return binToU8(hmacOf(key, data, "sign", "sign")).buffer;
  }
  async verify(algorithm, key, signature, data) {
    requireAlgorithm(algorithm, "verify", ["HMAC"]);
    const expected = hmacOf(key, data, "verify", "verify");
    const given = u8ToBin(bufferSource(signature, "verify: signature"));
    let diff = expected.length ^ given.length;
    for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ given.charCodeAt(i % (given.length || 1));
    return diff === 0;
  }
}
for (const m of ["encrypt", "decrypt", "wrapKey", "unwrapKey"]) {
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
export { Crypto, CryptoKey, SubtleCrypto };
