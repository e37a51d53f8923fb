"""What the README and docs/ say about values the app produces must be what it produces:
who a decision is recorded as, the shape of a review's id, where review links point and what
they carry."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from routes.review_client import new_review_id
from shared_code.review_links import ReviewGrant, sign
from shared_code.review_status import CHANNELS
from shared_code.settings import load_settings

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REVIEW_ID = re.compile(r"review-\d{8}T\d{12}-[0-9a-f]{12}")


def quoted_values(key: str) -> list[tuple[str, str]]:
    """(document, value) for every `"key": "value"` the docs show."""
    pattern = re.compile(rf'"{key}":\s*"([^"]*)"')
    return [(doc.name, value) for doc in DOCS for value in pattern.findall(doc.read_text(encoding="utf-8"))]


def test_the_id_pattern_is_the_shape_the_app_gives():
    assert REVIEW_ID.fullmatch(new_review_id())


def test_documented_decisions_are_recorded_by_channels_the_app_writes():
    shown = quoted_values("by")
    assert shown, "the docs no longer show who decided"
    # A channel, or a signed-in reviewer's name (an e-mail address in the examples).
    wrong = [(doc, by) for doc, by in shown if by not in CHANNELS and "@" not in by and by != "…"]
    assert not wrong, f"decisions are recorded as one of {CHANNELS} or a reviewer's name: {wrong}"


def test_documented_review_ids_have_the_shape_of_new_review_id():
    shown = quoted_values("instanceId")
    assert shown, "the docs no longer show a review id"
    # Whole ids, or ids cut short with "…" after their "review-" prefix.
    wrong = [(doc, value) for doc, value in shown
             if not REVIEW_ID.fullmatch(value) and not (value.startswith("review-") and value.endswith("…"))]
    assert not wrong, f"review ids look like {new_review_id()}: {wrong}"


@pytest.mark.parametrize("doc", ["README.md", "docs/DEPLOYMENT.md"])
def test_the_documented_local_link_base_follows_the_served_port(doc):
    served_on = load_settings({"WEBSITE_HOSTNAME": "localhost:8123"}).public_base_url
    assert served_on == "http://localhost:8123"
    rows = [line for line in (ROOT / doc).read_text(encoding="utf-8").splitlines()
            if line.startswith("| `HITL_PUBLIC_BASE_URL`")]
    assert rows, f"{doc} no longer documents HITL_PUBLIC_BASE_URL"
    for row in rows:
        assert "localhost:7071" not in row, f"links follow the port the app is served on: {row}"


CITED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_test_a_doc_cites_exists(doc):
    """The conformance tables and the reliability notes name the test that tries each
    behaviour; a renamed or removed test must not leave a citation to nothing behind."""
    missing = []
    for path, name in CITED_TEST.findall(doc.read_text(encoding="utf-8")):
        source = ROOT / path
        if not source.is_file() or not re.search(rf"^(async )?def {name}\(", source.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc.name} cites tests that do not exist: {sorted(set(missing))}"


def test_the_documented_review_link_payload_is_what_a_seats_link_carries():
    """docs/SECURITY.md shows a team review's link payload: the fields a link for that
    stage and seat is signed with, no more and no fewer."""
    shown = re.findall(r'`(\{"i": [^`]*\})`', (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8"))
    assert shown, "docs/SECURITY.md no longer shows a link's payload"
    example = json.loads(shown[-1])
    grant = ReviewGrant(example["i"], example["r"], datetime.fromtimestamp(example["e"], tz=timezone.utc),
                        stage=example["s"], seat=example["t"])
    payload = sign(grant, b"k" * 32).split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == example
