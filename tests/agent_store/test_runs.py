"""Real SDK runs (openai-agents' own ScriptedModel, no network) kept by the
agent store, checked table by table, and through the design document's three
queries."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agents import Agent, LocalShellTool, SQLiteSession, WebSearchTool, function_tool
from agents.exceptions import InputGuardrailTripwireTriggered, MaxTurnsExceeded
from agents.testing import ScriptedModel, assistant_message, function_call
from openai.types.responses import ResponseFunctionWebSearch
from openai.types.responses.response_function_web_search import ActionSearch
from openai.types.responses.response_output_item import (
    LocalShellCall,
    LocalShellCallAction,
)

from schemactl.agent_store import AgentStore, StoreError
from tests.agent_store import scenario
from tests.agent_store.conftest import rows
from tests.db.test_shipped_schema import ACTIVE_RUNS_QUERY, RUN_STATE_QUERY, USAGE_QUERY

ROOT = Path(__file__).resolve().parents[2]
RESUME = "from tests.agent_store.scenario import main; main()"
# A NUL, which jsonb refuses, travels through the stored state and back.
REQUEST = "Refund order A1\x00, and the weather in Oslo?"


def scalar(conn, query, params=()):
    return conn.execute(query, params).fetchone()[0]


async def start_interrupted_run(url: str) -> Any:
    model = ScriptedModel(scenario.FIRST_STEPS)
    async with AgentStore(url) as store:
        stored = await store.run(scenario.support_desk(model), REQUEST)
    model.assert_complete()
    assert stored.interrupted
    return stored.run_id


async def decide(url: str, run_id: Any, call_id: str, *, approve: bool) -> None:
    async with AgentStore(url) as store:
        if approve:
            await store.approve(run_id, call_id, by="alice")
        else:
            await store.reject(run_id, call_id, by="bob", message="Not this one.")


def resume_in_a_fresh_process(url: str, run_id: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RESUME, "resume", url, str(run_id)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def agent_named(conn, name):
    return scalar(conn, "SELECT id FROM agents WHERE name = %s", (name,))


def test_an_interrupted_run_is_stored_then_resumed_in_another_process(schema_url, db):
    run_id = asyncio.run(start_interrupted_run(schema_url))
    triage = agent_named(db, "triage")

    # Interrupted: the run, its items so far, the call awaiting approval, and
    # the state to resume from; the document's first two queries find them.
    assert rows(db, "SELECT status, current_turn, completed_at FROM runs") == [
        ("interrupted", 3, None)
    ]
    assert [r[0] for r in rows(db, "SELECT item_type FROM run_items ORDER BY sequence")] == [
        "tool_call_item", "tool_call_output_item", "handoff_call_item",
        "handoff_output_item", "tool_call_item", "tool_approval_item",
    ]  # fmt: skip
    assert rows(db, "SELECT call_id, status FROM tool_calls ORDER BY call_id") == [
        ("call_r1", "awaiting_approval"),
        ("call_w1", "completed"),
    ]
    assert rows(db, "SELECT tool_name, call_id, status FROM interruptions") == [
        ("refund", "call_r1", "pending")
    ]
    active = rows(db, ACTIVE_RUNS_QUERY.replace("agent-uuid-here", str(triage)))
    assert [r[0] for r in active] == [run_id]
    [(state,)] = rows(db, RUN_STATE_QUERY.replace("run-uuid-here", str(run_id)))
    assert state["$schemaVersion"] == scalar(
        db, "SELECT schema_version FROM run_states"
    )
    assert state["current_step"]["type"] == "next_step_interruption"

    asyncio.run(decide(schema_url, run_id, "call_r1", approve=True))
    answer = resume_in_a_fresh_process(schema_url, run_id)
    assert answer == {
        "final_output": "Refund of 9.5 issued for A1.",
        "last_agent": "billing",
        "input": REQUEST,
    }

    run = rows(
        db,
        "SELECT status, final_output, a.name, completed_at >= started_at FROM runs r "
        "JOIN agents a ON a.id = r.last_agent_id",
    )
    assert run == [("completed", "Refund of 9.5 issued for A1.", "billing", True)]
    # The resumed result repeats the first part: nothing is stored twice.
    assert [
        r[0] for r in rows(db, "SELECT item_type FROM run_items ORDER BY sequence")
    ][6:] == ["tool_call_output_item", "message_output_item"]
    assert scalar(db, "SELECT count(*) FROM model_responses") == 4
    assert rows(db, "SELECT call_id, status, output FROM tool_calls ORDER BY 1") == [
        ("call_r1", "completed", "refunded 9.5 for A1"),
        ("call_w1", "completed", "sunny in Oslo"),
    ]
    assert rows(db, "SELECT status, resolved_by FROM interruptions") == [
        ("approved", "alice")
    ]
    assert rows(
        db,
        "SELECT guardrail_type, tripwire_triggered FROM guardrail_results ORDER BY 1",
    ) == [("input", False), ("output", False)]
    assert rows(db, ACTIVE_RUNS_QUERY.replace("agent-uuid-here", str(triage))) == []
    assert rows(db, RUN_STATE_QUERY.replace("run-uuid-here", str(run_id))) == []


def test_usage_is_kept_per_agent_and_per_request_and_the_document_adds_it_up(
    schema_url, db
):
    run_id = asyncio.run(start_interrupted_run(schema_url))
    asyncio.run(decide(schema_url, run_id, "call_r1", approve=True))
    resume_in_a_fresh_process(schema_url, run_id)

    per_agent = rows(
        db,
        "SELECT a.name, u.requests, u.input_tokens, u.cached_tokens, "
        "u.cache_write_tokens FROM usage_metrics u JOIN agents a ON a.id = u.agent_id "
        "ORDER BY 1",
    )
    assert per_agent == [("billing", 2, 460, 0, 0), ("triage", 2, 220, 40, 20)]
    assert scalar(db, "SELECT sum(input_tokens) FROM request_usage_entries") == (
        scenario.TOTAL_INPUT
    )
    assert rows(
        db, "SELECT response_id, request_id FROM model_responses ORDER BY turn"
    ) == [("resp-1", "req-1"), ("resp-2", None), ("resp-3", None), ("resp-4", None)]
    usage = rows(db, USAGE_QUERY)
    assert [(name, total) for name, total, _, _ in usage] == [
        ("triage", scenario.TOTAL_INPUT)
    ]


def test_the_agent_graph_is_stored_once_with_both_handoffs_and_the_guardrails(
    schema_url, db
):
    for _ in range(2):
        run_id = asyncio.run(start_interrupted_run(schema_url))
        asyncio.run(decide(schema_url, run_id, "call_r1", approve=True))
        resume_in_a_fresh_process(schema_url, run_id)
    assert rows(
        db,
        "SELECT name, instructions_kind, instructions_ref IS NOT NULL FROM agents ORDER BY 1",
    ) == [("billing", "static", False), ("triage", "dynamic", True)]
    assert rows(
        db,
        "SELECT h.tool_name, t.name FROM agent_handoffs h "
        "JOIN agents t ON t.id = h.target_agent_id ORDER BY 1",
    ) == [("escalate_refund", "billing"), ("transfer_to_billing", "billing")]
    assert rows(
        db, "SELECT name, guardrail_type, run_in_parallel FROM guardrails ORDER BY 1"
    ) == [("no_card_numbers", "input", True), ("polite", "output", None)]
    assert rows(db, "SELECT name, tool_type, needs_approval FROM tools ORDER BY 1") == [
        ("get_weather", "function", False),
        ("refund", "function", True),
    ]


def test_a_rejected_call_is_stored_as_rejected(schema_url, db):
    run_id = asyncio.run(start_interrupted_run(schema_url))
    asyncio.run(decide(schema_url, run_id, "call_r1", approve=False))
    resume_in_a_fresh_process(schema_url, run_id)
    assert rows(
        db, "SELECT status, resolved_by, rejection_message FROM interruptions"
    ) == [("rejected", "bob", "Not this one.")]
    assert rows(db, "SELECT status FROM tool_calls WHERE call_id = 'call_r1'") == [
        ("rejected",)
    ]


def test_a_run_resumes_once_and_only_while_interrupted(schema_url, db):
    run_id = asyncio.run(start_interrupted_run(schema_url))
    asyncio.run(decide(schema_url, run_id, "call_r1", approve=True))
    with pytest.raises(StoreError, match="no pending approval"):
        asyncio.run(decide(schema_url, run_id, "call_r1", approve=False))

    async def twice() -> list[Any]:
        outcomes: list[Any] = await asyncio.gather(
            scenario.resume(schema_url, str(run_id)),
            scenario.resume(schema_url, str(run_id)),
            return_exceptions=True,
        )
        return outcomes

    first, second = asyncio.run(twice())
    outcomes = sorted([first, second], key=lambda o: isinstance(o, StoreError))
    assert outcomes[0]["last_agent"] == "billing"
    assert isinstance(outcomes[1], StoreError)
    refusal = str(outcomes[1])
    assert "another process runs it" in refusal or "it is completed" in refusal
    with pytest.raises(StoreError, match="it is completed"):
        asyncio.run(scenario.resume(schema_url, str(run_id)))
    assert scalar(db, "SELECT count(*) FROM model_responses") == 4


def test_max_turns_and_guardrail_tripwires_end_runs_with_their_status(schema_url, db):
    @function_tool
    def again() -> str:
        """Ask again."""
        return "again"

    loop = ScriptedModel(
        [[function_call("again", {}, call_id=f"c{i}")] for i in range(2)]
    )
    looping = Agent(name="looper", model=loop, tools=[again])
    desk = scenario.support_desk(ScriptedModel([[assistant_message("never")]]))

    async def both() -> None:
        async with AgentStore(schema_url) as store:
            with pytest.raises(MaxTurnsExceeded):
                await store.run(looping, "go", max_turns=1)
            with pytest.raises(InputGuardrailTripwireTriggered):
                await store.run(desk, "my card is 4111 1111 1111 1111")

    asyncio.run(both())
    ended = rows(
        db,
        "SELECT a.name, r.status, r.current_turn, r.max_turns, r.error ->> 'type', "
        "r.completed_at IS NOT NULL FROM runs r JOIN agents a ON a.id = r.agent_id "
        "ORDER BY 1",
    )
    assert ended == [
        ("looper", "max_turns_exceeded", 2, 1, "MaxTurnsExceeded", True),
        ("triage", "failed", 0, 10, "InputGuardrailTripwireTriggered", True),
    ]
    assert rows(
        db, "SELECT tripwire_triggered, output_info FROM guardrail_results"
    ) == [(True, {"card_number": True})]
    assert scalar(db, "SELECT count(*) FROM tool_calls WHERE status = 'completed'") == 1


def test_unlimited_runs_agents_sharing_a_name_and_nul_are_stored(schema_url, db):
    @function_tool
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    model = ScriptedModel(
        [
            [function_call("transfer_to_helper", {}, call_id="h1")],
            [function_call("echo", {"text": "a\x00b"}, call_id="e1")],
            [assistant_message("done\x00")],
        ]
    )
    # Two agents called "helper": the SDK allows it (name#2 in a RunState).
    first = Agent(name="helper", instructions="A", model=model)
    second = Agent(name="helper", instructions="B", model=model, tools=[echo])
    root = Agent(
        name="root",
        model=model,
        handoffs=[second],
        tools=[first.as_tool("ask_a", "Ask A")],
    )

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(root, "start\x00", max_turns=None)

    stored = asyncio.run(go())
    assert stored.result.final_output == "done\x00"
    assert scalar(db, "SELECT count(*) FROM agents WHERE name = 'helper'") == 2
    assert rows(db, "SELECT status, max_turns FROM runs") == [("completed", None)]
    assert rows(
        db,
        "SELECT a.instructions FROM tool_calls c JOIN agents a ON a.id = c.agent_id",
    ) == [("B",)]
    assert rows(db, "SELECT tool_type FROM tools WHERE name = 'ask_a'") == [("agent",)]


def test_a_cancelled_run_is_written_before_the_cancel_goes_on(schema_url, db):
    started = asyncio.Event()

    @function_tool
    async def slow() -> str:
        """Wait for ever."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    model = ScriptedModel([[function_call("slow", {}, call_id="s1")]])
    agent = Agent(name="waiter", model=model, tools=[slow])

    async def cancel_mid_tool() -> None:
        async with AgentStore(schema_url) as store:
            task = asyncio.create_task(store.run(agent, "wait"))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(cancel_mid_tool())
    assert rows(
        db, "SELECT status, error ->> 'type', completed_at IS NOT NULL FROM runs"
    ) == [("cancelled", "CancelledError", True)]


