"""A function defined outside the app's script, in a folder of its own."""
import json

import azure.functions as func

probes = func.Blueprint()


@probes.route(route="context")
def context_probe(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    retry = context.retry_context
    return func.HttpResponse(json.dumps({
        "class": f"{type(context).__module__}.{type(context).__qualname__}",
        "retry": None if retry is None else [retry.retry_count, retry.max_retry_count],
        "thread_local": getattr(context.thread_local_storage, "invocation_id", None) == context.invocation_id,
        "directory": context.function_directory,
    }), mimetype="application/json")
