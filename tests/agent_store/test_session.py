"""PostgresSession: the SDK's session protocol over sessions/session_items,
driven by real multi-turn runs and by concurrent writers."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, function_tool
from agents.memory import Session, SessionABC, SessionSettings, SQLiteSession
from agents.testing import ScriptedModel, assistant_message, function_call

from schemactl.agent_store import AgentStore, PostgresSession


@function_tool
def get_weather(city: str) -> str:
    """Tell the weather in a city."""
    return f"sunny in {city}"


def kinds(items: list[Any]) -> list[str]:
    return [item.get("type", item.get("role")) for item in items]


def test_it_is_an_sdk_session():
    session = PostgresSession("s", pool=None)  # type: ignore[arg-type]
    assert isinstance(session, Session)
    assert isinstance(session, SessionABC)


def test_a_multi_turn_conversation_is_kept_and_replayed(schema_url, db):
    model = ScriptedModel(
        [
            [function_call("get_weather", {"city": "Rome"}, call_id="c1")],
            [assistant_message("It is sunny in Rome.", item_id="m1")],
            [assistant_message("You asked about Rome.", item_id="m2")],
        ]
    )
    agent = Agent(
        name="solo", instructions="Be brief.", model=model, tools=[get_weather]
    )

    async def converse() -> tuple[list[Any], list[Any], Any, list[Any]]:
        async with AgentStore(schema_url) as store:
            session = store.session("user-42")
            first = await store.run(agent, "Weather in Rome?", session=session)
            second = await store.run(agent, "What did I ask?", session=session)
            items = await session.get_items()
            latest = await session.get_items(limit=2)
            popped = await session.pop_item()
            after_pop = await session.get_items()
            assert second.result.final_output == "You asked about Rome."
            return items, latest, (first.run_id, second.run_id, popped), after_pop

    items, latest, (first, second, popped), after_pop = asyncio.run(converse())
    assert kinds(items) == [
        "user", "function_call", "function_call_output", "message", "user", "message",
    ]  # fmt: skip
    # The second turn's model saw the whole history, from the database.
    assert kinds(model.calls[2].input) == kinds(items[:-1])
    assert kinds(latest) == ["user", "message"]
    assert popped == items[-1]
    assert after_pop == items[:-1]
    links = db.execute(
        "SELECT run_id, count(*) FROM session_items GROUP BY run_id ORDER BY 2 DESC"
    ).fetchall()
    assert links == [(first, 4), (second, 1)]
    assert db.execute(
        "SELECT count(*) FROM runs WHERE session_id IS NOT NULL"
    ).fetchone() == (2,)


def test_session_settings_limit_what_the_model_sees(schema_url):
    model = ScriptedModel([[assistant_message("one")], [assistant_message("two")]])
    agent = Agent(name="solo", model=model)

    async def converse() -> None:
        async with AgentStore(schema_url) as store:
            session = store.session("s", session_settings=SessionSettings(limit=1))
            await store.run(agent, "first", session=session)
            await store.run(agent, "second", session=session)

    asyncio.run(converse())
    # The last stored item (the answer "one"), then the new input.
    assert kinds(model.calls[1].input) == ["message", "user"]


def test_clearing_keeps_the_session_row_and_nul_survives(schema_url, db):
    async def use() -> list[Any]:
        async with AgentStore(schema_url) as store:
            session = store.session("s")
            await session.add_items([{"role": "user", "content": "a\x00b"}])
            kept = await session.get_items()
            await session.clear_session()
            assert await session.get_items() == []
            assert await session.pop_item() is None
            return kept

    assert asyncio.run(use()) == [{"role": "user", "content": "a\x00b"}]
    assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)


def test_concurrent_writers_keep_each_batch_whole_and_pops_distinct(schema_url, db):
    async def write(store: AgentStore, writer: int) -> None:
        session = store.session("shared")
        for batch in range(5):
            await session.add_items(
                [{"role": "user", "content": f"{writer}:{batch}:{i}"} for i in range(4)]
            )

    async def crowd() -> list[Any]:
        async with AgentStore(schema_url) as one, AgentStore(schema_url) as two:
            await asyncio.gather(*(write((one, two)[w % 2], w) for w in range(8)))
            items = await one.session("shared").get_items()
            popped: list[Any] = await asyncio.gather(
                *(store.session("shared").pop_item() for store in (one, two) * 5)
            )
            assert len({p["content"] for p in popped}) == 10
            return items

    items = asyncio.run(crowd())
    contents = [item["content"] for item in items]
    assert len(contents) == 8 * 5 * 4
    for start in range(0, len(contents), 4):
        batch = [c.rsplit(":", 1) for c in contents[start : start + 4]]
        assert [prefix for prefix, _ in batch] == [batch[0][0]] * 4
        assert [index for _, index in batch] == ["0", "1", "2", "3"]
    assert db.execute("SELECT count(*) FROM session_items").fetchone() == (150,)


def test_limits_and_odd_ids_read_as_in_the_sdks_sqlite_session(schema_url):
    items: list[Any] = [{"role": "user", "content": str(i)} for i in range(3)]

    async def compare() -> None:
        sqlite = SQLiteSession("odd\x00id")
        async with AgentStore(schema_url) as store:
            ours = store.session("odd\x00id")
            for session in (sqlite, ours):
                await session.add_items(items)
                await session.add_items([])
            for limit in (None, -1, 0, 2, 10):
                assert await ours.get_items(limit) == await sqlite.get_items(limit)
            assert await ours.pop_item() == await sqlite.pop_item()
            await ours.clear_session()
            await sqlite.clear_session()
            assert await ours.pop_item() is None
            assert await sqlite.pop_item() is None
            assert await store.session("odd").get_items() == []

    asyncio.run(compare())
