"""Durable blueprints registered on a plain ``func.FunctionApp``, beside plain HTTP functions."""
import json

import azure.functions as func

from greetings import bp as greetings
from orders import bp as orders

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(greetings)
app.register_functions(orders)


@app.route(route="items/{category}/{item_id:int}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    body = {"category": req.route_params["category"], "id": int(req.route_params["item_id"]),
            "fields": req.params.get("fields", ""), "trace": req.headers.get("x-trace-id")}
    return func.HttpResponse(json.dumps(body), mimetype="application/json",
                             headers={"X-Item-Id": req.route_params["item_id"]})


@app.route(route="items/{category}", methods=["POST"])
async def create_item(req: func.HttpRequest) -> func.HttpResponse:
    try:
        item = req.get_json()
    except ValueError:
        return func.HttpResponse("body must be JSON", status_code=400)
    location = f"/api/items/{req.route_params['category']}/{item['id']}"
    return func.HttpResponse(json.dumps(item), status_code=201, mimetype="application/json",
                             headers={"Location": location})


@app.route(route="teapot/{name?}", methods=["GET"])
def teapot(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name") or "nobody"
    return func.HttpResponse(f"no coffee for {name}", status_code=418, mimetype="text/plain",
                             charset="utf-8")


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> str:
    return "pong"


@app.route(route="broken", methods=["GET"])
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret connection string Password=hunter2")
