"""A starter whose durable_client_input names a parameter the function does not have."""
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start")
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, starter) -> func.HttpResponse:
    return func.HttpResponse("never reached")
