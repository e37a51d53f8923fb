"""Orchestration versioning, as DurableTask.Core's TaskOrchestrationDispatcher and the
extension's DurableTaskOptions run it: the version an instance gets, and whether this host
runs it (docs/DEVHOST-CONFORMANCE.md, V1-V7)."""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3

import pytest

from devhost.host import HostConfigError
from devhost.testing import wait_until
from devhost.versioning import MISMATCH_OUTPUT, REJECT_RETRY_SECONDS, Versioning, compare_versions
from devhost.history import EventType
from tests.support.http import call

from .conftest import APPS


def app_with(tmp_path, **durable_task):
    """The versioning fixture app with these durableTask settings (None removes one)."""
    folder = tmp_path / "app"
    shutil.copytree(APPS / "versioning", folder)
    host_json = json.loads((folder / "host.json").read_text())
    settings = host_json["extensions"]["durableTask"]
    for key, value in durable_task.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    (folder / "host.json").write_text(json.dumps(host_json))
    return folder


def output_of(host, instance_id):
    host.run_until_idle()
    status = host.status(instance_id)
    return status["runtimeStatus"], status["output"]


# -- V1: VersioningSettings.CompareVersions ----------------------------------------------

@pytest.mark.parametrize("source, target, expected", [
    (None, None, 0), ("", " ", 0), (None, "", 0),
    ("", "1.0", -1), ("1.0", None, 1),            # an empty version is older than any other
    ("1.10", "1.9", 1), ("2.0", "10.0", -1),      # System.Version compares by number
    ("1.0", "1.0.0", -1), ("1.0.0.0", "1.0.0", 1),  # an absent component (-1) is older
    ("1", "2", -1), ("10", "9", -1),              # one component is no System.Version: text
    ("beta", "ALPHA", 1), ("v1", "V1", 0),        # text ignores case
    ("1.0.0-beta", "1.0.0", 1),
])
def test_v1_versions_compare_as_the_dispatcher_compares_them(source, target, expected):
    assert compare_versions(source, target) == expected


# -- V2: host.json -------------------------------------------------------------------------

def test_v2_the_defaults_are_no_version_current_or_older_and_reject():
    assert Versioning.from_durable_task({}) == Versioning(None, "CurrentOrOlder", "Reject")


def test_v2_strategies_are_read_ignoring_case_or_as_their_numbers():
    read = Versioning.from_durable_task({"defaultVersion": 2, "versionMatchStrategy": "strict",
                                         "versionFailureStrategy": "1"})
    assert read == Versioning("2", "Strict", "Fail")


@pytest.mark.parametrize("written, read", [(1.0, "1"), (1.5, "1.5"), (2, "2"), (100.0, "100"),
                                           (True, "True"), ("1.0", "1.0")])
def test_v2_a_default_version_that_is_not_a_string_is_read_as_its_json_text(written, read):
    """The Functions host parses host.json with Newtonsoft and keeps JValue.ToString()."""
    assert Versioning.from_durable_task({"defaultVersion": written}).default_version == read


def test_v2_an_unknown_strategy_is_refused_naming_the_file(tmp_path):
    from devhost import DevHost

    folder = app_with(tmp_path, versionMatchStrategy="Newest")
    with pytest.raises(HostConfigError, match=r"host\.json': extensions.durableTask.versionMatchStrategy "
                                              r"must be one of None, Strict, CurrentOrOlder, got 'Newest'"):
        DevHost(folder, data_dir=tmp_path / "state", local_settings=False)


# -- V3: the version an instance gets --------------------------------------------------

def test_v3_an_instance_gets_default_version_unless_its_starter_names_one(make_host):
    host = make_host("versioning")
    default = host.start("report_version")
    named = host.start("report_version", version="0.9")
    assert output_of(host, default) == ("Completed", "1.0")
    assert output_of(host, named) == ("Completed", "0.9")


