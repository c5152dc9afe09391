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

While a process drives a run it holds the run's advisory lock (liveness.py):
a run whose process died can be resumed or recovered, a live one cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from agents import (
    Agent,
    RunConfig,
    RunHooks,
    Runner,
    RunResult,
    RunResultStreaming,
    RunState,
)
from agents.exceptions import (
    AgentsException,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    OutputGuardrailTripwireTriggered,
)
from agents.memory import Session
from agents.memory.session_settings import SessionSettings
from agents.run import DEFAULT_MAX_TURNS
from agents.stream_events import StreamEvent
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from schemactl.agent_store import definitions
from schemactl.agent_store.errors import LockLost, RecordingFailed, StoreError
from schemactl.agent_store.journal import STARTED_SINCE_STATE, ToolJournal
from schemactl.agent_store.jsonsafe import (
    dumps,
    escape_text,
    to_json,
    unescape_nul,
)
from schemactl.agent_store.liveness import RunLocks
from schemactl.agent_store.recording import (
    Final,
    Outcome,
    RecordingHooks,
    RunWriter,
)
from schemactl.agent_store.rows import scalar
from schemactl.agent_store.session import PostgresSession

START_RUN = """
    INSERT INTO runs (
        id, attempt_id, agent_id, session_id, status, input, context, max_turns,
        workflow_name, trace_id, group_id, previous_response_id, conversation_id)
    VALUES (%s, %s, %s, %s, 'running', %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s, %s)"""
# Interrupted, or running with its lock free (its process died): the caller
# holds the lock, so no one else claims it meanwhile.
RUN_FOR_CLAIM = "SELECT status, max_turns FROM runs WHERE id = %s FOR UPDATE"
# A new attempt: the run's fence (recording.py) from now on.
CLAIM_RUN = "UPDATE runs SET status = 'running', attempt_id = %s WHERE id = %s"
RUN_STATUS = "SELECT status FROM runs WHERE id = %s"
BACK_TO_INTERRUPTED = """
    UPDATE runs SET status = 'interrupted', error = %s::jsonb
    WHERE id = %s AND attempt_id = %s"""
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
RUNNING_RUNS = "SELECT id FROM runs WHERE status = 'running'"
# Back to interrupted only if no tool started since the state it would resume
# from (journal.py): resuming would run that tool again. No attempt drives it
# any more: a process that held it and comes back finds its attempt gone.
ABANDON_RUN = """
    WITH resumable AS (
        SELECT EXISTS (SELECT 1 FROM run_states AS s
                       WHERE s.run_id = %(run)s AND s.is_active)
           AND NOT EXISTS (
               SELECT 1 FROM tool_calls AS c
               WHERE c.run_id = %(run)s
                 AND (c.status = 'in_progress'
                      OR c.started_at > coalesce(
                          (SELECT s.created_at FROM run_states AS s
                           WHERE s.run_id = %(run)s AND s.is_active), '-infinity')))
           AS yes
    )
    UPDATE runs SET
        status = CASE WHEN resumable.yes THEN 'interrupted' ELSE 'failed' END,
        error = %(error)s::jsonb,
        attempt_id = NULL,
        completed_at = CASE WHEN resumable.yes THEN NULL
                            ELSE greatest(now(), started_at) END
    FROM resumable
    WHERE id = %(run)s AND status = 'running'
    RETURNING status"""
