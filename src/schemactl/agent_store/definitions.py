"""Agent graphs as definition rows: agents, tools, handoffs, guardrails.

Every agent and tool row carries a fingerprint, the SHA-256 of what defines it,
so an unchanged definition is one row however many runs use it, and two agents
that share a name (the SDK allows it) are two rows. An agent's links (tools,
handoffs, guardrails) are written in the transaction that creates its row, and
never again: they are part of its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, Handoff
from agents.agent_output import AgentOutputSchema, AgentOutputSchemaBase
from agents.guardrail import InputGuardrail, OutputGuardrail
from agents.tool import FunctionTool, Tool
from psycopg import AsyncConnection

from schemactl.agent_store.jsonsafe import (
    dotted_name,
    dumps,
    escape_optional,
    escape_text,
    redact_secrets,
    to_json,
)
from schemactl.agent_store.rows import scalar

INSERT_AGENT = """
    INSERT INTO agents (
        name, fingerprint, instructions_kind, instructions, instructions_ref,
        prompt_kind, prompt, prompt_ref, handoff_description, model,
        model_settings_id, output_type_name, output_schema, output_schema_strict,
        tool_use_behavior, stop_at_tool_names, reset_tool_choice, metadata)
    VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s::jsonb, %s,
            %s, %s, %s, %s::jsonb)
    ON CONFLICT (fingerprint) WHERE deleted_at IS NULL DO NOTHING
    RETURNING id"""
AGENT_BY_FINGERPRINT = """
    SELECT id FROM agents WHERE fingerprint = %s AND deleted_at IS NULL"""
INSERT_MODEL_SETTINGS = """
    INSERT INTO model_settings (
        name, temperature, top_p, frequency_penalty, presence_penalty, tool_choice,
        parallel_tool_calls, truncation, max_tokens, reasoning_effort,
        reasoning_summary, verbosity, metadata, store, prompt_cache_retention,
        include_usage, response_include, top_logprobs, extra_query, extra_body,
        extra_headers, extra_args)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s,
            %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb)
    ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING"""
MODEL_SETTINGS_BY_NAME = """
    SELECT id FROM model_settings WHERE name = %s AND deleted_at IS NULL"""
INSERT_TOOL = """
    INSERT INTO tools (
        name, fingerprint, tool_type, description, params_json_schema,
        strict_json_schema, agent_as_tool_id, config, needs_approval)
    VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s::jsonb, %s)
    ON CONFLICT (fingerprint) WHERE deleted_at IS NULL DO NOTHING"""
TOOL_BY_FINGERPRINT = """
    SELECT id FROM tools WHERE fingerprint = %s AND deleted_at IS NULL"""
LINK_TOOL = """
    INSERT INTO agent_tools (agent_id, tool_id, position) VALUES (%s, %s, %s)
    ON CONFLICT DO NOTHING"""
INSERT_TOOL_GUARDRAIL = """
    INSERT INTO tool_guardrails (tool_id, name, guardrail_type)
    VALUES (%s, %s, %s)
    ON CONFLICT (tool_id, name, guardrail_type) WHERE deleted_at IS NULL DO NOTHING"""
INSERT_HANDOFF_CONFIG = """
    INSERT INTO handoff_configs (
        target_agent_id, tool_name_override, tool_description_override,
        input_json_schema, strict_json_schema, is_enabled)
    VALUES (%s, %s, %s, %s::jsonb, %s, %s)
    RETURNING id"""
LINK_HANDOFF = """
    INSERT INTO agent_handoffs (
        agent_id, target_agent_id, tool_name, handoff_config_id, position)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT DO NOTHING"""
INSERT_GUARDRAIL = """
    INSERT INTO guardrails (name, guardrail_type, run_in_parallel)
    VALUES (%s, %s, %s)
    ON CONFLICT (name, guardrail_type) WHERE deleted_at IS NULL DO NOTHING"""
GUARDRAIL_BY_NAME = """
    SELECT id FROM guardrails
    WHERE name = %s AND guardrail_type = %s AND deleted_at IS NULL"""
LINK_GUARDRAIL = """
    INSERT INTO agent_guardrails (agent_id, guardrail_id) VALUES (%s, %s)
    ON CONFLICT DO NOTHING"""


@dataclass
class AgentIds:
    """Row ids of one run's agent graph, by agent object."""

    by_object: dict[int, Any] = field(default_factory=dict)
    agents: dict[int, Agent[Any]] = field(default_factory=dict)

    def of(self, agent: Any) -> Any:
        """Return the row id of ``agent`` (an agent of the registered graph)."""
        return self.by_object[id(agent)]

    def row_of(self, agent: Agent[Any]) -> Any:
        """Return the row id of ``agent``, or, for an agent object the graph
        does not hold (the SDK copies some), of the first one with its name."""
        if id(agent) in self.by_object:
            return self.by_object[id(agent)]
        for key, known in self.agents.items():
            if known.name == agent.name:
                return self.by_object[key]
        raise KeyError(agent.name)


