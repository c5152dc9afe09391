"""Streamed runs (Runner.run_streamed) kept by the store: to the end, up to
an interruption, and closed early."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

from agents import Agent, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from schemactl.agent_store import AgentStore
from tests.agent_store import scenario
from tests.agent_store.conftest import rows


def test_a_streamed_run_is_kept_when_its_stream_ends(schema_url, db):
    model = ScriptedModel(
        [
            [function_call("get_weather", {"city": "Rome"}, call_id="c1")],
            [assistant_message("Sunny in Rome.")],
        ]
    )
    agent = Agent(name="solo", model=model, tools=[scenario.get_weather])

    async def stream() -> tuple[int, Any]:
        async with AgentStore(schema_url) as store:
            stored = await store.run_streamed(
                agent, "Weather?", session=store.session("chat")
            )
            events = [event async for event in stored.stream_events()]
            return len(events), stored.result.final_output

    count, final = asyncio.run(stream())
    assert count > 0
    assert final == "Sunny in Rome."
    assert rows(db, "SELECT status, final_output FROM runs") == [
        ("completed", "Sunny in Rome.")
    ]
    assert rows(db, "SELECT count(*) FROM run_items") == [(3,)]
    assert rows(db, "SELECT count(*) FROM session_items WHERE run_id IS NOT NULL") == [
        (4,)
    ]


def test_an_interrupted_stream_resumes_from_the_store(schema_url, db):
    model = ScriptedModel(scenario.FIRST_STEPS)

    async def stream_then_resume() -> Any:
        async with AgentStore(schema_url) as store:
            stored = await store.run_streamed(scenario.support_desk(model), "Refund A1")
            async for _ in stored.stream_events():
                pass
            assert [i.call_id for i in stored.result.interruptions] == ["call_r1"]
            await store.approve(stored.run_id, "call_r1")
            desk = scenario.support_desk(ScriptedModel(scenario.RESUME_STEPS))
            return await store.resume(stored.run_id, desk)

    resumed = asyncio.run(stream_then_resume())
    assert resumed.result.final_output == "Refund of 9.5 issued for A1."
    assert rows(db, "SELECT status FROM runs") == [("completed",)]
    assert rows(db, "SELECT count(*) FROM model_responses") == [(4,)]


def test_a_stream_cancelled_and_closed_early_is_kept_as_cancelled(schema_url, db):
    @function_tool
    async def slow() -> str:
        """Take a while."""
        await asyncio.sleep(30)
        return "late"

    model = ScriptedModel([[function_call("slow", {}, call_id="s1")]])

    async def leave_early() -> None:
        async with AgentStore(schema_url) as store:
            stored = await store.run_streamed(
                Agent(name="slowpoke", model=model, tools=[slow]), "go"
            )
            async with aclosing(stored.stream_events()) as events:
                async for _ in events:
                    stored.cancel()
                    break

    asyncio.run(leave_early())
    assert rows(db, "SELECT status, completed_at IS NOT NULL FROM runs") == [
        ("cancelled", True)
    ]
