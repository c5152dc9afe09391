"""The shipped schema (sql/): catalog rules and behaviour, on a real PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from schemactl import runner
from schemactl.config import Settings
from tests.catalog import catalog_snapshot

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

AGENT_TABLES = {
    "agents", "model_settings", "runs", "sessions", "session_items", "run_items",
    "model_responses", "tools", "agent_tools", "handoff_configs", "agent_handoffs",
    "guardrails", "agent_guardrails", "guardrail_results", "tool_guardrails",
    "tool_guardrail_results", "tool_calls", "interruptions", "mcp_servers",
    "agent_mcp_servers", "usage_metrics", "request_usage_entries", "run_states",
}  # fmt: skip
WAI_TABLES = {
    "agents", "agent_executions", "llm_providers", "mcp_tools",
    "orchestration_sessions", "users",
}  # fmt: skip

# The document's "Key Relationships": (table, column, referenced table, action).
KEY_RELATIONSHIPS = [
    ("agents", "model_settings_id", "model_settings", "SET NULL"),
    ("agent_tools", "agent_id", "agents", "CASCADE"),
    ("agent_tools", "tool_id", "tools", "CASCADE"),
    ("agent_handoffs", "agent_id", "agents", "CASCADE"),
    ("agent_handoffs", "target_agent_id", "agents", "CASCADE"),
    ("runs", "agent_id", "agents", "RESTRICT"),
    ("runs", "session_id", "sessions", "SET NULL"),
    ("run_items", "run_id", "runs", "CASCADE"),
    ("tool_calls", "run_id", "runs", "CASCADE"),
    ("interruptions", "run_id", "runs", "CASCADE"),
]

# The document's three example queries, verbatim apart from the placeholders
# ('agent-uuid-here' stands for a uuid) and one trailing space.
ACTIVE_RUNS_QUERY = """
SELECT r.*, a.name as agent_name
FROM runs r
JOIN agents a ON r.agent_id = a.id
WHERE r.agent_id = 'agent-uuid-here'
  AND r.status IN ('running', 'interrupted')
ORDER BY r.started_at DESC;
"""
RUN_STATE_QUERY = """
SELECT state_data
FROM run_states
WHERE run_id = 'run-uuid-here'
  AND is_active = true;
"""
USAGE_QUERY = """
SELECT
  a.name as agent_name,
  SUM(um.input_tokens) as total_input_tokens,
  SUM(um.output_tokens) as total_output_tokens,
  SUM(um.estimated_cost) as total_cost
