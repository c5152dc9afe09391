"""AgentStore: run OpenAI Agents SDK agents with every run kept in PostgreSQL.

    async with AgentStore("postgresql://app@db/agents") as store:
        session = store.session("user-42")
        stored = await store.run(agent, "Hello", session=session)

A run's row exists (status running) before the SDK starts; when the run ends,
everything it produced is written in one transaction with its final status.
An interrupted run (a tool that needs approval) keeps its RunState; any
process can approve or reject the pending calls and resume it:

    await store.approve(run_id, call_id, by="alice")
    stored = await store.resume(run_id, agent)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from agents import Agent, RunConfig, RunHooks, Runner, RunResult, RunState
from agents.exceptions import (
    AgentsException,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    OutputGuardrailTripwireTriggered,
)
from agents.memory import Session
from agents.memory.session_settings import SessionSettings
from agents.run import DEFAULT_MAX_TURNS
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from schemactl.agent_store import definitions
from schemactl.agent_store.jsonsafe import dumps, escape_text, to_json, unescape_nul
from schemactl.agent_store.recording import (
    Final,
    Outcome,
    RecordingHooks,
    RunWriter,
)
from schemactl.agent_store.session import PostgresSession

START_RUN = """
    INSERT INTO runs (
        agent_id, session_id, status, input, context, max_turns, workflow_name,
        trace_id, group_id, previous_response_id, conversation_id)
    VALUES (%s, %s, 'running', %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s, %s)
    RETURNING id"""
# Only an interrupted run resumes, and only once at a time: the UPDATE takes
# the row, so a second resumer finds it running.
RESUME_RUN = """
    UPDATE runs SET status = 'running' WHERE id = %s AND status = 'interrupted'
    RETURNING session_id, max_turns"""
RUN_STATUS = "SELECT status FROM runs WHERE id = %s"
ACTIVE_STATE = """
    SELECT state_data FROM run_states WHERE run_id = %s AND is_active = true"""
PENDING_DECISIONS = """
    SELECT call_id, status, sticky, rejection_message FROM interruptions
    WHERE run_id = %s AND status <> 'pending' AND call_id = ANY(%s)"""
DECIDE = """
    UPDATE interruptions SET
        status = %s, sticky = %s, rejection_message = %s, resolved_by = %s,
        resolved_at = greatest(now(), created_at)
    WHERE run_id = %s AND call_id = %s AND status = 'pending'
    RETURNING id"""
SESSION_WATERMARK = """
    SELECT coalesce(max(position), -1) FROM session_items WHERE session_id = %s"""


class StoreError(Exception):
    """A request the store refuses: it names the run and what state it is in."""


@dataclass(frozen=True)
class StoredRun:
    """A run the store kept: its row id and the SDK's result."""

    run_id: Any
    result: RunResult

    @property
    def interrupted(self) -> bool:
        """True while calls wait for approval (see ``AgentStore.approve``)."""
        return bool(self.result.interruptions)


