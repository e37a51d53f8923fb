"""Activity: write the draft for one review round (see activities.writer_backends)."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import azure.durable_functions as df

from activities.writer_backends import PermanentWriterError, TransientWriterError, WriterAskedToWait, draft_content
from shared_code.settings import Settings, load_settings

bp = df.Blueprint()

# A model is called from threads of the writer's own: its calls take seconds, and on the
# loop's default threads they would hold back the notices sent to channels from there.
MODEL_THREADS = ThreadPoolExecutor(thread_name_prefix="writer")


@bp.activity_trigger(input_name="request")
async def write_draft(request: dict) -> dict:
    """{"topic", "round", "previous_draft", "feedback", "comments"?} -> {"title", "content",
    "writer", "changes", "answers"}: the draft, the writer's list of changes, and its answer
    to each comment on a passage (with what became of the quote in the new draft).

    The offline writer waits on nobody and drafts on the worker's loop, as a function the
    worker runs there; a model is called from a thread, since its client blocks.

    Every failure the writer understands comes back as data, never as an exception, so
    the orchestrator decides what to do (orchestrations/writer_retries.py) and the review
    shows a one-line reason: ``{"error", "permanent": true}`` when retrying cannot help
    (bad key, unknown deployment, content filter), ``{"error", "retry_after_seconds"}``
    when the service said when to call again, ``{"error"}`` for a transient failure (5xx,
    timeout, unusable reply) worth another try.
    """
    settings = load_settings()
    if settings.writer_backend == "offline":
        return draft_or_reason(request, settings)
    return await asyncio.get_running_loop().run_in_executor(MODEL_THREADS, draft_or_reason, request, settings)


def draft_or_reason(request: dict, settings: Settings) -> dict:
    try:
        return draft_content(request, settings)
    except PermanentWriterError as exc:
        return {"error": str(exc), "permanent": True}
    except WriterAskedToWait as exc:
        return {"error": str(exc), "retry_after_seconds": round(exc.seconds, 3)}
    except TransientWriterError as exc:
        return {"error": str(exc)}
