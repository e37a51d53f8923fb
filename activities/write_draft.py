"""Activity: write the draft for one review round (see activities.writer_backends)."""
import azure.durable_functions as df

from activities.writer_backends import PermanentWriterError, TransientWriterError, WriterAskedToWait, draft_content
from shared_code.settings import load_settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def write_draft(request: dict) -> dict:
    """{"topic", "round", "previous_draft", "feedback", "comments"?} -> {"title", "content",
    "writer", "changes", "answers"}: the draft, the writer's list of changes, and its answer
    to each comment on a passage (with what became of the quote in the new draft).

    Every failure the writer understands comes back as data, never as an exception, so
    the orchestrator decides what to do (orchestrations/writer_retries.py) and the review
    shows a one-line reason: ``{"error", "permanent": true}`` when retrying cannot help
    (bad key, unknown deployment, content filter), ``{"error", "retry_after_seconds"}``
    when the service said when to call again, ``{"error"}`` for a transient failure (5xx,
    timeout, unusable reply) worth another try.
    """
    try:
        return draft_content(request, load_settings())
    except PermanentWriterError as exc:
        return {"error": str(exc), "permanent": True}
    except WriterAskedToWait as exc:
        return {"error": str(exc), "retry_after_seconds": round(exc.seconds, 3)}
    except TransientWriterError as exc:
        return {"error": str(exc)}
