"""kernel.launcher.hugepages: a seed's anonymous memory is collapsed into huge pages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from kernel.launcher import hugepages
from kernel.launcher.client import Launcher

ROOT = Path(__file__).resolve().parents[2]
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_available() -> bool:
    try:
        return "[never]" not in THP.read_text()
    except OSError:
        return False


def test_only_aligned_parts_of_private_anonymous_mappings_are_candidates() -> None:
    maps = "\n".join(
        [
            "00400000-00c00000 rw-p 00000000 00:00 0 ",  # 8 MiB anon, aligned
            "00c01000-00e00000 rw-p 00000000 00:00 0 ",  # < 2 MiB after alignment
            "01000000-01400000 r--p 00000000 00:00 0 ",  # read-only
            "7f0000000000-7f0000600000 rw-p 00000000 08:01 42 /usr/lib/libfoo.so",  # file
            "7f0000601000-7f0000c00000 rw-p 00000000 00:00 0 [heap]",
            "7f1000000000-7f1000400000 rw-s 00000000 00:01 7 /memfd:x (deleted)",
        ]
    )
    assert hugepages.anonymous_ranges(maps) == [(0x400000, 0xC00000), (0x7F0000800000, 0x7F0000C00000)]


@pytest.mark.skipif(not _thp_available(), reason="transparent huge pages are disabled on this host")
def test_collapse_backs_touched_anonymous_memory_with_huge_pages() -> None:
    code = textwrap.dedent(
        """
        import mmap
        from kernel.launcher import hugepages
        buf = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for i in range(0, 8 << 20, 4096):
            buf[i] = 1
        def huge_kb():
            with open("/proc/self/smaps_rollup") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("AnonHugePages"))
        before = huge_kb()
        done, _ = hugepages.collapse_anonymous()
        assert done >= 3, done  # 8 MiB anywhere holds at least 3 aligned 2 MiB chunks
        assert huge_kb() - before >= 3 * 2048
        assert all(buf[i] == 1 for i in range(0, 8 << 20, 4096)), "contents kept"
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not _thp_available(), reason="transparent huge pages are disabled on this host")
async def test_a_real_seed_reports_its_huge_pages() -> None:
    init = {"function": "thp", "version": "v", "instance": "thp-seed", "env": {}, "log_level": "info"}
    script = b"addEventListener('fetch', e => e.respondWith(new Response('ok')))"
    with trio.fail_after(60):
        launcher = await Launcher.start(preload=["plugins.runtime_v8.preload"], plugins=False)
    async with launcher:
        with trio.fail_after(60):
            seed = await launcher.fork_seed(
                entry="plugins.runtime_v8.worker:load", payload={"artifact": script, "init": init}
            )
        assert seed.timings["huge_pages"] >= 1
        rollup = Path(f"/proc/{seed.pid}/smaps_rollup").read_text()
        (huge,) = [line for line in rollup.splitlines() if line.startswith("AnonHugePages")]
        huge_kb = int(huge.split()[1])
        assert huge_kb >= 2048
        seed.kill()
