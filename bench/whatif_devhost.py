"""Run the devhost with a proposed change applied from outside, to measure it first.

    python bench/whatif_devhost.py --change fast-timestamps -- . --port 7071 --data DIR

Everything after ``--`` goes to ``python -m devhost``. The benchmarks use this through
``--whatif CHANGE`` (``bench/lifecycles.py --whatif fast-timestamps``), so a change to
devhost/ can be priced with the same benchmark before anyone edits devhost/. Nothing here
is used by the devhost itself, and nothing here should ship: a change that pays off is
made in devhost/ by its owners.

Changes:

- ``fast-timestamps``: the SDK parses every history event's Timestamp (on every replay)
  and the status times (on every client get_status) with ``dateutil.parser.parse``, a
  general-purpose parser. The devhost writes those stamps itself in one fixed ISO 8601
  form, which ``datetime.fromisoformat`` reads about fifty times faster. The change makes
  the SDK try that first and fall back to dateutil for anything else.
- ``quiet-logs``: the host logs one INFO line per function execution; this raises the
  level to WARNING, to price the logging.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fast_timestamps() -> None:
    import azure.durable_functions.models.DurableOrchestrationStatus  # noqa: F401
    import azure.durable_functions.models.history.HistoryEvent  # noqa: F401

    for name in ("azure.durable_functions.models.history.HistoryEvent",
                 "azure.durable_functions.models.DurableOrchestrationStatus"):
        module = sys.modules[name]
        slow = module.dt_parse

        def parse(text, _slow=slow):
            try:
                return datetime.fromisoformat(text)  # 3.11 reads a trailing 'Z' too
            except (TypeError, ValueError):
                return _slow(text)

        module.dt_parse = parse


def quiet_logs() -> None:
    # After devhost's own basicConfig(INFO): wrap it so the level it sets is WARNING.
    original = logging.basicConfig

    def basic_config(**kwargs):
        kwargs["level"] = logging.WARNING
        original(**kwargs)

    logging.basicConfig = basic_config


CHANGES = {"fast-timestamps": fast_timestamps, "quiet-logs": quiet_logs}


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description="Run the devhost with proposed changes applied.")
    parser.add_argument("--change", action="append", choices=sorted(CHANGES), default=[])
    args = parser.parse_args(argv[:split])
    for change in args.change:
        CHANGES[change]()
    from devhost.__main__ import main as devhost_main
    return devhost_main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
