"""docs/openapi.json and docs/control-api.md describe exactly the app's routes."""

from __future__ import annotations

import json
import runpy

from kernel.control import PUBLIC, ROUTES

from .helpers import ROOT

DOC = json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_every_route_is_in_openapi() -> None:
    app_routes = {(path, method.lower()) for method, path, _ in ROUTES}
    doc_routes = {
        (path, method)
        for path, item in DOC["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert app_routes - doc_routes == set(), "routes missing from docs/openapi.json"
    assert doc_routes - app_routes == set(), "docs/openapi.json documents routes the app does not have"


def test_openapi_is_3_1_and_marks_public_routes() -> None:
    assert DOC["openapi"].startswith("3.1")
    assert DOC["security"] == [{"bearer": []}]
    for path, item in DOC["paths"].items():
        public = item["get"].get("security") == [] if "get" in item else False
        assert public == (path in PUBLIC), path


def test_openapi_json_is_generated() -> None:
    generated = runpy.run_path(str(ROOT / "scripts" / "openapi.py"))["document"]()
    assert generated == DOC, (
        "docs/openapi.json is stale: .venv/bin/python scripts/openapi.py > docs/openapi.json"
    )


def test_control_api_md_lists_every_route() -> None:
    text = (ROOT / "docs" / "control-api.md").read_text()
    for method, path, _ in ROUTES:
        assert f"| {method} | `{path}` |" in text, f"docs/control-api.md lacks {method} {path}"
