"""Activity: write the draft for one review round (see activities.writer_backends)."""
import azure.durable_functions as df

from activities.writer_backends import PermanentWriterError, draft_content
from shared_code.settings import load_settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def write_draft(request: dict) -> dict:
    """{"topic", "round", "previous_draft", "feedback"} -> {"title", "content", "writer"}.

    A permanent failure (bad key, unknown deployment, content filter) comes back as
    ``{"error", "permanent": true}`` instead of an exception: the orchestrator's retry
    policy would otherwise spend minutes retrying what cannot succeed. Transient failures
    still raise, so that policy retries them.
    """
    try:
        return draft_content(request, load_settings())
    except PermanentWriterError as exc:
        return {"error": str(exc), "permanent": True}
