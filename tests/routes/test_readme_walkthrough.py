"""The README's walk-through with curl, pasted in order into one shell against a served
devhost with the offline writer, must do what the README says it does.

Each ```bash block runs as it is written (with the README's port replaced by the test
host's), in one bash session, so variables set by one example are there for the next.
Before a block runs, every review started so far has settled (its draft awaits review,
or it has ended), as it has by the time a person has read the previous reply. The
```json block after a bash block shows what it prints: it must match one of the replies
(the same keys, the same values; "…" stands for any text, and a "…" key for more keys;
review ids and timestamps need only their shape). A reply shown "a few seconds later" is
waited for by running the block's status request again. A reply that is an error must be
one the README shows.
"""
from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devhost.testing import wait_until
from tests.support.http import call

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Walk-through with curl"
README_BASE = "http://localhost:7071"
REVIEW_ID = re.compile(r"review-\d{8}T\d{12}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)")
SETTLED_STAGES = ("awaiting_review", "escalated")
BLOCK_SECONDS = 60
SHOWN_LATER_SECONDS = 20
POLL_SECONDS = 0.2
END_OF_BLOCK = "__end_of_readme_block__"


def walkthrough_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of the walk-through section, in order: (language, text)."""
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n## ", start)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"^```(\w*)\n(.*?)^```", section, flags=re.M | re.S)


def json_documents(output: str) -> list:
    """Every JSON value printed, in order, whatever text lies between them."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(output):
        if output[at] in "{[":
            try:
                value, end = decoder.raw_decode(output, at)
            except json.JSONDecodeError:
                at += 1
                continue
            documents.append(value)
            at = end
        else:
            at += 1
    return documents


def normalized(text: str, base: str) -> str:
    """The text with review ids and timestamps reduced to their shape."""
    text = text.replace(README_BASE, base)
    return TIMESTAMP.sub("<time>", REVIEW_ID.sub("<review id>", text))


def text_matches(shown: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))
    return re.fullmatch(pattern, actual, flags=re.S) is not None


def mismatch(shown, actual, base: str, where: str = "$"):
    """Why ``actual`` does not match what the README shows; None when it does."""
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r}"
        keys = set(shown) - {"…"}
        if "…" not in shown and set(actual) != keys:
            return f"{where}: keys {sorted(actual)} instead of {sorted(keys)}"
        for key in keys:
            if key not in actual:
                return f"{where}: no {key!r} in {sorted(actual)}"
            problem = mismatch(shown[key], actual[key], base, f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(shown, list):
        if not isinstance(actual, list) or len(actual) != len(shown):
            return f"{where}: expected {len(shown)} item(s), got {actual!r}"
        return next(filter(None, (mismatch(s, a, base, f"{where}[{n}]")
                                  for n, (s, a) in enumerate(zip(shown, actual)))), None)
    if isinstance(shown, str) and isinstance(actual, str):
        if text_matches(shown.replace(README_BASE, base), actual) or text_matches(
                normalized(shown, base), normalized(actual, base)):
            return None
    elif shown == actual and type(shown) is type(actual):
        return None
    return f"{where}: {actual!r} where the README shows {shown!r}"


class Shell:
    """One bash session that runs a block at a time and returns what it printed."""

    def __init__(self, cwd: Path):
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=cwd, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env={**os.environ, "PATH": path})
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def run(self, script: str) -> tuple[str, int]:
        self.process.stdin.write(f"{script}\nprintf '\\n{END_OF_BLOCK} %s\\n' \"$?\"\n")
        self.process.stdin.flush()
        printed, deadline = [], time.monotonic() + BLOCK_SECONDS
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if line.startswith(END_OF_BLOCK):
                return "".join(printed), int(line.split()[1])
            printed.append(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def shell(tmp_path):
    session = Shell(tmp_path)
    yield session
    session.close()


def settled(base: str, review_ids: set) -> bool:
    for review_id in review_ids:
        status = call("GET", f"{base}/api/hitl/status/{review_id}").json
        finished = status["runtimeStatus"] in ("Completed", "Failed", "Terminated")
        if not finished and status["customStatus"].get("stage") not in SETTLED_STAGES:
            return False
    return True


def status_request(script: str):
    """The block's last plain GET (a curl without -X), to run again for a later reply."""
    commands = script.replace("\\\n", " ").splitlines()
    reads = [c for c in commands if c.strip().startswith("curl ") and " -X " not in c]
    return reads[-1] if reads else None


def first_match(shown, documents: list, base: str):
    return next((d for d in documents if mismatch(shown, d, base) is None), None)


def shown_later(shell: Shell, request: str, shown, base: str) -> list:
    """Run the block's status request again until it prints the reply the README shows;
    returns what the last run printed."""
    deadline = time.monotonic() + SHOWN_LATER_SECONDS
    while True:
        documents = json_documents(shell.run(request)[0])
        if first_match(shown, documents, base) is not None or time.monotonic() >= deadline:
            return documents
        time.sleep(POLL_SECONDS)


def test_the_readme_walkthrough_works_when_pasted_in_order(served_host, shell):
    base = served_host.base_url
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    assert [language for language, _ in blocks].count("bash") >= 5, "the walk-through lost its examples"
    started: set = set()
    for index, (language, text) in enumerate(blocks):
        if language != "bash":
            continue
        wait_until(lambda: settled(base, started), timeout=15)
        script = text.replace(README_BASE, base)
        printed, exit_code = shell.run(script)
        assert exit_code == 0, f"block {index} exited {exit_code}:\n{text}\n{printed}"
        started |= set(REVIEW_ID.findall(printed))
        documents = json_documents(printed)
        follows = blocks[index + 1] if index + 1 < len(blocks) else ("", "")
        shown = json.loads(follows[1]) if follows[0] == "json" else None

        errors = [d for d in documents if isinstance(d, dict) and "error" in d and "runtimeStatus" not in d]
        unshown = [e for e in errors if shown is None or mismatch(shown, e, base) is not None]
        assert not unshown, f"block {index} was refused, which the README does not show:\n{text}\n{unshown}"
        if shown is None or first_match(shown, documents, base) is not None:
            continue
        again = status_request(script)
        if again:
            documents = shown_later(shell, again, shown, base)
        assert first_match(shown, documents, base) is not None, (
            f"block {index} printed nothing like the README's reply:\n{text}\n"
            + "\n".join(str(mismatch(shown, d, base)) for d in documents))
    assert started, "the walk-through started no review"
