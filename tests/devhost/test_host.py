"""Host configuration: host.json and local.settings.json, read as the Functions host does."""
from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest

from devhost.host import (HostConfig, HostConfigError, default_max_activities, listening_port, loopback_netloc,
                          load_local_settings, read_host_json)
from tests.support.http import call

from .conftest import APPS


def write_host_json(folder, http=None, durable=None):
    extensions = {"http": http or {}, "durableTask": durable or {}}
    (folder / "host.json").write_text(json.dumps({"version": "2.0", "extensions": extensions}))


def test_host_json_resolves_percent_variables_in_the_hub_name(tmp_path):
    write_host_json(tmp_path, {"routePrefix": "v1"}, {"hubName": "%HUB%Tasks"})
    config = read_host_json(tmp_path, env={"HUB": "Orders"})
    assert config.hub_name == "OrdersTasks" and config.route_prefix == "v1"


def test_host_json_without_a_hub_name_falls_back_to_the_extensions_default(tmp_path):
    assert read_host_json(tmp_path, env={}) == HostConfig(max_activities=default_max_activities({}))
    write_host_json(tmp_path, durable={"maxConcurrentActivityFunctions": 3})
    assert read_host_json(tmp_path, env={}).hub_name == "TestHubName"
    assert read_host_json(tmp_path, env={"WEBSITE_SITE_NAME": "mysite"}).hub_name == "mysite"


def test_a_hub_name_naming_a_setting_that_is_not_set_is_refused(tmp_path):
    """The Durable extension replaces %NAME% only when the setting has a value
    (DurableTaskOptions.ResolveAppSettingOptions); otherwise the name stays '%NAME%', which
    its storage provider refuses. Before, the devhost quietly used TestHubName instead, so
    `python -m devhost .` and `make run` kept their reviews in different task hubs."""
    write_host_json(tmp_path, durable={"hubName": "%MISSING%"})
    with pytest.raises(HostConfigError, match=r"hubName '%MISSING%' names the app setting MISSING, "
                                              r"which is not set .*: set MISSING in local.settings.json"):
        read_host_json(tmp_path, env={"WEBSITE_SITE_NAME": "mysite"})
    write_host_json(tmp_path, durable={"hubName": "%EMPTY%"})
    with pytest.raises(HostConfigError, match="A non-empty HubName configuration is required"):
        read_host_json(tmp_path, env={"EMPTY": ""})


def test_the_port_is_the_option_else_PORT_else_local_settings_else_7071(tmp_path):
    """Before, the port was --port or 7071: PORT and local.settings.json's
    Host.LocalHttpPort (which func start reads) were ignored."""
    assert listening_port(None, tmp_path, env={}) == 7071
    (tmp_path / "local.settings.json").write_text(json.dumps({"Host": {"LocalHttpPort": 7075}}))
    assert listening_port(None, tmp_path, env={}) == 7075
    assert listening_port(None, tmp_path, env={"PORT": "7392"}) == 7392
    assert listening_port(7400, tmp_path, env={"PORT": "7392"}) == 7400


@pytest.mark.parametrize("port, local_port, named", [("abc", None, "PORT"), ("70000", None, "PORT"),
                                                    ("", "x", "Host.LocalHttpPort")])
def test_a_port_that_is_no_port_number_is_refused_naming_where_it_came_from(tmp_path, port, local_port, named):
    (tmp_path / "local.settings.json").write_text(json.dumps({"Host": {"LocalHttpPort": local_port}}))
    with pytest.raises(HostConfigError, match=rf"{named} must be a port number \(0 to 65535\)"):
        listening_port(None, tmp_path, env={"PORT": port})


def test_local_settings_fill_the_environment_but_never_override_it(tmp_path):
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"A": "from file", "B": "from file", "C": 3}}))
    env = {"B": "already set"}
    applied = load_local_settings(tmp_path, env)
    assert sorted(applied) == ["A", "C"]
    assert env == {"A": "from file", "B": "already set", "C": "3"}


def test_settings_files_with_a_byte_order_mark_are_read(tmp_path):
    """Editors on Windows save one; the host's File.ReadAllText drops it."""
    (tmp_path / "local.settings.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"Values": {"A": "1"}}).encode())
    (tmp_path / "host.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(
        {"version": "2.0", "extensions": {"durableTask": {"hubName": "BomHub"}}}).encode())
    env = {}
    assert load_local_settings(tmp_path, env) == ["A"]
    assert read_host_json(tmp_path, env).hub_name == "BomHub"


def test_a_malformed_local_settings_file_names_the_file_and_the_position(tmp_path):
    text = '{"Values": {"A": 1,}}'
    (tmp_path / "local.settings.json").write_text(text)
    with pytest.raises(ValueError) as parsed:  # where this Python's JSON parser puts the fault
        json.loads(text)
    where = rf"\(line 1, column {parsed.value.colno}\)"
    with pytest.raises(HostConfigError, match=rf"local\.settings\.json': .* {where}"):
        load_local_settings(tmp_path, {})


