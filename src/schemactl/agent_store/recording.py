"""What one run writes: its row at the start, then everything it produced.

A run is written in two transactions: its `runs` row (status running) and its
agent graph's definitions before the SDK starts, then, when ``Runner.run``
returns or raises, its items, responses, tool calls, guardrail results,
interruptions, usage and RunState in one transaction with the final status.

A resumed run's result repeats what the run produced before it stopped; only
what is new is written (by count: the SDK keeps the earlier part as a prefix).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunHooks
from agents.items import (
    HandoffOutputItem,
    ModelResponse,
    RunItem,
    ToolApprovalItem,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.tool import Tool
from agents.usage import Usage
from psycopg import AsyncConnection

from schemactl.agent_store import definitions
from schemactl.agent_store.errors import LockLost
from schemactl.agent_store.journal import DROP_MARKERS, ToolJournal
from schemactl.agent_store.jsonsafe import (
    dumps,
    escape_optional,
    escape_text,
    parsed_json_text,
    to_json,
)

COUNTS = """
    SELECT (SELECT count(*) FROM run_items WHERE run_id = %(run)s),
           (SELECT count(*) FROM model_responses WHERE run_id = %(run)s),
           (SELECT count(*) FROM guardrail_results
            WHERE run_id = %(run)s AND guardrail_type = 'input'),
           (SELECT count(*) FROM guardrail_results
            WHERE run_id = %(run)s AND guardrail_type = 'output'),
           (SELECT count(*) FROM tool_guardrail_results AS r
            JOIN tool_guardrails AS g ON g.id = r.tool_guardrail_id
            WHERE r.run_id = %(run)s AND g.guardrail_type = 'tool_input'),
           (SELECT count(*) FROM tool_guardrail_results AS r
            JOIN tool_guardrails AS g ON g.id = r.tool_guardrail_id
            WHERE r.run_id = %(run)s AND g.guardrail_type = 'tool_output')"""
INSERT_ITEM = """
    INSERT INTO run_items (
        run_id, agent_id, sequence, item_type, source_agent_id, target_agent_id,
        item_data)
    VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
    RETURNING id"""
INSERT_RESPONSE = """
    INSERT INTO model_responses (
        run_id, agent_id, turn, response_id, request_id, model, output, requests,
        input_tokens, output_tokens, total_tokens, cached_tokens, cache_write_tokens,
        reasoning_tokens)
    VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s)
    RETURNING id"""
ADD_USAGE = """
    INSERT INTO usage_metrics AS u (
        run_id, agent_id, requests, input_tokens, output_tokens, total_tokens,
        cached_tokens, cache_write_tokens, reasoning_tokens)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (run_id, agent_id) DO UPDATE SET
        requests = u.requests + EXCLUDED.requests,
        input_tokens = u.input_tokens + EXCLUDED.input_tokens,
        output_tokens = u.output_tokens + EXCLUDED.output_tokens,
        total_tokens = u.total_tokens + EXCLUDED.total_tokens,
        cached_tokens = u.cached_tokens + EXCLUDED.cached_tokens,
        cache_write_tokens = u.cache_write_tokens + EXCLUDED.cache_write_tokens,
        reasoning_tokens = u.reasoning_tokens + EXCLUDED.reasoning_tokens
    RETURNING id,
        (SELECT count(*) FROM request_usage_entries e WHERE e.usage_metric_id = u.id)"""
INSERT_REQUEST_USAGE = """
    INSERT INTO request_usage_entries (
        usage_metric_id, model_response_id, request_index, model, input_tokens,
        output_tokens, total_tokens, cached_tokens, cache_write_tokens,
        reasoning_tokens)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
TOOL_OF_AGENT = """
    SELECT t.id, t.tool_type, t.name FROM agent_tools AS l
    JOIN tools AS t ON t.id = l.tool_id
    WHERE l.agent_id = %s AND (t.name = %s OR t.tool_type = %s)
    ORDER BY t.name = %s DESC, l.position
    LIMIT 1"""
