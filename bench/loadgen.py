"""Load generation with Debian ``wrk`` (loopback only): requests/s, p50, p99, errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

from bench.common import Skip

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(out: str) -> dict[str, Any]:
    """Parse ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output: {out[-400:]}")
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n = int(total.group(1)) if total else 0
    bad = int(non2xx.group(1)) if non2xx else 0
    return {
        # successful (2xx/3xx) responses per second: wrk's own figure counts errors too
        "rps": float(rps.group(1)) * ((n - bad) / n if n else 0.0),
        "raw_rps": float(rps.group(1)),
        "p50_ms": _ms(lat["50"]) if "50" in lat else None,
        "p99_ms": _ms(lat["99"]) if "99" in lat else None,
        "requests": n,
        "non_2xx": bad,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def wrk(
    port: int,
    host: str,
    path: str = "/",
    duration: float = 2.0,
    threads: int = 2,
    connections: int = 32,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """One ``wrk`` run against 127.0.0.1:``port`` with the given Host header."""
    binary = shutil.which("wrk")
    if not binary:
        raise Skip("wrk is not installed (apt-get install wrk)")
    argv = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",  # wrk takes whole seconds only
        f"--timeout={max(1, round(timeout))}s",
        "--latency",
        "-H",
        f"Host: {host}",
        f"http://127.0.0.1:{port}{path}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + timeout + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return parse(proc.stdout)
