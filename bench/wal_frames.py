"""SQLite pages written per HITL lifecycle, by transaction, in the devhost's engine.

Runs lifecycles in process (offline writer, manual clock, no HTTP) with WAL
auto-checkpoints off, and reports how many WAL frames (one per page written) each
transaction of the last lifecycle appended: what a lifecycle costs the disk, and where.
Then it runs --together lifecycles side by side, as a busy host does, where one
transaction saves the episodes (or the activity results) of many instances at once.

  python -m bench.wal_frames [--lifecycles 30] [--together 50]

The last stdout line is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import traceback
from pathlib import Path

from bench import REPO, TASK_HUB

WAL_FRAME_HEADER_BYTES = 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=30,
                        help="lifecycles to run first, so the tables are not empty (default 30)")
    parser.add_argument("--together", type=int, default=50,
                        help="lifecycles then run side by side (default 50)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hitl-wal-"))
    os.environ.update(HITL_WRITER="offline", HITL_PUBLISH_DIR=str(work / "published"))
    os.environ.setdefault("TASKHUB_NAME", TASK_HUB)

    from devhost import DevHost, ManualClock
    from devhost import storage

    host = DevHost(REPO, data_dir=work / "state", clock=ManualClock(), local_settings=False)
    db = host.store._db
    db.execute("PRAGMA wal_autocheckpoint=0")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    wal = Path(host.store.path + "-wal")
    transactions: list[tuple[str, int]] = []
    original = storage.Store.transaction

    @contextlib.contextmanager
    def measured(store):
        before = wal.stat().st_size if wal.exists() else 0
        with original(store) as inside:
            yield inside
        frames = (wal.stat().st_size - before) // (page_size + WAL_FRAME_HEADER_BYTES)
        caller = traceback.extract_stack()[-3].name  # the engine method that wrote
        transactions.append((caller, frames))

    storage.Store.transaction = measured
    try:
        for index in range(args.lifecycles):
            transactions.clear()
            run_lifecycles(host, [f"topic {index}"])
        alone = list(transactions)
        transactions.clear()
        run_lifecycles(host, [f"together {index}" for index in range(args.together)])
        together = list(transactions)
    finally:
        storage.Store.transaction = original
        host.close()
    transactions = alone

    print(f"page size {page_size} B; the last of {args.lifecycles} lifecycles:")
    for caller, frames in transactions:
        print(f"  {caller:<20} {frames:>3} pages")
    total = sum(frames for _, frames in transactions)
    print(f"  {'total':<20} {total:>3} pages in {len(transactions)} transactions")
    together_pages = sum(frames for _, frames in together)
    print(f"{args.together} lifecycles side by side: {together_pages} pages in {len(together)} "
          f"transactions, {together_pages / args.together:.1f} pages per lifecycle")
    print(json.dumps({"page_size": page_size, "pages_per_lifecycle": total,
                      "transactions_per_lifecycle": len(transactions),
                      "by_transaction": transactions, "together": args.together,
                      "together_pages_per_lifecycle": round(together_pages / args.together, 1),
                      "together_transactions": len(together)}))


def run_lifecycles(host, topics: list[str]) -> None:
    """Start one review per topic, approve each draft, and check that all completed."""
    instance_ids = [host.start("hitl_orchestration", {"topic": topic}) for topic in topics]
    host.run_until_idle()
    for instance_id in instance_ids:
        round_ = host.status(instance_id)["customStatus"]["round"]
        host.raise_event(instance_id, "ApprovalEvent", {"approved": True, "round": round_})
    host.run_until_idle()
    for instance_id in instance_ids:
        status = host.status(instance_id)["runtimeStatus"]
        if status != "Completed":
            raise SystemExit(f"instance {instance_id} ended {status}")


if __name__ == "__main__":
    main()