# The item type of a hosted tool's call, by the tool type (tools.tool_type).
HOSTED_CALL_TYPES = {
    "web_search_call": "web_search",
    "file_search_call": "file_search",
    "computer_call": "computer",
    "code_interpreter_call": "code_interpreter",
    "image_generation_call": "image_generation",
    "local_shell_call": "local_shell",
    "shell_call": "shell",
    "apply_patch_call": "apply_patch",
    "mcp_call": "hosted_mcp",
    "custom_tool_call": "custom",
    "tool_search_call": "tool_search",
    "program": "programmatic_tool_calling",
    "function_call": "function",
}
# The calls among them that this process runs (the others the provider runs).
LOCAL_CALL_TYPES = {
    "function_call",
    "custom_tool_call",
    "local_shell_call",
    "shell_call",
    "apply_patch_call",
    "computer_call",
}
DECISIONS = """
    SELECT call_id, status FROM interruptions
    WHERE run_id = %s AND status <> 'pending'"""
UPSERT_TOOL_CALL = """
    INSERT INTO tool_calls AS c (
        run_id, run_item_id, tool_id, agent_id, call_id, tool_name, tool_type,
        arguments, output, status, started_at, completed_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, now(),
            CASE WHEN %s THEN now() END)
    ON CONFLICT (run_id, call_id) DO UPDATE SET
        output = EXCLUDED.output,
        status = EXCLUDED.status,
        -- The journal's time, when it saw the call end (journal.py).
        completed_at = coalesce(
            c.completed_at, greatest(EXCLUDED.completed_at, c.started_at))
    RETURNING id"""
INSERT_INTERRUPTION = """
    INSERT INTO interruptions (
        run_id, tool_call_id, agent_id, interruption_type, tool_name, call_id,
        arguments)
    SELECT %s, %s, %s, %s, %s, %s, %s::jsonb
    WHERE NOT EXISTS (
        SELECT 1 FROM interruptions
        WHERE run_id = %s AND call_id = %s AND status = 'pending')"""
INSERT_GUARDRAIL_RESULT = """
    INSERT INTO guardrail_results (
        run_id, guardrail_id, agent_id, guardrail_type, tripwire_triggered,
        output_info)
    VALUES (%s, %s, %s, %s, %s, %s::jsonb)"""
TOOL_GUARDRAIL_OF_RUN = """
    SELECT g.id FROM tool_guardrails AS g
    JOIN agent_tools AS l ON l.tool_id = g.tool_id
    WHERE l.agent_id = ANY(%s) AND g.name = %s AND g.guardrail_type = %s
      AND g.deleted_at IS NULL
    LIMIT 1"""
INSERT_TOOL_GUARDRAIL_RESULT = """
    INSERT INTO tool_guardrail_results (
        run_id, tool_guardrail_id, behavior, message, output_info)
    VALUES (%s, %s, %s, %s, %s::jsonb)"""
# Only the state an interrupted run resumes from is kept: each snapshot holds
# the whole history again, and a completed run needs none. A run that failed
# keeps its last state, inactive, for whoever looks into the failure.
DROP_STATES = "DELETE FROM run_states WHERE run_id = %s"
RETIRE_STATES = """
    UPDATE run_states SET is_active = false WHERE run_id = %s AND is_active"""
INSERT_STATE = """
    INSERT INTO run_states (run_id, state_data, current_turn, is_active)
    VALUES (%s, %s::jsonb, %s, true)"""
RECORDED_USAGE = """
    SELECT coalesce(sum(requests), 0), coalesce(sum(input_tokens), 0),
           coalesce(sum(output_tokens), 0), coalesce(sum(total_tokens), 0),
           coalesce(sum(cached_tokens), 0), coalesce(sum(cache_write_tokens), 0),
           coalesce(sum(reasoning_tokens), 0)
    FROM usage_metrics WHERE run_id = %s"""
# Taken first: the row stays as it is until this write commits.
FENCE = "SELECT attempt_id, status FROM runs WHERE id = %s FOR NO KEY UPDATE"
FINISH_RUN = """
    UPDATE runs SET
        status = %s, final_output = %s::jsonb, last_agent_id = %s,
        current_turn = greatest(current_turn, %s), error = %s::jsonb,
        completed_at = CASE WHEN %s THEN greatest(now(), started_at) END
    WHERE id = %s"""


