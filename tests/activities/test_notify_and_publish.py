"""notify_reviewer and publish_content, called as the Functions host would."""
import json
import logging
import threading

import pytest

import activities.notify_reviewer as notify_module
import activities.publish_content as publish_module
from shared_code.models import ValidationError

notify_reviewer = notify_module.notify_reviewer._function.get_user_function()
publish_content = publish_module.publish_content._function.get_user_function()

NOTICE = {"instance_id": "review-42", "topic": "Tide pools", "round": 2, "max_rounds": 3,
          "title": "Rock pools\nat low tide", "deadline": "2026-11-27T09:00:00+00:00"}
APPROVED = {"instance_id": "review-42", "title": "Rock pools at low tide",
            "content": "Anemones wait for the sea.", "rounds": 2}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("HITL_PUBLIC_BASE_URL", "WEBSITE_HOSTNAME", "HITL_WRITER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HITL_PUBLISH_DIR", str(tmp_path / "published"))


def test_notify_returns_and_logs_the_review_links(monkeypatch, caplog):
    monkeypatch.setenv("HITL_PUBLIC_BASE_URL", "https://hitl.example.com/")
    caplog.set_level(logging.INFO, logger="activities.notify_reviewer")

    result = notify_reviewer(NOTICE)

    assert result == {"channel": "log",
                      "status_url": "https://hitl.example.com/api/hitl/status/review-42",
                      "approve_url": "https://hitl.example.com/api/hitl/approve/review-42"}
    [record] = [r for r in caplog.records if r.name == "activities.notify_reviewer"]
    line = record.getMessage()
    assert "\n" not in line
    assert result["status_url"] in line and result["approve_url"] in line
    assert "round 2 of 3" in line and NOTICE["deadline"] in line


def test_notify_defaults_to_the_local_host():
    assert notify_reviewer(NOTICE)["status_url"] == "http://localhost:7071/api/hitl/status/review-42"


@pytest.mark.parametrize("instance_id", ["../etc", "a/b", "", None, 42])
def test_notify_refuses_ids_that_would_bend_the_urls(instance_id):
    with pytest.raises(ValidationError):
        notify_reviewer({**NOTICE, "instance_id": instance_id})


def test_publish_writes_the_record(tmp_path):
    result = publish_content(APPROVED)

    location = tmp_path / "published" / "review-42.json"
    assert result["location"] == str(location)
    assert result["already_published"] is False
    record = json.loads(location.read_text(encoding="utf-8"))
    assert record == {**APPROVED, "published_at": result["published_at"]}
    assert result["published_at"].endswith("+00:00")


def test_publish_twice_publishes_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="activities.publish_content")
    first = publish_content(APPROVED)
    second = publish_content({**APPROVED, "content": "A retried activity's content."})

    assert second == {**first, "already_published": True}
    folder = tmp_path / "published"
    assert [p.name for p in folder.iterdir()] == ["review-42.json"]
    assert json.loads((folder / "review-42.json").read_text())["content"] == APPROVED["content"]
    assert "already published" in caplog.text


def test_concurrent_publishes_create_one_record(tmp_path):
    start = threading.Barrier(8)
    results = []

    def publish_once():
        start.wait()
        results.append(publish_content(APPROVED))

    threads = [threading.Thread(target=publish_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r["already_published"] for r in results) == [False] + [True] * 7
    assert len({r["published_at"] for r in results}) == 1
    assert [p.name for p in (tmp_path / "published").iterdir()] == ["review-42.json"]


@pytest.mark.parametrize("instance_id", ["../escaped", "/tmp/abs", "a/../../b", ".hidden"])
def test_publish_refuses_path_traversal(tmp_path, instance_id):
    with pytest.raises(ValidationError):
        publish_content({**APPROVED, "instance_id": instance_id})
    assert not any(p.suffix == ".json" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("change", [{"title": ""}, {"content": None}, {"rounds": 0}, {"rounds": "2"}])
def test_publish_validates_the_content(change):
    with pytest.raises(ValidationError):
        publish_content({**APPROVED, **change})


def test_publish_does_not_overwrite_a_foreign_file(tmp_path):
    folder = tmp_path / "published"
    folder.mkdir()
    (folder / "review-42.json").write_text("not a record")
    with pytest.raises(RuntimeError, match="not a published record"):
        publish_content(APPROVED)
    assert (folder / "review-42.json").read_text() == "not a record"
