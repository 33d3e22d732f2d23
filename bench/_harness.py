"""Benchmark convention: each bench/bench_*.py prints its figures and calls ``record``,
which appends them to bench/RESULTS.md with the date and the machine they ran on."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def record(title: str, lines: list[str]) -> None:
    """Print the figures and append them to RESULTS.md under a dated heading."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = f"\n## {title}\n\n_{stamp} — {machine()}_\n\n" + "".join(f"- {ln}\n" for ln in lines)
    print(text)
    if os.environ.get("BENCH_NO_RECORD"):
        return
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section is appended by the script named in "
                           "its title. Figures are measured, never edited by hand.\n")
    with RESULTS.open("a") as fh:
        fh.write(text)