class AgentStore:
    """Keeps sessions and whole runs in the schema schemactl migrates."""

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None,
        max_connections: int = 10,
    ) -> None:
        if (conninfo is None) == (pool is None):
            raise ValueError("give either a connection string or a pool")
        self._owns_pool = pool is None
        self.pool = pool or AsyncConnectionPool(
            conninfo or "", min_size=1, max_size=max_connections, open=False
        )

    async def __aenter__(self) -> AgentStore:
        if self._owns_pool:
            await self.pool.open(wait=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owns_pool:
            await self.pool.close()

    def session(
        self, session_id: str, *, session_settings: SessionSettings | None = None
    ) -> PostgresSession:
        """Return the session ``session_id`` (created on its first write)."""
        return PostgresSession(session_id, self.pool, session_settings=session_settings)

    async def run(
        self,
        agent: Agent[Any],
        input: Any,
        *,
        session: Session | None = None,
        context: Any = None,
        record_context: bool = False,
        max_turns: int | None = DEFAULT_MAX_TURNS,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        **runner_options: Any,
    ) -> StoredRun:
        """Run ``agent`` on ``input`` like ``Runner.run`` and keep the run.

        ``context`` goes to the SDK; it is written to ``runs.context`` only with
        ``record_context=True`` (it often holds what must not be stored).
        """
        writer = await self._start(
            agent,
            input,
            session=session,
            context=context if record_context else None,
            max_turns=max_turns,
            run_config=run_config,
            options=runner_options,
        )
        return await self._drive(
            writer,
            agent,
            input,
            session=session,
            context=context,
            max_turns=max_turns,
            hooks=hooks,
            run_config=run_config,
            options=runner_options,
        )

    async def load_state(self, run_id: Any, agent: Agent[Any]) -> RunState[Any]:
        """Return the interrupted run's RunState, with every decision taken
        through ``approve``/``reject`` applied to it."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(ACTIVE_STATE, (run_id,))
            row = await cursor.fetchone()
            if row is None:
                status = await _scalar(conn, RUN_STATUS, (run_id,))
                raise StoreError(
                    f"run {run_id} has no state to resume from: "
                    f"it is {status or 'not in the store'}"
                )
            state_json = unescape_nul(row[0])
            state: RunState[Any] = await RunState.from_json(agent, state_json)
            pending = state.get_interruptions()
            cursor = await conn.execute(
                PENDING_DECISIONS, (run_id, [i.call_id for i in pending])
            )
            decisions = {r[0]: r[1:] for r in await cursor.fetchall()}
        for item in pending:
            decision = decisions.get(item.call_id)
            if decision is None:
                continue
            status, sticky, message = decision
            if status == "approved":
                state.approve(item, always_approve=sticky)
            else:
                state.reject(item, always_reject=sticky, rejection_message=message)
        return state

    async def approve(
        self, run_id: Any, call_id: str, *, by: str | None = None, always: bool = False
    ) -> None:
        """Approve a pending call of an interrupted run (``always``: every
        later call of that tool in the run, too)."""
        await self._decide(run_id, call_id, "approved", by, always, None)

    async def reject(
        self,
        run_id: Any,
        call_id: str,
        *,
        by: str | None = None,
        message: str | None = None,
        always: bool = False,
    ) -> None:
        """Reject a pending call; ``message`` is what the model is told."""
        await self._decide(run_id, call_id, "rejected", by, always, message)

    async def resume(
        self,
        run_id: Any,
        agent: Agent[Any],
        *,
        session: Session | None = None,
        context: Any = None,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        **runner_options: Any,
    ) -> StoredRun:
        """Resume an interrupted run from its stored state, in any process.

        ``agent`` is the run's starting agent, built the same way as when the
        run started. Refused unless the run is interrupted: two processes
        never resume one run at once.
        """
        state = await self.load_state(run_id, agent)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(RESUME_RUN, (run_id,))
            row = await cursor.fetchone()
            if row is None:
                status = await _scalar(conn, RUN_STATUS, (run_id,))
                raise StoreError(
                    f"run {run_id} cannot resume: it is {status or 'not in the store'}"
                )
            max_turns = row[1]
            ids = await definitions.register(conn, agent)
        writer = RunWriter(run_id, ids, agent, RecordingHooks(hooks))
        if isinstance(session, PostgresSession):
            writer.session_row = await session.session_row_id()
            writer.session_watermark = await self._watermark(writer.session_row)
        # The SDK takes the turn limit from the state; the row's copy only
        # tells the failure path which turn exceeded it.
        return await self._drive(
            writer,
            agent,
            state,
            session=session,
            context=context,
            max_turns=max_turns,
            hooks=hooks,
            run_config=run_config,
            options=runner_options,
        )

    async def _start(
        self,
        agent: Agent[Any],
        input: Any,
        *,
        session: Session | None,
        context: Any,
        max_turns: int | None,
        run_config: RunConfig | None,
        options: dict[str, Any],
    ) -> RunWriter:
        # A session of another kind keeps the history elsewhere: the run is
        # stored all the same, without a link to it.
        session_row = None
        if isinstance(session, PostgresSession):
            session_row = await session.session_row_id()
        async with self.pool.connection() as conn:
            ids = await definitions.register(conn, agent)
            run_id = await _scalar(
                conn,
                START_RUN,
                (
                    ids.of(agent),
                    session_row,
                    dumps(input),
                    None if context is None else dumps(context),
                    max_turns,
                    _text(run_config, "workflow_name"),
                    _text(run_config, "trace_id"),
                    _text(run_config, "group_id"),
                    options.get("previous_response_id"),
                    options.get("conversation_id"),
                ),
            )
        writer = RunWriter(run_id, ids, agent, RecordingHooks())
        if session_row is not None:
            writer.session_row = session_row
            writer.session_watermark = await self._watermark(session_row)
        return writer

    async def _drive(
        self,
        writer: RunWriter,
        agent: Agent[Any],
        input: Any,
        *,
        session: Session | None,
        context: Any,
        max_turns: int | None,
        hooks: RunHooks[Any] | None,
        run_config: RunConfig | None,
        options: dict[str, Any],
    ) -> StoredRun:
        writer.hooks.inner = hooks
        try:
            result = await Runner.run(
                agent,
                input,
                session=session,
                context=context,
                max_turns=max_turns,
                hooks=writer.hooks,
                run_config=run_config,
                **options,
            )
        except BaseException as exc:
            # Cancelled or not, the run's row must not stay "running".
            await _despite_cancellation(self._write_failure(writer, exc, max_turns))
            raise
        await self._write(writer, Outcome.of(result), _final(result))
        return StoredRun(writer.run_id, result)

    async def _write(self, writer: RunWriter, outcome: Outcome, final: Final) -> None:
        async with self.pool.connection() as conn:
            await writer.write(conn, outcome, final)

    async def _write_failure(
        self, writer: RunWriter, exc: BaseException, max_turns: int | None
    ) -> None:
        data = exc.run_data if isinstance(exc, AgentsException) else None
        outcome = (
            Outcome.of(data) if data is not None else Outcome([], [], None, [], [], [])
        )
        if isinstance(
            exc, InputGuardrailTripwireTriggered | OutputGuardrailTripwireTriggered
        ):
            results = (
                outcome.input_guardrail_results
                if isinstance(exc, InputGuardrailTripwireTriggered)
                else outcome.output_guardrail_results
            )
            if exc.guardrail_result not in results:
                results.append(exc.guardrail_result)
        final = Final(status=_failure_status(exc), error=_error_json(exc))
        if isinstance(exc, MaxTurnsExceeded) and max_turns is not None:
            final.turn = max_turns + 1
        await self._write(writer, outcome, final)

    async def _decide(
        self,
        run_id: Any,
        call_id: str,
        status: str,
        by: str | None,
        always: bool,
        message: str | None,
    ) -> None:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                DECIDE,
                (
                    status,
                    always,
                    None if message is None else escape_text(message),
                    by,
                    run_id,
                    call_id,
                ),
            )
            if await cursor.fetchone() is None:
                raise StoreError(f"run {run_id} has no pending approval for {call_id}")

    async def _watermark(self, session_row: Any) -> int:
        async with self.pool.connection() as conn:
            return int(await _scalar(conn, SESSION_WATERMARK, (session_row,)))


async def _despite_cancellation(write: Coroutine[Any, Any, None]) -> None:
    """Finish ``write`` even if the caller is cancelled again meanwhile."""
    task = asyncio.ensure_future(write)
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task})
    task.result()


def _final(result: RunResult) -> Final:
    state = result.to_state().to_json()
    turn = int(state.get("current_turn", 0))
    if result.interruptions:
        return Final(status="interrupted", state=state, turn=turn)
    return Final(
        status="completed",
        final_output=to_json(result.final_output),
        state=state,
        turn=turn,
    )


def _failure_status(exc: BaseException) -> str:
    if isinstance(exc, MaxTurnsExceeded):
        return "max_turns_exceeded"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "cancelled"
    return "failed"


def _error_json(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _text(config: RunConfig | None, name: str) -> str | None:
    value = getattr(config, name, None) if config is not None else None
    return value if isinstance(value, str) else None


async def _scalar(
    conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]
) -> Any:
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    return None if row is None else row[0]
