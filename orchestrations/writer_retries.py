"""What a review (or a writer thread) does with the writer's answer: take the draft, try
again after a pause, or give up with a one-line reason. Pure: no clock, no I/O.

The writer activity reports every failure it understands as data (``{"error", ...}``), so
the orchestrator decides here instead of through an activity retry policy: the pauses are
durable timers that the status can name, and a failure that outlasts them ends the review
with the writer's own one-line reason rather than an exception carrying a stack trace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

# A transient failure (5xx, a timeout, an unusable reply) is tried again this many times
# in all, this far apart.
WRITER_ATTEMPTS = 3
WRITER_RETRY_PAUSE = timedelta(seconds=5)
# A writer that asks to be called back later (429 with a long Retry-After) is waited for,
# up to this long each time and this many times per draft.
WRITER_WAIT_LIMIT = timedelta(hours=1)
WRITER_WAITS = 5

_ACTIVITY_FAILED = re.compile(r"^Activity function '[^']*' failed:\s*")
_ERROR_TYPE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::|$)")


@dataclass(frozen=True)
class WriterTries:
    """How many transient failures and waits this draft has had so far."""
    failures: int = 0
    waits: int = 0


@dataclass(frozen=True)
class NextStep:
    """``pause`` set: try again after it; ``give_up`` set: end with that reason; neither:
    the reply is a draft."""
    tries: WriterTries
    pause: Optional[timedelta] = None
    give_up: Optional[str] = None
    retrying: Optional[str] = None


def next_step(reply: dict, tries: WriterTries) -> NextStep:
    error = reply.get("error")
    if error is None:
        return NextStep(tries)
    if reply.get("permanent"):
        return NextStep(tries, give_up=error)
    asked = reply.get("retry_after_seconds")
    if asked is None:
        tries = WriterTries(tries.failures + 1, tries.waits)
        if tries.failures >= WRITER_ATTEMPTS:
            return NextStep(tries, give_up=f"{error}; gave up after {tries.failures} tries")
        return NextStep(tries, pause=WRITER_RETRY_PAUSE,
                        retrying=f"{error}; trying again in {WRITER_RETRY_PAUSE.total_seconds():g} s")
    tries = WriterTries(tries.failures, tries.waits + 1)
    wait = timedelta(seconds=asked)
    if wait > WRITER_WAIT_LIMIT or tries.waits > WRITER_WAITS:
        return NextStep(tries, give_up=(
            f"{error}; it asked to be called again in {asked:g} s, and the review waits at most "
            f"{WRITER_WAIT_LIMIT.total_seconds():g} s, {WRITER_WAITS} times"))
    return NextStep(tries, pause=wait, retrying=f"the writer asked to wait {asked:g} s ({error})")


def unexpected_failure(exc: BaseException) -> str:
    """One line for a writer activity that raised instead of reporting: the error's type
    only, since its message and the details the host attaches can hold stack traces and
    server paths."""
    first_line = _ACTIVITY_FAILED.sub("", str(exc).split("\n", 1)[0]).strip()
    kind = _ERROR_TYPE.match(first_line)
    name = kind.group(1).rsplit(".", 1)[-1] if kind else type(exc).__name__
    return f"an unexpected error ({name}); the function log has the details"