@dataclass
class Outcome:
    """What a run produced, from a RunResult or from an error's run data."""

    new_items: list[RunItem] = field(default_factory=list)
    raw_responses: list[ModelResponse] = field(default_factory=list)
    last_agent: Agent[Any] | None = None
    input_guardrail_results: list[Any] = field(default_factory=list)
    output_guardrail_results: list[Any] = field(default_factory=list)
    tool_input_guardrail_results: list[Any] = field(default_factory=list)
    tool_output_guardrail_results: list[Any] = field(default_factory=list)
    interruptions: list[ToolApprovalItem] = field(default_factory=list)
    # The run's whole usage as the SDK counts it (nested agent-as-tool runs
    # included), when known.
    usage: Usage | None = None

    @classmethod
    def of(cls, result: Any) -> Outcome:
        """Read a RunResult or a RunErrorDetails (same names, fewer of them)."""
        wrapper = getattr(result, "context_wrapper", None)
        return cls(
            new_items=list(result.new_items),
            raw_responses=list(result.raw_responses),
            last_agent=result.last_agent,
            input_guardrail_results=list(result.input_guardrail_results),
            output_guardrail_results=list(result.output_guardrail_results),
            tool_input_guardrail_results=list(
                getattr(result, "tool_input_guardrail_results", [])
            ),
            tool_output_guardrail_results=list(
                getattr(result, "tool_output_guardrail_results", [])
            ),
            interruptions=list(getattr(result, "interruptions", []) or []),
            usage=getattr(wrapper, "usage", None),
        )


@dataclass
class Final:
    """How a run ended, for its `runs` row."""

    status: str
    final_output: Any = None
    state: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    turn: int = 0


class RecordingHooks(RunHooks[Any]):
    """Remembers which agent asked for each model response and what agents run
    as tools used; writes tool calls to the journal as they start and end;
    forwards every call to the application's hooks."""

    def __init__(
        self, inner: RunHooks[Any] | None = None, journal: ToolJournal | None = None
    ) -> None:
        self.inner = inner
        self.journal = journal
        self.response_agents: dict[int, Agent[Any]] = {}
        # The responses themselves: a failure without run data still has them.
        self.responses: list[ModelResponse] = []
        self.tools_started = 0
        # Usage of agents run as tools: the nested run adds to the run's own
        # usage while the call lasts (taken only when no other call overlaps).
        self.nested_usage: list[tuple[Agent[Any], tuple[int, ...]]] = []
        self._nested_open: dict[str, tuple[Agent[Any], tuple[int, ...]]] = {}
        self._overlapped = False

    async def on_llm_start(self, context: Any, agent: Any, *args: Any) -> None:
        if self.inner is not None:
            await self.inner.on_llm_start(context, agent, *args)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        self.response_agents[id(response)] = agent
        self.responses.append(response)
        if self.inner is not None:
            await self.inner.on_llm_end(context, agent, response)

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        if self.inner is not None:
            await self.inner.on_agent_start(context, agent)

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        if self.inner is not None:
            await self.inner.on_agent_end(context, agent, output)

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        if self.inner is not None:
            await self.inner.on_handoff(context, from_agent, to_agent)

    async def on_tool_start(self, context: Any, agent: Any, tool: Tool) -> None:
        self.tools_started += 1
        call_id = getattr(context, "tool_call_id", None)
        nested = getattr(tool, "_agent_instance", None)
        usage = getattr(context, "usage", None)
        if call_id and isinstance(nested, Agent) and isinstance(usage, Usage):
            self._overlapped = self._overlapped or bool(self._nested_open)
            self._nested_open[call_id] = (nested, usage_tokens(usage))
        if self.journal is not None:
            await self.journal.started(context, agent, tool)
        if self.inner is not None:
            await self.inner.on_tool_start(context, agent, tool)

    async def on_tool_end(
        self, context: Any, agent: Any, tool: Tool, result: Any
    ) -> None:
        call_id = getattr(context, "tool_call_id", None)
        opened = self._nested_open.pop(call_id, None) if call_id else None
        usage = getattr(context, "usage", None)
        if opened is not None and isinstance(usage, Usage) and not self._overlapped:
            nested, before = opened
            delta = tuple(
                a - b for a, b in zip(usage_tokens(usage), before, strict=True)
            )
            self.nested_usage.append((nested, delta))
        if not self._nested_open:
            self._overlapped = False
        if self.journal is not None:
            await self.journal.finished(context, tool, result)
        if self.inner is not None:
            await self.inner.on_tool_end(context, agent, tool, result)


