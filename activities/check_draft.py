"""Activity: check a draft against the deployment's house rules (see
activities.checker_backends). One side effect: at most one request to the model."""
import logging

import azure.durable_functions as df

from activities.checker_backends import check_draft as checked
from shared_code.settings import load_settings

bp = df.Blueprint()
log = logging.getLogger(__name__)

UNEXPECTED = "the checker failed unexpectedly; the function log has the details"


@bp.activity_trigger(input_name="request")
def check_draft(request: dict) -> dict:
    """{"rules", "draft"} -> {"results", "checker", "error"?}. Never raises: a
    check that cannot be made shows "not checked" with the reason, and the review goes on."""
    try:
        return checked(request, load_settings())
    except Exception:  # noqa: BLE001 - a bug or a bad request must not reach the review as a failure
        log.exception("the house-rules check failed")
        return {"results": [], "error": UNEXPECTED}
