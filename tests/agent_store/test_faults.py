"""What production does to the agent store: processes killed mid-run, the
database's connections terminated, a final write that fails, a resume that
fails, agents run as tools, and credentials in the context and the settings."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agents import Agent, ModelSettings, RunContextWrapper, function_tool
from agents.exceptions import UserError
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from schemactl.agent_store import AgentStore, RecordingFailed, StoreError
from tests.agent_store import crash, scenario
from tests.agent_store.conftest import rows

ROOT = Path(__file__).resolve().parents[2]
CRASH = "from tests.agent_store.crash import main; main()"


@pytest.fixture
def blocked(schema_url) -> Iterator[Any]:
    """Start a process that blocks inside a tool; yield a function that starts
    it with arguments and waits until it blocks; kill it afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", CRASH, *args],
            cwd=ROOT,
            env={**os.environ, crash.BLOCK: "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline() == "READY\n", process.stderr
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


async def interrupted_gate_run(url: str) -> Any:
    async with AgentStore(url) as store:
        stored = await store.run(crash.gatekeeper(crash.first_steps()), "open up")
        await store.approve(stored.run_id, "g1", by="alice")
    return stored.run_id


def test_a_run_whose_process_died_is_taken_over_not_doubled(schema_url, db, blocked):
    run_id = asyncio.run(interrupted_gate_run(schema_url))
    process = blocked("resume", schema_url, str(run_id))

    async def while_it_lives() -> None:
        async with AgentStore(schema_url) as store:
            with pytest.raises(StoreError, match="another process runs it"):
                await store.resume(run_id, crash.gatekeeper(crash.last_steps()))
            assert await store.recover_abandoned_runs() == {}

    asyncio.run(while_it_lives())
    kill(process)
    assert rows(db, "SELECT status FROM runs") == [("running",)]
    stored = asyncio.run(crash.resume(schema_url, str(run_id)))
    assert stored.result.final_output == "The front door is open."
    assert rows(db, "SELECT status FROM runs") == [("completed",)]
    assert rows(db, "SELECT call_id, status FROM tool_calls") == [("g1", "completed")]


def test_a_fresh_run_whose_process_died_is_recovered_as_failed(schema_url, db, blocked):
    kill(blocked("run", schema_url))

    async def recover() -> dict[Any, str]:
        async with AgentStore(schema_url) as store:
            return await store.recover_abandoned_runs()

    settled = asyncio.run(recover())
    assert list(settled.values()) == ["failed"]
    assert rows(db, "SELECT status, error ->> 'type' FROM runs") == [
        ("failed", "Abandoned")
    ]


def test_terminated_connections_do_not_lose_the_run(schema_url):
    @function_tool
    def restart_everything() -> str:
        """Terminate every other connection to this database."""
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return "done"

    model = ScriptedModel(
        [
            [function_call("restart_everything", {}, call_id="r1")],
            [assistant_message("ok")],
        ]
    )

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(
                Agent(name="ops", model=model, tools=[restart_everything]), "go"
            )

    assert asyncio.run(go()).result.final_output == "ok"
    with psycopg.connect(schema_url) as db:
        assert rows(db, "SELECT status FROM runs") == [("completed",)]


def test_a_failed_final_write_still_returns_the_result(schema_url, db):
    @function_tool
    def break_the_items_table() -> str:
        """Make every new run item fail to insert."""
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE run_items ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"
            )
        return "broken"

    model = ScriptedModel(
        [
            [function_call("break_the_items_table", {}, call_id="b1")],
            [assistant_message("done")],
        ]
    )
    agent = Agent(name="vandal", model=model, tools=[break_the_items_table])

    async def go() -> None:
        async with AgentStore(schema_url) as store:
            await store.run(agent, "go")

    with pytest.raises(RecordingFailed) as caught:
        asyncio.run(go())
    assert caught.value.result.final_output == "done"
    assert rows(db, "SELECT status, error ->> 'type' FROM runs") == [
        ("failed", "RecordingFailed")
    ]


