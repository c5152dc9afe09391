"""Agents and scripted models the agent store's tests drive, shared by the
tests and by the fresh process that resumes a run (``main``).

A support desk: triage checks the weather with a function tool, then hands off
to billing, whose refund tool needs approval and whose output a guardrail
checks. Every model step carries its own usage, so sums can be checked.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrailData,
    ToolOutputGuardrailData,
    function_tool,
    handoff,
    input_guardrail,
    output_guardrail,
    set_tracing_disabled,
    tool_input_guardrail,
    tool_output_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.tool import FunctionTool
from agents.usage import Usage
from openai.types.responses.response_usage import (
    InputTokensDetails,
    OutputTokensDetails,
)

from schemactl.agent_store import AgentStore

set_tracing_disabled(True)


def usage(input_tokens: int, output_tokens: int, *, cached: int = 0) -> Usage:
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        input_tokens_details=InputTokensDetails(
            cached_tokens=cached, cache_write_tokens=cached // 2
        ),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=1),
    )


@tool_output_guardrail
def no_card_in_output(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
    return ToolGuardrailFunctionOutput.allow(output_info={"checked": True})


@tool_input_guardrail
def known_city(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    city = json.loads(data.context.tool_arguments or "{}").get("city")
    return ToolGuardrailFunctionOutput.allow(output_info={"city": city})


@function_tool(
    tool_input_guardrails=[known_city], tool_output_guardrails=[no_card_in_output]
)
def get_weather(city: str) -> str:
    """Tell the weather in a city."""
    return f"sunny in {city}"


@tool_input_guardrail
def sane_amount(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    amount = json.loads(data.context.tool_arguments or "{}").get("amount", 0)
    return ToolGuardrailFunctionOutput.allow(output_info={"amount": amount})


@function_tool(
    needs_approval=True,
    tool_input_guardrails=[sane_amount],
    tool_output_guardrails=[no_card_in_output],
)
def refund(order_id: str, amount: float) -> str:
    """Refund an order (a human approves it first)."""
    return f"refunded {amount} for {order_id}"


@input_guardrail
def no_card_numbers(
    ctx: RunContextWrapper[Any], agent: Agent[Any], text: Any
) -> GuardrailFunctionOutput:
    found = "4111" in str(text)
    return GuardrailFunctionOutput(
        output_info={"card_number": found}, tripwire_triggered=found
    )


@output_guardrail
def polite(
    ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any
) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(
        output_info={"length": len(str(output))}, tripwire_triggered=False
    )


def support_desk(model: ScriptedModel) -> Agent[Any]:
    """The starting agent; billing is reachable under two handoff names."""
    billing = Agent(
        name="billing",
        instructions="You handle refunds.",
        model=model,
        tools=[refund],
        output_guardrails=[polite],
    )
    return Agent(
        name="triage",
        instructions=lambda ctx, agent: f"You are {agent.name}. Route requests.",
        model=model,
        tools=[get_weather],
        handoffs=[billing, handoff(billing, tool_name_override="escalate_refund")],
        input_guardrails=[no_card_numbers],
    )


def lead_with_a_cashier(tool: FunctionTool) -> Agent[Any]:
    """A lead whose cashier, run as a tool, calls ``tool`` (which needs
    approval: the whole run waits on the nested approval)."""
    model = ScriptedModel(
        [
            [function_call("ask_cashier", {"input": "pay 5"}, call_id="n1")],
            [function_call(tool.name, {"amount": 5}, call_id="p1")],
        ]
    )
    cashier = Agent(name="cashier", model=model, tools=[tool])
    return Agent(
        name="lead",
        model=model,
        tools=[cashier.as_tool("ask_cashier", "Ask the cashier")],
    )


# Steps before the interruption: triage asks for the weather, hands off;
# billing asks for a refund (needs approval).
FIRST_STEPS = [
    ModelStep(
        output=[function_call("get_weather", {"city": "Oslo"}, call_id="call_w1")],
        usage=usage(100, 10, cached=40),
        response_id="resp-1",
        request_id="req-1",
    ),
    ModelStep(
        output=[function_call("escalate_refund", {}, call_id="call_h1")],
        usage=usage(120, 5),
        response_id="resp-2",
    ),
    ModelStep(
        output=[
            function_call(
                "refund", {"order_id": "A1", "amount": 9.5}, call_id="call_r1"
            )
        ],
        usage=usage(200, 20),
        response_id="resp-3",
    ),
]
# After approval billing answers.
RESUME_STEPS = [
    ModelStep(
        output=[assistant_message("Refund of 9.5 issued for A1.")],
        usage=usage(260, 12),
        response_id="resp-4",
    )
]
ALL_STEPS = FIRST_STEPS + RESUME_STEPS
TOTAL_INPUT = sum(step.usage.input_tokens for step in ALL_STEPS)


async def resume(url: str, run_id: str) -> dict[str, Any]:
    """Resume ``run_id`` with a freshly built desk (what another process does)."""
    model = ScriptedModel(RESUME_STEPS)
    async with AgentStore(url) as store:
        stored = await store.resume(run_id, support_desk(model))
    model.assert_complete()
    return {
        "final_output": stored.result.final_output,
        "last_agent": stored.result.last_agent.name,
        "input": stored.result.input,
    }


def main() -> None:
    """``resume URL RUN_ID`` in a fresh process. It is imported under its own
    name (not run as __main__): callables are named by their module."""
    command, url, run_id = sys.argv[1:4]
    assert command == "resume"
    sys.stdout.write(json.dumps(asyncio.run(resume(url, run_id))) + "\n")
