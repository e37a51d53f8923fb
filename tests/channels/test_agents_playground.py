"""A Teams card decided end to end through Microsoft's Agents Playground (the npm package
@microsoft/m365agentsplayground, installed by `make playground`): it installs the app in
its mock personal chat, shows the card the bot sends proactively, and posts the card's
Action.Execute to the bot as Teams would. The Playground sends no tokens, so the app runs
with HITL_TEAMS_ALLOW_ANONYMOUS=true on loopback, as Microsoft's own samples do."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest

from devhost.testing import wait_until
from tests.support.http import call

from .test_two_way_decisions import status

PLAYGROUND = Path(__file__).resolve().parents[2] / ".playground" / "node_modules" / ".bin" / "agentsplayground"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def playground(served_host, monkeypatch, tmp_path):
    if not PLAYGROUND.exists():
        pytest.skip("the Agents Playground is not installed: run `make playground` (npm)")
    monkeypatch.setenv("HITL_TEAMS_ALLOW_ANONYMOUS", "true")
    port = free_port()
    log = (tmp_path / "playground.log").open("w")
    process = subprocess.Popen([str(PLAYGROUND), "-e", f"{served_host.base_url}/api/messages", "-c", "msteams",
                                "-p", str(port), "--dt"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/_internal/v1/config"), timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _answers(url: str) -> bool:
    try:
        return call("GET", url, timeout=2).status == 200
    except OSError:
        return False


async def approve_the_card(playground: str, base: str, chat: str, user: str) -> tuple[str, dict]:
    """Start a review for the Playground's user, wait for its card in the Playground's chat,
    and click Approve there; the review id and the card the bot answered with."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{playground}/_ws_conversation/v1/conversations/stream") as stream:
            async with session.post(f"{base}/api/hitl/run", json={"topic": "Playground", "review": {"stages": [
                    {"name": "editor", "reviewers": ["user:alexw@example.com"]}]}}) as started:
                instance_id = (await started.json())["instanceId"]
            while True:
                shown = json.loads((await asyncio.wait_for(stream.receive(), 20)).data)
                cards = [a["content"] for a in (shown.get("message") or {}).get("attachments") or []]
                approve = next((a for c in cards for a in c.get("actions", []) if a.get("verb") == "approve"), None)
                if approve and approve["data"]["review"] == instance_id:
                    break
            click = {"name": "adaptiveCard/action", "from": {"id": user}, "conversation": {"id": chat},
                     "replyToId": shown["message"]["messageId"],
                     "value": {"action": {"type": "Action.Execute", "verb": "approve", "data": approve["data"]},
                               "trigger": "manual"}}
            async with session.post(f"{playground}/_conversation/v1/invoke", json=click) as answered:
                assert answered.status == 200, await answered.text()
                return instance_id, await answered.json()


def test_a_card_is_decided_in_the_agents_playground(served_host, playground):
    base = served_host.base_url
    config = call("GET", f"{playground}/_internal/v1/config").json["config"]
    chat, user = config["personalChat"]["id"], config["currentUser"]
    assert call("POST", f"{playground}/_debug/conversation/{chat}/installation", {}).status == 200
    wait_until(lambda: call("GET", f"{base}/runtime/webhooks/durabletask/entities/teams_contact/"
                                 f"{user['email']}").status == 200)
    instance_id, answer = asyncio.run(approve_the_card(playground, base, chat, user["id"]))
    # the playground's signed-in member, named as Teams names them
    assert f"Approved by {user['name']}, " in json.dumps(answer) and user["name"] == "Alex Wilber"
    done = wait_until(lambda: (s := status(base, instance_id))["runtimeStatus"] == "Completed" and s)
    decision = done["output"]["decisions"][0]
    assert (decision["by"], decision["byName"], decision["channel"], decision["person"]["id"]) == (
        "alexw@example.com", "Alex Wilber", "teams", user["aadObjectId"])
