"""The prepared-code format ``Runtime.prepare`` produces and ``load`` consumes.

One header line, then JavaScript::

    //# noslate-artifact kind=script filename=worker.js
    addEventListener("fetch", ...)

``kind=script``: a service-worker script, run as is (line numbers match the source).
``kind=module``: an expression evaluating to the module's exports object (esbuild
output wrapped by ``prepare``). Bytes without the header are a ``script`` named
``worker.js``.
"""

from __future__ import annotations

import re

from attrs import frozen

HEADER_RE = re.compile(r"^//# noslate-artifact kind=(script|module) filename=([^\s]+)\n")


@frozen
class Artifact:
    kind: str
    filename: str
    code: str

    def encode(self) -> bytes:
        return f"//# noslate-artifact kind={self.kind} filename={self.filename}\n{self.code}".encode()


def parse(data: bytes | str) -> Artifact:
    """Split an artifact into kind, filename and code."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray | memoryview) else str(data)
    m = HEADER_RE.match(text)
    if m is None:
        return Artifact("script", "worker.js", text)
    return Artifact(m.group(1), m.group(2), text[m.end() :])
