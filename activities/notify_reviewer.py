"""Activity: tell the reviewer a draft is waiting, with the links to act on it.

The only channel so far is the function log; a webhook channel comes later.
"""
import logging

import azure.durable_functions as df

from shared_code.models import ValidationError, validate_instance_id
from shared_code.settings import Settings, load_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

TITLE_LOG_CHARS = 120


@bp.activity_trigger(input_name="request")
def notify_reviewer(request: dict) -> dict:
    """{"instance_id", "topic", "round", "max_rounds", "title", "deadline"} -> channel and links."""
    return send_notice(request, load_settings())


def review_links(instance_id: str, settings: Settings) -> dict:
    # The id ends up in URLs, so only the validated alphabet may get there.
    if not isinstance(instance_id, str):
        raise ValidationError("instance id must be a string")
    validate_instance_id(instance_id)
    base = settings.public_base_url
    return {"status_url": f"{base}/api/hitl/status/{instance_id}",
            "approve_url": f"{base}/api/hitl/approve/{instance_id}"}


def send_notice(request: dict, settings: Settings) -> dict:
    links = review_links(request.get("instance_id"), settings)
    # %r keeps a title with line breaks on one log line.
    log.info("review needed: instance %s round %s of %s, title %r, decide before %s; "
             "status %s ; approve %s",
             request["instance_id"], request.get("round"), request.get("max_rounds"),
             str(request.get("title", ""))[:TITLE_LOG_CHARS], request.get("deadline"),
             links["status_url"], links["approve_url"])
    return {"channel": "log", **links}