def test_v3_the_http_start_takes_a_version_query_and_the_sdk_client_sends_it(make_host):
    host = make_host("versioning")
    host.serve(port=0)
    webhooks = host.base_url + "/runtime/webhooks/durabletask"
    explicit = call("POST", f"{webhooks}/orchestrators/report_version?version=0.8").json["id"]
    empty = call("POST", f"{webhooks}/orchestrators/report_version?version=").json["id"]
    wait_until(lambda: all(host.status(i)["runtimeStatus"] == "Completed" for i in (explicit, empty)))
    assert (host.status(explicit)["output"], host.status(empty)["output"]) == ("0.8", "")


def test_v3_without_default_version_an_instance_has_none(tmp_path, make_host):
    host = make_host(app_with(tmp_path, defaultVersion=None))
    assert output_of(host, host.start("report_version")) == ("Completed", None)


def test_v3_children_get_their_own_version_or_default_version(make_host):
    host = make_host("versioning")
    parent = host.start("parent_with_children", version="0.9")
    assert output_of(host, parent) == ("Completed", {"parent": "0.9", "explicit": "0.5", "default": "1.0"})


def test_v3_continue_as_new_keeps_the_version_and_restart_takes_default_version(make_host):
    host = make_host("versioning")
    counting = host.start("count_down", 2, version="0.7")
    assert output_of(host, counting) == ("Completed", "0.7")
    restarted = host.restart(counting)
    assert output_of(host, restarted) == ("Completed", "1.0")


def test_v3_show_history_leaves_the_version_out(make_host):
    host = make_host("versioning")
    host.serve(port=0)
    parent = host.start("parent_with_children", version="0.9")
    wait_until(lambda: host.status(parent)["runtimeStatus"] == "Completed")
    shown = call("GET", f"{host.base_url}/runtime/webhooks/durabletask/instances/{parent}?showHistory=true").json
    assert all("Version" not in item for item in shown["historyEvents"])
    stored = [e for e in host.history(parent) if "Version" in e]
    assert [e["Version"] for e in stored] == ["0.9", "0.5", None]


# -- V4-V6: whether this host runs an instance -----------------------------------------

def test_v4_a_newer_instance_is_rejected_and_waits_until_a_host_runs_it(tmp_path, make_host, caplog):
    host = make_host("versioning")
    with caplog.at_level(logging.ERROR, logger="devhost"):
        newer = host.start("report_version", version="2.0")
        host.run_until_idle()
        host.advance(seconds=REJECT_RETRY_SECONDS * 3)
    assert host.status(newer)["runtimeStatus"] == "Pending"
    assert caplog.text.count(f"Instance {newer} has version '2.0'") == 1  # said once, not every retry
    assert "versionMatchStrategy CurrentOrOlder) does not run" in caplog.text
    assert "(versionFailureStrategy Reject)" in caplog.text
    # The same state opened by a host of version 2.0 runs it.
    host.close()
    upgraded = make_host(app_with(tmp_path, defaultVersion="2.0"), data_dir=host.data_dir)
    upgraded.advance(seconds=REJECT_RETRY_SECONDS * 5)  # its clock starts where the first one did
    assert output_of(upgraded, newer) == ("Completed", "2.0")


def test_v4_a_rejected_instance_keeps_everything_sent_to_it_in_order(tmp_path, make_host):
    """The whole work item waits: an event sent while the instance is held back is neither
    applied nor lost, and the history keeps its order."""
    host = make_host("versioning")
    waiting = host.start("wait_then_report", version="2.0")
    host.run_until_idle()
    host.advance(seconds=REJECT_RETRY_SECONDS / 2)
    host.raise_event(waiting, "go")
    host.advance(seconds=REJECT_RETRY_SECONDS * 3)
    assert host.status(waiting)["runtimeStatus"] == "Pending"
    host.close()
    upgraded = make_host(app_with(tmp_path, defaultVersion="2.0"), data_dir=host.data_dir)
    upgraded.advance(seconds=REJECT_RETRY_SECONDS * 5)
    assert output_of(upgraded, waiting) == ("Completed", "2.0")
    kinds = [e["EventType"] for e in upgraded.history(waiting)]
    assert kinds.index(EventType.EXECUTION_STARTED) < kinds.index(EventType.EVENT_RAISED)