def walk(root: Agent[Any]) -> Iterator[Agent[Any]]:
    """Yield every agent reachable from ``root`` (handoffs, agents as tools)."""
    seen: set[int] = set()
    pending: list[Agent[Any]] = [root]
    while pending:
        agent = pending.pop(0)
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        yield agent
        pending.extend(_handoff_target(h) for h in agent.handoffs)
        pending.extend(
            tool._agent_instance
            for tool in agent.tools
            if isinstance(tool, FunctionTool)
            and isinstance(tool._agent_instance, Agent)
        )


async def register(conn: AsyncConnection[Any], root: Agent[Any]) -> AgentIds:
    """Make sure every agent of ``root``'s graph has its rows; return their ids."""
    ids = AgentIds()
    created: list[Agent[Any]] = []
    for agent in walk(root):
        agent_id, is_new = await _agent_row(conn, agent)
        ids.by_object[id(agent)] = agent_id
        ids.agents[id(agent)] = agent
        if is_new:
            created.append(agent)
    for agent in created:
        await _link_tools(conn, agent, ids)
        await _link_handoffs(conn, agent, ids)
        await _link_guardrails(conn, agent, ids)
    return ids


def fingerprint(definition: dict[str, Any]) -> str:
    """Return the SHA-256 of a definition's canonical JSON."""
    canonical = json.dumps(to_json(definition), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def agent_definition(agent: Agent[Any]) -> dict[str, Any]:
    """What defines an agent: everything its row and links hold."""
    output = _output_schema(agent)
    return {
        "name": agent.name,
        "instructions": _static_or_ref(agent.instructions),
        "prompt": _static_or_ref(agent.prompt),
        "handoff_description": agent.handoff_description,
        "model": model_name(agent.model),
        # Credentials in extra headers or bodies are never stored, nor hashed.
        "model_settings": redact_secrets(to_json(agent.model_settings)),
        "output": None
        if output is None
        else [output.name(), output.json_schema(), output.is_strict_json_schema()],
        "tool_use_behavior": _tool_use_behavior(agent.tool_use_behavior),
        "reset_tool_choice": agent.reset_tool_choice,
        "tools": [tool_definition(tool) for tool in agent.tools],
        "handoffs": [_handoff_definition(h) for h in agent.handoffs],
        "guardrails": [_guardrail_definition(g) for g in _guardrails(agent)],
    }


def tool_definition(tool: Tool) -> dict[str, Any]:
    """What defines a tool: its row's columns."""
    agent = getattr(tool, "_agent_instance", None)
    return {
        "name": tool.name,
        "tool_type": tool_type(tool),
        "description": getattr(tool, "description", None),
        "params_json_schema": getattr(tool, "params_json_schema", None),
        "strict_json_schema": getattr(tool, "strict_json_schema", True),
        "agent": None if agent is None else agent.name,
        "needs_approval": _needs_approval(tool),
        "config": _tool_config(tool),
        "guardrails": _tool_guardrail_names(tool),
    }


def tool_type(tool: Tool) -> str:
    """Return the tool's kind: its ``type`` if it has one, else its class's."""
    if isinstance(tool, FunctionTool):
        return "agent" if tool._is_agent_tool else "function"
    declared = getattr(type(tool), "type", None)
    if isinstance(declared, property):
        return str(tool.type)  # type: ignore[union-attr]
    name = type(tool).__name__.removesuffix("Tool")
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return {"hosted_m_c_p": "hosted_mcp"}.get(snake, snake)


async def _agent_row(conn: AsyncConnection[Any], agent: Agent[Any]) -> tuple[Any, bool]:
    """Return the agent's row id, and whether this call created the row. An
    unchanged agent (every run but its first) costs one lookup."""
    definition = agent_definition(agent)
    key = fingerprint(definition)
    existing = await scalar(conn, AGENT_BY_FINGERPRINT, (key,))
    if existing is not None:
        return existing, False
    settings_id = await _model_settings_row(conn, definition["model_settings"])
    output = definition["output"]
    behavior, stop_at = definition["tool_use_behavior"]
    instructions = definition["instructions"]
    prompt = definition["prompt"]
    cursor = await conn.execute(
        INSERT_AGENT,
        (
            escape_optional(agent.name),
            key,
            instructions[0],
            escape_optional(instructions[1]) if instructions[0] == "static" else None,
            escape_optional(instructions[1]) if instructions[0] == "dynamic" else None,
            prompt[0],
            dumps(prompt[1]) if prompt[0] == "static" and prompt[1] else None,
            escape_optional(prompt[1]) if prompt[0] == "dynamic" else None,
            escape_optional(agent.handoff_description),
            escape_optional(definition["model"]),
            settings_id,
            None if output is None else output[0],
            None if output is None else dumps(output[1]),
            True if output is None else output[2],
            behavior,
            stop_at,
            agent.reset_tool_choice,
            dumps({"sdk": "openai-agents"}),
        ),
    )
    row = await cursor.fetchone()
    if row is not None:
        return row[0], True
    # Another run created it meanwhile (ON CONFLICT waited for its commit).
    return await _id(conn, AGENT_BY_FINGERPRINT, (key,)), False


async def _model_settings_row(conn: AsyncConnection[Any], settings: Any) -> Any:
    """One row per distinct ModelSettings, named by its fingerprint."""
    if not isinstance(settings, dict):
        return None
    name = "sha256:" + fingerprint(settings)
    reasoning = settings.get("reasoning") or {}
    await conn.execute(
        INSERT_MODEL_SETTINGS,
        (
            name,
            settings.get("temperature"),
            settings.get("top_p"),
            settings.get("frequency_penalty"),
            settings.get("presence_penalty"),
            _tool_choice(settings.get("tool_choice")),
            settings.get("parallel_tool_calls"),
            settings.get("truncation"),
            settings.get("max_tokens"),
            reasoning.get("effort"),
            reasoning.get("summary") or reasoning.get("generate_summary"),
            settings.get("verbosity"),
            _dumps_or_none(settings.get("metadata")),
            settings.get("store"),
            settings.get("prompt_cache_retention"),
            settings.get("include_usage"),
            settings.get("response_include"),
            settings.get("top_logprobs"),
            _dumps_or_none(settings.get("extra_query")),
            _dumps_or_none(settings.get("extra_body")),
            _dumps_or_none(settings.get("extra_headers")),
            _dumps_or_none(settings.get("extra_args")),
        ),
    )
    return await _id(conn, MODEL_SETTINGS_BY_NAME, (name,))


async def _link_tools(
    conn: AsyncConnection[Any], agent: Agent[Any], ids: AgentIds
) -> None:
    for position, tool in enumerate(agent.tools):
        definition = tool_definition(tool)
        key = fingerprint(definition)
        target = getattr(tool, "_agent_instance", None)
        await conn.execute(
            INSERT_TOOL,
            (
                escape_optional(tool.name),
                key,
                definition["tool_type"],
                escape_optional(definition["description"]),
                _dumps_or_none(definition["params_json_schema"]),
                definition["strict_json_schema"],
                None if target is None else ids.by_object.get(id(target)),
                dumps(definition["config"]),
                definition["needs_approval"],
            ),
        )
        tool_id = await _id(conn, TOOL_BY_FINGERPRINT, (key,))
        await conn.execute(LINK_TOOL, (ids.of(agent), tool_id, position))
        for name, kind in definition["guardrails"]:
            await conn.execute(
                INSERT_TOOL_GUARDRAIL, (tool_id, escape_optional(name), kind)
            )


async def _link_handoffs(
    conn: AsyncConnection[Any], agent: Agent[Any], ids: AgentIds
) -> None:
    for position, handoff in enumerate(agent.handoffs):
        target = _handoff_target(handoff)
        config_id = None
        if isinstance(handoff, Handoff):
            cursor = await conn.execute(
                INSERT_HANDOFF_CONFIG,
                (
                    ids.of(target),
                    escape_optional(handoff.tool_name),
                    escape_optional(handoff.tool_description),
                    dumps(handoff.input_json_schema),
                    handoff.strict_json_schema,
                    handoff.is_enabled
                    if isinstance(handoff.is_enabled, bool)
                    else True,
                ),
            )
            row = await cursor.fetchone()
            config_id = None if row is None else row[0]
        await conn.execute(
            LINK_HANDOFF,
            (
                ids.of(agent),
                ids.of(target),
                _handoff_tool_name(handoff),
                config_id,
                position,
            ),
        )


async def _link_guardrails(
    conn: AsyncConnection[Any], agent: Agent[Any], ids: AgentIds
) -> None:
    for guardrail in _guardrails(agent):
        name, kind, parallel = _guardrail_definition(guardrail)
        await conn.execute(INSERT_GUARDRAIL, (name, kind, parallel))
        guardrail_id = await _id(conn, GUARDRAIL_BY_NAME, (name, kind))
        await conn.execute(LINK_GUARDRAIL, (ids.of(agent), guardrail_id))


async def guardrail_id(
    conn: AsyncConnection[Any], guardrail: InputGuardrail[Any] | OutputGuardrail[Any]
) -> Any:
    """Return the row id of ``guardrail``, creating its row if needed (a
    guardrail given to the run rather than to an agent has none yet)."""
    name, kind, parallel = _guardrail_definition(guardrail)
    await conn.execute(INSERT_GUARDRAIL, (name, kind, parallel))
    return await _id(conn, GUARDRAIL_BY_NAME, (name, kind))


async def _id(conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]) -> Any:
    """The id a query finds; the row must be there."""
    found = await scalar(conn, query, params)
    if found is None:
        raise LookupError(f"no row for {params!r}")
    return found


