"""write_draft as the Python worker runs it: what the worker's loop, which every async
function of the app shares (HTTP routes, notify_reviewer, ...), and its log lines see.

The activity is invoked through Microsoft's Python worker runtime as the devhost drives it
(``manual_host``; devhost/python_worker.py), so the runtime decides, as on Azure, where it
runs: an ``async def`` on the worker's loop, a sync function on the runtime's thread pool.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest

from devhost.activities import inputs as activity_inputs
from devhost.python_worker import succeeded, typed_data_text
from shared_code.models import MAX_FEEDBACK_CHARS, MAX_REVIEW_ATTEMPTS, MAX_TOPIC_CHARS
from tests.support.fake_openai import FakeOpenAI

# A pause of the loop no HTTP route of the app should see behind a draft.
LONGEST_STALL_SECONDS = 0.25
DEPLOYMENT = "gpt-test"


def _invoke_while_ticking(host, request: dict):
    """(the activity's result, the longest the worker's loop went without a turn while it ran)."""
    function = host.registry.activities["write_draft"]
    stop = threading.Event()

    async def ticker() -> float:
        longest, last = 0.0, time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now
        return longest

    ticking = function.worker.submit(ticker())
    time.sleep(0.05)
    response = function.invoke_here(activity_inputs(function, json.dumps(request)))
    stop.set()
    longest = ticking.result(timeout=30)
    assert succeeded(response), response.result.exception.message
    return json.loads(typed_data_text(response.return_value)), longest


def _largest_commented_request() -> dict:
    """Within DraftRequest's limits: the longest topic, MAX_REVIEW_ATTEMPTS feedback items
    of MAX_FEEDBACK_CHARS, and MAX_COMMENTS (50) comments on passages of at most 300 characters
    (MAX_QUOTE_CHARS), each quoting a passage of the draft that the offline writer then
    rewrites (so that writer_backends.answers_for asks passages.quote_state what became
    of it, which compares the quote with the whole new draft word by word)."""
    topic = " ".join(["a"] * (MAX_TOPIC_CHARS // 2))
    feedback, quotes = [], []
    for item in range(MAX_REVIEW_ATTEMPTS):
        words = []
        for passage in range(5):
            marker = f"m{item}x{passage}"
            words += ["a"] * 145 + [marker]
            quotes.append(" ".join(["a"] * 145 + [marker]))
        feedback.append(" ".join(words)[:MAX_FEEDBACK_CHARS])
    comments = [{"id": f"c{n}", "quote": quote, "comment": "Say it in fewer words."}
                for n, quote in enumerate(quotes)]
    return {"topic": topic, "round": MAX_REVIEW_ATTEMPTS, "previous_draft": {"title": "Tides", "content": "x"},
            "feedback": feedback, "comments": comments}


def test_the_offline_writer_with_the_largest_allowed_input_holds_the_workers_loop_no_more_than_a_moment(
        manual_host):
    """The offline writer's work grows with its input: with the largest one DraftRequest
    accepts (50 comments whose quotes it compares with the new draft word by word) it takes
    seconds of CPU. As a sync function it runs on a thread of the runtime's pool and the
    loop keeps its turns (the GIL is handed over every few ms); drafted on the worker's
    loop, every HTTP route, notice and entity batch of the worker would wait for it."""
    request = _largest_commented_request()
    result, longest = _invoke_while_ticking(manual_host, request)
    assert result["writer"] == "offline" and len(result["answers"]) == 50
    assert longest < LONGEST_STALL_SECONDS, f"the worker's loop stood still for {longest:.2f} s"


@pytest.fixture
def model_env(monkeypatch, manual_host):
    """The model path (Azure OpenAI with a key) on a local server, set once the app is
    loaded (the activity reads its settings on every call)."""
    with FakeOpenAI(deployments={DEPLOYMENT}) as server:
        monkeypatch.delenv("HITL_WRITER")
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", DEPLOYMENT)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-7f3e9c1d5b")
        monkeypatch.setenv("HITL_WRITER_TIMEOUT_SECONDS", "5")
        yield server


def test_the_model_writers_log_lines_are_told_by_the_invocation_they_belong_to(manual_host, model_env):
    """The worker tells which invocation a log line belongs to (the Functions host files it
    under that invocation, Application Insights under its operation) from what the runtime
    sets where the function runs: ``invocation_id_cv`` and the context's thread-local
    invocation id, on the thread of its pool that runs a sync function. The writer's lines
    ("writer drafted round ...", "writer reply unusable ...") must carry it: a thread the
    runtime does not run the function on (``run_in_executor`` does not carry the context
    over) would send them out as nobody's."""
    from azure_functions_runtime import invocation_id_cv
    from azure_functions_runtime.bindings.context import _invocation_id_local

    seen: list[tuple[str, object]] = []

    class Attribution(logging.Handler):
        def emit(self, record):
            seen.append((record.getMessage(), invocation_id_cv.get()
                         or getattr(_invocation_id_local, "invocation_id", None)))

    handler = Attribution(logging.INFO)
    logger = logging.getLogger("activities.writer_backends")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result, _ = _invoke_while_ticking(manual_host, {"topic": "Tide pools", "round": 1,
                                                        "previous_draft": None, "feedback": []})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert result["writer"] == "azure"
    drafted = [(message, invocation) for message, invocation in seen if message.startswith("writer drafted")]
    assert len(drafted) == 1
    assert drafted[0][1] is not None, "the writer's log line is attributed to no invocation"
