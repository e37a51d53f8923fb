"""One Agent Framework agent hosted by AgentFunctionApp, talking to whatever
OpenAI-compatible server OPENAI_BASE_URL names."""
import os

from agent_framework.openai import OpenAIChatCompletionClient
from agent_framework_azurefunctions import AgentFunctionApp

client = OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "test-model"),
                                    api_key=os.environ["OPENAI_API_KEY"],
                                    base_url=os.environ["OPENAI_BASE_URL"])
writer = client.as_agent(name="Joker", instructions="You tell short jokes.")

app = AgentFunctionApp(agents=[writer], enable_health_check=True)
