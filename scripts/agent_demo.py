"""Keep one OpenAI Agents SDK run in the demo database, then show it.

The model is the SDK's own ScriptedModel (no network, no API key): the agent
calls a tool, then answers. Part of `make demo`.
"""

from __future__ import annotations

import asyncio
import os
import sys

import psycopg
from agents import Agent, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from schemactl.agent_store import AgentStore

SUMMARY = """
    SELECT r.status, a.name,
           (SELECT count(*) FROM run_items i WHERE i.run_id = r.id),
           (SELECT count(*) FROM tool_calls c WHERE c.run_id = r.id),
           (SELECT sum(total_tokens) FROM usage_metrics u WHERE u.run_id = r.id)
    FROM runs r JOIN agents a ON a.id = r.agent_id WHERE r.id = %s"""


@function_tool
def get_weather(city: str) -> str:
    """Tell the weather in a city."""
    return f"sunny in {city}"


async def store_one_run(url: str) -> object:
    model = ScriptedModel(
        [
            [function_call("get_weather", {"city": "Oslo"}, call_id="demo-call")],
            [assistant_message("It is sunny in Oslo.")],
        ]
    )
    agent = Agent(
        name="demo", instructions="Answer briefly.", model=model, tools=[get_weather]
    )
    async with AgentStore(url) as store:
        stored = await store.run(
            agent, "Weather in Oslo?", session=store.session("demo")
        )
    return stored.run_id


def main() -> None:
    set_tracing_disabled(True)
    url = os.environ["DATABASE_URL"]
    run_id = asyncio.run(store_one_run(url))
    with psycopg.connect(url) as conn:
        row = conn.execute(SUMMARY, (run_id,)).fetchone()
    assert row is not None
    status, agent, items, calls, tokens = row
    sys.stdout.write(
        f"agent run {run_id} ({agent}): {status}, {items} items, "
        f"{calls} tool call, {tokens or 0} tokens (schemactl.agent_store)\n"
    )


if __name__ == "__main__":
    main()
