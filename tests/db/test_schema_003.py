"""Migration 003: every value openai-agents 0.24 produces is stored, and a
database at version 2 with data in it upgrades (and goes back) cleanly."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from schemactl import runner
from schemactl.config import Settings
from schemactl.errors import MigrationFailed
from tests.catalog import catalog_snapshot
from tests.cli.test_targets import role_url
from tests.db.test_shipped_schema import USAGE_QUERY, make_agent, make_run, one

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

# RunItem.type of every item class in openai-agents 0.24 (agents/items.py).
SDK_ITEM_KINDS = [
    "message_output_item", "tool_call_item", "tool_call_output_item",
    "handoff_call_item", "handoff_output_item", "reasoning_item",
    "mcp_list_tools_item", "mcp_approval_request_item",
    "mcp_approval_response_item", "tool_approval_item", "input_item",
    "tool_search_call_item", "tool_search_output_item", "compaction_item",
]  # fmt: skip
SDK_TOOL_TYPES = [
    "function", "agent", "file_search", "web_search", "computer", "hosted_mcp",
    "local_shell", "shell", "apply_patch", "image_generation", "code_interpreter",
    "custom", "tool_search", "programmatic_tool_calling",
]  # fmt: skip


@pytest.fixture
def schema_db(schema_url):
    with psycopg.connect(schema_url, autocommit=True) as conn:
        yield conn


def test_every_sdk_item_kind_and_a_future_one_is_stored(schema_db):
    agent = make_agent(schema_db)
    run = make_run(schema_db, agent)
    for sequence, kind in enumerate([*SDK_ITEM_KINDS, "hologram_item"]):
        schema_db.execute(
            "INSERT INTO run_items (run_id, agent_id, sequence, item_type, item_data, "
            "source_agent_id, target_agent_id) VALUES (%s, %s, %s, %s, '{}', %s, %s)",
            (run, agent, sequence, kind, agent, agent),
        )
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO run_items (run_id, agent_id, sequence, item_type, item_data) "
            "VALUES (%s, %s, 99, 'Bad Kind', '{}')",
            (run, agent),
        )


def test_every_sdk_tool_type_and_effort_level_is_stored(schema_db):
    for tool_type in [*SDK_TOOL_TYPES, "teleport"]:
        schema_db.execute(
            "INSERT INTO tools (name, tool_type, params_json_schema) "
            "VALUES ('t', %s, '{}')",
            (tool_type,),
        )
    for effort in ["none", "minimal", "low", "medium", "high", "xhigh", "max"]:
        schema_db.execute(
            "INSERT INTO model_settings (name, reasoning_effort) VALUES (%s, %s)",
            (f"effort-{effort}", effort),
        )
    prompt_cache = (
        "INSERT INTO model_settings (name, prompt_cache_retention) VALUES ('c', '24h')"
    )
    schema_db.execute(prompt_cache)


def test_two_agents_and_two_tools_may_share_a_name(schema_db):
    first, second = make_agent(schema_db, "writer"), make_agent(schema_db, "writer")
    tool = "INSERT INTO tools (name, tool_type, params_json_schema) VALUES ('lookup', 'function', '{}') RETURNING id"
    for agent in (first, second):
        schema_db.execute(
            "INSERT INTO agent_tools (agent_id, tool_id) VALUES (%s, %s)",
            (agent, one(schema_db, tool)),
        )
    assert one(schema_db, "SELECT count(*) FROM agents WHERE name = 'writer'") == 2


def test_two_handoffs_to_one_agent_under_different_tool_names(schema_db):
    triage, billing = make_agent(schema_db, "triage"), make_agent(schema_db, "billing")
    insert = (
        "INSERT INTO agent_handoffs (agent_id, target_agent_id, tool_name) "
        "VALUES (%s, %s, %s)"
    )
    schema_db.execute(insert, (triage, billing, "transfer_to_billing"))
    schema_db.execute(insert, (triage, billing, "escalate_refund"))
    with pytest.raises(errors.UniqueViolation):
        schema_db.execute(insert, (triage, billing, "escalate_refund"))


def test_unlimited_and_exceeded_runs(schema_db):
    agent = make_agent(schema_db)
    insert = (
        "INSERT INTO runs (agent_id, input, max_turns, current_turn, status, "
        "completed_at) VALUES (%s, '1', %s, %s, %s, %s)"
    )
    schema_db.execute(insert, (agent, None, 500, "running", None))
    # The SDK takes any limit (0 and below too) and counts the turn that went
    # past it; version 2 stopped at it.
    schema_db.execute(insert, (agent, -5, 0, "running", None))
    schema_db.execute(insert, (agent, 0, 1, "max_turns_exceeded", "now"))
    schema_db.execute(insert, (agent, 3, 4, "max_turns_exceeded", "now"))
    schema_db.execute(insert, (agent, 3, 3, "max_turns_exceeded", "now"))
    for max_turns, turn, status in [
        (3, 4, "completed"),
        (-5, 1, "running"),
        (None, 4, "max_turns_exceeded"),
    ]:
        with pytest.raises(errors.CheckViolation):
            schema_db.execute(insert, (agent, max_turns, turn, status, "now"))


def test_guardrails_keep_the_sdks_parallel_flag(schema_db):
    insert = (
        "INSERT INTO guardrails (name, guardrail_type, run_in_parallel) "
        "VALUES (%s, %s, %s)"
    )
    schema_db.execute(insert, ("pii", "output", None))
    schema_db.execute(insert, ("topic", "input", False))
    # What writers built for version 2 send: a flag on an output guardrail, or
    # none on an input guardrail (the SDK's default is to run in parallel).
    schema_db.execute(insert, ("tone", "output", True))
    schema_db.execute(
        "INSERT INTO guardrails (name, guardrail_type) VALUES ('jailbreak', 'input')"
    )
    rows = schema_db.execute(
        "SELECT name, run_in_parallel FROM guardrails ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("jailbreak", True), ("pii", None), ("tone", None), ("topic", False),
    ]  # fmt: skip
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "UPDATE guardrails SET guardrail_type = 'sideways' WHERE name = 'pii'"
        )


def test_handoffs_without_a_tool_name_get_the_sdks(schema_db):
    triage = make_agent(schema_db, "triage")
    billing = make_agent(schema_db, "Billing Desk")
    schema_db.execute(
        "INSERT INTO agent_handoffs (agent_id, target_agent_id) VALUES (%s, %s), "
        "(%s, %s)",
        (triage, billing, triage, triage),
    )
    rows = schema_db.execute(
        "SELECT tool_name FROM agent_handoffs ORDER BY 1"
    ).fetchall()
    # A handoff to itself too: the SDK allows it.
    assert rows == [("transfer_to_billing_desk",), ("transfer_to_triage",)]


def test_dynamic_prompts_are_registered_by_name(schema_db):
    schema_db.execute(
        "INSERT INTO agents (name, prompt_kind, prompt_ref) "
        "VALUES ('a', 'dynamic', 'prompts.pick')"
    )
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO agents (name, prompt_kind) VALUES ('a', 'dynamic')"
        )
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO agents (name, prompt_kind, prompt_ref, prompt) "
            "VALUES ('a', 'dynamic', 'p', '{\"id\": \"pmpt_1\"}')"
        )


def test_concurrent_session_writers_never_race_for_a_position(schema_url, schema_db):
    session = one(
        schema_db, "INSERT INTO sessions (session_key) VALUES ('s') RETURNING id"
    )
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def add_items() -> None:
        try:
            with psycopg.connect(schema_url, autocommit=True) as conn:
                barrier.wait()
                for _ in range(25):
                    conn.execute(
                        "INSERT INTO session_items (session_id, item_data) "
                        "VALUES (%s, '{}')",
                        (session,),
                    )
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=add_items) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # Dense: the positions are exactly 0..99.
    positions = schema_db.execute(
        "SELECT array_agg(position ORDER BY position) FROM session_items"
    ).fetchone()
    assert positions == (list(range(100)),)


def test_a_role_that_may_only_insert_items_gets_positions(
    server_conninfo, schema_url, schema_db
):
    session = one(
        schema_db, "INSERT INTO sessions (session_key) VALUES ('s') RETURNING id"
    )
    role = f"schemactl_items_{uuid.uuid4().hex[:12]}"
    schema_db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        schema_db.execute(
            sql.SQL("GRANT INSERT ON session_items TO {}").format(sql.Identifier(role))
        )
        url = role_url(server_conninfo, schema_db.info.dbname, role)
        with psycopg.connect(url, autocommit=True) as writer:
            for _ in range(2):
                writer.execute(
                    "INSERT INTO session_items (session_id, item_data) "
                    "VALUES (%s, '{}')",
                    (session,),
                )
    finally:
        schema_db.execute(
            sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(
                sql.Identifier(role), sql.Identifier(role)
            )
        )
    assert schema_db.execute(
        "SELECT array_agg(position ORDER BY position) FROM session_items"
    ).fetchone() == ([0, 1],)


def test_a_run_keeps_one_kind_of_usage_row_so_the_documents_query_adds_up(
    schema_db,
):
    triage, billing = make_agent(schema_db, "triage"), make_agent(schema_db, "billing")
    run = make_run(schema_db, triage)
    insert = (
        "INSERT INTO usage_metrics (run_id, agent_id, input_tokens, output_tokens, "
        "total_tokens, cache_write_tokens) VALUES (%s, %s, %s, 10, %s, 7)"
    )
    schema_db.execute(insert, (run, triage, 1000, 1010))
    schema_db.execute(insert, (run, billing, 1500, 1510))
    with pytest.raises(errors.ExclusionViolation):
        schema_db.execute(insert, (run, None, 2500, 2520))
    usage = schema_db.execute(USAGE_QUERY).fetchall()
    assert [(name, ins) for name, ins, _, _ in usage] == [("triage", 2500)]


def test_a_run_state_moves_to_a_newer_schema_version(schema_db):
    run = make_run(schema_db, make_agent(schema_db))
    state = one(
        schema_db,
        "INSERT INTO run_states (run_id, state_data, schema_version) "
        "VALUES (%s, '{\"$schemaVersion\": \"1.21\"}', '1.0') RETURNING id",
        (run,),
    )
    schema_db.execute(
        'UPDATE run_states SET state_data = \'{"$schemaVersion": "1.22"}\' '
        "WHERE id = %s",
        (state,),
    )
    assert one(schema_db, "SELECT schema_version FROM run_states") == "1.22"


def test_run_state_schema_version_is_the_one_in_the_state(schema_db):
    run = make_run(schema_db, make_agent(schema_db))
    insert = (
        "INSERT INTO run_states (run_id, state_data, schema_version, is_active) "
        "VALUES (%s, %s, %s, false)"
    )
    schema_db.execute(insert, (run, '{"$schemaVersion": "1.21"}', "1.21"))
    # The state wins over what a writer says (version 2's default, say).
    schema_db.execute(insert, (run, '{"$schemaVersion": "1.21"}', "1.0"))
    assert one(schema_db, "SELECT DISTINCT schema_version FROM run_states") == "1.21"
    taken = one(
        schema_db,
        "INSERT INTO run_states (run_id, state_data, is_active) "
        'VALUES (%s, \'{"$schemaVersion": "1.22"}\', false) RETURNING schema_version',
        (run,),
    )
    assert taken == "1.22"


def test_model_responses_keep_request_ids_and_cache_writes(schema_db):
    run = make_run(schema_db, make_agent(schema_db))
    agent = one(schema_db, "SELECT agent_id FROM runs WHERE id = %s", (run,))
    schema_db.execute(
        "INSERT INTO model_responses (run_id, agent_id, turn, output, request_id, "
        "cache_write_tokens) VALUES (%s, %s, 1, '[]', 'req_123', 40)",
        (run, agent),
    )


# Upgrading a database at version 2 that holds data ---------------------------


@pytest.fixture
def version2(database_url):
    settings = Settings(directory=SQL_DIR, database_url=database_url)
    runner.migrate(settings, target=2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield settings, conn


def seed_version2(conn):
    """Rows only version 2 can hold: output guardrail forced parallel, a state
    with the '1.0' default, a handoff with and one without a configuration."""
    triage, billing = make_agent(conn, "triage"), make_agent(conn, "Billing Desk")
    refunds = make_agent(conn, "refunds")
    config = one(
        conn,
        "INSERT INTO handoff_configs (target_agent_id, tool_name_override) "
        "VALUES (%s, 'escalate') RETURNING id",
        (refunds,),
    )
    conn.execute(
        "INSERT INTO agent_handoffs (agent_id, target_agent_id, handoff_config_id) "
        "VALUES (%s, %s, NULL), (%s, %s, %s)",
        (triage, billing, triage, refunds, config),
    )
    conn.execute(
        "INSERT INTO guardrails (name, guardrail_type) VALUES ('pii', 'output'), "
        "('topic', 'input')"
    )
    run = make_run(conn, triage)
    conn.execute(
        "INSERT INTO run_states (run_id, state_data) "
        'VALUES (%s, \'{"$schemaVersion": "1.21"}\')',
        (run,),
    )
    session = one(conn, "INSERT INTO sessions (session_key) VALUES ('s') RETURNING id")
    conn.execute(
        "INSERT INTO session_items (session_id, position, item_data) "
        "VALUES (%s, 0, '{}'), (%s, 1, '{}')",
        (session, session),
    )
    return session


def test_version_2_data_is_carried_over(version2):
    settings, conn = version2
    session = seed_version2(conn)
    runner.migrate(settings)
    handoffs = conn.execute(
        "SELECT t.name, h.tool_name FROM agent_handoffs h "
        "JOIN agents t ON t.id = h.target_agent_id ORDER BY 1"
    ).fetchall()
    assert handoffs == [
        ("Billing Desk", "transfer_to_billing_desk"),
        ("refunds", "escalate"),
    ]
    guardrails = conn.execute(
        "SELECT name, run_in_parallel FROM guardrails ORDER BY 1"
    ).fetchall()
    assert guardrails == [("pii", None), ("topic", True)]
    assert one(conn, "SELECT schema_version FROM run_states") == "1.21"
    # The next position follows the existing ones.
    assert (
        one(
            conn,
            "INSERT INTO session_items (session_id, item_data) VALUES (%s, '{}') "
            "RETURNING position",
            (session,),
        )
        == 2
    )


def test_a_version_2_database_mixing_usage_rows_is_refused_with_a_hint(version2):
    settings, conn = version2
    agent = make_agent(conn)
    run = make_run(conn, agent)
    conn.execute(
        "INSERT INTO usage_metrics (run_id, agent_id) VALUES (%s, NULL), (%s, %s)",
        (run, run, agent),
    )
    with pytest.raises(
        MigrationFailed, match="both a run-wide and per-agent"
    ) as caught:
        runner.migrate(settings)
    assert caught.value.hint is not None
    assert "Keep one kind per run" in caught.value.hint
    assert one(conn, "SELECT max(version) FROM schema_migrations") == 2


def test_two_version_2_handoffs_that_would_share_a_tool_name_are_refused(version2):
    settings, conn = version2
    triage = make_agent(conn, "triage")
    for name in ("Billing Agent", "billing-agent"):
        conn.execute(
            "INSERT INTO agent_handoffs (agent_id, target_agent_id) VALUES (%s, %s)",
            (triage, make_agent(conn, name)),
        )
    with pytest.raises(MigrationFailed, match="two handoffs") as caught:
        runner.migrate(settings)
    assert caught.value.hint is not None
    assert "tool_name_override" in caught.value.hint
    assert one(conn, "SELECT max(version) FROM schema_migrations") == 2


def test_an_old_btree_gist_is_enough(database_url):
    # btree_gist 1.6 (PostgreSQL 14, or a cluster upgraded from it) has no
    # boolean operator class.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION btree_gist VERSION '1.6'")
    runner.migrate(Settings(directory=SQL_DIR, database_url=database_url))
    with psycopg.connect(database_url) as conn:
        run = make_run(conn, make_agent(conn))
        conn.execute("INSERT INTO usage_metrics (run_id) VALUES (%s)", (run,))
        with pytest.raises(errors.ExclusionViolation):
            conn.execute(
                "INSERT INTO usage_metrics (run_id, agent_id) "
                "SELECT %s, agent_id FROM runs",
                (run,),
            )


def test_down_returns_to_the_version_2_catalog(version2):
    settings, conn = version2
    before = catalog_snapshot(conn)
    runner.migrate(settings)
    assert catalog_snapshot(conn) != before
    runner.rollback(settings, target=2)
    assert catalog_snapshot(conn) == before


def test_down_refuses_rows_version_2_cannot_hold(version2):
    settings, conn = version2
    runner.migrate(settings)
    make_agent(conn, "twin")
    make_agent(conn, "twin")
    with pytest.raises(MigrationFailed, match="live agents that share a name"):
        runner.rollback(settings, target=2)
    assert one(conn, "SELECT max(version) FROM schema_migrations") == 3
    assert one(conn, "SELECT count(*) FROM agents WHERE name = 'twin'") == 2


def test_down_refuses_everything_version_2_cannot_hold_at_once(version2):
    settings, conn = version2
    runner.migrate(settings)
    conn.execute(
        "INSERT INTO agents (name, prompt_kind, prompt_ref) "
        "VALUES ('dyn', 'dynamic', 'app.prompts.make')"
    )
    conn.execute(
        "INSERT INTO runs (agent_id, input, max_turns) SELECT id, '1', NULL FROM agents"
    )
    with pytest.raises(MigrationFailed, match=r"dynamic prompt.*without a turn limit"):
        runner.rollback(settings, target=2)
    assert one(conn, "SELECT prompt_ref FROM agents") == "app.prompts.make"


def test_repeatable_read_writers_retry_rather_than_collide(schema_url, schema_db):
    session = one(
        schema_db, "INSERT INTO sessions (session_key) VALUES ('s') RETURNING id"
    )
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def add_one() -> None:
        with psycopg.connect(schema_url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            barrier.wait()
            while True:
                try:
                    with conn.transaction():
                        conn.execute("SELECT 1")  # take the snapshot first
                        conn.execute(
                            "INSERT INTO session_items (session_id, item_data) "
                            "VALUES (%s, '{}')",
                            (session,),
                        )
                    outcomes.append("ok")
                    return
                except errors.SerializationFailure:
                    continue  # what REPEATABLE READ writers do
                except psycopg.Error as exc:
                    outcomes.append(type(exc).__name__)
                    return

    threads = [threading.Thread(target=add_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["ok"] * 3
    assert schema_db.execute(
        "SELECT array_agg(position ORDER BY position) FROM session_items"
    ).fetchone() == ([0, 1, 2],)


def test_a_writer_that_locks_the_session_first_and_one_that_updates_it_after(
    schema_url, schema_db
):
    session = one(
        schema_db, "INSERT INTO sessions (session_key) VALUES ('s') RETURNING id"
    )
    insert = "INSERT INTO session_items (session_id, item_data) VALUES (%s, '{}')"
    locked = threading.Event()
    failures: list[BaseException] = []

    def store_style() -> None:  # what schemactl.agent_store does
        try:
            with psycopg.connect(schema_url) as conn, conn.transaction():
                conn.execute(
                    "SELECT 1 FROM sessions WHERE id = %s FOR NO KEY UPDATE", (session,)
                )
                locked.set()
                conn.execute("SELECT pg_sleep(0.2)")
                conn.execute(insert, (session,))
        except BaseException as exc:
            failures.append(exc)

    def touch_after() -> None:
        try:
            locked.wait()
            with psycopg.connect(schema_url) as conn, conn.transaction():
                conn.execute(insert, (session,))
                conn.execute(
                    "UPDATE sessions SET metadata = '{}' WHERE id = %s", (session,)
                )
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=store_style),
        threading.Thread(target=touch_after),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert one(schema_db, "SELECT count(*) FROM session_items") == 2


def test_handoff_names_follow_their_configuration_and_any_search_path(schema_db):
    triage, billing = make_agent(schema_db, "triage"), make_agent(schema_db, "billing")
    schema_db.execute("SET search_path = wai")
    schema_db.execute(
        "INSERT INTO public.agent_handoffs (agent_id, target_agent_id) VALUES (%s, %s)",
        (triage, billing),
    )
    config = one(
        schema_db,
        "INSERT INTO public.handoff_configs (target_agent_id, tool_name_override) "
        "VALUES (%s, 'escalate') RETURNING id",
        (billing,),
    )
    schema_db.execute(
        "UPDATE public.agent_handoffs SET handoff_config_id = %s", (config,)
    )
    assert one(schema_db, "SELECT tool_name FROM public.agent_handoffs") == "escalate"
    schema_db.execute("RESET search_path")
    assert not one(
        schema_db,
        "SELECT has_function_privilege('public', "
        "'session_items_fill_position()', 'EXECUTE')",
    )


def test_version_2_runs_and_states_of_every_shape_upgrade(version2):
    settings, conn = version2
    agent = make_agent(conn)
    conn.execute(
        "INSERT INTO runs (agent_id, input, status, current_turn, max_turns, "
        "completed_at) VALUES (%s, '1', 'max_turns_exceeded', 0, 10, now())",
        (agent,),
    )
    run = make_run(conn, agent)
    conn.execute(
        "INSERT INTO run_states (run_id, state_data) "
        "VALUES (%s, '{\"$schemaVersion\": null}')",
        (run,),
    )
    runner.migrate(settings)
    assert one(conn, "SELECT schema_version FROM run_states") == "1.0"


def test_deleting_a_configuration_keeps_the_handoffs_name(schema_db):
    triage, billing = make_agent(schema_db, "triage"), make_agent(schema_db, "billing")
    config = one(
        schema_db,
        "INSERT INTO handoff_configs (target_agent_id, tool_name_override) "
        "VALUES (%s, 'escalate') RETURNING id",
        (billing,),
    )
    schema_db.execute(
        "INSERT INTO agent_handoffs (agent_id, target_agent_id, handoff_config_id) "
        "VALUES (%s, %s, %s), (%s, %s, NULL)",
        (triage, billing, config, triage, billing),
    )
    schema_db.execute("DELETE FROM handoff_configs WHERE id = %s", (config,))
    names = schema_db.execute(
        "SELECT tool_name, handoff_config_id FROM agent_handoffs ORDER BY 1"
    ).fetchall()
    assert names == [("escalate", None), ("transfer_to_billing", None)]


def test_the_headers_query_finds_the_handoffs_that_would_share_a_name(schema_db):
    header = (SQL_DIR / "003_agents_sdk_runs.sql").read_text()
    start = header.index("--   SELECT h.agent_id")
    lines = header[start:].split("\n")
    query = "\n".join(
        line[4:]
        for line in lines[: lines.index("--   GROUP BY 1, 2 HAVING count(*) > 1;") + 1]
    )
    triage = make_agent(schema_db, "triage")
    for name in ("Billing Agent", "billing-agent"):
        schema_db.execute(
            "INSERT INTO agent_handoffs (agent_id, target_agent_id, tool_name) "
            "VALUES (%s, %s, %s)",
            (triage, make_agent(schema_db, name), name.replace(" ", "")),
        )
    rows = schema_db.execute(query).fetchall()
    assert [(agent, tool) for agent, tool, _ in rows] == [
        (triage, "transfer_to_billing_agent")
    ]


def test_a_state_without_a_version_cannot_hide_the_states(schema_db):
    run = make_run(schema_db, make_agent(schema_db))
    schema_db.execute("SET session_replication_role = replica")  # no triggers
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO run_states (run_id, state_data, schema_version) "
            'VALUES (%s, \'{"$schemaVersion": "1.21"}\', NULL)',
            (run,),
        )
