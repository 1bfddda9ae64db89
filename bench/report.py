"""Render a result document as a markdown table, and PNG plots (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _cell(text: str) -> str:
    """One line, safe inside a markdown table cell or list item."""
    return " / ".join(line.strip() for line in str(text).splitlines() if line.strip()).replace("|", "\\|")


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    commit = (doc.get("commit") or "unknown")[:12] + (" (dirty)" if doc.get("dirty") else "")
    lines = [
        f"# noslate-workers bench ({doc['mode']})",
        "",
        f"commit {commit}, {doc['timestamp']}, {m.get('cores')} cores {m.get('cpu', '')}, "
        f"{m.get('memory_gib')} GiB, kernel {m.get('kernel')}, load before {m.get('loadavg')}, "
        f"took {doc['duration_s']:.0f} s",
        "",
        "Median (min-max) of n runs; ratio = median / baseline median, measured in the same run.",
        "",
        "| section | figure | median | min-max | unit | n | baseline | ratio | goal |",
        "|---|---|---:|---:|---|---:|---|---:|---|",
    ]
    for name, sec in doc["sections"].items():
        if "skipped" in sec:
            lines.append(f"| {name} | skipped: {_cell(sec['skipped'])[:200]} | | | | | | | |")
            continue
        for f in sec["figures"]:
            base = (f.get("baseline") or "-").split(".", 1)[-1]
            if f.get("baseline") == f["id"]:
                base = "(itself)"
            g = f.get("goal")
            gtxt = f"{'MET' if g['met'] else 'missed'}: {g['text']}" if g else ""
            lines.append(
                f"| {name} | {_cell(f['label'])} | {_num(f['median'])} | {_num(f['min'])}-{_num(f['max'])} | "
                f"{f['unit']} | {f['n']} | {base} | {_num(f.get('ratio'))} | {gtxt} |"
            )
    notes = [(n, note) for n, s in doc["sections"].items() for note in s.get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}: {_cell(note)}" for n, note in notes]
    return "\n".join(lines) + "\n"


def plots(doc: dict[str, Any], outdir: Path) -> list[Path]:
    """One PNG per section: medians as bars with min-max whiskers, one panel per unit."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    for name, sec in doc["sections"].items():
        figs = sec.get("figures") or []
        if not figs:
            continue
        units: dict[str, list[dict[str, Any]]] = {}
        for f in figs:
            units.setdefault(f["unit"], []).append(f)
        fig, axes = plt.subplots(
            len(units), 1, figsize=(9, 0.45 * len(figs) + 1.2 * len(units)), squeeze=False
        )
        for ax, (unit, items) in zip(axes[:, 0], units.items(), strict=True):
            labels = [f["label"] for f in items]
            med = [f["median"] for f in items]
            err = [[f["median"] - f["min"] for f in items], [f["max"] - f["median"] for f in items]]
            colors = [
                "tab:blue" if "ours" in f["label"] or "warmfork" in f["label"] else "tab:gray" for f in items
            ]
            ax.barh(range(len(items)), med, xerr=err, color=colors, capsize=3)
            ax.set_yticks(range(len(items)), labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(unit)
            if unit in ("ms",) and max(med) / max(min(med), 1e-9) > 50:
                ax.set_xscale("log")
        axes[0, 0].set_title(f"{name} ({doc['mode']}, {(doc.get('commit') or '')[:8]})")
        fig.tight_layout()
        path = outdir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
