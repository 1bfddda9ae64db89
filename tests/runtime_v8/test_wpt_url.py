# ruff: noqa: E501  (embedded JavaScript)
"""The WPT URL parser data (urltestdata.json) through the runtime's URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from .harness import start_worker

DATA = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "wpt" / "urltestdata.json"

RUNNER = r"""
addEventListener("fetch", (event) => event.respondWith((async () => {
  const cases = await event.request.json();
  const failures = [];
  let passed = 0, total = 0;
  const keys = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];
  for (const c of cases) {
    if (typeof c === "string") continue;
    total++;
    let url = null, error = null;
    try { url = c.base === null || c.base === undefined ? new URL(c.input) : new URL(c.input, c.base); }
    catch (e) { error = e; }
    const bad = [];
    if (c.failure) {
      if (!(error instanceof TypeError)) bad.push("expected TypeError, got " + (url ? url.href : String(error)));
      if (URL.canParse(c.input, c.base ?? undefined)) bad.push("canParse true for a failure");
    } else if (error) {
      bad.push("threw " + error);
    } else {
      for (const k of keys) if (url[k] !== c[k]) bad.push(`${k}: ${JSON.stringify(url[k])} != ${JSON.stringify(c[k])}`);
      if ("origin" in c && url.origin !== c.origin) bad.push(`origin: ${url.origin} != ${c.origin}`);
      if ("searchParams" in c && url.searchParams.toString() !== c.searchParams) bad.push("searchParams");
    }
    if (bad.length) failures.push({ input: c.input, base: c.base, bad });
    else passed++;
  }
  return Response.json({ passed, total, failures });
})()));
"""


@pytest.mark.skipif(not DATA.exists(), reason="WPT URL data not on this machine")
async def test_wpt_urltestdata(nursery: trio.Nursery) -> None:
    w = await start_worker(nursery, RUNNER)
    data = DATA.read_bytes()
    reply = await w.request("POST", "/", body=data, headers=[("content-type", "application/json")])
    result = reply.json()
    cases = [c for c in json.loads(data) if not isinstance(c, str)]
    print(f"WPT urltestdata: {result['passed']}/{result['total']} pass")
    assert result["total"] == len(cases)
    assert result["failures"] == [], result["failures"][:10]
    w.kill()
