"""The result document's schema (documented in docs/benchmarks.md) and its validation."""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1
SECTIONS = (
    "coldstart",
    "throughput",
    "disposable",
    "memory",
    "isolation",
    "limits",
    "kv",
    "snapshot",
    "cluster",
    "apps",
)
FIGURE_KEYS = {
    "id": str,
    "label": str,
    "unit": str,
    "better": str,
    "n": int,
    "median": (int, float),
    "min": (int, float),
    "max": (int, float),
    "p99": (int, float),
    "samples": list,
}
TOP_KEYS = {
    "schema_version": int,
    "mode": str,
    "commit": (str, type(None)),
    "dirty": bool,
    "timestamp": str,
    "duration_s": (int, float),
    "machine": dict,
    "sections": dict,
}


def _type_error(where: str, value: Any, want: Any) -> str:
    names = want.__name__ if isinstance(want, type) else " or ".join(t.__name__ for t in want)
    return f"expected {names}, got {type(value).__name__} @ {where}"


def validate_figure(fig: Any, where: str, ids: set[str]) -> list[str]:
    if not isinstance(fig, dict):
        return [_type_error(where, fig, dict)]
    errors = []
    for key, want in FIGURE_KEYS.items():
        if key not in fig:
            errors.append(f"missing key {key!r} @ {where}")
        elif not isinstance(fig[key], want) or (isinstance(fig[key], bool) and want is not bool):
            errors.append(_type_error(f"{where}.{key}", fig[key], want))
    if errors:
        return errors
    if fig["better"] not in ("lower", "higher"):
        errors.append(f"better must be 'lower' or 'higher' @ {where}.better")
    if fig["n"] != len(fig["samples"]) or fig["n"] < 1:
        errors.append(f"n must equal len(samples) and be >= 1 @ {where}.n")
    if not fig["min"] <= fig["median"] <= fig["max"]:
        errors.append(f"need min <= median <= max @ {where}")
    base = fig.get("baseline")
    if base is not None and base not in ids:
        errors.append(f"baseline {base!r} is not a figure of this run @ {where}.baseline")
    if fig.get("ratio") is not None and base is None:
        errors.append(f"ratio without a baseline @ {where}.ratio")
    if fig.get("ratio") is not None and not isinstance(fig["ratio"], (int, float)):
        errors.append(_type_error(f"{where}.ratio", fig["ratio"], float))
    g = fig.get("goal")
    if g is not None and not (
        isinstance(g, dict) and isinstance(g.get("text"), str) and isinstance(g.get("met"), bool)
    ):
        errors.append(f"goal must be {{text: str, met: bool}} @ {where}.goal")
    return errors


def validate(doc: Any) -> list[str]:
    """Every problem of a result document as ``message @ $.path`` (empty when valid)."""
    if not isinstance(doc, dict):
        return [_type_error("$", doc, dict)]
    errors = []
    for key, want in TOP_KEYS.items():
        if key not in doc:
            errors.append(f"missing key {key!r} @ $")
        elif not isinstance(doc[key], want):
            errors.append(_type_error(f"$.{key}", doc[key], want))
    if errors:
        return errors
    if doc["schema_version"] != SCHEMA_VERSION:
        errors.append(f"schema_version must be {SCHEMA_VERSION} @ $.schema_version")
    if doc["mode"] not in ("quick", "full"):
        errors.append("mode must be 'quick' or 'full' @ $.mode")
    ids = {
        f.get("id")
        for s in doc["sections"].values()
        if isinstance(s, dict)
        for f in s.get("figures", [])
        if isinstance(f, dict)
    }
    for name, sec in doc["sections"].items():
        where = f"$.sections.{name}"
        if name not in SECTIONS:
            errors.append(f"unknown section {name!r} @ {where}")
        if not isinstance(sec, dict) or not isinstance(sec.get("figures"), list):
            errors.append(f"a section needs a figures list @ {where}")
            continue
        if "skipped" in sec:
            if not isinstance(sec["skipped"], str) or not sec["skipped"]:
                errors.append(f"skipped must be a non-empty reason @ {where}.skipped")
            continue
        for i, fig in enumerate(sec["figures"]):
            errors += validate_figure(fig, f"{where}.figures[{i}]", ids)
    return errors