def test_a_resume_that_fails_before_it_does_anything_stays_resumable(schema_url, db):
    run_id = asyncio.run(interrupted_gate_run(schema_url))
    db.execute("UPDATE interruptions SET status = 'pending', resolved_at = NULL")

    async def reject_then_fail_then_succeed() -> Any:
        async with AgentStore(schema_url) as store:
            await store.reject(run_id, "g1", by="bob", message="Not the front door.")
            failing = ScriptedModel([RuntimeError("model down")])
            with pytest.raises(RuntimeError, match="model down"):
                await store.resume(run_id, crash.gatekeeper(failing), max_turns=5)
            assert rows(db, "SELECT status, error ->> 'message' FROM runs") == [
                ("interrupted", "model down")
            ]
            return await store.resume(run_id, crash.gatekeeper(crash.last_steps()))

    stored = asyncio.run(reject_then_fail_then_succeed())
    assert stored.result.final_output == "The front door is open."
    assert rows(db, "SELECT status FROM tool_calls") == [("rejected",)]
    # The model was told the reviewer's words, unescaped.
    outputs = [
        item.raw_item.get("output")
        for item in stored.result.new_items
        if item.type == "tool_call_output_item"
    ]
    assert outputs == ["Not the front door."]


def test_a_failed_run_keeps_the_responses_it_paid_for(schema_url, db):
    @function_tool(failure_error_function=None)
    def explode() -> str:
        """Fail."""
        raise UserError("boom")

    model = ScriptedModel([[function_call("explode", {}, call_id="x1")]])

    async def go() -> None:
        async with AgentStore(schema_url) as store:
            await store.run(Agent(name="bomb", model=model, tools=[explode]), "go")

    with pytest.raises(UserError):
        asyncio.run(go())
    assert rows(db, "SELECT status FROM runs") == [("failed",)]
    assert rows(db, "SELECT count(*) FROM model_responses") == [(1,)]


def test_usage_of_agents_run_as_tools_is_counted(schema_url, db):
    model = ScriptedModel(
        [
            ModelStep(
                output=[function_call("ask_expert", {"input": "why?"}, call_id="a1")],
                usage=scenario.usage(100, 10),
            ),
            ModelStep(
                output=[assistant_message("because")], usage=scenario.usage(1000, 50)
            ),
            ModelStep(
                output=[assistant_message("The expert says: because.")],
                usage=scenario.usage(200, 20),
            ),
        ]
    )
    expert = Agent(name="expert", model=model)
    lead = Agent(
        name="lead", model=model, tools=[expert.as_tool("ask_expert", "Ask the expert")]
    )

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(lead, "question")

    stored = asyncio.run(go())
    total = stored.result.context_wrapper.usage
    assert rows(db, "SELECT sum(requests), sum(input_tokens) FROM usage_metrics") == [
        (total.requests, total.input_tokens)
    ]
    assert rows(
        db,
        "SELECT a.name, u.input_tokens FROM usage_metrics u "
        "JOIN agents a ON a.id = u.agent_id ORDER BY 1",
    ) == [("expert", 1000), ("lead", 300)]


def test_credentials_in_the_context_and_settings_are_not_stored(schema_url, db):
    secret = "sk-test-do-not-store"

    @function_tool(needs_approval=True)
    def charge(ctx: RunContextWrapper[Any], amount: int) -> str:
        """Charge the card on file."""
        return f"charged {amount} with key ending {ctx.context['api_key'][-5:]}"

    def build(model: ScriptedModel) -> Agent[Any]:
        return Agent(
            name="cashier",
            model=model,
            tools=[charge],
            model_settings=ModelSettings(
                extra_headers={"Authorization": f"Bearer {secret}"}
            ),
        )

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            first = ScriptedModel(
                [[function_call("charge", {"amount": 5}, call_id="c1")]]
            )
            stored = await store.run(
                build(first), "charge 5", context={"api_key": secret}
            )
            await store.approve(stored.run_id, "c1")
            last = ScriptedModel([[assistant_message("Charged.")]])
            return await store.resume(
                stored.run_id, build(last), context={"api_key": secret}
            )

    stored = asyncio.run(go())
    assert stored.result.final_output == "Charged."
    assert rows(db, "SELECT output FROM tool_calls") == [
        ("charged 5 with key ending store",)
    ]
    everything = "".join(
        text or ""
        for (table,) in rows(
            db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        for (text,) in rows(db, f"SELECT string_agg(t::text, ' ') FROM {table} t")
    )
    assert "charged 5" in everything  # the scan sees the run's rows
    assert secret not in everything
