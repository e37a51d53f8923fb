"""The peer's lifecycle as a Functions app, for ``bench.vs_peer --floor``: what the devhost
itself costs when the app does no more than the in-memory peer's orchestration does.

The orchestration is bench/peer.py's (start -> a draft activity -> a custom status ->
wait for the decision -> a publish activity -> complete), and the routes answer the
paths and shapes the benchmark's client drives on the review app (run, status, approve,
health), each with a single Durable client call. Nothing here validates, signs, lists or
records what a review does: the gap between this app's rate and the review app's on the
same host is the review app's own work; the gap between this app's rate and the peer's
is the host's.
"""
import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

DECISION_EVENT = "ApprovalEvent"
AWAITING = {"stage": "awaiting_review", "round": 1}


@app.orchestration_trigger(context_name="context")
def peer_shape(context: df.DurableOrchestrationContext):
    draft = yield context.call_activity("draft", context.get_input())
    context.set_custom_status(AWAITING)
    decision = yield context.wait_for_external_event(DECISION_EVENT)
    if not (isinstance(decision, dict) and decision.get("approved")):
        return {"published": False}
    return (yield context.call_activity("publish", draft))


@app.activity_trigger(input_name="topic")
def draft(topic: str) -> dict:
    return {"title": f"On {topic}", "content": f"A short draft about {topic}."}


@app.activity_trigger(input_name="draft")
def publish(draft: dict) -> dict:
    return {"published": True, "title": draft["title"]}


def _json(body: dict, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.route(route="hitl/run", methods=["POST"])
@app.durable_client_input(client_name="client")
async def run(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new("peer_shape", None, (req.get_json() or {}).get("topic", ""))
    return _json({"instanceId": instance_id}, 202)


@app.route(route="hitl/status/{instance_id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client) -> func.HttpResponse:
    found = await client.get_status(req.route_params["instance_id"])
    if found is None or found.runtime_status is None:
        return _json({"error": "no such instance"}, 404)
    return _json({"runtimeStatus": found.runtime_status.value, "customStatus": found.custom_status})


@app.route(route="hitl/approve/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def approve(req: func.HttpRequest, client) -> func.HttpResponse:
    await client.raise_event(req.route_params["instance_id"], DECISION_EVENT, req.get_json())
    return _json({"message": "delivered"}, 202)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"status": "ok"})
