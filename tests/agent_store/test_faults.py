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
from contextlib import aclosing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agents import Agent, ModelSettings, RunConfig, RunContextWrapper, function_tool
from agents.exceptions import UserError
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.tool import FunctionTool
from psycopg_pool import AsyncConnectionPool

from schemactl.agent_store import AgentStore, LockLost, RecordingFailed, StoreError
from schemactl.agent_store.liveness import RunLocks
from tests.agent_store import crash, scenario
from tests.agent_store.conftest import rows

ROOT = Path(__file__).resolve().parents[2]
CRASH = "from tests.agent_store.crash import main; main()"


@pytest.fixture
def blocked(tmp_path) -> Iterator[Any]:
    """Start a process that blocks where it is told (crash.py); return it once
    it says so; kill it afterwards. The gate tool logs each opening to a file
    of this test."""
    started: list[subprocess.Popen[str]] = []
    log = tmp_path / "gate.log"

    def start(where: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", CRASH, *args],
            cwd=ROOT,
            env={**os.environ, crash.BLOCK: where, "SCHEMACTL_TEST_GATE_LOG": str(log)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline() == "READY\n", process.stderr
        return process

    start.log = log  # type: ignore[attr-defined]
    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def first_then_second(first: FunctionTool, ran: list[str]) -> Agent[Any]:
    """An agent that calls ``first``, then ``second``, which notes in ``ran``
    that it ran (the tests say when it must not)."""

    @function_tool
    def second() -> str:
        """Runs only while the run is still this process's."""
        ran.append("second")
        return "done"

    model = ScriptedModel(
        [
            [function_call("first", {}, call_id="f1")],
            [function_call("second", {}, call_id="s1")],
            [assistant_message("never")],
        ]
    )
    return Agent(name="two_steps", model=model, tools=[first, second])


async def run_first_then_second(url: str, first: FunctionTool, ran: list[str]) -> None:
    async with AgentStore(url) as store:
        await store.run(first_then_second(first, ran), "go")


def terminate_lock_connections(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'schemactl-agent-store-locks' "
        "AND datname = current_database()"
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


async def interrupted_gate_run(url: str, *, approve: bool = True) -> Any:
    async with AgentStore(url) as store:
        stored = await store.run(crash.gatekeeper(crash.first_steps()), "open up")
        if approve:
            await store.approve(stored.run_id, "g1", by="alice")
        else:
            await store.reject(stored.run_id, "g1", by="bob")
    return stored.run_id


def test_a_run_whose_process_died_before_any_tool_is_taken_over(
    schema_url, db, blocked
):
    run_id = asyncio.run(interrupted_gate_run(schema_url, approve=False))
    process = blocked("model", "resume", schema_url, str(run_id))

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
    assert rows(db, "SELECT call_id, status FROM tool_calls") == [("g1", "rejected")]


def test_a_run_whose_process_died_after_a_tool_ran_never_runs_it_again(
    schema_url, db, blocked
):
    run_id = asyncio.run(interrupted_gate_run(schema_url))
    kill(blocked("model", "resume", schema_url, str(run_id)))
    assert blocked.log.read_text() == "front opened\n"
    # The journal says the approved call ran, with its output.
    assert rows(db, "SELECT status, output FROM tool_calls") == [
        ("completed", "front is open")
    ]
    with pytest.raises(StoreError, match="gate started"):
        asyncio.run(crash.resume(schema_url, str(run_id)))

    async def recover() -> dict[Any, str]:
        async with AgentStore(schema_url) as store:
            return await store.recover_abandoned_runs()

    assert asyncio.run(recover()) == {run_id: "failed"}
    assert blocked.log.read_text() == "front opened\n"


def test_a_fresh_run_whose_process_died_is_recovered_as_failed(schema_url, db, blocked):
    kill(blocked("tool", "run", schema_url))

    async def recover() -> dict[Any, str]:
        async with AgentStore(schema_url) as store:
            return await store.recover_abandoned_runs()

    settled = asyncio.run(recover())
    assert list(settled.values()) == ["failed"]
    assert rows(db, "SELECT status, error ->> 'type' FROM runs") == [
        ("failed", "Abandoned")
    ]
    assert rows(db, "SELECT tool_name, status FROM tool_calls") == [
        ("wait_here", "in_progress")
    ]


def test_one_store_never_drives_one_run_twice(schema_url, db):
    run_id = asyncio.run(interrupted_gate_run(schema_url))

    async def double_click() -> list[Any]:
        async with AgentStore(schema_url) as store:
            desk = [crash.gatekeeper(crash.last_steps()) for _ in range(2)]
            spelled = [run_id, str(run_id).upper()]
            outcomes: list[Any] = await asyncio.gather(
                *(store.resume(r, a) for r, a in zip(spelled, desk, strict=True)),
                return_exceptions=True,
            )
            return outcomes

    outcomes = asyncio.run(double_click())
    assert sum(isinstance(o, StoreError) for o in outcomes) == 1
    assert rows(db, "SELECT status FROM tool_calls") == [("completed",)]


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
    run_id = asyncio.run(interrupted_gate_run(schema_url, approve=False))
    db.execute(
        "UPDATE interruptions SET status = 'pending', resolved_at = NULL, "
        "resolved_by = NULL"
    )

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


def test_usage_of_agents_run_as_tools_is_counted_per_agent(schema_url, db):
    def step(output: Any, input_tokens: int) -> ModelStep:
        return ModelStep(output=output, usage=scenario.usage(input_tokens, 10))

    model = ScriptedModel(
        [
            step([function_call("ask_expert", {"input": "why?"}, call_id="a1")], 100),
            step([assistant_message("because")], 1000),
            step([function_call("ask_intern", {"input": "sure?"}, call_id="a2")], 150),
            step([assistant_message("yes")], 10),
            step([assistant_message("The expert says: because.")], 200),
        ]
    )
    expert, intern = (
        Agent(name="expert", model=model),
        Agent(name="intern", model=model),
    )
    lead = Agent(
        name="lead",
        model=model,
        tools=[
            expert.as_tool("ask_expert", "Ask the expert"),
            intern.as_tool("ask_intern", "Ask the intern"),
        ],
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
    ) == [("expert", 1000), ("intern", 10), ("lead", 450)]


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


def test_credentials_of_agents_run_as_tools_are_not_stored_either(schema_url, db):
    secret = "sk-test-nested-secret"

    @function_tool(needs_approval=True)
    def charge(ctx: RunContextWrapper[Any], amount: int) -> str:
        """Charge the card on file."""
        return f"charged {amount}"

    lead = scenario.lead_with_a_cashier(charge)

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(lead, "charge 5", context={"api_key": secret})

    assert asyncio.run(go()).interrupted
    states = rows(db, "SELECT state_data::text FROM run_states")
    assert len(states) == 1
    assert "agent_run_state" in states[0][0]  # the nested run's own state is there
    assert secret not in states[0][0]


def test_a_stream_closed_after_its_answer_is_completed(schema_url, db):
    model = ScriptedModel([[assistant_message("All done.")]])

    async def read_until_the_answer() -> None:
        async with AgentStore(schema_url) as store:
            stored = await store.run_streamed(Agent(name="brief", model=model), "go")
            async with aclosing(stored.stream_events()) as events:
                async for event in events:
                    if getattr(event, "name", None) == "message_output_created":
                        break

    asyncio.run(read_until_the_answer())
    assert rows(db, "SELECT status, final_output FROM runs") == [
        ("completed", "All done.")
    ]


def test_texts_postgresql_refuses_are_stored_escaped(schema_url, db):
    model = ScriptedModel(
        [
            ModelStep(
                output=[assistant_message("ok")],
                response_id="resp\x00",
                request_id="\ud800",
            )
        ]
    )

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(
                Agent(name="odd\x00name", model=model),
                "hi",
                run_config=RunConfig(workflow_name="flow\x00", group_id="\udc00"),
            )

    assert asyncio.run(go()).result.final_output == "ok"
    assert rows(db, "SELECT status FROM runs") == [("completed",)]


def test_a_run_taken_over_while_its_lock_connection_was_away_is_not_overwritten(
    schema_url, db
):
    rival = RunLocks(schema_url)

    @function_tool
    async def lose_the_lock() -> str:
        """Drop this store's lock connection; another process takes the run."""
        with psycopg.connect(schema_url, autocommit=True) as conn:
            terminate_lock_connections(conn)
            run = conn.execute(
                "SELECT id FROM runs WHERE status = 'running'"
            ).fetchone()
        assert run is not None
        (run_id,) = run
        assert await rival.try_hold(run_id)
        return "lost"

    model = ScriptedModel(
        [
            [function_call("lose_the_lock", {}, call_id="l1")],
            [assistant_message("done")],
        ]
    )

    async def go() -> None:
        try:
            async with AgentStore(schema_url) as store:
                await store.run(
                    Agent(name="loser", model=model, tools=[lose_the_lock]), "go"
                )
        finally:
            await rival.close()

    with pytest.raises(RecordingFailed, match="taken over") as caught:
        asyncio.run(go())
    assert caught.value.result.final_output == "done"
    assert rows(db, "SELECT status FROM runs") == [("running",)]


def test_a_run_taken_over_in_a_gap_of_its_lock_starts_no_more_tools(schema_url, db):
    ran: list[str] = []

    @function_tool
    def first() -> str:
        """Lose the lock; meanwhile another process claims the run."""
        ran.append("first")
        with psycopg.connect(schema_url, autocommit=True) as conn:
            terminate_lock_connections(conn)
            # What a takeover does to the row (and the lock is free again).
            conn.execute(
                "UPDATE runs SET attempt_id = gen_random_uuid(), error = '\"theirs\"'"
            )
        return "done"

    with pytest.raises(LockLost):
        asyncio.run(run_first_then_second(schema_url, first, ran))
    assert ran == ["first"]
    assert rows(db, "SELECT status, error FROM runs") == [("running", "theirs")]


def test_closing_the_store_under_a_running_run_stops_its_tools(schema_url, db):
    ran: list[str] = []
    started, go_on = asyncio.Event(), asyncio.Event()

    @function_tool
    async def first() -> str:
        """Wait while the store closes."""
        ran.append("first")
        started.set()
        await go_on.wait()
        return "done"

    async def close_under_it() -> None:
        async with AsyncConnectionPool(schema_url, open=False) as pool:
            async with AgentStore(schema_url, pool=pool) as store:
                agent = first_then_second(first, ran)
                task = asyncio.create_task(store.run(agent, "go"))
                await started.wait()
            go_on.set()  # the store is closed; the app's pool is not
            with pytest.raises(LockLost):
                await task

    asyncio.run(close_under_it())
    assert ran == ["first"]
    assert rows(db, "SELECT status FROM runs") == [("running",)]


def test_an_agent_tool_waiting_on_its_own_approval_is_never_taken_over(schema_url, db):
    @function_tool(needs_approval=True)
    def pay(amount: int) -> str:
        """Pay (a human approves it first)."""
        return f"paid {amount}"

    lead = scenario.lead_with_a_cashier(pay)

    async def interrupt() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(lead, "pay 5")

    stored = asyncio.run(interrupt())
    assert stored.interrupted
    # The outer call runs until the nested approval is settled.
    assert rows(db, "SELECT call_id, status FROM tool_calls ORDER BY 1") == [
        ("n1", "in_progress")
    ]
    assert rows(db, "SELECT call_id, status FROM interruptions") == [("p1", "pending")]
    db.execute("UPDATE runs SET status = 'running'")  # as if its process died

    async def take_over() -> None:
        async with AgentStore(schema_url) as store:
            await store.resume(stored.run_id, lead)

    with pytest.raises(StoreError, match="ask_cashier started"):
        asyncio.run(take_over())


def test_other_updates_of_a_runs_row_do_not_stop_it(schema_url, db):
    @function_tool
    def touch() -> str:
        """Update the run's row as an operator (or a cascade) might."""
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute("UPDATE runs SET status = status, workflow_name = 'ops'")
        return "touched"

    model = ScriptedModel(
        [
            [function_call("touch", {}, call_id="t1")],
            [function_call("touch", {}, call_id="t2")],
            [assistant_message("done")],
        ]
    )

    async def go() -> Any:
        async with AgentStore(schema_url) as store:
            return await store.run(Agent(name="ops", model=model, tools=[touch]), "go")

    assert asyncio.run(go()).result.final_output == "done"
    assert rows(db, "SELECT status, workflow_name FROM runs") == [("completed", "ops")]
    assert rows(db, "SELECT count(*) FROM tool_calls WHERE status = 'completed'") == [
        (2,)
    ]


def test_a_run_recovered_while_its_lock_was_away_starts_no_more_tools(schema_url, db):
    ran: list[str] = []

    @function_tool
    async def first() -> str:
        """Lose the lock; meanwhile another process recovers the run."""
        ran.append("first")
        with psycopg.connect(schema_url, autocommit=True) as conn:
            terminate_lock_connections(conn)
        async with AgentStore(schema_url) as other:
            assert list((await other.recover_abandoned_runs()).values()) == ["failed"]
        return "done"

    with pytest.raises(LockLost):
        asyncio.run(run_first_then_second(schema_url, first, ran))
    assert ran == ["first"]
    assert rows(db, "SELECT status, error ->> 'type' FROM runs") == [
        ("failed", "Abandoned")
    ]