MARK_UNRECORDED = """
    UPDATE runs SET status = 'failed', error = %s::jsonb,
        completed_at = greatest(now(), started_at)
    WHERE id = %s AND status = 'running' AND attempt_id = %s"""


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
    """Keeps sessions and whole runs in the schema schemactl migrates.

    The run's context goes to the SDK but is not stored (neither in
    ``runs.context`` nor in the stored RunState), unless ``record_context``:
    it often holds credentials. Resume such a run with ``context=``.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None,
        max_connections: int = 10,
        record_context: bool = False,
    ) -> None:
        # The store also needs one connection of its own (run locks): with a
        # pool whose conninfo is computed, give conninfo too.
        lock_conninfo = (
            conninfo if conninfo is not None else getattr(pool, "conninfo", None)
        )
        if not isinstance(lock_conninfo, str):
            raise ValueError("give a connection string (and a pool, if you have one)")
        self._owns_pool = pool is None
        # check: a connection the server closed while idle (a restart, an idle
        # timeout) is replaced before use rather than failing a run's write.
        self.pool = pool or AsyncConnectionPool(
            lock_conninfo,
            min_size=1,
            max_size=max_connections,
            open=False,
            check=AsyncConnectionPool.check_connection,
        )
        self.record_context = record_context
        self._locks = RunLocks(lock_conninfo)

    async def __aenter__(self) -> AgentStore:
        if self._owns_pool:
            await self.pool.open(wait=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._locks.close()
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
        max_turns: int | None = DEFAULT_MAX_TURNS,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        **runner_options: Any,
    ) -> StoredRun:
        """Run ``agent`` on ``input`` like ``Runner.run`` and keep the run."""
        writer = await self._start(
            agent, input, session, context, max_turns, hooks, run_config, runner_options
        )
        try:
            return await self._drive(
                writer,
                agent,
                input,
                resumed=False,
                session=_for_run(session, writer.run_id),
                context=context,
                max_turns=max_turns,
                run_config=run_config,
                options=runner_options,
            )
        finally:
            await self._locks.release(writer.run_id)

    async def run_streamed(
        self,
        agent: Agent[Any],
        input: Any,
        *,
        session: Session | None = None,
        context: Any = None,
        max_turns: int | None = DEFAULT_MAX_TURNS,
        hooks: RunHooks[Any] | None = None,
        run_config: RunConfig | None = None,
        **runner_options: Any,
    ) -> StoredStream:
        """``Runner.run_streamed``, kept: iterate ``stream_events()`` of the
        returned object (not of its ``result``); the run is written when the
        stream ends or fails. Closed early, the stream is read to its end
        first (the run goes on without a reader); ``cancel()`` stops it, and
        it is kept as cancelled."""
        writer = await self._start(
            agent, input, session, context, max_turns, hooks, run_config, runner_options
        )
        stream = StoredStream(self, writer, max_turns)
        try:
            stream.result = Runner.run_streamed(
                agent,
                input,
                session=_for_run(session, writer.run_id),
                context=context,
                max_turns=max_turns,
                hooks=writer.hooks,
                run_config=run_config,
                **runner_options,
            )
        except BaseException as exc:
            await self._finish_stream(stream, exc)
            raise
        return stream

    async def load_state(
        self, run_id: Any, agent: Agent[Any], *, context: Any = None
    ) -> RunState[Any]:
        """Return the interrupted run's RunState, with every decision taken
        through ``approve``/``reject`` applied to it. ``context`` replaces
        the stored one (which is empty unless the store records contexts)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(ACTIVE_STATE, (run_id,))
            row = await cursor.fetchone()
            if row is None:
                status = await scalar(conn, RUN_STATUS, (run_id,))
                raise StoreError(
                    f"run {run_id} has no state to resume from: "
                    f"it is {status or 'not in the store'}"
                )
            state: RunState[Any] = await RunState.from_json(
                agent, unescape_nul(row[0]), context_override=context
            )
            pending = {
                escape_text(i.call_id or ""): i for i in state.get_interruptions()
            }
            cursor = await conn.execute(PENDING_DECISIONS, (run_id, list(pending)))
            decisions = await cursor.fetchall()
        for call_id, status, sticky, message in decisions:
            item = pending[call_id]
            if status == "approved":
                state.approve(item, always_approve=sticky)
            else:
                text = None if message is None else unescape_nul(message)
                state.reject(item, always_reject=sticky, rejection_message=text)
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

        ``agent`` is the run's starting agent, built as when the run started.
        Refused while another live process drives the run. A run whose
        process died resumes from its last interruption. If the resumed run
        fails before it calls a model or a tool (a cancel, a model that is
        down), it stays interrupted, with the error, ready to resume again.
        """
        # The state carries the turn limit; the SDK ignores another one.
        runner_options.pop("max_turns", None)
        if not await self._locks.try_hold(run_id):
            raise StoreError(f"run {run_id} cannot resume: another process runs it")
        try:
            state = await self.load_state(run_id, agent, context=context)
            async with self.pool.connection() as conn:
                max_turns, fence = await self._claim(conn, run_id)
                ids = await definitions.register(conn, agent)
            writer = self._writer(run_id, ids, agent, hooks, run_config, fence)
            return await self._drive(
                writer,
                agent,
                state,
                resumed=True,
                session=_for_run(session, run_id),
                context=None,
                max_turns=max_turns,
                run_config=run_config,
                options=runner_options,
            )
        finally:
            await self._locks.release(run_id)

    async def recover_abandoned_runs(self) -> dict[Any, str]:
        """Settle the runs left `running` by a process that died: one with a
        state to resume from goes back to interrupted, any other is failed.
        Runs a live process drives are left alone. Returns each run's new
        status."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(RUNNING_RUNS)
            running = [row[0] for row in await cursor.fetchall()]
        settled: dict[Any, str] = {}
        error = dumps(
            {"type": "Abandoned", "message": "the process running it stopped"}
        )
        for run_id in running:
            if not await self._locks.try_hold(run_id):
                continue
            try:
                async with self.pool.connection() as conn:
                    # The row first: a tool start that holds it is then seen.
                    await conn.execute(RUN_FOR_CLAIM, (run_id,))
                    status = await scalar(
                        conn, ABANDON_RUN, {"run": run_id, "error": error}
                    )
                if status is not None:
                    settled[run_id] = status
            finally:
                await self._locks.release(run_id)
        return settled

    async def _start(
        self,
        agent: Agent[Any],
        input: Any,
        session: Session | None,
        context: Any,
        max_turns: int | None,
        hooks: RunHooks[Any] | None,
        run_config: RunConfig | None,
        options: dict[str, Any],
    ) -> RunWriter:
        """Write a new run's row and agent graph, holding its lock (the caller
        releases it once the run is written)."""
        run_id = uuid.uuid4()
        await self._locks.try_hold(run_id)  # a new id: always free
        try:
            return await self._insert_run(
                run_id,
                agent,
                input,
                session,
                context,
                max_turns,
                hooks,
                run_config,
                options,
            )
        except BaseException:
            await self._locks.release(run_id)
            raise

    async def _insert_run(
        self,
        run_id: Any,
        agent: Agent[Any],
        input: Any,
        session: Session | None,
        context: Any,
        max_turns: int | None,
        hooks: RunHooks[Any] | None,
        run_config: RunConfig | None,
        options: dict[str, Any],
    ) -> RunWriter:
        # A session of another kind keeps the history elsewhere: the run is
        # stored all the same, without a link to it.
        session_row = None
        if isinstance(session, PostgresSession):
            session_row = await session.session_row_id()
        stored_context = context if self.record_context else None
        async with self.pool.connection() as conn:
            ids = await definitions.register(conn, agent)
            attempt = uuid.uuid4()
            await conn.execute(
                START_RUN,
                (
                    run_id,
                    attempt,
                    ids.of(agent),
                    session_row,
                    dumps(input),
                    None if stored_context is None else dumps(stored_context),
                    max_turns,
                    _text(run_config, "workflow_name"),
                    _text(run_config, "trace_id"),
                    _text(run_config, "group_id"),
                    _text(options, "previous_response_id"),
                    _text(options, "conversation_id"),
                ),
            )
        return self._writer(run_id, ids, agent, hooks, run_config, attempt)

    def _writer(
        self,
        run_id: Any,
        ids: definitions.AgentIds,
        agent: Agent[Any],
        hooks: RunHooks[Any] | None,
        run_config: RunConfig | None,
        fence: uuid.UUID,
    ) -> RunWriter:
        journal = ToolJournal(self.pool, run_id, ids, self._locks, fence)
        return RunWriter(
            run_id,
            ids,
            agent,
            RecordingHooks(hooks, journal),
            fence,
            _model_override(run_config),
        )

    async def _claim(
        self, conn: AsyncConnection[Any], run_id: Any
    ) -> tuple[int | None, uuid.UUID]:
        """Mark the run running (the caller holds its lock); return its turn
        limit and its fence. A run its process left running resumes only if
        no tool started since its state: resuming would run it again."""
        cursor = await conn.execute(RUN_FOR_CLAIM, (run_id,))
        row = await cursor.fetchone()
        if row is None or row[0] not in ("interrupted", "running"):
            status = row[0] if row is not None else "not in the store"
            raise StoreError(f"run {run_id} cannot resume: it is {status}")
        # A run its process left running: a call still in progress may run again
        # too (a tool, an agent tool waiting on its own approval).
        abandoned = row[0] == "running"
        cursor = await conn.execute(
            STARTED_SINCE_STATE, {"run": run_id, "abandoned": abandoned}
        )
        tools = [r[0] for r in await cursor.fetchall()]
        if tools:
            raise StoreError(
                f"run {run_id} cannot resume: its process stopped after "
                f"{', '.join(tools)} started, and resuming would run it again; "
                "check what it did, then settle the run with "
                "recover_abandoned_runs() (it fails the run)"
            )
        attempt = uuid.uuid4()
        await conn.execute(CLAIM_RUN, (attempt, run_id))
        return row[1], attempt

    async def _drive(
        self,
        writer: RunWriter,
        agent: Agent[Any],
        input: Any,
        *,
        resumed: bool,
        session: Session | None,
        context: Any,
        max_turns: int | None,
        run_config: RunConfig | None,
        options: dict[str, Any],
    ) -> StoredRun:
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
            await _despite_cancellation(
                self._record_failure(writer, exc, max_turns, resumed=resumed)
            )
            lost = _lock_lost_in(exc)
            if lost is not None:
                raise lost from exc  # the SDK wraps it in a tool error
            raise
        try:
            await self._write(writer, Outcome.of(result), self._final(result))
        except LockLost as exc:
            raise RecordingFailed(writer.run_id, result, exc) from exc
        except Exception as exc:
            await self._mark_unrecorded(writer, exc)
            raise RecordingFailed(writer.run_id, result, exc) from exc
        return StoredRun(writer.run_id, result)

    async def _write(self, writer: RunWriter, outcome: Outcome, final: Final) -> None:
        """Write in one transaction; once more if the connection was lost (the
        write is idempotent: what a first attempt committed is not repeated).
        Never for a run whose lock was lost: another process may have taken
        it over, and written it."""
        if not await self._locks.confirm(writer.run_id):
            raise LockLost(writer.run_id)
        for attempt in (1, 2):
            try:
                async with self.pool.connection() as conn:
                    await writer.write(conn, outcome, final, retried=attempt == 2)
                return
            except psycopg.OperationalError:
                if attempt == 2:
                    raise

    async def _record_failure(
        self,
        writer: RunWriter,
        exc: BaseException,
        max_turns: int | None,
        *,
        resumed: bool,
    ) -> None:
        try:
            if (
                resumed
                and not writer.hooks.responses
                and not writer.hooks.tools_started
            ):
                await self._back_to_interrupted(writer, exc)
            else:
                await self._write_failure(writer, exc, max_turns)
        except Exception as failure:
            exc.add_note(
                f"schemactl.agent_store could not record run {writer.run_id}: "
                f"{type(failure).__name__}: {failure}"
            )

    async def _back_to_interrupted(self, writer: RunWriter, exc: BaseException) -> None:
        error = dumps(_error_json(exc))
        async with self.pool.connection() as conn:
            await conn.execute(
                BACK_TO_INTERRUPTED, (error, writer.run_id, writer.fence)
            )

    async def _write_failure(
        self, writer: RunWriter, exc: BaseException, max_turns: int | None
    ) -> None:
        data = exc.run_data if isinstance(exc, AgentsException) else None
        outcome = Outcome.of(data) if data is not None else Outcome()
        # The SDK's run data may miss the turn that failed: every response the
        # hooks saw was paid for, and is written.
        known = {id(r) for r in outcome.raw_responses}
        outcome.raw_responses += [
            r for r in writer.hooks.responses if id(r) not in known
        ]
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

    async def _mark_unrecorded(self, writer: RunWriter, exc: Exception) -> None:
        error = {"type": "RecordingFailed", "message": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(Exception):
            async with self.pool.connection() as conn:
                await conn.execute(
                    MARK_UNRECORDED, (dumps(error), writer.run_id, writer.fence)
                )

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
                    None if by is None else escape_text(by),
                    run_id,
                    escape_text(call_id),
                ),
            )
            if await cursor.fetchone() is None:
                raise StoreError(f"run {run_id} has no pending approval for {call_id}")

    async def _finish_stream(
        self, stream: StoredStream, error: BaseException | None
    ) -> None:
        """Write a streamed run once its stream is over, then let it go."""
        writer = stream.writer
        try:
            if error is not None:
                await self._record_failure(
                    writer, error, stream.max_turns, resumed=False
                )
                return
            result = stream.result
            final = self._final(result)
            if final.status == "completed" and (
                stream.cancelled or result.final_output is None
            ):
                final = Final(
                    status="cancelled",
                    error={"type": "Cancelled", "message": "the stream was cancelled"},
                    turn=final.turn,
                )
            try:
                await self._write(writer, Outcome.of(result), final)
            except LockLost as exc:
                raise RecordingFailed(writer.run_id, result, exc) from exc
            except Exception as exc:
                await self._mark_unrecorded(writer, exc)
                raise RecordingFailed(writer.run_id, result, exc) from exc
        finally:
            await self._locks.release(writer.run_id)

    def _final(self, result: RunResult | RunResultStreaming) -> Final:
        state = result.to_state().to_json()
        if not self.record_context:
            _omit_context(state)
        turn = int(state.get("current_turn", 0))
        if result.interruptions:
            return Final(status="interrupted", state=state, turn=turn)
        return Final(
            status="completed", final_output=to_json(result.final_output), turn=turn
        )