def _handoff_target(handoff: Agent[Any] | Handoff[Any, Any]) -> Agent[Any]:
    if isinstance(handoff, Agent):
        return handoff
    target = handoff._agent_ref() if handoff._agent_ref is not None else None
    if not isinstance(target, Agent):
        raise ValueError(f"handoff {handoff.tool_name!r} has lost its agent")
    return target


def _handoff_tool_name(handoff: Agent[Any] | Handoff[Any, Any]) -> str:
    if isinstance(handoff, Handoff):
        return handoff.tool_name
    return Handoff.default_tool_name(handoff)


def _handoff_definition(handoff: Agent[Any] | Handoff[Any, Any]) -> list[Any]:
    target = _handoff_target(handoff)
    return [_handoff_tool_name(handoff), target.name, target.handoff_description]


def _guardrails(
    agent: Agent[Any],
) -> list[InputGuardrail[Any] | OutputGuardrail[Any]]:
    return [*agent.input_guardrails, *agent.output_guardrails]


def _guardrail_definition(
    guardrail: InputGuardrail[Any] | OutputGuardrail[Any],
) -> tuple[str, str, bool | None]:
    name = escape_text(guardrail.get_name())
    if isinstance(guardrail, InputGuardrail):
        return name, "input", guardrail.run_in_parallel
    return name, "output", None


