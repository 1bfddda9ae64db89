"""Deploy-time preparation (esbuild): syntax errors with locations, modules, TS, JSX."""

from __future__ import annotations

import pytest

from kernel.artifact import parse
from kernel.errors import DeployError
from kernel.jsprepare import detect, prepare


async def test_script_is_checked_and_kept_verbatim() -> None:
    code = 'addEventListener("fetch", (e) => e.respondWith(new Response("x")));\n'
    art = parse(await prepare(code.encode(), "hello.js"))
    assert (art.kind, art.filename, art.code) == ("script", "hello.js", code)


async def test_syntax_error_has_location() -> None:
    with pytest.raises(DeployError) as info:
        await prepare(b'addEventListener("fetch", (e) => {\n  let x = ;\n});\n', "broken.js")
    assert info.value.location == "broken.js:2:11"
    assert "Unexpected" in str(info.value)
    assert str(info.value).startswith("broken.js:2:11: ")


async def test_typescript_error_has_location() -> None:
    with pytest.raises(DeployError) as info:
        await prepare(
            b"export default {\n  fetch(r: Request): Response {\n    return new Response(\n  }\n};\n", "w.ts"
        )
    assert info.value.location.startswith("w.ts:4:")


async def test_module_imports_are_refused() -> None:
    with pytest.raises(
        DeployError, match=r"cannot import \"node:fs\": imports resolve only within the uploaded file"
    ):
        await prepare(
            b'import fs from "node:fs";\nexport default { fetch() { return new Response(fs); } };', "m.mjs"
        )


async def test_module_is_wrapped() -> None:
    art = parse(await prepare(b"export default { fetch() { return new Response('m'); } };", "m.js"))
    assert art.kind == "module"
    assert art.code.startswith("(function(){var module=")


async def test_invalid_utf8_and_path_names() -> None:
    with pytest.raises(DeployError, match="UTF-8"):
        await prepare(b"\xff\xfe", "bad.js")
    art = parse(await prepare(b"addEventListener('fetch', () => {});", "../../etc/x y.js"))
    assert art.filename == "x_y.js"


def test_detect() -> None:
    assert detect("addEventListener('fetch', f)", "a.js") == ("script", "js")
    assert detect("export default {}", "a.js") == ("module", "js")
    assert detect("import x from './y'", "a.js") == ("module", "js")
    assert detect("const t: number = 1", "a.ts") == ("module", "ts")
    assert detect("<p/>", "a.tsx") == ("module", "tsx")
