"""Tool calls written as they start and end, not only when the run ends.

A tool may move money. If its process dies while it runs, or the model fails
after it ran, the run's final write never says so: the journal has, in
`tool_calls` (status in_progress, then completed with its output), each in a
transaction of its own. A run whose process stopped after a call started is
never resumed on its own: resuming from its last state would run the call
again (store.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from agents import Agent
from agents.tool import Tool
from psycopg_pool import AsyncConnectionPool

from schemactl.agent_store import definitions
from schemactl.agent_store.errors import LockLost
from schemactl.agent_store.jsonsafe import dumps, escape_text, parsed_json_text
from schemactl.agent_store.liveness import RunLocks

FENCED = """
    SELECT 1 FROM runs WHERE id = %s AND attempt_id = %s AND status = 'running'
    FOR NO KEY UPDATE"""
# The call id of a marker row (a tool that does not say its call id).
MARKER = "schemactl:started:"
DROP_MARKERS = (
    "DELETE FROM tool_calls WHERE run_id = %s AND call_id LIKE 'schemactl:started:%%'"
)

START_TOOL = """
    INSERT INTO tool_calls (
        run_id, tool_id, agent_id, call_id, tool_name, tool_type, arguments, status)
    SELECT %(run)s, t.id, %(agent)s, %(call)s, %(name)s, %(type)s, %(arguments)s::jsonb,
           'in_progress'
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT t.id FROM agent_tools AS l JOIN tools AS t ON t.id = l.tool_id
        WHERE l.agent_id = %(agent)s AND t.name = %(name)s LIMIT 1
    ) AS t ON true
    ON CONFLICT (run_id, call_id) DO UPDATE SET
        status = 'in_progress', started_at = now(), completed_at = NULL"""
FINISH_TOOL = """
    UPDATE tool_calls SET
        status = 'completed', output = %s::jsonb,
        completed_at = greatest(now(), started_at)
    WHERE run_id = %s AND call_id = %s"""
# The calls that started after the run's last state was stored (and, for a run
# its process abandoned, those still in progress): resuming from that state
# could run them again.
STARTED_SINCE_STATE = """
    SELECT c.tool_name FROM tool_calls AS c
    WHERE c.run_id = %(run)s
      AND ((c.status = 'in_progress' AND %(abandoned)s)
           OR c.started_at > coalesce(
               (SELECT s.created_at FROM run_states AS s
                WHERE s.run_id = %(run)s AND s.is_active), '-infinity'))
    ORDER BY c.started_at"""


@dataclass
class ToolJournal:
    """Writes one run's tool calls as they happen."""

    pool: AsyncConnectionPool[Any]
    run_id: Any
    ids: definitions.AgentIds
    locks: RunLocks
    fence: uuid.UUID
    # Calls of tools that do not say their call id (shell, computer, patch):
    # a marker row each, by tool name, first in first out.
    _markers: dict[str, list[str]] = field(default_factory=dict)

    async def started(self, context: Any, agent: Agent[Any], tool: Tool) -> None:
        """Write that a call starts; refuse it if the run lost its lock, or
        another process took it over (its row changed: the fence)."""
        if not await self.locks.confirm(self.run_id):
            raise LockLost(self.run_id)
        call_id = getattr(context, "tool_call_id", None)
        if not call_id:
            # Only function tools say which call they run: a marker row keeps
            # the fact that a tool started (the final write removes it).
            call_id = f"{MARKER}{uuid.uuid4()}"
            self._markers.setdefault(tool.name, []).append(call_id)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(FENCED, (self.run_id, self.fence))
            if await cursor.fetchone() is None:
                raise LockLost(self.run_id)
            await conn.execute(
                START_TOOL,
                {
                    "run": self.run_id,
                    "agent": self.ids.row_of(agent),
                    "call": escape_text(call_id),
                    "name": escape_text(tool.name),
                    "type": definitions.tool_type(tool),
                    "arguments": dumps(
                        parsed_json_text(getattr(context, "tool_arguments", None))
                    ),
                },
            )

    async def finished(self, context: Any, tool: Tool, result: Any) -> None:
        call_id = getattr(context, "tool_call_id", None)
        if not call_id:
            waiting = self._markers.get(tool.name)
            if not waiting:
                return
            call_id = waiting.pop(0)
        async with self.pool.connection() as conn:
            await conn.execute(
                FINISH_TOOL, (dumps(result), self.run_id, escape_text(call_id))
            )