def _static_or_ref(value: Any) -> tuple[str, Any]:
    if callable(value):
        return "dynamic", dotted_name(value)
    return "static", to_json(value)


def model_name(model: Any) -> str | None:
    if model is None or isinstance(model, str):
        return model
    return str(getattr(model, "model", None) or type(model).__name__)


def _output_schema(agent: Agent[Any]) -> AgentOutputSchemaBase | None:
    output_type = agent.output_type
    if output_type is None or output_type is str:
        return None
    if isinstance(output_type, AgentOutputSchemaBase):
        return output_type
    return AgentOutputSchema(output_type)


def _tool_use_behavior(behavior: Any) -> tuple[str, list[str] | None]:
    if behavior in ("run_llm_again", "stop_on_first_tool"):
        return str(behavior), None
    if isinstance(behavior, dict) and behavior.get("stop_at_tool_names"):
        return "stop_at_tools", list(behavior["stop_at_tool_names"])
    if isinstance(behavior, dict):
        return "run_llm_again", None  # an empty StopAtTools never stops
    return "custom", None


def _tool_choice(choice: Any) -> str | None:
    if choice is None or isinstance(choice, str):
        return choice or None
    if isinstance(choice, dict):
        return str(choice.get("name") or json.dumps(choice, sort_keys=True))
    return str(choice)


def _needs_approval(tool: Tool) -> bool:
    needs = getattr(tool, "needs_approval", False)
    return bool(needs)  # a callable decides per call: the tool may need approval


def _tool_config(tool: Tool) -> Any:
    if isinstance(tool, FunctionTool):
        return {}
    # A hosted MCP tool's authorization and headers are credentials.
    config = redact_secrets(to_json(tool))
    return config if isinstance(config, dict) else {"value": config}


def _tool_guardrail_names(tool: Tool) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = []
    for kind, attribute in (
        ("tool_input", "tool_input_guardrails"),
        ("tool_output", "tool_output_guardrails"),
    ):
        for guardrail in getattr(tool, attribute, None) or []:
            names.append((guardrail.get_name(), kind))
    return names


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)