@dataclass
class RunWriter:
    """Writes one run's outcome (see the module's docstring)."""

    run_id: Any
    ids: definitions.AgentIds
    root: Agent[Any]
    hooks: RecordingHooks
    # The attempt this process started or claimed the run as: a write finds it
    # still the row's, or another process took the run over meanwhile.
    fence: uuid.UUID
    # The model the run config forces on every agent, if any.
    model_override: str | None = None

    async def write(
        self,
        conn: AsyncConnection[Any],
        outcome: Outcome,
        final: Final,
        *,
        retried: bool = False,
    ) -> None:
        """Write ``outcome`` and ``final`` in the caller's transaction, if the
        run is still this process's attempt (``retried``: unless the first
        attempt's commit went through)."""
        cursor = await conn.execute(FENCE, (self.run_id,))
        row = await cursor.fetchone()
        if row is None or row[0] != self.fence:
            raise LockLost(self.run_id)
        if retried and row[1] == final.status:
            return  # the first attempt's commit went through (only we write it)
        cursor = await conn.execute(COUNTS, {"run": self.run_id})
        counts = await cursor.fetchone()
        assert counts is not None
        items, responses, inputs, outputs, tool_inputs, tool_outputs = counts
        item_ids = await self._items(conn, outcome.new_items[items:], items)
        await self._responses(conn, outcome.raw_responses[responses:], responses)
        # A write retried after its commit went through finds nothing new, and
        # must not add the nested usage again.
        if items < len(outcome.new_items) or responses < len(outcome.raw_responses):
            await self._nested(conn)
        if outcome.usage is not None:
            await self._unattributed_usage(conn, outcome)
        await self._tool_calls(conn, outcome, item_ids)
        await self._guardrails(
            conn,
            outcome.input_guardrail_results[inputs:],
            outcome.output_guardrail_results[outputs:],
        )
        await self._tool_guardrails(
            conn,
            [
                ("tool_input", r)
                for r in outcome.tool_input_guardrail_results[tool_inputs:]
            ]
            + [
                ("tool_output", r)
                for r in outcome.tool_output_guardrail_results[tool_outputs:]
            ],
        )
        await self._run_state(conn, final)
        await self._finish(conn, outcome, final)
        await conn.execute(DROP_MARKERS, (self.run_id,))

    async def _items(
        self, conn: AsyncConnection[Any], items: list[RunItem], first: int
    ) -> dict[str, Any]:
        """Insert items from sequence ``first``; return ids of tool call items."""
        call_items: dict[str, Any] = {}
        for offset, item in enumerate(items):
            source = target = None
            if isinstance(item, HandoffOutputItem):
                source = self._agent_id(item.source_agent)
                target = self._agent_id(item.target_agent)
            cursor = await conn.execute(
                INSERT_ITEM,
                (
                    self.run_id,
                    self._agent_id(item.agent),
                    first + offset,
                    item.type,
                    source,
                    target,
                    dumps(item_json(item)),
                ),
            )
            row = await cursor.fetchone()
            call_id = _call_id(item)
            if isinstance(item, ToolCallItem) and call_id and row is not None:
                call_items[call_id] = row[0]
        return call_items

    async def _responses(
        self, conn: AsyncConnection[Any], responses: list[ModelResponse], first: int
    ) -> None:
        """Insert responses, and add each to its agent's usage."""
        for offset, response in enumerate(responses):
            agent = self.hooks.response_agents.get(id(response), self.root)
            agent_id = self._agent_id(agent)
            tokens = usage_tokens(response.usage)
            model = self.model_override or definitions.model_name(agent.model)
            cursor = await conn.execute(
                INSERT_RESPONSE,
                (
                    self.run_id,
                    agent_id,
                    first + offset + 1,
                    escape_optional(response.response_id),
                    escape_optional(getattr(response, "request_id", None)),
                    model,
                    dumps(response.output),
                    *tokens,
                ),
            )
            row = await cursor.fetchone()
            assert row is not None
            cursor = await conn.execute(ADD_USAGE, (self.run_id, agent_id, *tokens))
            metric = await cursor.fetchone()
            assert metric is not None
            metric_id, entries = metric
            await conn.execute(
                INSERT_REQUEST_USAGE,
                (metric_id, row[0], entries, model, *tokens[1:]),
            )

    async def _nested(self, conn: AsyncConnection[Any]) -> None:
        """Add what each agent run as a tool used, to that agent."""
        for agent, delta in self.hooks.nested_usage:
            if any(delta):
                await self._add_usage(conn, agent, delta)

    async def _unattributed_usage(
        self, conn: AsyncConnection[Any], outcome: Outcome
    ) -> None:
        """Add what the SDK counted but neither a response of this run nor a
        call of an agent tool carried (agent tools that ran at once), to the
        starting agent: a run's rows always add up to the SDK's total."""
        assert outcome.usage is not None
        cursor = await conn.execute(RECORDED_USAGE, (self.run_id,))
        recorded = await cursor.fetchone()
        assert recorded is not None
        delta = tuple(
            max(total - done, 0)
            for total, done in zip(usage_tokens(outcome.usage), recorded, strict=True)
        )
        if any(delta):
            await self._add_usage(conn, self.root, delta)

    async def _add_usage(
        self, conn: AsyncConnection[Any], agent: Agent[Any], delta: tuple[int, ...]
    ) -> None:
        """Usage no response row of this run carries, as one request entry."""
        cursor = await conn.execute(
            ADD_USAGE, (self.run_id, self._agent_id(agent), *delta)
        )
        metric = await cursor.fetchone()
        assert metric is not None
        await conn.execute(
            INSERT_REQUEST_USAGE,
            (
                metric[0],
                None,
                metric[1],
                definitions.model_name(agent.model),
                *delta[1:],
            ),
        )

    async def _tool_calls(
        self, conn: AsyncConnection[Any], outcome: Outcome, item_ids: dict[str, Any]
    ) -> None:
        """Upsert a row per tool call: arguments, then output and status."""
        cursor = await conn.execute(DECISIONS, (self.run_id,))
        decisions = dict(await cursor.fetchall())
        outputs = {
            _call_id(i): i
            for i in outcome.new_items
            if isinstance(i, ToolCallOutputItem)
        }
        pending = {i.call_id for i in outcome.interruptions}
        call_rows: dict[str, Any] = {}
        for item in outcome.new_items:
            call_id = _call_id(item)
            if not isinstance(item, ToolCallItem) or not call_id:
                continue
            output = outputs.get(call_id)
            raw_type = _raw_type(item.raw_item)
            if decisions.get(call_id) == "rejected":
                status = "rejected"
            elif output is not None:
                status = "completed"
            elif call_id in pending:
                status = "awaiting_approval"
            elif raw_type in HOSTED_CALL_TYPES and raw_type not in LOCAL_CALL_TYPES:
                # Run by the provider: the item's own status is the call's.
                status = _raw_status(item.raw_item)
            else:
                # Run here, and no output yet: under way (an agent run as a
                # tool waiting on its own approval), or its end unknown.
                status = "in_progress"
            agent_id = self._agent_id(item.agent)
            name = _tool_name(item)
            kind = HOSTED_CALL_TYPES.get(raw_type, raw_type)
            cursor = await conn.execute(TOOL_OF_AGENT, (agent_id, name, kind, name))
            tool = await cursor.fetchone()
            cursor = await conn.execute(
                UPSERT_TOOL_CALL,
                (
                    self.run_id,
                    item_ids.get(call_id),
                    None if tool is None else tool[0],
                    agent_id,
                    escape_text(call_id),
                    escape_text(name) if tool is None else tool[2],
                    tool[1] if tool is not None else kind,
                    dumps(_arguments(item.raw_item)),
                    None if output is None else dumps(output.output),
                    status,
                    status == "completed",
                ),
            )
            row = await cursor.fetchone()
            assert row is not None
            call_rows[call_id] = row[0]
        await self._interruptions(conn, outcome.interruptions, call_rows)

    async def _interruptions(
        self,
        conn: AsyncConnection[Any],
        interruptions: list[ToolApprovalItem],
        call_rows: dict[str, Any],
    ) -> None:
        for item in interruptions:
            call_id = item.call_id or ""
            mcp = _raw_type(item.raw_item) == "mcp_approval_request"
            kind = "mcp_approval" if mcp else "tool_approval"
            await conn.execute(
                INSERT_INTERRUPTION,
                (
                    self.run_id,
                    call_rows.get(call_id),
                    self._agent_id(item.agent),
                    kind,
                    escape_text(item.tool_name or item.name or "?"),
                    escape_text(call_id) or None,
                    dumps(_arguments(item.raw_item)),
                    self.run_id,
                    call_id,
                ),
            )

    async def _guardrails(
        self, conn: AsyncConnection[Any], inputs: list[Any], outputs: list[Any]
    ) -> None:
        for kind, results in (("input", inputs), ("output", outputs)):
            for result in results:
                agent = getattr(result, "agent", None) or self.root
                await conn.execute(
                    INSERT_GUARDRAIL_RESULT,
                    (
                        self.run_id,
                        await definitions.guardrail_id(conn, result.guardrail),
                        self._agent_id(agent),
                        kind,
                        result.output.tripwire_triggered,
                        dumps(result.output.output_info),
                    ),
                )

    async def _tool_guardrails(
        self, conn: AsyncConnection[Any], results: list[tuple[str, Any]]
    ) -> None:
        agents = list(self.ids.by_object.values())
        for kind, result in results:
            cursor = await conn.execute(
                TOOL_GUARDRAIL_OF_RUN, (agents, result.guardrail.get_name(), kind)
            )
            row = await cursor.fetchone()
            if row is None:
                continue  # a guardrail of a tool no agent of the run has
            behavior = result.output.behavior or {}
            await conn.execute(
                INSERT_TOOL_GUARDRAIL_RESULT,
                (
                    self.run_id,
                    row[0],
                    behavior.get("type", "allow"),
                    behavior.get("message"),
                    dumps(result.output.output_info),
                ),
            )

    async def _run_state(self, conn: AsyncConnection[Any], final: Final) -> None:
        if final.status not in ("completed", "interrupted"):
            await conn.execute(RETIRE_STATES, (self.run_id,))
            return
        await conn.execute(DROP_STATES, (self.run_id,))
        if final.status == "interrupted" and final.state is not None:
            await conn.execute(
                INSERT_STATE, (self.run_id, dumps(final.state), final.turn)
            )

    async def _finish(
        self, conn: AsyncConnection[Any], outcome: Outcome, final: Final
    ) -> None:
        finished = final.status != "interrupted"
        await conn.execute(
            FINISH_RUN,
            (
                final.status,
                None if final.final_output is None else dumps(final.final_output),
                None
                if outcome.last_agent is None
                else self._agent_id(outcome.last_agent),
                final.turn,
                None if final.error is None else dumps(final.error),
                finished,
                self.run_id,
            ),
        )

    def _agent_id(self, agent: Any) -> Any:
        return self.ids.row_of(self.root if agent is None else agent)


