"""Agent Framework agents called from orchestrations, as the AgentFunctionApp samples do:
a two-turn conversation in one session, and a human-in-the-loop review that redrafts on
feedback until a reviewer approves or the time runs out."""
import json
import os
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
from agent_framework.openai import OpenAIChatCompletionClient
from agent_framework_azurefunctions import AgentFunctionApp

client = OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "test-model"),
                                    api_key=os.environ["OPENAI_API_KEY"],
                                    base_url=os.environ["OPENAI_BASE_URL"])
writer = client.as_agent(name="Writer", instructions="You write short articles.")

app = AgentFunctionApp(agents=[writer], enable_health_check=True)


@app.orchestration_trigger(context_name="context")
def draft_and_shorten(context: df.DurableOrchestrationContext):
    agent = app.get_agent(context, "Writer")
    session = agent.create_session()
    first = yield agent.run(f"Write about {context.get_input()}", session=session)
    second = yield agent.run("Now make it shorter", session=session)
    return {"first": first.text, "second": second.text}


@app.orchestration_trigger(context_name="context")
def reviewed_article(context: df.DurableOrchestrationContext):
    job = context.get_input()
    agent = app.get_agent(context, "Writer")
    session = agent.create_session()
    prompt = f"Write about {job['topic']}"
    for round_number in range(1, job.get("max_rounds", 3) + 1):
        draft = yield agent.run(prompt, session=session)
        context.set_custom_status({"round": round_number, "draft": draft.text})
        deadline = context.current_utc_datetime + timedelta(hours=job.get("hours", 1))
        decision = context.wait_for_external_event("ApprovalEvent")
        timeout = context.create_timer(deadline)
        winner = yield context.task_any([decision, timeout])
        if winner is timeout:
            return {"outcome": "timed out", "round": round_number}
        timeout.cancel()
        answer = decision.result
        answer = json.loads(answer) if isinstance(answer, str) else answer
        if answer.get("approved"):
            return {"outcome": "approved", "round": round_number, "text": draft.text}
        prompt = f"Revise it: {answer.get('feedback', '')}"
    return {"outcome": "rejected", "round": job.get("max_rounds", 3)}


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.route(route="decide/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def decide(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.raise_event(req.route_params["instance_id"], "ApprovalEvent", req.get_json())
    return func.HttpResponse(status_code=202)
