"""Functions that write down what they were given and answer as the request asks, so a
test can hand them the same request through two hosts and compare both sides.

An HTTP request names itself in ``x-case`` and describes the reply it wants in
``x-reply`` (JSON: ``status``, ``body`` in base64, ``mimetype``, ``charset``,
``headers`` as name and value pairs, each ``Set-Cookie`` among them; or ``text``, a
plain string to return instead of a response).
"""
import base64
import json

import azure.durable_functions as df
import azure.functions as func

mirror = df.Blueprint()

# What each function was given, by case (HTTP), by input (activity) or by entity key.
RECEIVED: dict = {}


def _context(context: func.Context) -> dict:
    trace, retry = context.trace_context, context.retry_context
    return {"function_name": context.function_name, "function_directory": context.function_directory,
            "invocation_id": context.invocation_id, "trace_parent": trace.trace_parent,
            "trace_state": trace.trace_state, "attributes": dict(trace.attributes),
            "retry": [retry.retry_count, retry.max_retry_count],
            "thread_local": getattr(context.thread_local_storage, "invocation_id", None) == context.invocation_id}


def _mirror(req: func.HttpRequest, context: func.Context):
    RECEIVED[req.headers.get("x-case", "")] = {
        "method": req.method, "url": req.url, "headers": dict(req.headers), "params": dict(req.params),
        "route_params": dict(req.route_params), "body": base64.b64encode(req.get_body()).decode(),
        "context": _context(context)}
    wanted = json.loads(req.headers.get("x-reply") or "{}")
    if "text" in wanted:
        return wanted["text"]
    response = func.HttpResponse(base64.b64decode(wanted.get("body", "")), status_code=wanted.get("status", 200),
                                 mimetype=wanted.get("mimetype"), charset=wanted.get("charset", "utf-8"))
    for name, value in wanted.get("headers", []):
        response.headers.add(name, value)
    return response


@mirror.route(route="mirror/files/{*path}", methods=["GET", "POST"])
def mirror_files(req: func.HttpRequest, context: func.Context):
    return _mirror(req, context)


@mirror.route(route="mirror/{kind}/{id?}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def mirror_items(req: func.HttpRequest, context: func.Context):
    return _mirror(req, context)


@mirror.activity_trigger(input_name="value")
def mirror_activity(value, context: func.Context):
    RECEIVED[json.dumps(value, sort_keys=True)] = {"value": value, "context": _context(context)}
    return {"got": value}


@mirror.entity_trigger(context_name="context", entity_name="Mirror")
def mirror_entity(context: df.DurableEntityContext):
    state = context.get_state(lambda: [])
    RECEIVED[f"@mirror@{context.entity_key}"] = {
        "name": context.entity_name, "key": context.entity_key, "operation": context.operation_name,
        "input": context.get_input(), "state": state}
    context.set_state(state + [context.operation_name])
    context.set_result(len(state) + 1)


@mirror.orchestration_trigger(context_name="context")
def mirror_calls(context: df.DurableOrchestrationContext):
    """Calls the activity with the input, then the entity ``Mirror`` with it as the key."""
    job = context.get_input()
    got = yield context.call_activity("mirror_activity", job["value"])
    count = yield context.call_entity(df.EntityId("Mirror", job["key"]), job["operation"], job["value"])
    return {"activity": got, "entity": count}