def item_json(item: RunItem) -> dict[str, Any]:
    """A run item as JSON: its kind, agent and raw item, and what the SDK keeps
    beside them (a tool's Python output, both ends of a handoff)."""
    data: dict[str, Any] = {
        "type": item.type,
        "agent": item.agent.name,
        "raw_item": to_json(item.raw_item),
    }
    call_id = _call_id(item)
    if call_id:
        data["call_id"] = call_id
    if isinstance(item, ToolCallOutputItem):
        output, raw = to_json(item.output), data["raw_item"]
        # The Python value only when it is not what the model was sent.
        if not isinstance(raw, dict) or output != raw.get("output"):
            data["output"] = output
    if isinstance(item, HandoffOutputItem):
        data["source_agent"] = item.source_agent.name
        data["target_agent"] = item.target_agent.name
    if isinstance(item, ToolApprovalItem):
        data["tool_name"] = item.tool_name
    return data


def usage_tokens(usage: Usage) -> tuple[int, int, int, int, int, int, int]:
    """(requests, input, output, total, cached, cache write, reasoning)."""
    return (
        usage.requests,
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.input_tokens_details.cached_tokens or 0,
        getattr(usage.input_tokens_details, "cache_write_tokens", 0) or 0,
        usage.output_tokens_details.reasoning_tokens or 0,
    )


