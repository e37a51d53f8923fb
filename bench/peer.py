"""The in-memory Durable Task peer: Microsoft's ``durabletask.testing`` backend running the
same lifecycle shape as a review, for ``bench.vs_peer`` to measure beside the devhost.

The lifecycle: start -> an activity (the draft) -> wait for an external event (the
decision) -> an activity (the publication) -> complete. The orchestrator sets a custom
status once it waits for the decision, which is how a client tells that the draft awaits
review, as a reviewer reads the review's custom status on the devhost.

The backend keeps everything in memory (no persistence) and talks gRPC on loopback to the
SDK's worker and client, as its own tests use it. ``python -m bench.peer --port P`` runs
the backend and the worker in one child process (the host side, like the devhost's
process); the benchmark's client threads drive it from the benchmark process.

``durabletask`` is a benchmark-only dependency (bench/requirements.txt).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

AWAITING = "awaiting_review"
DECISION_EVENT = "decision"


def write_draft(ctx, topic: str) -> dict:
    return {"title": f"On {topic}", "content": f"A short draft about {topic}."}


def publish(ctx, draft: dict) -> dict:
    return {"published": True, "title": draft["title"]}


def review(ctx, topic: str):
    draft = yield ctx.call_activity(write_draft, input=topic)
    ctx.set_custom_status(AWAITING)
    decision = yield ctx.wait_for_external_event(DECISION_EVENT)
    if not (isinstance(decision, dict) and decision.get("approved")):
        return {"published": False}
    return (yield ctx.call_activity(publish, input=draft))


def serve(port: int) -> None:
    """Backend and worker until SIGTERM; prints ``ready`` once both run."""
    from durabletask.testing import create_test_backend
    from durabletask.worker import TaskHubGrpcWorker

    from bench.vs_peer import quiet_logger
    backend = create_test_backend(port=port)
    worker = TaskHubGrpcWorker(host_address=f"127.0.0.1:{port}",
                               logger=quiet_logger("durabletask-worker"))
    worker.add_orchestrator(review)
    worker.add_activity(write_draft)
    worker.add_activity(publish)
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    worker.stop()
    backend.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="the in-memory Durable Task peer's host side")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args(argv).port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
