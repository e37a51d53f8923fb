"""Orchestrators that report the version they run as, for tests/devhost/test_versioning.py."""
import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def report_version(context: df.DurableOrchestrationContext):
    return context.version


@app.orchestration_trigger(context_name="context")
def parent_with_children(context: df.DurableOrchestrationContext):
    explicit = yield context.call_sub_orchestrator("report_version", version="0.5")
    default = yield context.call_sub_orchestrator("report_version")
    return {"parent": context.version, "explicit": explicit, "default": default}


@app.orchestration_trigger(context_name="context")
def count_down(context: df.DurableOrchestrationContext):
    left = context.get_input() or 0
    if left > 0:
        context.continue_as_new(left - 1)
        return None
    return context.version


@app.orchestration_trigger(context_name="context")
def wait_then_report(context: df.DurableOrchestrationContext):
    yield context.wait_for_external_event("go")
    return context.version
