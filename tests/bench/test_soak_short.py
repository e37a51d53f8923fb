"""The benchmarks still run: a short crash soak must lose nothing, with the host as one
process and as two (where a kill of the first must take the other down with it), and
the lifecycle benchmark must print its figures.

These run the scripts exactly as a person would (``python -m bench.<name>`` from the
repository root in a subprocess, real devhost, real HTTP) at small sizes. They check outcomes and the shape of the printout, never a speed:
performance claims come from the full-size runs in docs/PERFORMANCE.md.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_script(module: str, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    process = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                             text=True, timeout=timeout)
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    assert lines, f"no output; stderr:\n{process.stderr[-2000:]}"
    try:
        summary = json.loads(lines[-1])
    except ValueError:
        raise AssertionError(f"the last line is not JSON:\n{process.stdout[-2000:]}\n"
                             f"stderr:\n{process.stderr[-2000:]}") from None
    return process, summary


@pytest.mark.parametrize("workers", [1, 2])
def test_short_soak_loses_nothing_across_kills(workers):
    process, summary = run_script("bench.soak", "--lifecycles", "20", "--kills", "3",
                                  "--seed", "11", "--concurrency", "5", "--workers", str(workers),
                                  timeout=120)
    assert process.returncode == 0, process.stdout[-3000:]
    assert summary["ok"] is True and summary["failed_checks"] == []
    assert summary["lifecycles"] == 20 and summary["kills"] == 3
    assert summary["host_starts"] == 4  # the first start and one after each kill
    for name in ("instances_lost", "decisions_lost", "decisions_applied_twice", "phantom_decisions",
                 "duplicate_publishes", "missing_publishes", "wrong_final_states", "unfinished",
                 "excess_orphans", "stray_processes"):
        assert summary[name] == 0, (name, summary)
    assert summary["processes_at_kill"] == [workers]  # every kill struck the whole host
    assert summary["completed"] + summary["rejected"] == 20
    assert summary["settings"]["seed"] == 11 and summary["settings"]["workers"] == workers


def test_lifecycle_benchmark_prints_its_settings_and_figures():
    process, summary = run_script("bench.lifecycles", "--n", "20", "--concurrency", "5",
                                  timeout=120)
    assert process.returncode == 0, process.stdout[-3000:]
    out = process.stdout
    assert "settings: mode=lifecycles, n=20, concurrency=5, poll_ms=10.0, workers=1" in out
    assert "machine:  cores=" in out
    assert "lifecycles: 20/20 in" in out and "approve->Completed" in out
    assert summary["lifecycles"] == 20 and summary["failed"] == 0 and summary["errors"] == 0
    assert summary["lifecycles_per_s"] > 0
    for route in ("run", "status", "approve"):
        assert summary["routes"][route]["n"] >= 20
        assert summary["routes"][route]["p50_ms"] > 0 and summary["routes"][route]["p99_ms"] > 0
    assert summary["approve_to_completed"]["n"] == 20
    assert summary["host_peak_rss_mb"] > 0 and summary["host_cpu_ms_per_lifecycle"] > 0
    assert list(summary["host_cpu_s_by_process"]) == ["0/1"]


def test_sqlite_gil_benchmark_times_the_pages_and_a_history_alone_and_beside_a_busy_thread():
    process, summary = run_script("bench.sqlite_gil", "--reviews", "250", "--pages", "8", timeout=120)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "== bench.sqlite_gil: 250 reviews waiting" in process.stdout
    assert summary["reviews"] == 250 and summary["switch_interval_ms"] == pytest.approx(5.0)
    assert summary["row_by_row_alone"]["n"] == summary["at_once_alone"]["n"] == 8
    for key in ("row_by_row_beside_a_busy_thread", "at_once_beside_a_busy_thread",
                "row_by_row_beside_a_busy_thread_0_5_ms", "history_row_by_row_beside_a_busy_thread",
                "history_at_once_beside_a_busy_thread"):
        assert summary[key]["n"] == 2 and summary[key]["max_ms"] >= summary[key]["p50_ms"] > 0
    assert summary["history_events"] > 5  # a waiting review's: started, drafted, notified, ...
    assert summary["history_row_by_row_alone"]["n"] == summary["history_at_once_alone"]["n"] == 8


def test_wal_frames_reports_every_transaction_of_a_lifecycle():
    process, summary = run_script("bench.wal_frames", "--lifecycles", "3", "--together", "20",
                                  timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    callers = [caller for caller, _ in summary["by_transaction"]]
    # start, the episodes, the activity results and the decision each commit once
    assert callers.count("start_instance") == 1 and callers.count("raise_event") == 1
    assert callers.count("complete_activities") == 3 and callers.count("run_episodes") == 5
    assert summary["pages_per_lifecycle"] == sum(pages for _, pages in summary["by_transaction"])
    assert all(pages > 0 for _, pages in summary["by_transaction"])
    # side by side, each start and decision still commits alone, but the 5 episode passes
    # and the 3 activity-result passes each save all 20 lifecycles in one transaction
    assert summary["together_transactions"] == 2 * 20 + 5 + 3
    assert summary["together_pages_per_lifecycle"] < summary["pages_per_lifecycle"]


def test_pending_benchmark_walks_the_whole_list_once():
    process, summary = run_script("bench.pending", "--pending", "45", "--calls", "20",
                                  "--top100-calls", "5", "--load-seconds", "1", "--idle-seconds", "1",
                                  "--approvals", "4", timeout=180)
    assert process.returncode == 0, process.stdout[-3000:]
    assert summary["pending"] == 45 and summary["errors"] == 0 and summary["creation_errors"] == 0
    # Following "continuation" lists every waiting review exactly once.
    assert summary["top100_walk"] == {"distinct": 45, "listed": 45, "pages": 1}
    assert summary["routes"]["pending top=20 (next)"]["n"] == 10
    assert summary["routes"]["approve→applied (loaded)"]["n"] == 4


def test_pending_benchmark_with_copies_in_the_store_lists_them_all_and_they_run():
    process, summary = run_script("bench.pending", "--in-store", "250", "--pending", "10",
                                  "--calls", "4", "--caller-top", "100", "--inbox",
                                  "--load-seconds", "1", "--idle-seconds", "1", "--approvals", "4",
                                  timeout=180)
    assert process.returncode == 0, process.stdout[-3000:]
    assert "wrote 250 copies of a waiting review into the store" in process.stdout
    # The template, its 250 copies and the 10 started over HTTP, each listed once.
    assert summary["in_store"] == 251 and summary["pending"] == 261 and summary["errors"] == 0
    assert summary["top100_walk"] == {"distinct": 261, "listed": 261, "pages": 3}
    assert summary["routes"]["pending top=100 (loaded)"]["n"] > 0
    assert summary["routes"]["inbox first page (inbox phase)"]["n"] > 0
    # Approvals go to reviews started over HTTP and to copies alike (seed 1), and are applied.
    assert summary["routes"]["approve→applied (loaded)"]["n"] == 4


def test_entity_benchmark_applies_every_signal_and_call():
    process, summary = run_script("bench.entities", "--signals", "60", "--entities", "6",
                                  "--orchestrations", "6", timeout=120)
    assert process.returncode == 0, process.stdout[-3000:]
    assert summary["errors"] == 0 and summary["signals"] == 60 and summary["orchestrations"] == 6
    assert summary["routes"]["signal accepted"]["n"] == 60


def test_peer_benchmark_runs_both_trees_the_floor_app_and_the_peer_and_prints_the_ratios():
    process, summary = run_script("bench.vs_peer", "--n", "12", "--threads", "4", "--rounds", "1",
                                  "--starts", "20", "--start-threads", "8",
                                  "--baseline", str(REPO), "--floor", timeout=180)
    assert process.returncode == 0, process.stdout[-3000:]
    out = process.stdout
    assert "devhost_workers=host default" in out and "ratio to the peer" in out
    baseline = next(name for name in summary["runs"] if name not in ("this", "floor", "peer"))
    assert f"this / {baseline}, round by round:" in out
    for subject in ("this", baseline, "floor", "peer"):
        runs = summary["runs"][subject]
        assert len(runs) == 1 and runs[0]["lifecycles"] == 12 and runs[0]["failed"] == 0, runs
        assert runs[0]["approve_to_completed_p99_ms"] is not None
    for subject in ("this", baseline, "floor"):  # the starts: every one reached its reviewer
        assert summary["runs"][subject][0]["starts_per_s"] > 0
        assert summary["runs"][subject][0]["polls_per_start"] >= 1
    assert summary["runs"]["peer"][0]["starts_per_s"] is None
    assert f"this / {baseline}, starts, round by round:" in out
    assert len(summary["summary"]["this"]["ratio_to_peer"]) == 1
    # The floor is the peer's orchestration as an app on this tree's host; it is no baseline.
    assert len(summary["summary"]["floor"]["ratio_to_peer"]) == 1 and "floor" not in summary["summary"]["this_vs"]
    assert "this / floor (the review app against the peer's orchestration on the same host)" in out
    assert len(summary["summary"]["this_vs_floor"]) == 1


def test_every_other_round_of_the_peer_benchmark_runs_its_subjects_in_reverse():
    from bench.vs_peer import round_order

    subjects = [("this", REPO), ("abc1234", REPO)]
    assert [name for name, _ in round_order(subjects, True, 1)] == ["this", "abc1234", "peer"]
    assert [name for name, _ in round_order(subjects, True, 2)] == ["peer", "abc1234", "this"]
    assert [name for name, _ in round_order(subjects, False, 3)] == ["this", "abc1234"]
    assert [name for name, _ in round_order(subjects, False, 4)] == ["abc1234", "this"]