class StoredStream:
    """A streamed run the store keeps: iterate ``stream_events()`` here."""

    result: RunResultStreaming

    def __init__(
        self, store: AgentStore, writer: RunWriter, max_turns: int | None
    ) -> None:
        self.run_id = writer.run_id
        self.writer = writer
        self.max_turns = max_turns
        self.cancelled = False
        self._store = store

    def cancel(self, mode: Literal["immediate", "after_turn"] = "immediate") -> None:
        """Cancel the run (``RunResultStreaming.cancel``); it is kept as
        cancelled once the stream ends."""
        self.cancelled = True
        self.result.cancel(mode)

    async def stream_events(self) -> AsyncGenerator[StreamEvent, None]:
        """The SDK's events; the run is written when they end."""
        try:
            async for event in self.result.stream_events():
                yield event
        except GeneratorExit:
            # Closed before the end: the SDK's run goes on without a reader (a
            # UI that stops at the answer), so it is read to its end here and
            # kept as it ends. Call cancel() first to stop it.
            await _despite_cancellation(self._drain_and_finish())
            raise
        except BaseException as exc:
            await _despite_cancellation(self._store._finish_stream(self, exc))
            lost = _lock_lost_in(exc)
            if lost is not None:
                raise lost from exc
            raise
        await self._store._finish_stream(self, None)

    async def _drain_and_finish(self) -> None:
        try:
            async for _ in self.result.stream_events():
                pass
        except BaseException as exc:
            await self._store._finish_stream(self, exc)
            return
        await self._store._finish_stream(self, None)


