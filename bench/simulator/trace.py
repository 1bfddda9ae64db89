"""Invocation traces in the Azure Functions 2019 public trace format, and a generator.

The format (``invocations_per_function_md.anon.d01.csv`` .. ``d14``): one row per
function, columns ``HashOwner,HashApp,HashFunction,Trigger,1,...,1440``: the number of
invocations in each minute of one day.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
from collections.abc import Iterable
from pathlib import Path

from attrs import frozen

MINUTES = 1440
HEADER = ["HashOwner", "HashApp", "HashFunction", "Trigger", *map(str, range(1, MINUTES + 1))]


@frozen
class FunctionTrace:
    """One function's per-minute invocation counts."""

    name: str
    trigger: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def _name(hash_function: str) -> str:
    return "f" + hashlib.sha256(hash_function.encode()).hexdigest()[:12]


def read_azure(
    path: str | Path,
    *,
    minutes: int = MINUTES,
    start_minute: int = 0,
    functions: int | None = None,
    seed: int = 1,
    min_invocations: int = 1,
) -> list[FunctionTrace]:
    """Read an Azure 2019 invocation CSV; sample ``functions`` rows (seeded) if given.

    Only minutes ``start_minute .. start_minute + minutes`` are kept; functions with
    fewer than ``min_invocations`` invocations in that span are dropped.
    """
    out: list[FunctionTrace] = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:4] != HEADER[:4]:
            raise ValueError(f"{path}: not an Azure invocation trace (header {header[:4]})")
        for row in reader:
            counts = tuple(int(x or 0) for x in row[4 + start_minute : 4 + start_minute + minutes])
            if sum(counts) >= min_invocations:
                out.append(FunctionTrace(_name(row[2]), row[3], counts))
    if functions is not None and functions < len(out):
        out = random.Random(seed).sample(out, functions)
    return out


def write_azure(path: str | Path, traces: Iterable[FunctionTrace]) -> None:
    """Write traces as an Azure-format CSV (minutes beyond a trace's length are 0)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i, t in enumerate(traces):
            counts = list(t.counts) + [0] * (MINUTES - len(t.counts))
            writer.writerow([f"owner{i // 4}", f"app{i // 2}", t.name, t.trigger, *counts[:MINUTES]])


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def synthetic(functions: int = 40, minutes: int = MINUTES, seed: int = 7) -> list[FunctionTrace]:
    """Functions shaped like the Azure 2019 findings (Shahrad et al., ATC'20).

    Rates are heavy-tailed (most functions run a few times an hour, a few run many times
    a minute); timers fire on fixed periods; HTTP functions follow a diurnal curve and
    some have on/off bursts; queue-triggered ones arrive in batches.
    """
    rng = random.Random(seed)
    out = []
    for i in range(functions):
        kind = rng.choices(["timer", "http", "bursty", "queue"], weights=[3, 4, 2, 1])[0]
        counts = []
        if kind == "timer":
            period = rng.choice([1, 2, 5, 10, 15, 30, 60])
            burst = rng.choice([1, 1, 1, 2, 5])
            phase = rng.randrange(period)
            counts = [burst if (m + phase) % period == 0 else 0 for m in range(minutes)]
        else:
            rate = math.exp(rng.uniform(math.log(0.02), math.log(120)))  # per minute
            phase = rng.uniform(0, 2 * math.pi)
            on = True
            for m in range(minutes):
                diurnal = 1 + 0.6 * math.sin(2 * math.pi * m / MINUTES + phase)
                lam = rate * diurnal
                if kind == "bursty":
                    if rng.random() < (0.05 if on else 0.02):
                        on = not on
                    lam = lam * 4 if on else lam * 0.05
                if kind == "queue" and rng.random() < 0.1:
                    lam *= 10
                elif kind == "queue":
                    lam *= 0.1
                counts.append(_poisson(rng, lam))
        name = "f" + hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()[:12]
        trigger = {"timer": "timer", "http": "http", "bursty": "http", "queue": "queue"}[kind]
        out.append(FunctionTrace(name, trigger, tuple(counts)))
    return out