def test_v4_a_rejected_instance_takes_no_terminate_either(make_host):
    host = make_host("versioning")
    newer = host.start("report_version", version="3.0")
    host.run_until_idle()
    host.terminate(newer, "stop")
    for _ in range(3):
        host.advance(seconds=REJECT_RETRY_SECONDS / 3)
        assert host.status(newer)["runtimeStatus"] == "Pending"


def test_v4_a_hold_ends_when_the_instance_runs_and_never_outlives_it(tmp_path, make_host):
    """No hold is left behind: not by an instance a newer host has run, and not by one
    that was purged while held (a new instance of that id runs at once)."""
    host = make_host("versioning")
    newer = host.start("report_version", version="2.0")
    purged = host.start("report_version", version="2.0")
    host.run_until_idle()
    host.purge(purged)
    again = host.start("report_version", version="1.0", instance_id=purged)
    assert output_of(host, again) == ("Completed", "1.0")
    host.close()
    upgraded = make_host(app_with(tmp_path, defaultVersion="2.0"), data_dir=host.data_dir)
    upgraded.advance(seconds=REJECT_RETRY_SECONDS)
    assert output_of(upgraded, newer) == ("Completed", "2.0")
    with sqlite3.connect(upgraded.store.path) as state:
        assert state.execute("SELECT instance_id FROM held_instances").fetchall() == []


def test_v4_a_held_instance_does_not_keep_the_runner_busy(make_host):
    """Its messages are due, but nothing is offered until the hold ends."""
    host = make_host("versioning")
    newer = host.start("report_version", version="2.0")
    host.run_until_idle()
    now = host.clock.now().timestamp()
    assert host.engine.due_instances() == []
    assert host.engine.next_due() == now + REJECT_RETRY_SECONDS
    assert host.status(newer)["runtimeStatus"] == "Pending"


def test_v5_under_fail_a_newer_instance_fails_with_version_mismatch(tmp_path, make_host):
    host = make_host(app_with(tmp_path, versionFailureStrategy="Fail"))
    newer = host.start("report_version", version="1.1")
    assert output_of(host, newer) == ("Failed", MISMATCH_OUTPUT)
    assert MISMATCH_OUTPUT == "VersionMismatch: Orchestration version did not comply with Worker Versioning"


def test_v5_a_running_instance_is_checked_again_after_a_downgrade(tmp_path, make_host):
    """The check runs before every episode, not only the first: a host rolled back to an
    older defaultVersion fails (or rejects) the instances the newer one started."""
    first = make_host(app_with(tmp_path, defaultVersion="1.5"))
    waiting = first.start("wait_then_report")
    first.run_until_idle()
    first.close()
    older = make_host(app_with(tmp_path / "older", defaultVersion="1.0", versionFailureStrategy="Fail"),
                      data_dir=first.data_dir)
    older.raise_event(waiting, "go")
    assert output_of(older, waiting) == ("Failed", MISMATCH_OUTPUT)


@pytest.mark.parametrize("match, version, runs", [
    ("Strict", "1.0", True), ("Strict", "0.9", False), ("Strict", "", False),
    ("CurrentOrOlder", "0.9", True), ("CurrentOrOlder", "1.0.1", False),
    ("None", "9.9", True),
])
def test_v6_the_match_strategy_decides_which_versions_run(tmp_path, make_host, match, version, runs):
    host = make_host(app_with(tmp_path, versionMatchStrategy=match, versionFailureStrategy="Fail"))
    instance = host.start("report_version", version=version)
    assert output_of(host, instance) == (("Completed", version) if runs else ("Failed", MISMATCH_OUTPUT))


def test_v6_without_default_version_an_instance_with_a_version_is_never_run(tmp_path, make_host):
    """CompareVersions(version, null) is positive, so CurrentOrOlder refuses it."""
    host = make_host(app_with(tmp_path, defaultVersion=None, versionFailureStrategy="Fail"))
    assert output_of(host, host.start("report_version", version="1.0")) == ("Failed", MISMATCH_OUTPUT)
