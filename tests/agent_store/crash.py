"""A process the fault tests kill: it drives a run of the store and blocks
inside a tool, after saying so on stdout (the tests' barrier).

    python -c "from tests.agent_store.crash import main; main()" run URL
    python -c "from tests.agent_store.crash import main; main()" resume URL RUN_ID
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from agents import Agent, function_tool, set_tracing_disabled
from agents.testing import (
    ModelCall,
    ModelStep,
    ScriptedModel,
    assistant_message,
    function_call,
)

from schemactl.agent_store import AgentStore

set_tracing_disabled(True)
# Where the process blocks (then says READY): "model" (resume: in the model
# call after the approved or rejected gate) or "tool" (run: in wait_here).
BLOCK = "SCHEMACTL_TEST_BLOCK_IN"


async def _ready_and_wait() -> None:
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


@function_tool(needs_approval=True)
def gate(door: str) -> str:
    """Open a door (a human approves it first)."""
    with Path(os.environ.get("SCHEMACTL_TEST_GATE_LOG", os.devnull)).open("a") as log:
        log.write(f"{door} opened\n")
    return f"{door} is open"


@function_tool
async def wait_here() -> str:
    """Wait for ever."""
    await _ready_and_wait()
    return "never"


def gatekeeper(model: ScriptedModel) -> Agent[Any]:
    return Agent(name="gatekeeper", model=model, tools=[gate, wait_here])


def first_steps() -> ScriptedModel:
    return ScriptedModel([[function_call("gate", {"door": "front"}, call_id="g1")]])


def last_steps() -> ScriptedModel:
    if os.environ.get(BLOCK) == "model":

        async def block(call: ModelCall) -> Any:
            await _ready_and_wait()

        return ScriptedModel([ModelStep.respond(block)])
    return ScriptedModel([[assistant_message("The front door is open.")]])


async def run_and_block(url: str) -> None:
    model = ScriptedModel([[function_call("wait_here", {}, call_id="w1")]])
    async with AgentStore(url) as store:
        await store.run(gatekeeper(model), "wait")


async def resume(url: str, run_id: str) -> Any:
    async with AgentStore(url) as store:
        return await store.resume(run_id, gatekeeper(last_steps()))


def main() -> None:
    command, url = sys.argv[1:3]
    if command == "run":
        asyncio.run(run_and_block(url))
    else:
        asyncio.run(resume(url, sys.argv[3]))
