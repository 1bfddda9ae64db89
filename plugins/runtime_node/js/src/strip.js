// Imported right after node.js and before runtime_v8's modules: remove every global that
// is not an ECMAScript built-in (process, Buffer, require, Node's fetch/Request/URL/...),
// so the Web API layer initialises exactly as in runtime_v8 (nothing of Node to find).

/**
 * The global names of a fresh V8 context (`vm.runInNewContext` in Node 24): the
 * ECMAScript built-ins. Written out because a snapshot build may not create a second
 * context; tests/runtime_node checks it against the Node binary in use.
 */
export const PRISTINE = new Set([
  "Object", "Function", "Array", "Number", "parseFloat", "parseInt", "Infinity", "NaN", "undefined", "Boolean",
  "String", "Symbol", "Date", "Promise", "RegExp", "Error", "AggregateError", "EvalError", "RangeError",
  "ReferenceError", "SyntaxError", "TypeError", "URIError", "globalThis", "JSON", "Math", "Intl", "ArrayBuffer",
  "Atomics", "Uint8Array", "Int8Array", "Uint16Array", "Int16Array", "Uint32Array", "Int32Array", "BigUint64Array",
  "BigInt64Array", "Uint8ClampedArray", "Float32Array", "Float64Array", "DataView", "Map", "BigInt", "Set",
  "Iterator", "WeakMap", "WeakSet", "Proxy", "Reflect", "FinalizationRegistry", "WeakRef", "decodeURI",
  "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape", "unescape", "eval", "isFinite", "isNaN",
  "console", "SuppressedError", "DisposableStack", "AsyncDisposableStack", "Float16Array", "SharedArrayBuffer",
  "WebAssembly",
]);
/** Built-ins Node hides while it builds a snapshot and puts back at run time. */
export const RUN_TIME_BUILTINS = new Set(["SharedArrayBuffer", "WebAssembly"]);

export function stripNodeGlobals() {
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    if (!PRISTINE.has(name)) Reflect.deleteProperty(globalThis, name);
  }
}

stripNodeGlobals();