def _call_id(item: Any) -> str | None:
    """The call id of a call or output item; a hosted tool's call has only its
    item id, which its output (if any) would name."""
    raw = item.raw_item
    value = (
        raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
    )
    if value is None and isinstance(item, ToolCallItem):
        value = raw.get("id") if isinstance(raw, dict) else getattr(raw, "id", None)
    return value if isinstance(value, str) else None


def _tool_name(item: ToolCallItem) -> str:
    name = getattr(item, "tool_name", None)
    if not name:
        raw = item.raw_item
        name = raw.get("name") if isinstance(raw, dict) else getattr(raw, "name", None)
    return str(name or _raw_type(item.raw_item) or "?")


def _raw_type(raw: Any) -> str:
    value = raw.get("type") if isinstance(raw, dict) else getattr(raw, "type", None)
    return str(value or "unknown")


def _raw_status(raw: Any) -> str:
    value = raw.get("status") if isinstance(raw, dict) else getattr(raw, "status", None)
    return "completed" if value == "completed" else "in_progress"


def _arguments(raw: Any) -> Any:
    """A call's arguments as JSON (parsed when they are a JSON text): a function
    call's arguments, a custom tool's input, a hosted tool's action, query or
    code."""
    value = None
    for key in ("arguments", "input", "action", "queries", "code", "command"):
        value = raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)
        if value is not None:
            break
    return to_json(parsed_json_text(value))
