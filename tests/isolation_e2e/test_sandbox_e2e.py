"""Every isolation layer through a real daemon, launcher and warmfork: JS workers and a
test-only Python probe runtime, seeds, forked instances and cold workers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import (
    ISOLATION,
    JS_HELLO,
    PROBE_CODE,
    SKIP,
    assert_sandboxed,
    cli_instances,
    comm,
    ppid,
    proc_status,
    start_daemon,
)

pytestmark = [SKIP, pytest.mark.root, pytest.mark.slow]

MEM = {"resourceLimit": {"memory": 160 << 20}}  # 4 x 160 MiB fit the scaler's 1 GiB pool
FUNCTIONS = {
    # name: (code, filename, profile)
    "jswarm": (JS_HELLO, "index.js", {**MEM}),
    "jscold": (JS_HELLO, "index.js", {**MEM, "worker": {"disableSeed": True}}),
    "pywarm": (PROBE_CODE, "probe.py", {**MEM, "runtime": "isoprobe"}),
    "pycold": (PROBE_CODE, "probe.py", {**MEM, "runtime": "isoprobe", "worker": {"disableSeed": True}}),
}
DENIED = ["personality", "keyctl", "socket_inet", "io_uring_setup", "perf_event_open", "ptrace",
          "mount", "unshare", "setns", "bpf", "userfaultfd", "kexec_load", "init_module"]  # fmt: skip


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One daemon with all three isolation plugins and the four functions answering."""
    daemon = start_daemon(tmp_path_factory.mktemp("iso-full"), ISOLATION)
    try:
        for name, (code, filename, profile) in FUNCTIONS.items():
            daemon.deploy(name, code, profile, filename=filename)
        for name in ("jswarm", "jscold"):
            r = daemon.request(name, "/", timeout=30)
            assert (r.status_code, r.text) == (200, "hello from js"), (name, r.text, daemon.stderr())
        yield daemon
    finally:
        try:
            daemon.stop(timeout=20)
        except Exception:
            daemon.kill9()


def _probe(daemon: Any, name: str, *paths: str) -> dict[str, Any]:
    query = "&".join(paths)
    r = daemon.request(name, f"/probe?{query}", timeout=30)
    assert r.status_code == 200, (r.status_code, r.text, daemon.stderr())
    return r.json()