FROM usage_metrics um
JOIN runs r ON um.run_id = r.id
JOIN agents a ON r.agent_id = a.id
WHERE r.started_at >= NOW() - INTERVAL '7 days'
GROUP BY a.id, a.name;
"""


@pytest.fixture
def schema_db(schema_url):
    with psycopg.connect(schema_url, autocommit=True) as conn:
        yield conn


def one(conn, query, params=()):
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def make_agent(conn, name="triage"):
    return one(
        conn,
        "INSERT INTO agents (name, instructions) VALUES (%s, 'help') RETURNING id",
        (name,),
    )


def make_run(conn, agent_id, session_id=None, status="running"):
    return one(
        conn,
        "INSERT INTO runs (agent_id, session_id, status, input) "
        "VALUES (%s, %s, %s, '\"hi\"') RETURNING id",
        (agent_id, session_id, status),
    )


def tables_in(conn, schema):
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
    )
    return {r[0] for r in rows}


def test_all_tables_exist_with_the_documented_names(schema_db):
    assert tables_in(schema_db, "public") == AGENT_TABLES | {
        "schema_migrations",
        "schema_migrations_log",
    }
    assert tables_in(schema_db, "wai") == WAI_TABLES


def test_uuid_extension_is_enabled_by_the_migration(schema_db):
    assert (
        one(schema_db, "SELECT count(*) FROM pg_extension WHERE extname = 'uuid-ossp'")
        == 1
    )


@pytest.mark.parametrize(("table", "column", "target", "action"), KEY_RELATIONSHIPS)
def test_key_relationships_and_on_delete_actions(
    schema_db, table, column, target, action
):
    codes = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL"}
    rows = schema_db.execute(
        """
        SELECT c.confrelid::regclass::text, c.confdeltype
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND a.attname = %s
        """,
        (f"public.{table}", column),
    ).fetchall()
    assert [(t, codes[d]) for t, d in rows] == [(target, action)]


def test_every_foreign_key_is_covered_by_an_index(schema_db):
    uncovered = schema_db.execute(
        """
        SELECT c.conrelid::regclass::text || '.' || c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f'
          AND c.connamespace IN ('public'::regnamespace, 'wai'::regnamespace)
          AND NOT EXISTS (
            SELECT 1 FROM pg_index i
            WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
              AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
              AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
        """
    ).fetchall()
    assert uncovered == []
    assert (
        one(schema_db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") >= 30
    )


def test_no_duplicate_indexes(schema_db):
    duplicates = schema_db.execute(
        """
        SELECT indrelid::regclass::text, array_agg(indexrelid::regclass::text)
        FROM pg_index
        WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN
                           ('public'::regnamespace, 'wai'::regnamespace))
        GROUP BY indrelid, indkey::text, indclass::text,
                 coalesce(indexprs::text, ''), coalesce(indpred::text, '')
        HAVING count(*) > 1
        """
    ).fetchall()
    assert duplicates == []


def test_agent_timestamps_are_timestamptz_and_wai_keeps_its_types(schema_db):
    types = schema_db.execute(
        """
        SELECT table_schema, data_type, count(*) FROM information_schema.columns
        WHERE table_schema IN ('public', 'wai') AND data_type LIKE 'timestamp%%'
          AND table_name NOT IN ('schema_migrations', 'schema_migrations_log')
        GROUP BY 1, 2 ORDER BY 1, 2
        """
    ).fetchall()
    assert [(s, t) for s, t, _ in types] == [
        ("public", "timestamp with time zone"),
        ("wai", "timestamp without time zone"),
    ]


def test_every_table_is_commented(schema_db):
    uncommented = schema_db.execute(
        """
        SELECT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'wai') AND c.relkind = 'r'
          AND c.relname NOT IN ('schema_migrations', 'schema_migrations_log')
          AND obj_description(c.oid, 'pg_class') IS NULL
        """
    ).fetchall()
    assert uncommented == []


def test_wai_keeps_every_documented_index(schema_db):
    indexes = {
        r[0]
        for r in schema_db.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'wai'"
        )
    }
    documented = {
        "idx_agents_tier", "idx_agents_roma_level", "idx_agents_status",
        "idx_executions_agent", "idx_executions_status", "idx_tools_category",
        "idx_agents_capabilities", "idx_executions_date", "idx_tools_status",
    }  # fmt: skip
    assert documented <= indexes
    assert "USING gin (capabilities)" in one(
        schema_db,
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_agents_capabilities'",
    )


def test_deleting_an_agent_with_runs_is_refused(schema_db):
    agent = make_agent(schema_db)
    make_run(schema_db, agent)
    # ON DELETE RESTRICT: PostgreSQL 18 reports restrict_violation (23001), older
    # servers foreign_key_violation (23503).
    refused = (
        errors.RestrictViolation
        if schema_db.info.server_version >= 180000
        else errors.ForeignKeyViolation
    )
    with pytest.raises(refused) as raised:
        schema_db.execute("DELETE FROM agents WHERE id = %s", (agent,))
    assert raised.value.diag.constraint_name == "runs_agent_id_fkey"


def test_deleting_a_session_keeps_its_runs(schema_db):
    agent = make_agent(schema_db)
    session = one(
        schema_db, "INSERT INTO sessions (session_key) VALUES ('s1') RETURNING id"
    )
    run = make_run(schema_db, agent, session)
    schema_db.execute("DELETE FROM sessions WHERE id = %s", (session,))
    assert one(schema_db, "SELECT session_id FROM runs WHERE id = %s", (run,)) is None


def test_deleting_a_run_removes_its_items_calls_and_interruptions(schema_db):
    agent = make_agent(schema_db)
    run = make_run(schema_db, agent)
    schema_db.execute(
        "INSERT INTO run_items (run_id, agent_id, sequence, item_type, item_data) "
        "VALUES (%s, %s, 0, 'tool_call_item', '{\"call_id\": \"c1\"}')",
        (run, agent),
    )
    call = one(
        schema_db,
        "INSERT INTO tool_calls (run_id, agent_id, call_id, tool_name, tool_type) "
        "VALUES (%s, %s, 'c1', 'lookup', 'function') RETURNING id",
        (run, agent),
    )
    schema_db.execute(
        "INSERT INTO interruptions (run_id, tool_call_id, agent_id, tool_name) "
        "VALUES (%s, %s, %s, 'lookup')",
        (run, call, agent),
    )
    schema_db.execute("DELETE FROM runs WHERE id = %s", (run,))
    for table in ("run_items", "tool_calls", "interruptions"):
        assert one(schema_db, f"SELECT count(*) FROM {table}") == 0


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO model_settings (name, temperature) VALUES ('hot', 2.5)",
        "INSERT INTO model_settings (name, top_p) VALUES ('p', 1.5)",
        "INSERT INTO model_settings (name, truncation) VALUES ('t', 'Sometimes')",
        "INSERT INTO model_settings (name, reasoning_effort) VALUES ('r', 'very high')",
        "INSERT INTO agents (name, tool_use_behavior) VALUES ('a', 'stop_at_tools')",
        "INSERT INTO agents (name, instructions_kind) VALUES ('a', 'dynamic')",
        "INSERT INTO tools (name, tool_type) VALUES ('f', 'function')",
        "INSERT INTO tools (name, tool_type) VALUES ('x', '')",
        "INSERT INTO guardrails (name, guardrail_type) VALUES ('g', 'sideways')",
        "INSERT INTO mcp_servers (name, transport) VALUES ('m', 'stdio')",
        "INSERT INTO mcp_servers (name, transport, url) VALUES ('m', 'carrier_pigeon', 'x')",
    ],
    ids=[
        "temperature above 2",
        "top_p above 1",
        "truncation not a token",
        "reasoning effort not a token",
        "stop_at_tools without tool names",
        "dynamic instructions without a reference",
        "function tool without a parameter schema",
        "empty tool type",
        "unknown guardrail type",
        "stdio server without a command",
        "unknown MCP transport",
    ],
)
def test_check_constraints_reject_bad_values(schema_db, statement):
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(statement)


def test_run_checks_reject_bad_status_and_turns(schema_db):
    agent = make_agent(schema_db)
    with pytest.raises(errors.CheckViolation):
        make_run(schema_db, agent, status="exploded")
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO runs (agent_id, input, current_turn, max_turns) VALUES (%s, '1', 11, 10)",
            (agent,),
        )
    with pytest.raises(errors.CheckViolation):
        make_run(schema_db, agent, status="completed")  # completed_at missing


def test_usage_checks(schema_db):
    run = make_run(schema_db, make_agent(schema_db))
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO usage_metrics (run_id, input_tokens, cached_tokens) VALUES (%s, 5, 6)",
            (run,),
        )
    with pytest.raises(errors.CheckViolation):
        schema_db.execute(
            "INSERT INTO usage_metrics (run_id, input_tokens) VALUES (%s, -1)", (run,)
        )


def test_only_one_active_run_state_per_run(schema_db):
    run = make_run(schema_db, make_agent(schema_db))
    insert = (
        "INSERT INTO run_states (run_id, state_data, is_active) VALUES (%s, '{}', %s)"
    )
    schema_db.execute(insert, (run, True))
    schema_db.execute(insert, (run, False))
    with pytest.raises(errors.UniqueViolation):
        schema_db.execute(insert, (run, True))


def test_soft_deleted_fingerprints_can_be_reused(schema_db):
    insert = (
        "INSERT INTO agents (name, fingerprint) VALUES ('triage', 'f1') RETURNING id"
    )
    agent = one(schema_db, insert)
    with pytest.raises(errors.UniqueViolation):
        schema_db.execute(insert)
    schema_db.execute("UPDATE agents SET deleted_at = now() WHERE id = %s", (agent,))
    one(schema_db, insert)


def test_updated_at_is_kept_current_by_the_trigger(schema_db):
    agent = make_agent(schema_db)
    schema_db.execute(
        "UPDATE agents SET updated_at = '2000-01-01' WHERE id = %s", (agent,)
    )
    assert one(
        schema_db,
        "SELECT updated_at > now() - interval '1 minute' FROM agents WHERE id = %s",
        (agent,),
    )


def test_the_documents_queries_run(schema_db):
    agent = make_agent(schema_db)
    run = make_run(schema_db, agent)
    schema_db.execute(
        "INSERT INTO run_states (run_id, state_data) VALUES (%s, '{\"turn\": 1}')",
        (run,),
    )
    schema_db.execute(
        "INSERT INTO usage_metrics (run_id, input_tokens, output_tokens, total_tokens, "
        "estimated_cost) VALUES (%s, 10, 5, 15, 0.25)",
        (run,),
    )
    active = schema_db.execute(
        ACTIVE_RUNS_QUERY.replace("agent-uuid-here", str(agent))
    ).fetchall()
    assert [row[0] for row in active] == [run]
    state = schema_db.execute(
        RUN_STATE_QUERY.replace("run-uuid-here", str(run))
    ).fetchall()
    assert state == [({"turn": 1},)]
    usage = schema_db.execute(USAGE_QUERY).fetchall()
    assert [(name, ins, outs) for name, ins, outs, _ in usage] == [("triage", 10, 5)]


def test_active_runs_query_uses_an_index(schema_db):
    agents = [make_agent(schema_db, f"agent{i}") for i in range(20)]
    schema_db.execute(
        """
        INSERT INTO runs (agent_id, status, input, started_at, completed_at)
        SELECT (%s::uuid[])[1 + i %% 20],
               CASE WHEN i %% 50 = 0 THEN 'running' ELSE 'completed' END,
               '"x"', now() - i * interval '1 minute',
               CASE WHEN i %% 50 = 0 THEN NULL ELSE now() END
        FROM generate_series(1, 5000) AS i
        """,
        (agents,),
    )
    schema_db.execute("ANALYZE runs")
    plan = schema_db.execute(
        "EXPLAIN " + ACTIVE_RUNS_QUERY.replace("agent-uuid-here", str(agents[3]))
    ).fetchall()
    text = "\n".join(line for (line,) in plan)
    assert "Seq Scan on runs" not in text
    assert "runs_agent_id_active_idx" in text


def test_up_down_up_leaves_an_identical_catalog(schema_db, schema_url):
    settings = Settings(directory=SQL_DIR, database_url=schema_url)
    before = catalog_snapshot(schema_db)
    runner.rollback(settings, target=0)
    after_down = catalog_snapshot(schema_db)
    # The runner's own tables stay: the history, and its audit log.
    assert {c[1] for c in after_down["columns"]} == {
        "schema_migrations",
        "schema_migrations_log",
    }
    assert after_down["schemas"] == [("public",)]
    runner.migrate(settings)
    assert catalog_snapshot(schema_db) == before


def test_agent_ids_are_uuids(schema_db):
    assert isinstance(make_agent(schema_db), uuid.UUID)
