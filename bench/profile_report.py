"""Summarise a py-spy raw profile of the devhost (``python -m bench.lifecycles --profile DIR``).

    python -m bench.profile_report DIR/devhost.raw [--meta DIR/meta.json]

py-spy's raw format is one collapsed stack per line, ``thread (TID): NAME;frame;...;frame
COUNT``, each frame ``Function (file:line)``. The benchmarks record with ``--gil``, so every
sample is the thread that held the GIL at that moment: with one Python thread running at a
time, the samples show where the host's Python CPU goes. ``meta.json`` (written next to
the raw file) adds the sampling rate, the measured seconds and each thread's CPU seconds
from /proc, which includes time spent in C with the GIL released (SQLite, socket calls).

Why a summary and not only a flame graph: the report is read in a terminal and pasted into
docs/PERFORMANCE.md, and the shares by component answer "is it SQLite, the SDK, HTTP or
JSON" directly.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# First match wins; a frame's file decides its component.
COMPONENTS = (
    ("devhost/storage.py", "devhost storage (SQLite calls)"),
    ("devhost/engine.py", "devhost engine"),
    ("devhost/durable_api.py", "devhost Durable HTTP API"),
    ("devhost/function_routes.py", "devhost function routes"),
    ("devhost/", "devhost other"),
    ("durable_functions/", "durable SDK (replay, client)"),
    ("azure/functions/", "azure-functions library"),
    ("functions/", "azure-functions library"),
    ("aiohttp/", "aiohttp (server and the SDK's client)"),
    ("asyncio/", "asyncio"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("dateutil/", "dateutil (SDK date parsing)"),
    ("routes/", "app routes"),
    ("orchestrations/", "app orchestrations"),
    ("activities/", "app activities"),
    ("shared_code/", "app shared_code"),
    ("uuid.py", "uuid"),
)

# Frames every thread has; counting them as components would say nothing.
SCAFFOLDING = ("threading.py", "concurrent/futures/thread.py")


def component_of(filename: str) -> str:
    for needle, name in COMPONENTS:
        if needle in filename:
            return name
    if filename.startswith("<frozen") or "/" not in filename:
        return f"stdlib {filename}"
    return f"other {filename.split('/')[0]}"


def parse(raw: Path):
    """Yield (thread name, [(function, file, line), ...] outermost first, count)."""
    for text in raw.read_text(encoding="utf-8").splitlines():
        if not text.strip():
            continue
        stack_text, _, count = text.rpartition(" ")
        parts = stack_text.split(";")
        thread = parts[0]
        frames = []
        if thread.startswith("thread ("):
            thread = thread.split(":", 1)[1].strip() if ":" in thread else thread
        else:  # recorded without --threads
            frames.append(parts[0])
            thread = "?"
        frames.extend(parts[1:])
        parsed = []
        for frame in frames:
            match = FRAME.match(frame)
            if match:
                parsed.append((match["func"], match["file"], int(match["line"] or 0)))
            else:
                parsed.append((frame, "?", 0))
        yield thread, parsed, int(count)


def thread_names(raw: Path) -> dict[str, str]:
    """Thread id -> name, from the ``thread (TID): NAME`` heads of the raw lines."""
    names = {}
    for text in raw.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^thread \((\d+)\): ([^;]*);", text)
        if match:
            names[match[1]] = match[2]
    return names


def group_of(thread: str) -> str:
    """The activity pool has many alike threads; one line for all of them reads better."""
    if thread.startswith("activity"):
        return "activity pool"
    if thread.startswith("ThreadPoolExecutor") or thread.startswith("asyncio"):
        return "default executor"
    return thread


# Where a thread's time goes: the first rule that holds for a sample's stack, a list of
# (function, file) pairs. Order matters: inner parts are tested before what encloses them.
def _has(stack, function: str) -> bool:
    return any(f == function for f, _ in stack)


def _starts(stack, prefix: str) -> bool:
    return any(f.startswith(prefix) for f, _ in stack)


def _in_file(stack, name: str) -> bool:
    return any(file == name for _, file in stack)


def _episode(stack) -> bool:
    return _has(stack, "BackgroundRunner._pass") and not _has(stack, "BackgroundRunner._save_activity_results")


# The host loop thread serves HTTP and runs the episodes, taking turns.
BREAKDOWNS = {
    "host loop": (
        ("episodes: SDK context built from the history (one HistoryEvent per event)",
         lambda s: _episode(s) and _has(s, "DurableOrchestrationContext.__init__")),
        ("episodes: SDK replay of the orchestrator code",
         lambda s: _episode(s) and _starts(s, "Orchestrator.handle")),
        ("episodes: SQLite reads and writes (Python side)",
         lambda s: _episode(s) and _in_file(s, "devhost/storage.py")),
        ("episodes: engine (replay request, scheduling, history, logging)", _episode),
        ("activity results saved", lambda s: _has(s, "BackgroundRunner._save_activity_results")),
        ("requests: Durable HTTP API handlers (the app's SDK client calling its own host)",
         lambda s: _starts(s, "DurableApi.") and not _has(s, "DurableApi.errors")),
        ("requests: app route code and its request/response mapping",
         lambda s: _starts(s, "FunctionRoutes.") or any(file.startswith("routes/") for _, file in s)),
        ("requests: aiohttp server, event loop (parse, dispatch, write, wait)", lambda s: True),
    ),
}


def breakdown(raw: Path, thread: str, rules) -> Counter:
    counts = Counter()
    for name, frames, count in parse(raw):
        if group_of(name) != thread:
            continue
        stack = [(f[0], f[1]) for f in frames]
        for label, rule in rules:
            if rule(stack):
                counts[label] += count
                break
    return counts


def summarise(raw: Path, meta: dict, top: int = 25) -> str:
    total = 0
    by_thread = Counter()
    components = Counter()
    inclusive, self_lines = Counter(), Counter()
    thread_components = defaultdict(Counter)
    for thread, frames, count in parse(raw):
        group = group_of(thread)
        total += count
        by_thread[group] += count
        for name in {component_of(f[1]) for f in frames if not f[1].endswith(SCAFFOLDING)}:
            components[name] += count
            thread_components[group][name] += count
        for function in {(f[0], f[1]) for f in frames}:
            inclusive[function] += count
        if frames:
            leaf = frames[-1]
            self_lines[f"{leaf[0]} ({leaf[1]}:{leaf[2]})"] += count
    if not total:
        return "no samples\n"

    def share(count: int) -> str:
        return f"{100 * count / total:5.1f}%"

    lines = []
    rate, seconds = meta.get("rate"), meta.get("seconds")
    if rate and seconds:
        held = total / (rate * seconds)
        lines.append(f"{total} samples of the GIL holder at {rate}/s over {seconds:.1f}s: "
                     f"the GIL was held {100 * held:.0f}% of the time.")
    else:
        lines.append(f"{total} samples of the GIL holder.")
    if meta.get("workers", 1) > 1:
        lines.append(f"Process 0 of {meta['workers']} only: the other host processes were not sampled.")
    cpu = meta.get("thread_cpu_s_by_tid") or {}
    if cpu:
        names = thread_names(raw)
        per_group = Counter()
        for tid, seconds_used in cpu.items():
            per_group[group_of(names.get(tid, "threads never seen holding the GIL"))] += seconds_used
        all_cpu = sum(per_group.values())
        lines += ["", f"Host CPU during the measurement, by thread (from /proc, includes C code "
                      f"with the GIL released): {all_cpu:.2f} s"]
        for group, used in per_group.most_common():
            lines.append(f"  {group:<22}{used:>8.2f} s  {100 * used / all_cpu:5.1f}%")
    lines += ["", "GIL samples by thread:"]
    for group, count in by_thread.most_common():
        lines.append(f"  {share(count)}  {group}")
    lines += ["", "Inclusive share by component (a sample counts once for each component on its stack):"]
    for name, count in components.most_common(20):
        lines.append(f"  {share(count)}  {name}")
    lines += ["", "Top functions, inclusive:"]
    for (function, filename), count in inclusive.most_common(top + 8):
        if filename.endswith(SCAFFOLDING):
            continue
        lines.append(f"  {share(count)}  {function} ({filename})")
    lines += ["", "Top lines, self (the innermost Python line; a C call counts on its line):"]
    for label, count in self_lines.most_common(top):
        lines.append(f"  {share(count)}  {label}")
    for thread, rules in BREAKDOWNS.items():
        counts = breakdown(raw, thread, rules)
        if not counts:
            continue
        lines += ["", f"Thread {thread}: where its GIL time goes (first matching part of the stack):"]
        for label, _ in rules:
            lines.append(f"  {100 * counts[label] / by_thread[thread]:5.1f}% of thread, "
                         f"{share(counts[label]).strip():>6} of all  {label}")
    for group, counts in sorted(thread_components.items(), key=lambda kv: -by_thread[kv[0]]):
        lines += ["", f"Thread {group} ({share(by_thread[group]).strip()} of samples), by component "
                      "(% of this thread's samples):"]
        for name, count in counts.most_common(10):
            lines.append(f"  {100 * count / by_thread[group]:5.1f}%  {name}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Summarise a py-spy raw profile of the devhost.")
    parser.add_argument("raw", type=Path)
    parser.add_argument("--meta", type=Path, default=None,
                        help="meta.json written by the benchmark (default: beside the raw file)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    meta_path = args.meta or args.raw.with_name("meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    sys.stdout.write(summarise(args.raw, meta, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
