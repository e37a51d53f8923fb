"""Function chaining: three activities in sequence, started over HTTP."""
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["functionName"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    name = context.get_input() or "world"
    first = yield context.call_activity("say_hello", name)
    second = yield context.call_activity("say_hello", first)
    third = yield context.call_activity(shout, second)
    return [first, second, third]


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="text")
def shout(text: str) -> str:
    return text.upper()
