"""The analytics page's charts, drawn on the server as SVG: reviews started and published per
day, how long stages took to decide, and the rounds reviews took to approval.

Every text in a chart (a day, a stage or reviewer name, a count) is escaped as XML text or
attribute; numbers are the only other content. The page inserts the SVG as it inserts the
draft's rendered Markdown, and runs nothing from it: an SVG built here holds no script,
no link and no style attribute (the page's CSP forbids inline styles; colours are
presentation attributes).
"""
from __future__ import annotations

from html import escape
from typing import Iterable, Optional

from shared_code.review_analytics import BOUNDS, bucket_range

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 40, 28, 22
WIDEST_BAR = 48
STARTED, PUBLISHED, BAR = "#6366f1", "#15803d", "#0f766e"


def charts(summary: dict) -> dict:
    return {"perDay": per_day(summary["days"]),
            "toDecision": histogram(_merged(stage["toDecision"]["histogram"] for stage in summary["stages"]),
                                    "Time to decision, all stages shown"),
            "rounds": rounds(summary["reviews"]["roundsToApproval"])}


def per_day(days: list[dict]) -> str:
    """Two bars a day: reviews started and published."""
    peak = max([1, *(max(d["started"], d["published"]) for d in days)])
    slot = (WIDTH - LEFT) / max(1, len(days))
    bar = max(1.0, slot * 0.4)
    parts = _axis(peak)
    label_every = max(1, len(days) // 8)
    for n, day in enumerate(days):
        x = LEFT + n * slot
        for offset, key, colour in ((0, "started", STARTED), (bar, "published", PUBLISHED)):
            parts.append(_bar(x + offset, day[key], peak, bar, colour, f"{day['day']}: {day[key]} {key}"))
        if n % label_every == 0:
            parts.append(_text(x, HEIGHT - 8, day["day"][5:], "start"))
    legend = [_text(WIDTH - 170, 12, "■ started", "start", STARTED), _text(WIDTH - 90, 12, "■ published",
                                                                         "start", PUBLISHED)]
    return _svg("Reviews started and published per day", parts + legend)


def histogram(buckets: list[dict], title: str) -> str:
    """A bar per duration bucket, from the shortest that holds any to the longest."""
    buckets = _filled(buckets)
    peak = max([1, *(b["count"] for b in buckets)])
    slot = (WIDTH - LEFT) / max(1, len(buckets))
    width = min(slot * 0.8, WIDEST_BAR)
    parts = _axis(peak)
    for n, bucket in enumerate(buckets):
        x = LEFT + n * slot
        label = "more" if bucket["upToSeconds"] is None else f"< {duration(bucket['upToSeconds'])}"
        parts.append(_bar(x + (slot - width) / 2, bucket["count"], peak, width, BAR, f"{label}: {bucket['count']}"))
        parts.append(_text(x + slot / 2, HEIGHT - 8, label, "middle"))
    if not buckets:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, "no decisions in this period", "middle"))
    return _svg(title, parts)


def rounds(counts: list[dict]) -> str:
    """A bar per number of rounds that reviews took to approval."""
    peak = max([1, *(c["reviews"] for c in counts)])
    slot = (WIDTH - LEFT) / max(1, len(counts))
    width = min(slot * 0.6, WIDEST_BAR)
    parts = _axis(peak)
    for n, count in enumerate(counts):
        x = LEFT + n * slot
        label = f"{count['rounds']} round{'s' if count['rounds'] != 1 else ''}"
        parts.append(_bar(x + (slot - width) / 2, count["reviews"], peak, width, PUBLISHED,
                          f"{label}: {count['reviews']}"))
        parts.append(_text(x + slot / 2, HEIGHT - 8, label, "middle"))
    if not counts:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, "nothing published in this period", "middle"))
    return _svg("Rounds to approval", parts)


def duration(seconds: Optional[float]) -> str:
    """"45 s", "12 min", "3 h", "2 d"."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _merged(histograms: Iterable[list]) -> list[dict]:
    totals: dict = {}
    for buckets in histograms:
        for bucket in buckets:
            totals[bucket["upToSeconds"]] = totals.get(bucket["upToSeconds"], 0) + bucket["count"]
    ordered = sorted(totals, key=lambda bound: float("inf") if bound is None else bound)
    return [{"upToSeconds": bound, "count": totals[bound]} for bound in ordered]


def _filled(buckets: list[dict]) -> list[dict]:
    """The buckets between the shortest and the longest that hold any, empty ones included."""
    counts = {len(BOUNDS) if b["upToSeconds"] is None else BOUNDS.index(b["upToSeconds"]): b["count"] for b in buckets}
    if not counts:
        return []
    return [{"upToSeconds": bucket_range(i)[1], "count": counts.get(i, 0)} for i in range(min(counts), max(counts) + 1)]


def _axis(peak: int) -> list[str]:
    base = HEIGHT - BOTTOM
    return [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#999" stroke-width="1"/>',
            _text(LEFT - 6, base + 4, "0", "end"), _text(LEFT - 6, TOP + 10, str(peak), "end")]


def _bar(x: float, value: int, peak: int, width: float, colour: str, title: str) -> str:
    height = (HEIGHT - BOTTOM - TOP - 10) * value / peak
    y = HEIGHT - BOTTOM - height
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}">'
            f"<title>{escape(title)}</title></rect>")


def _text(x: float, y: float, text: str, anchor: str, colour: str = "#444") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" fill="{colour}">'
            f"{escape(text)}</text>")


def _svg(title: str, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(parts)}</svg>')
