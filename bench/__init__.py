"""The benchmarks and the crash soak, one package run from the repository root.

    .venv/bin/python -m bench.vs_peer          # the lifecycle beside the in-memory peer; --baseline DIR
    .venv/bin/python -m bench.lifecycles       # lifecycles/s; --pending; --replay
    .venv/bin/python -m bench.pending          # GET /api/hitl/pending with 10,000 waiting; --in-store
    .venv/bin/python -m bench.load             # a backlog plus a steady mix of every route
    .venv/bin/python -m bench.soak             # SIGKILLs under load: nothing may be lost
    .venv/bin/python -m bench.engine_rounds    # decision cost by round, in process
    .venv/bin/python -m bench.wal_frames       # SQLite pages written per lifecycle
    .venv/bin/python -m bench.state_check      # the start-up check of a large state file
    .venv/bin/python -m bench.analytics        # the analytics route with 100,000 reviews recorded
    .venv/bin/python -m bench.profile_report DIR/devhost.raw

``python -m`` from the repository root puts the root on ``sys.path``, so the scripts import
the devhost, the app's ``shared_code`` and each other by their package names.

The shared parts, one job each:

- ``bench.proc``: what /proc says about processes and the machine;
- ``bench.stats``: percentiles, latency recording, the settings and result printout;
- ``bench.http_client``: the minimal keep-alive HTTP client that times every request;
- ``bench.devhost_process``: a devhost child process (start, kill, stop, its memory and CPU);
- ``bench.review_api``: the app's routes as the benchmarks drive them, and what a status
  reply says, read through the app's own ``ReviewStatus``;
- ``bench.profiling``: py-spy or cProfile on the host for one measured phase;
- ``bench.peer``: the in-memory Durable Task peer's host side (``durabletask``);
- ``bench.backlog``: copies of a waiting review written straight into a stopped host's store.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The task hub of the app's host.json (%TASKHUB_NAME%), for hosts the benchmarks start: a
# checkout need not have the local.settings.json that sets it.
TASK_HUB = "HitlReviewHub"
