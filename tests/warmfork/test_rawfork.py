"""kernel.launcher.rawfork: fork() without CPython's after-fork hooks, only when safe.

Each case runs in a fresh interpreter: the test process itself may have idle worker
threads (trio's thread cache), which is exactly when rawfork must fall back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HELPERS = """
import os, random, threading
from kernel.launcher import rawfork

def child_report(fork, body):
    r, w = os.pipe()
    pid = fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, body())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return eval(data)

ran = []
os.register_at_fork(after_in_child=lambda: ran.append("hook"))
report = lambda: repr((ran, random.random(), sum(range(10)))).encode()
"""


def _run(body: str) -> None:
    code = HELPERS + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_child_runs_python_and_skips_the_at_fork_hooks_but_reseeds_random() -> None:
    _run(
        """
        assert rawfork.single_threaded()
        random.random()
        hooks1, r1, total = child_report(rawfork.fork, report)
        hooks2, r2, _ = child_report(rawfork.fork, report)
        assert total == 45
        assert hooks1 == [] and hooks2 == [], "Python's at-fork hooks must not run"
        assert r1 != r2, "two children must not share the parent's random sequence"
        assert child_report(os.fork, report)[0] == ["hook"], "os.fork() runs them: the difference is real"
        """
    )


def test_with_another_python_thread_it_is_os_fork() -> None:
    _run(
        """
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)
        t.start()
        assert not rawfork.single_threaded()
        assert child_report(rawfork.fork, report)[0] == ["hook"]
        stop.set()
        t.join()
        import time
        deadline = time.monotonic() + 5  # the OS thread leaves /proc/self/task just after join()
        while not rawfork.single_threaded() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rawfork.single_threaded()
        """
    )


def test_engine_platform_threads_do_not_count() -> None:
    """STPyV8 starts an idle ``V8 DefaultWorker`` thread even with --single-threaded."""
    _run(
        """
        from plugins.runtime_v8.engine import SEED_FLAGS, engine
        engine(SEED_FLAGS)
        names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
        assert len(names) >= 2 and any(n.startswith("V8 ") for n in names), names
        assert rawfork.single_threaded()
        assert child_report(rawfork.fork, report)[0] == []
        """
    )
