// Imported right after node.js and before runtime_v8's modules: remove every global that
// is not an ECMAScript built-in (process, Buffer, require, Node's fetch/Request/URL/...),
// so the Web API layer initialises exactly as in runtime_v8 (nothing of Node to find).
import { vm } from "./node.js";

/** Names of a fresh V8 context's global object: the ECMAScript built-ins. */
export const PRISTINE = new Set(vm.runInNewContext("Object.getOwnPropertyNames(globalThis)"));
/** Built-ins Node hides while it builds a snapshot and puts back at run time. */
export const RUN_TIME_BUILTINS = new Set(["SharedArrayBuffer", "WebAssembly"]);

export function stripNodeGlobals() {
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    if (!PRISTINE.has(name)) Reflect.deleteProperty(globalThis, name);
  }
}

stripNodeGlobals();
