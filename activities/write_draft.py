"""Activity: write the draft for one review round (see activities.writer_backends)."""
import azure.durable_functions as df

from activities.writer_backends import PermanentWriterError, WriterAskedToWait, draft_content
from shared_code.settings import load_settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def write_draft(request: dict) -> dict:
    """{"topic", "round", "previous_draft", "feedback"} -> {"title", "content", "writer"}.

    A permanent failure (bad key, unknown deployment, content filter) comes back as
    ``{"error", "permanent": true}`` instead of an exception: the orchestrator's retry
    policy would otherwise spend minutes retrying what cannot succeed. Transient failures
    still raise, so that policy retries them, except when the service said when to call
    again: ``{"error", "retry_after_seconds"}`` lets the orchestrator wait that long.
    """
    try:
        return draft_content(request, load_settings())
    except PermanentWriterError as exc:
        return {"error": str(exc), "permanent": True}
    except WriterAskedToWait as exc:
        return {"error": str(exc), "retry_after_seconds": round(exc.seconds, 3)}
