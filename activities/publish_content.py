"""Activity: publish approved content as <HITL_PUBLISH_DIR>/<instance_id>.json.

Durable Functions runs activities at least once, so publishing is idempotent:
the record is written to a temporary file in <HITL_PUBLISH_DIR>/.staging and
hard-linked into place, which either creates the complete file or fails because
it already exists. The staging folder holds only writes in flight and what a
killed run left there, so sweeping it stays cheap however much is published.
"""
import json
import logging
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import azure.durable_functions as df

from shared_code.models import Draft, ValidationError, validate_instance_id
from shared_code.settings import Settings, load_settings

log = logging.getLogger(__name__)
bp = df.Blueprint()

STALE_TEMP_SECONDS = 60
STAGING_FOLDER = ".staging"


@bp.activity_trigger(input_name="request")
def publish_content(request: dict) -> dict:
    """{"instance_id", "title", "content", "rounds"} -> {"published_at", "location", "already_published"}.

    A failure the disk or the network causes (no space left, a share that went away) comes
    back as ``{"error": reason}``, so the orchestrator can show it and try again later;
    bad input still raises.
    """
    try:
        return publish(request, load_settings())
    except OSError as exc:
        reason = f"the publish folder cannot be written: {exc.strerror or type(exc).__name__}"
        log.warning("publishing %s failed: %s", request.get("instance_id"), reason)
        return {"error": reason}


def publish(request: dict, settings: Settings) -> dict:
    instance_id = request.get("instance_id")
    if not isinstance(instance_id, str):
        raise ValidationError("instance id must be a string")
    validate_instance_id(instance_id)
    draft = Draft.from_json({"title": request.get("title"), "content": request.get("content")})
    rounds = request.get("rounds")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValidationError("'rounds' must be a positive integer")

    folder = Path(settings.publish_dir).resolve()
    staging = folder / STAGING_FOLDER
    staging.mkdir(parents=True, exist_ok=True)
    target = folder / f"{instance_id}.json"
    _remove_stale_temp_files(staging)
    record = {"instance_id": instance_id, **draft.to_json(), "rounds": rounds,
              "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if _create_exclusively(target, record, staging):
        log.info("published %s (%d rounds) to %s", instance_id, rounds, target)
        return {"published_at": record["published_at"], "location": str(target),
                "already_published": False}
    existing = _read_record(target)
    log.info("%s was already published at %s; not publishing again", instance_id,
             existing["published_at"])
    return {"published_at": existing["published_at"], "location": str(target),
            "already_published": True}


def _create_exclusively(target: Path, record: dict, staging: Path) -> bool:
    """Write ``record`` to ``target`` unless it exists; readers never see a partial file."""
    fd, temp_name = tempfile.mkstemp(dir=staging, prefix=f"{target.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as temp:
            json.dump(record, temp, ensure_ascii=False, indent=2)
            temp.flush()
            os.fsync(temp.fileno())
        os.link(temp_name, target)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(temp_name)


def _remove_stale_temp_files(staging: Path) -> None:
    """Drop temp files that runs killed mid-write left behind, for any instance.

    Only old ones: a younger file may belong to a run still going.
    """
    cutoff = time.time() - STALE_TEMP_SECONDS
    with os.scandir(staging) as entries:
        for leftover in entries:
            try:
                if leftover.name.endswith(".tmp") and leftover.stat().st_mtime < cutoff:
                    os.unlink(leftover.path)
            except FileNotFoundError:
                pass


def _read_record(target: Path) -> dict:
    try:
        record = json.loads(target.read_text(encoding="utf-8"))
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("published_at"), str):
        raise RuntimeError(f"{target} exists but is not a published record; "
                           "move it away to publish again")
    return record
