"""Same module name as the blueprints app's sibling, with different functions."""
import json
import os

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.route(route="settings/{name}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def show_settings(req: func.HttpRequest, client) -> func.HttpResponse:
    hub = client._orchestration_bindings.task_hub_name  # the SDK has no public getter
    body = {"name": req.route_params["name"], "hub": hub,
            "greeting": os.environ.get("FIXTURE_GREETING"),
            "preset": os.environ.get("FIXTURE_PRESET")}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@bp.orchestration_trigger(context_name="context")
def settings_probe(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("read_setting", "FIXTURE_GREETING"))


@bp.activity_trigger(input_name="name")
def read_setting(name: str) -> str:
    return os.environ.get(name, "")
