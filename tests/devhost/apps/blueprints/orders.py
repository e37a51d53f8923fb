"""A second durable blueprint, whose starter waits for the result before answering."""
import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.route(route="orders/{order_id}", methods=["PUT"])
@bp.durable_client_input(client_name="client")
async def place_order(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new("process_order", req.route_params["order_id"], req.get_json())
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=5000, retry_interval_in_milliseconds=50)


@bp.orchestration_trigger(context_name="context", orchestration="process_order")
def order_flow(context: df.DurableOrchestrationContext):
    order = context.get_input()
    total = yield context.call_activity("price_order", order)
    return {"order": context.instance_id, "total": total}


@bp.activity_trigger(input_name="order")
def price_order(order: dict) -> float:
    return round(sum(line["qty"] * line["price"] for line in order["lines"]), 2)
