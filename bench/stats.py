"""Latency figures: nearest-rank percentiles, a recorder of every request by route, and the
printout every benchmark shares (settings and machine first, a table, one JSON line last)."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

from bench.proc import machine_info

# The percentiles a summary gives unless asked for others.
DEFAULT_PERCENTILES = (50, 99)


def percentile(values: list[float], pct: float) -> Optional[float]:
    """Nearest-rank percentile: always a value that was actually measured."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def summarize(values_ms: list[float], percentiles: tuple = DEFAULT_PERCENTILES) -> dict:
    """``{"n", "p50_ms", "p99_ms", "max_ms"}`` (one ``pNN_ms`` per asked percentile)."""
    summary: dict = {"n": len(values_ms)}
    for pct in percentiles:
        summary[f"p{pct}_ms"] = _round(percentile(values_ms, pct))
    summary["max_ms"] = _round(max(values_ms) if values_ms else None)
    return summary


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 2)


@dataclass
class Recorder:
    """Latency of every request by route name, and every unexpected outcome."""
    latencies_ms: dict = field(default_factory=lambda: defaultdict(list))
    errors: dict = field(default_factory=lambda: defaultdict(int))
    error_samples: list = field(default_factory=list)

    def record(self, route: str, milliseconds: float) -> None:
        self.latencies_ms[route].append(milliseconds)

    def error(self, route: str, what: str, detail: str = "") -> None:
        self.errors[f"{route} {what}"] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{route} {what} {detail[:200]}")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def table(self, routes: tuple[str, ...], percentiles: tuple = DEFAULT_PERCENTILES) -> dict:
        return {route: summarize(self.latencies_ms.get(route, []), percentiles) for route in routes}


def print_settings(title: str, settings: dict) -> None:
    print(f"== {title}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print("machine:  " + ", ".join(f"{k}={v}" for k, v in machine_info().items()))


def print_table(rows: dict, percentiles: tuple = DEFAULT_PERCENTILES, width: int = 24) -> None:
    """One line per row of ``summarize`` figures: n, the percentiles, max."""
    columns = [f"p{pct}_ms" for pct in percentiles] + ["max_ms"]
    heads = "".join(f"{column[:-3] + ' ms':>10}" for column in columns)
    print(f"  {'route':<{width}}{'n':>7}{heads}")
    for name, row in rows.items():
        cells = [f"{row[k]:>10.2f}" if row.get(k) is not None else f"{'-':>10}" for k in columns]
        print(f"  {name:<{width}}{row['n']:>7}{''.join(cells)}")


def print_result(result: dict) -> None:
    """The last line of every benchmark: one JSON object, for tests and for the docs."""
    print(json.dumps(result, sort_keys=True), flush=True)
