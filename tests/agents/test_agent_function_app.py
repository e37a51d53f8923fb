"""Microsoft Agent Framework's AgentFunctionApp, unchanged, on the devhost.

Every agent is a durable entity: its HTTP endpoint signals the entity and polls its state
through the durable client, and orchestrations reach it with call_entity. The agents
stream from a local OpenAI-compatible server over real HTTP."""
from __future__ import annotations

from devhost.testing import wait_until
from tests.support.http import call


def agent_run(host, agent: str, body=None, raw=None, headers=None):
    return call("POST", f"{host.base_url}/api/agents/{agent}/run", body=body, headers=headers, raw=raw)


def entity_states(host, name: str) -> list[dict]:
    reply = call("GET", f"{host.base_url}/runtime/webhooks/durabletask/entities/{name}?fetchState=true")
    assert reply.status == 200, reply.text
    return reply.json


def finished(host, status_url: str) -> dict:
    def check():
        body = call("GET", status_url).json
        return body if body["runtimeStatus"] in ("Completed", "Failed", "Terminated") else None
    return wait_until(check, timeout=30, what=status_url)


def test_agent_endpoint_waits_for_the_reply_by_default(agent_host, fake_openai):
    host = agent_host("single_agent")
    reply = agent_run(host, "Joker", {"message": "a joke about ducks"})
    assert reply.status == 200, reply.text
    body = reply.json
    assert body["status"] == "success" and body["message"] == "a joke about ducks"
    assert "Echo: a joke about ducks" in body["response"]
    streamed = [r for r in fake_openai.requests if r.body.get("stream")]
    assert streamed and "a joke about ducks" in streamed[-1].texts("user")


def test_a_session_remembers_its_earlier_turns(agent_host, fake_openai):
    host = agent_host("single_agent")
    first = agent_run(host, "Joker", {"message": "first turn"}).json
    second = agent_run(host, "Joker", {"message": "second turn", "session_id": first["session_id"]})
    assert second.status == 200 and second.json["session_id"] == first["session_id"]
    assert fake_openai.requests[-1].texts("user") == ["first turn", "second turn"]
    [session] = [e for e in entity_states(host, "dafx-joker") if e["entityId"]["key"] == first["session_id"]]
    assert len(session["state"]["data"]["conversationHistory"]) == 4


def test_no_wait_answers_202_and_the_agent_still_answers(agent_host):
    host = agent_host("single_agent")
    reply = agent_run(host, "Joker", raw=b"a plain text request",
                      headers={"x-ms-wait-for-response": "false", "Content-Type": "text/plain"})
    assert reply.status == 202, reply.text
    session_id = reply.headers["x-ms-session-id"]

    def answered():
        for entity in entity_states(host, "dafx-joker"):
            history = entity["state"]["data"]["conversationHistory"]
            if entity["entityId"]["key"] == session_id and len(history) == 2 and history[1]["messages"]:
                return history
        return None
    history = wait_until(answered, timeout=30, what="the agent's answer")
    assert "a plain text request" in history[1]["messages"][0]["contents"][0]["text"]


def test_an_orchestration_calls_the_agent_in_one_session(agent_host, fake_openai):
    host = agent_host("agent_orchestrations")
    started = call("POST", f"{host.base_url}/api/start/draft_and_shorten", body="ducks")
    assert started.status == 202, started.text
    status = finished(host, started.json["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Completed", status
    assert "Echo: Write about ducks" in status["output"]["first"]
    assert "Echo: Now make it shorter" in status["output"]["second"]
    # The second call carried the first turn: the entity kept the session's history.
    assert fake_openai.requests[-1].texts("user") == ["Write about ducks", "Now make it shorter"]


def test_a_human_in_the_loop_orchestration_redrafts_then_approves(agent_host):
    host = agent_host("agent_orchestrations")
    started = call("POST", f"{host.base_url}/api/start/reviewed_article", body={"topic": "owls"}).json
    instance_id, status_url = started["id"], started["statusQueryGetUri"]

    def at_round(number):
        return lambda: (body := call("GET", status_url).json).get("customStatus") and \
            body["customStatus"]["round"] == number and body
    wait_until(at_round(1), timeout=30, what="round 1")
    decide = f"{host.base_url}/api/decide/{instance_id}"
    assert call("POST", decide, body={"approved": False, "feedback": "more owls"}).status == 202
    second = wait_until(at_round(2), timeout=30, what="round 2")
    assert "Revise it: more owls" in second["customStatus"]["draft"]
    assert call("POST", decide, body={"approved": True}).status == 202
    status = finished(host, status_url)
    assert status["output"]["outcome"] == "approved" and status["output"]["round"] == 2
