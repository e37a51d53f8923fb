"""The app of the README's testing example: a request waits up to 72 hours for approval."""
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="approvals", methods=["POST"])
@app.durable_client_input(client_name="client")
async def request_approval(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new("approval", None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    expiry = context.create_timer(context.current_utc_datetime + timedelta(hours=72))
    answer = context.wait_for_external_event("Approval")
    if (yield context.task_any([answer, expiry])) is expiry:
        return "expired"
    expiry.cancel()
    return (yield context.call_activity("record_approval", context.get_input()))


@app.activity_trigger(input_name="request")
def record_approval(request: dict) -> str:
    return "approved"