def test_empty_route_prefix_serves_functions_at_the_root(make_host, tmp_path, monkeypatch):
    app_dir = tmp_path / "app"
    shutil.copytree(APPS / "settings", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    write_host_json(app_dir, {"routePrefix": ""}, {"hubName": "%FIXTURE_HUB%"})
    monkeypatch.setenv("FIXTURE_HUB", "RootHub")
    monkeypatch.setenv("FIXTURE_GREETING", "hi")
    host = make_host(app_dir, clock=None)
    host.serve(port=0)
    reply = call("GET", f"{host.base_url}/settings/ada")
    assert reply.status == 200
    assert reply.json["hub"] == "RootHub" and reply.json["greeting"] == "hi"
    assert call("GET", f"{host.base_url}/v1/settings/ada").status == 404
    assert (host.data_dir / "RootHub.sqlite").is_file()


def test_a_malformed_host_json_names_the_file_and_the_position(tmp_path):
    from devhost.host import HostConfigError

    (tmp_path / "host.json").write_text('{"version": "2.0"}\n{"version": "2.0"}\n')
    with pytest.raises(HostConfigError, match=r"host\.json': Extra data \(line 2, column 1\)"):
        read_host_json(tmp_path)


def test_a_durable_task_scheduler_host_json_is_read(tmp_path):
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"durableTask": {
        "hubName": "Hub", "storageProvider": {"type": "azureManaged",
                                              "connectionStringName": "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"}}}}))
    config = read_host_json(tmp_path, env={})
    assert config.hub_name == "Hub" and config.storage_provider == "azureManaged"


def test_a_host_serves_once(make_host, monkeypatch):
    """A second serve() would leave the first server and runner running past close()."""
    monkeypatch.setenv("FIXTURE_HUB", "ServesOnceHub")  # the app's host.json names %FIXTURE_HUB%
    host = make_host("settings", clock=None)
    base = host.serve(port=0)
    with pytest.raises(RuntimeError, match=f"already serving at {base}"):
        host.serve(port=0)


def test_activities_run_10_per_processor_at_a_time_unless_host_json_or_the_consumption_plan_says(tmp_path):
    """R32: AzureStorageDurabilityProviderFactory's default maxConcurrentActivityFunctions is
    10 on the Consumption plan and 10 * Environment.ProcessorCount elsewhere (Core Tools
    included). Before, the devhost ran 10 whatever the machine."""
    processors = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    write_host_json(tmp_path)
    assert read_host_json(tmp_path, env={}).max_activities == 10 * processors
    assert read_host_json(tmp_path, env={"WEBSITE_SKU": "Dynamic"}).max_activities == 10
    assert read_host_json(tmp_path, env={"CONTAINER_NAME": "c1"}).max_activities == 10
    assert read_host_json(tmp_path, env={"CONTAINER_NAME": "c1", "WEBSITE_INSTANCE_ID": "i"}
                          ).max_activities == 10 * processors  # App Service, not Consumption
    assert read_host_json(tmp_path, env={"WEBSITE_SKU": "ElasticPremium"}).max_activities == 10 * processors
    write_host_json(tmp_path, durable={"maxConcurrentActivityFunctions": 3})
    assert read_host_json(tmp_path, env={"WEBSITE_SKU": "Dynamic"}).max_activities == 3
    write_host_json(tmp_path, durable={"maxConcurrentActivityFunctions": 0})  # DurableTaskOptions.Validate
    with pytest.raises(HostConfigError, match="MaxConcurrentActivityFunctions must be a positive integer value"):
        read_host_json(tmp_path, env={})


@pytest.mark.parametrize("host, netloc", [
    ("127.0.0.1", "127.0.0.1:7071"), ("0.0.0.0", "127.0.0.1:7071"), ("::", "[::1]:7071"), ("::1", "[::1]:7071"),
    ("10.0.0.4", "10.0.0.4:7071"),
])
def test_the_host_reaches_its_own_server_through_loopback_when_bound_to_every_interface(host, netloc):
    """What an activity's durable client binding names as rpcBaseUrl (conformance C6)."""
    assert loopback_netloc(host, 7071) == netloc


def test_the_servers_loop_is_closed_when_it_stops_and_when_it_cannot_listen():
    """The host's loop is closed by its own thread once nothing runs on it: left open, the
    collector would close it later, possibly after finalizing its wake-up socket, and
    report 'Invalid file descriptor: -1' from the loop's __del__."""
    from aiohttp import web

    from devhost.server import ServerThread

    serving = ServerThread(web.Application(), "127.0.0.1", 0)
    port = serving.start()
    try:
        refused = ServerThread(web.Application(), "127.0.0.1", port)
        with pytest.raises(OSError):
            refused.start()
        refused._thread.join(timeout=10)
        assert refused.loop.is_closed()
    finally:
        serving.stop()
    assert serving.loop.is_closed()


def test_a_stopping_server_cancels_a_request_still_running_after_its_grace():
    """A request in flight (a long poll) gets the server's grace to finish, then is cut
    off, so that stopping the host never outlasts ServerThread.stop's own wait (aiohttp
    would wait 60 s, and the host's close failed with a TimeoutError after 10)."""
    import threading
    import time
    import urllib.request

    from aiohttp import web

    from devhost.server import SHUTDOWN_GRACE_SECONDS, STOP_SECONDS, ServerThread

    assert 2 * SHUTDOWN_GRACE_SECONDS < STOP_SECONDS  # a handler's wait, then its cancelled end
    began = threading.Event()

    async def slow(request):
        began.set()
        await asyncio.sleep(60)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = ServerThread(app, "127.0.0.1", 0, shutdown_grace=0.5)
    port = server.start()
    outcome = []

    def call():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/slow", timeout=30).read()
            outcome.append("answered")
        except Exception as exc:  # noqa: BLE001 - the connection is cut, as expected
            outcome.append(type(exc).__name__)

    caller = threading.Thread(target=call)
    caller.start()
    assert began.wait(10)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    assert server.loop.is_closed()
    caller.join(10)
    assert outcome and outcome != ["answered"]
