"""A durable blueprint: fan out one greeting per name, started over HTTP."""
import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.route(route="greetings", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_greetings(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new("greet_all", None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def greet_all(context: df.DurableOrchestrationContext):
    return (yield context.task_all([context.call_activity("greet_one", n) for n in context.get_input()]))


@bp.activity_trigger(input_name="name", activity="greet_one")
def greet(name: str) -> str:
    return f"Hello, {name}!"
