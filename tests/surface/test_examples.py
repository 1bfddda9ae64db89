"""Every function in examples/ deploys and answers as README.md and examples/README.md say.

Uses the real runtime (runtime_v8) with warm-fork seeds and the LRU KV store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .helpers import ROOT, clean_env, run_cli

PLUGINS = ["routing_host", "scaler_reactive", "kv_lru", "outbound_http", "runtime_v8", "warmfork"]
EXAMPLES = ROOT / "examples"


def code_file(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if re.match(r"^(index|worker)\.(js|mjs|ts)$", p.name))


def test_examples_deploy_and_answer(daemon_factory: Any) -> None:
    daemon = daemon_factory(plugins=PLUGINS)
    env = clean_env(NOSLATE_CONTROL=daemon.control_url, NOSLATE_CONTROL_TOKEN=daemon.token)
    folders = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
    assert {f.name for f in folders} == {"hello", "json-api", "counter", "stream"}
    for folder in folders:
        r = run_cli(
            "deploy", folder.name, str(code_file(folder)), "--profile", str(folder / "profile.json"), env=env
        )
        assert r.returncode == 0, f"{folder.name}: {r.stderr}\n{daemon.stderr()}"

    resp = daemon.request("hello", "/a?b=1")
    assert resp.status_code == 200, resp.text
    assert resp.text == "Hello from noslate! You asked for /a?b=1\n"

    resp = daemon.request("json-api", "/x?y=1")
    assert resp.json() == {
        "greeting": "Hello",
        "stage": "example",
        "method": "GET",
        "path": "/x",
        "query": {"y": "1"},
    }
    resp = daemon.request("json-api", "/", method="POST", body=json.dumps({"name": "Ada"}))
    assert resp.status_code == 201 and resp.json() == {"greeting": "Hello, Ada!"}
    resp = daemon.request("json-api", "/", method="POST", body="not json")
    assert resp.status_code == 400

    values = [daemon.request("counter", "/?key=visits").json()["value"] for _ in range(3)]
    assert values == [1, 2, 3]
    assert daemon.request("counter", "/?key=visits", method="DELETE").json() == {"key": "visits", "value": 0}
    assert daemon.request("counter", "/?key=visits").json()["value"] == 1

    resp = daemon.request("stream", "/?n=3")
    assert resp.status_code == 200
    assert resp.text == "line 1 of 3\nline 2 of 3\nline 3 of 3\n"
    assert resp.headers.get("transfer-encoding") == "chunked"


def test_readme_tour_module_with_env(daemon_factory: Any, tmp_path: Path) -> None:
    """The ``greet`` module of README.md's tour, deployed with ``--env``."""
    readme = (ROOT / "README.md").read_text()
    source = re.search(r"cat > /tmp/greet.mjs <<'EOF'\n(.*?)\nEOF\n", readme, re.S)
    assert source, "README.md no longer shows the greet.mjs snippet"
    module = tmp_path / "greet.mjs"
    module.write_text(source.group(1))
    daemon = daemon_factory(plugins=PLUGINS)
    env = clean_env(NOSLATE_CONTROL=daemon.control_url, NOSLATE_CONTROL_TOKEN=daemon.token)
    r = run_cli("deploy", "greet", str(module), "--env", "WHO=world", env=env)
    assert r.returncode == 0, r.stderr
    assert daemon.request("greet", "/x").json() == {"hello": "world", "path": "/x"}
    r = run_cli("invoke", "greet", "/y", env=env)
    assert r.returncode == 0 and json.loads(r.stdout) == {"hello": "world", "path": "/y"}
    r = run_cli("deploy", "greet", str(module), "--env", "WHO=everyone", env=env)
    assert r.stdout.startswith("updated greet ")
    assert daemon.request("greet", "/").json()["hello"] == "everyone"
    assert run_cli("rm", "greet", env=env).returncode == 0
    assert daemon.request("greet", "/").status_code == 404
