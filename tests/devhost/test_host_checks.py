"""Which Host and Origin a served devhost answers: DNS rebinding and cross-site POSTs.

At 8b53147 the devhost answered every Host and every Origin: a page on another site,
through a name of its own rebound to 127.0.0.1, could read /api/hitl/pending (review
links included), a cross-site text/plain form POST reached the handlers, and the Host it
sent came back in statusQueryGetUri and Location. Every test here failed there.

Requests go out with http.client, which sends the Host and Origin given to it as they are.
"""
from __future__ import annotations

import http.client
import json

import pytest

import devhost.__main__ as cli
from devhost import server
from devhost.server import HostPolicy, normalized_allowed_host, split_host

REBOUND = ("evil.example", "evil.example:7071", "127.0.0.1.evil.example", "localhost.evil.example",
           "attacker.localhost.evil.example:80", "0.0.0.0", "192.168.1.20", "[fe80::1]:7071",
           "localhost:7071@evil.example", "evil.example:notaport")
WEBHOOK = "/runtime/webhooks/durabletask"


def request(port: int, method: str, path: str, host: str | None, body: bytes | None = None,
            headers: dict | None = None, address: str = "127.0.0.1"):
    connection = http.client.HTTPConnection(address, port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def listed_instances(port: int) -> list:
    """The instances the Durable API lists, asked for with this host's own name."""
    status, _, body = request(port, "GET", f"{WEBHOOK}/instances", f"127.0.0.1:{port}")
    assert status == 200
    return json.loads(body)


@pytest.fixture
def served(make_host):
    host = make_host("features", clock=None)
    host.serve(port=0)
    return host, int(host.base_url.rsplit(":", 1)[1])


@pytest.fixture
def any_host_served(make_host):
    host = make_host("features", clock=None)
    host.serve("0.0.0.0", 0)
    return host, int(host.base_url.rsplit(":", 1)[1])


# -- Host ----------------------------------------------------------------------------

@pytest.mark.parametrize("host_header", REBOUND)
def test_a_rebound_host_is_refused_with_the_reason(served, host_header):
    _, port = served
    for method, path in (("GET", f"{WEBHOOK}/instances"), ("GET", "/api/client/by-status?status=Running"),
                         ("POST", f"{WEBHOOK}/orchestrators/custom_status")):
        status, headers, body = request(port, method, path, host_header)
        assert status == 403, (host_header, path, body)
        assert headers["Content-Type"].startswith("text/plain")
        text = body.decode()
        assert "Blocked request" in text and "DNS rebinding" in text and "--allowed-host" in text
    assert listed_instances(port) == []  # the refused start never reached the engine


@pytest.mark.parametrize("host_header", ["localhost:{port}", "LOCALHOST:{port}", "127.0.0.1:{port}",
                                         "127.0.0.1", "localhost", "review.localhost:{port}",
                                         "localhost.:{port}", "127.0.0.2:{port}"])
def test_loopback_names_are_answered(served, host_header):
    _, port = served
    status, _, body = request(port, "GET", f"{WEBHOOK}/instances", host_header.format(port=port))
    assert status == 200 and json.loads(body) == []


def test_ipv6_loopback_is_answered(make_host):
    host = make_host("features", clock=None)
    try:
        host.serve("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = int(host.base_url.rsplit(":", 1)[1])
    assert request(port, "GET", f"{WEBHOOK}/instances", f"[::1]:{port}", address="::1")[0] == 200
    assert request(port, "GET", f"{WEBHOOK}/instances", "evil.example", address="::1")[0] == 403


def test_links_carry_the_allowed_host_the_caller_used(served):
    """localhost:PORT works and comes back in the links; only checked hosts ever do."""
    _, port = served
    origin = f"http://localhost:{port}"
    status, headers, body = request(port, "POST", f"{WEBHOOK}/orchestrators/custom_status",
                                    f"localhost:{port}", b"{}", {"Content-Type": "application/json"})
    assert status == 202
    urls = json.loads(body)
    assert urls["statusQueryGetUri"].startswith(f"{origin}{WEBHOOK}/instances/")
    assert headers["Location"] == urls["statusQueryGetUri"]
    # The app's own check-status reply (the SDK builds it from the client binding).
    status, headers, body = request(port, "POST", "/api/client/start/custom_status",
                                    f"localhost:{port}", b"{}", {"Content-Type": "application/json"})
    assert status == 202
    assert json.loads(body)["statusQueryGetUri"].startswith(f"{origin}{WEBHOOK}/instances/")
    assert headers["Location"].startswith(f"{origin}{WEBHOOK}/instances/")


def test_allowed_hosts_from_the_environment_and_the_cli(monkeypatch, make_host):
    monkeypatch.setenv(server.ALLOWED_HOSTS_ENV, "devbox.internal, .tunnel.example")
    host = make_host("features", clock=None)
    host.serve(port=0, allowed_hosts=("review-host",))
    port = int(host.base_url.rsplit(":", 1)[1])
    for allowed in ("devbox.internal", "DEVBOX.INTERNAL:8080", "tunnel.example", "abc.tunnel.example:443",
                    "review-host:7071"):
        status, _, _ = request(port, "POST", f"{WEBHOOK}/orchestrators/custom_status", allowed, b"{}",
                               {"Content-Type": "application/json"})
        assert status == 202, allowed
    for refused in ("devbox.internal.evil.example", "eviltunnel.example", "evil.example"):
        assert request(port, "GET", f"{WEBHOOK}/instances", refused)[0] == 403, refused


def test_build_web_app_takes_allowed_hosts(served):
    """What DevHost.serve can pass on: names added to the loopback ones."""
    host, _ = served
    app = server.build_web_app(host.api, host.functions, allowed_hosts=["ci-runner"])
    policy = app[server.POLICY_KEY]
    assert policy.host_allowed("ci-runner") and policy.host_allowed("localhost")
    assert not policy.host_allowed("evil.example")


def test_listening_on_all_interfaces_answers_any_host(any_host_served):
    _, port = any_host_served
    for host_header in ("evil.example", "192.168.1.20:7071", f"localhost:{port}"):
        assert request(port, "GET", f"{WEBHOOK}/instances", host_header)[0] == 200, host_header
    status, _, body = request(port, "POST", f"{WEBHOOK}/orchestrators/custom_status",
                              "devbox.lan:7071", b"{}", {"Content-Type": "application/json"})
    assert status == 202 and json.loads(body)["statusQueryGetUri"].startswith("http://devbox.lan:7071/")


# -- Origin --------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["https://evil.example", "http://evil.example:7071", "null",
                                    "http://127.0.0.1.evil.example", "file://", "chrome-extension://abc"])
