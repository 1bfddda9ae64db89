"""The JavaScript (and Python) the bench runs, one source for every system.

The same handler code runs in our daemon, in workerd (service-worker form) and in a
Node ``http`` server; the bare hypercorn + trio app renders the same page in Python.
``/`` answers ``Hello, world!``; ``/ssr`` renders a ~50 KB HTML catalogue.
"""

from __future__ import annotations

HELLO = "Hello, world!"
SSR_ROWS = 420

# A server-side render: escape + template ~50 KB of HTML per request.
RENDER_JS = """
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function render() {
  const rows = [];
  for (let i = 0; i < __ROWS__; i++) {
    rows.push("<tr><td>" + i + "</td><td>" + esc("Item <" + i + "> & 'co'") + "</td><td>" +
      (i * 1.5).toFixed(2) + "</td><td><a href=\\"/item/" + i + "\\">details</a></td></tr>");
  }
  return "<!doctype html><html><head><title>Catalogue</title></head><body><h1>Catalogue</h1>" +
    "<table>" + rows.join("") + "</table></body></html>";
}
""".replace("__ROWS__", str(SSR_ROWS))

# Top-level init work: JSON round trips of a small document (C++ builtins, so the cost
# barely depends on JIT tiering, and deterministic: workerd freezes Date.now() during
# init, so a time-based spin would never end there). ITERATIONS is calibrated to
# ~150 ms in a fresh Node at the start of each run.
INIT_JS = """
function initWork(n) {
  const doc = { items: [] };
  for (let i = 0; i < 200; i++) doc.items.push({ id: i, name: "item-" + i, tags: ["a", "b", String(i)] });
  let acc = 0;
  for (let k = 0; k < n; k++) acc += JSON.parse(JSON.stringify(doc)).items.length;
  return acc;
}
globalThis.__initResult = initWork(__ITERATIONS__);
"""

SW_HANDLER = """
addEventListener("fetch", (event) => {
  const url = event.request.url;
  if (url.endsWith("/ssr")) {
    event.respondWith(new Response(render(), { headers: { "content-type": "text/html" } }));
  } else {
    event.respondWith(new Response("__HELLO__"));
  }
});
""".replace("__HELLO__", HELLO)

NODE_SERVER = """
const http = require("http");
http.createServer((req, res) => {
  if (req.url === "/ssr") { res.setHeader("content-type", "text/html"); res.end(render()); }
  else res.end("__HELLO__");
}).listen(Number(process.argv[2]), "127.0.0.1");
""".replace("__HELLO__", HELLO)

# Busy loop and memory hog for the limits section.
SPIN_SW = """
addEventListener("fetch", (event) => {
  if (event.request.url.endsWith("/spin")) { let x = 0; for (;;) { x++; } }
  event.respondWith(new Response("ok"));
});
"""

HOG_SW = """
addEventListener("fetch", (event) => {
  if (event.request.url.endsWith("/hog")) {
    const keep = [];
    for (;;) {
      const a = new Array(1 << 16);
      for (let i = 0; i < a.length; i++) a[i] = i + 0.5;
      keep.push(a);
    }
  }
  event.respondWith(new Response("ok"));
});
"""


def sw_script(init_iterations: int = 0) -> str:
    """Service-worker script (ours and workerd); with ``init_iterations`` > 0 it does top-level work."""
    return RENDER_JS + init_js(init_iterations) + SW_HANDLER


def node_script(init_iterations: int = 0) -> str:
    return RENDER_JS + init_js(init_iterations) + NODE_SERVER


def init_js(iterations: int) -> str:
    return INIT_JS.replace("__ITERATIONS__", str(iterations)) if iterations else ""


def calibrate_js(iterations: int) -> str:
    """A Node script printing the milliseconds ``iterations`` of the init loop take."""
    return CALIBRATE_JS.replace("__ITERATIONS__", str(iterations))


CALIBRATE_JS = (
    INIT_JS.split("globalThis")[0]
    + """
const t0 = process.hrtime.bigint();
initWork(__ITERATIONS__);
console.log(Number(process.hrtime.bigint() - t0) / 1e6);
"""
)
