"""kernel.registry: SQLite store of functions and versions."""

from __future__ import annotations

import sqlite3

import pytest

from kernel.errors import DeployError
from kernel.profile import parse_profile
from kernel.registry import Registry


def test_put_get_history_delete_and_reopen(tmp_path):
    reg = Registry(tmp_path, max_code_size=1000)
    prof = parse_profile({"name": "hello", "worker": {"maxActivateRequests": 3}})
    first = reg.put(prof, b"code-1", "a.js", b"art-1", now=100.0)
    second = reg.put(prof, b"code-2", "a.js", b"art-2", now=200.0)
    assert first.version.version != second.version.version
    assert second.version.version.startswith("sha256:")
    got = reg.get("hello")
    assert got.code == b"code-2" and got.version.artifact == b"art-2"
    assert got.version.profile.worker.max_activate_requests == 3
    assert [h["version"] for h in reg.history("hello")] == [first.version.version, second.version.version]
    reg.close()
    reg = Registry(tmp_path)
    assert [f.name for f in reg.all()] == ["hello"]
    assert reg.delete("hello") and reg.get("hello") is None and not reg.delete("hello")
    assert reg.history("hello")[-1]["deleted_at"] is not None
    assert (
        sqlite3.connect(tmp_path / "registry.sqlite3").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    )


def test_code_size_limit_stores_nothing(tmp_path):
    reg = Registry(tmp_path, max_code_size=10)
    prof = parse_profile({"name": "big"})
    with pytest.raises(DeployError, match="over the limit of 10 bytes"):
        reg.put(prof, b"x" * 11, "a.js", b"")
    assert reg.get("big") is None and reg.history("big") == []