def _by_function(daemon: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for inst in cli_instances(daemon):
        if inst["state"] in ("ready", "starting") and inst["pid"]:
            out.setdefault(inst["function"], inst)
    return out


def test_every_worker_process_is_sandboxed_seeds_instances_and_cold(full: Any) -> None:
    for name in ("pywarm", "pycold"):
        _probe(full, name)
    insts = _by_function(full)
    assert set(insts) >= set(FUNCTIONS), (cli_instances(full), full.stderr())
    seeds = set()
    for name, inst in insts.items():
        if name not in FUNCTIONS:
            continue
        warm = "disableSeed" not in FUNCTIONS[name][2].get("worker", {})
        assert inst["role"] == ("instance" if warm else "cold"), inst
        oci = inst["sandbox"]
        assert oci["ociVersion"].startswith("1.")
        proc = oci["process"]
        assert proc["user"]["uid"] != 0 and proc["noNewPrivileges"] is True
        assert all(v == [] for v in proc["capabilities"].values())
        assert oci["linux"]["seccomp"]["syscalls"], "no seccomp policy in the sandbox"
        assert {ns["type"] for ns in oci["linux"]["namespaces"]} >= {"pid", "network", "mount", "ipc", "uts"}
        assert oci["root"]["readonly"] is True
        st = assert_sandboxed(inst["pid"], f"{name} instance")
        assert int(st["Uid"].split()[0]) == proc["user"]["uid"]
        # its own cgroup (per instance, even when forked from a seed)
        with open(f"/proc/{inst['pid']}/cgroup") as f:
            paths = {line.strip().split(":", 2)[2] for line in f if ":memory:" in line}
        assert paths == {oci["linux"]["cgroupsPath"]}, (paths, oci["linux"]["cgroupsPath"])
        assert inst["id"] in oci["linux"]["cgroupsPath"]
        assert oci["linux"]["resources"]["memory_limit"] == MEM["resourceLimit"]["memory"]
        usage = inst["usage"]  # read from the instance's own cgroup
        assert 0 < usage["memory_bytes"] <= usage["memory_peak_bytes"], usage
        assert usage["cpu_usec"] > 0, usage
        parent = ppid(inst["pid"])
        if warm:  # the seed: pid 1 of the namespace, sandboxed before it ran user code
            seeds.add(parent)
            assert_sandboxed(parent, f"{name} seed")
            assert proc_status(parent)["NSpid"].split()[-1] == "1"
            assert "seed" in Path(f"/proc/{parent}/cmdline").read_text()
            stand_in = ppid(parent)
        else:  # a cold worker is pid 1 of its own namespace, under the stand-in
            assert proc_status(inst["pid"])["NSpid"].split()[-1] == "1"
            stand_in = parent
        # the stand-in left outside the pid namespace keeps no privilege either
        assert comm(stand_in) == "noslate-nsinit"
        st = proc_status(stand_in)
        assert st["NoNewPrivs"] == "1" and int(st["Uid"].split()[0]) == proc["user"]["uid"]
        assert int(st["CapEff"], 16) == int(st["CapPrm"], 16) == int(st["CapBnd"], 16) == 0
    assert len(seeds) == 2
    # JS and Python workers get the very same filter
    assert insts["jswarm"]["sandbox"]["linux"]["seccomp"] == insts["pywarm"]["sandbox"]["linux"]["seccomp"]


@pytest.mark.parametrize("name", ["pywarm", "pycold"])
def test_denied_syscalls_fail_with_eperm_inside_the_worker(full: Any, name: str) -> None:
    facts = _probe(full, name)
    calls = facts["syscalls"]
    assert {c: calls[c] for c in DENIED} == dict.fromkeys(DENIED, "EPERM"), calls
    assert calls["clone3"] == "ENOSYS"  # so libc falls back to clone(2), whose flags are filtered
    assert calls["getpid"] == "ok"
    for where in ("status", "load"):  # load = when the user's top-level code ran (in the seed)
        st = facts[where]["status"] if where == "load" else facts[where]
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", (where, st)
        assert int(st["Uid"].split()[0]) != 0 and int(st["CapEff"], 16) == 0, (where, st)
    # the worker process answering is the one the kernel lists
    assert facts["status"]["NSpid"].split()[-1] == str(facts["pid"])


@pytest.mark.parametrize("name", ["pywarm", "pycold"])
def test_namespaced_worker_sees_only_itself_lo_and_its_root(full: Any, name: str) -> None:
    db = sorted(str(p) for p in Path(full.state_dir).rglob("*") if p.is_file())
    assert db, "the daemon keeps no state files?"
    facts = _probe(full, name, *db, str(full.config_path))
    assert facts["ifaces"] == ["lo"]
    procs = {int(k): v for k, v in facts["procs"].items()}
    assert all(p["uid"] != 0 for p in procs.values()), procs  # no daemon, launcher, host process
    if name == "pycold":
        assert set(procs) == {1} and facts["pid"] == 1
    else:  # the seed (pid 1) and this function's instances (and a pre-forked spare)
        assert 1 in procs and facts["pid"] in procs and len(procs) <= 4, procs
        assert all("python" in p["cmd"] or "noslate" in p["cmd"] for p in procs.values()), procs
    files = facts["files"]
    assert files.pop("/etc/passwd") == "readable"  # the root's own minimal /etc
    assert set(files.values()) == {"FileNotFoundError"}, files
    assert facts["root_writable"] is False and facts["tmp_writable"] is True
    assert facts["hostname"] == "noslate"


def test_js_instances_forked_and_cold_keep_working_and_are_distinct_processes(full: Any) -> None:
    for name in ("jswarm", "jscold"):
        for _ in range(3):
            assert full.request(name, "/x", timeout=30).text == "hello from js"
    insts = _by_function(full)
    assert insts["jswarm"]["pid"] != insts["jscold"]["pid"]
    assert os.path.exists(f"/proc/{insts['jswarm']['pid']}")


def test_without_a_root_fs_a_worker_user_that_cannot_reach_python_fails_start_up(
    tmp_path: Path,
) -> None:
    from plugins.isolation_seccomp.report import resolve_user, unreadable_for

    user = resolve_user("")
    blocked = unreadable_for(user.uid, user.gid, sys.executable)
    if not blocked:
        pytest.skip(f"uid {user.uid} can reach {sys.executable} on this host: nothing to refuse")
    with pytest.raises(RuntimeError) as err:
        start_daemon(tmp_path / "d", ["isolation_cgroup", "isolation_seccomp"])
    text = str(err.value)
    assert f"cannot traverse {blocked}" in text and "isolation_namespaces" in text, text
