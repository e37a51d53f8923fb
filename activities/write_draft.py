"""Activity: write the draft for one review round (see activities.writer_backends)."""
import azure.durable_functions as df

from activities.writer_backends import draft_content
from shared_code.settings import load_settings

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def write_draft(request: dict) -> dict:
    """{"topic", "round", "previous_draft", "feedback"} -> {"title", "content", "writer"}."""
    return draft_content(request, load_settings())