def test_a_cross_site_post_is_refused(served, origin):
    """A form on another site can POST text/plain without a preflight; the browser says
    where it came from, and the devhost refuses it before any handler runs."""
    _, port = served
    for path, body, kind in ((f"{WEBHOOK}/orchestrators/custom_status", b"{}", "application/json"),
                             (f"{WEBHOOK}/orchestrators/custom_status", b"x=1", "text/plain"),
                             ("/api/client/start/custom_status", b"{}", "text/plain")):
        status, headers, text = request(port, "POST", path, f"127.0.0.1:{port}", body,
                                        {"Origin": origin, "Content-Type": kind})
        assert status == 403, (origin, path)
        assert "from another site" in text.decode() and headers["Content-Type"].startswith("text/plain")
    assert listed_instances(port) == []


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}",
                                    "http://localhost:5173", None])
def test_same_origin_local_or_no_origin_posts_pass(served, origin):
    _, port = served
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin.format(port=port)
    status, _, _ = request(port, "POST", f"{WEBHOOK}/orchestrators/custom_status", f"127.0.0.1:{port}",
                           b"{}", headers)
    assert status == 202


def test_a_cross_site_get_is_not_refused_for_its_origin(served):
    """Reading is guarded by the Host check and the browser's same-origin policy; the
    Origin rule is for requests that change something."""
    _, port = served
    status, _, _ = request(port, "GET", f"{WEBHOOK}/instances", f"127.0.0.1:{port}",
                           headers={"Origin": "https://evil.example"})
    assert status == 200


def test_on_all_interfaces_only_the_same_origin_may_post(any_host_served):
    _, port = any_host_served
    cross = request(port, "POST", f"{WEBHOOK}/orchestrators/custom_status", "devbox.lan:7071", b"{}",
                    {"Content-Type": "application/json", "Origin": "https://evil.example"})
    same = request(port, "POST", f"{WEBHOOK}/orchestrators/custom_status", "devbox.lan:7071", b"{}",
                   {"Content-Type": "application/json", "Origin": "http://devbox.lan:7071"})
    assert cross[0] == 403 and same[0] == 202


# -- parsing and the command line ------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("localhost:7071", ("localhost", "7071")), ("[::1]:80", ("::1", "80")), ("Example.COM.", ("example.com", None)),
    ("a:b", (None, None)), ("[::1", (None, None)), ("[::1]x", (None, None)), ("h:1:2", (None, None)),
    ("::1", ("::1", None)), ("", (None, None)), (":7071", (None, None)),
])
def test_split_host(value, expected):
    assert split_host(value) == expected


def test_allowed_host_entries_are_checked():
    assert normalized_allowed_host(" DevBox.LAN:7071 ") == "devbox.lan"
    assert normalized_allowed_host("[fe80::1]") == "fe80::1"
    assert normalized_allowed_host(".Tunnel.example") == ".tunnel.example"
    for bad in ("", "a b", "evil.example/x", "http://x", "a..b", "-x"):
        with pytest.raises(ValueError):
            normalized_allowed_host(bad)
    assert HostPolicy(["*"]).host_allowed("anything.example")


def test_cli_takes_repeated_allowed_hosts_and_gives_them_to_workers():
    args = cli.parse_args([".", "--allowed-host", "devbox.lan", "--allowed-host", ".tunnel.example",
                           "--workers", "2"])
    assert args.allowed_host == ["devbox.lan", ".tunnel.example"]
    forwarded = cli.worker_args(args, 7071)
    assert forwarded[forwarded.index("--allowed-host"):][:4] == [
        "--allowed-host", "devbox.lan", "--allowed-host", ".tunnel.example"]
    with pytest.raises(SystemExit):
        cli.parse_args([".", "--allowed-host", "not a host"])


def test_cli_passes_the_allowed_hosts_to_the_server(monkeypatch, tmp_path):
    served = {}

    class Host:
        def __init__(self, *args, **kwargs):
            self.shard = cli.Shard(0, 1)

        def serve(self, host, port, allowed_hosts=()):
            served["allowed"] = allowed_hosts
            raise OSError("stop here")

        def close(self):
            pass

    monkeypatch.setattr(cli, "DevHost", Host)
    monkeypatch.setattr(cli.logging, "basicConfig", lambda **kwargs: None)
    assert cli.main([str(tmp_path), "--allowed-host", "DevBox.lan"]) == 2
    assert served["allowed"] == ("DevBox.lan",)