def test_a_run_with_another_kind_of_session_is_stored(schema_url, db):
    model = ScriptedModel([[assistant_message("hi")]])
    agent = Agent(name="solo", model=model)

    async def go() -> None:
        async with AgentStore(schema_url) as store:
            await store.run(agent, "hello", session=SQLiteSession("elsewhere"))

    asyncio.run(go())
    assert rows(db, "SELECT status, session_id FROM runs") == [("completed", None)]
    assert scalar(db, "SELECT count(*) FROM session_items") == 0


def test_a_hosted_tool_call_is_kept_under_its_tool(schema_url, db):
    search = ResponseFunctionWebSearch(
        id="ws_1",
        status="completed",
        type="web_search_call",
        action=ActionSearch(type="search", query="weather in Oslo"),
    )
    model = ScriptedModel([[search, assistant_message("Sunny.")]])
    agent = Agent(name="searcher", model=model, tools=[WebSearchTool()])

    async def go() -> None:
        async with AgentStore(schema_url) as store:
            await store.run(agent, "weather?")

    asyncio.run(go())
    assert rows(
        db,
        "SELECT c.call_id, c.tool_name, c.tool_type, t.name, c.arguments, c.status "
        "FROM tool_calls c JOIN tools t ON t.id = c.tool_id",
    ) == [
        (
            "ws_1",
            "web_search",
            "web_search",
            "web_search",
            {"type": "search", "query": "weather in Oslo"},
            "completed",
        )
    ]


def test_a_tool_without_a_call_id_leaves_a_marker_while_it_runs(schema_url, db):
    seen: list[Any] = []

    def executor(request: Any) -> str:
        with psycopg.connect(schema_url) as conn:
            seen.extend(
                conn.execute(
                    "SELECT tool_name, status, call_id LIKE 'schemactl:started:%%' "
                    "FROM tool_calls"
                ).fetchall()
            )
        return "hi"

    call = LocalShellCall(
        id="ls_1",
        call_id="lc_1",
        status="completed",
        type="local_shell_call",
        action=LocalShellCallAction(command=["echo", "hi"], env={}, type="exec"),
    )
    model = ScriptedModel([[call], [assistant_message("done")]])
    agent = Agent(name="sh", model=model, tools=[LocalShellTool(executor=executor)])

    async def go() -> None:
        async with AgentStore(schema_url) as store:
            await store.run(agent, "echo hi")

    asyncio.run(go())
    assert seen == [("local_shell", "in_progress", True)]
    assert rows(db, "SELECT call_id, tool_type, status, output FROM tool_calls") == [
        ("lc_1", "local_shell", "completed", "hi")
    ]