def _omit_context(state: Any) -> None:
    """Drop the application's context from a serialised RunState, and from the
    states nested in it (agents run as tools keep their own), the way the SDK
    marks an omitted one (restoring it then needs ``context=``)."""
    if isinstance(state, list):
        for item in state:
            _omit_context(item)
        return
    if not isinstance(state, dict):
        return
    if "context_meta" in state and state.get("context") not in (None, {}):
        state["context"] = {}
        if isinstance(state["context_meta"], dict):
            state["context_meta"]["omitted"] = True
    for value in state.values():
        _omit_context(value)


def _for_run(session: Session | None, run_id: Any) -> Session | None:
    """What the SDK gets: our session tags its items with the run."""
    return session.for_run(run_id) if isinstance(session, PostgresSession) else session


def _model_override(run_config: RunConfig | None) -> str | None:
    model = getattr(run_config, "model", None)
    return None if model is None else definitions.model_name(model)


async def _despite_cancellation(write: Coroutine[Any, Any, None]) -> None:
    """Finish ``write`` even if the caller is cancelled again meanwhile."""
    task = asyncio.ensure_future(write)
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task})
    task.result()


def _lock_lost_in(exc: BaseException) -> LockLost | None:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, LockLost):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _failure_status(exc: BaseException) -> str:
    if isinstance(exc, MaxTurnsExceeded):
        return "max_turns_exceeded"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "cancelled"
    return "failed"


def _error_json(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _text(source: RunConfig | dict[str, Any] | None, name: str) -> str | None:
    """A text setting of the run config or the runner's options, storable."""
    if isinstance(source, dict):
        value = source.get(name)
    else:
        value = getattr(source, name, None)
    return escape_text(value) if isinstance(value, str) else None
