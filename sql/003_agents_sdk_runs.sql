-- 003_agents_sdk_runs: let the schema hold every run the OpenAI Agents SDK can
-- produce today (openai-agents 0.24.0, read and run against it), and the values
-- it will add next.
--
-- Which lists are constraints, and which are data
-- * Data: the kinds the SDK and the model API own and grow every few releases:
--   run item kinds, tool types, interruption kinds and the model settings' enum
--   values (reasoning effort and summary, verbosity, truncation, prompt cache
--   retention). A new kind must not fail a whole run at its last INSERT, so these
--   columns only check that the value is a well-formed token (lowercase letters,
--   digits, underscores; at most 64 characters). The kinds known today are listed
--   in each column's comment; schemactl.agent_store knows them too.
-- * Constraints: the lists the application owns (run, tool call and interruption
--   statuses), the two guardrail kinds and the shapes of definitions (MCP
--   transports, tool use behaviour, instructions): a bad value there is a bug in
--   the writer, and the row is written long before a run depends on it.
--
-- What changes, by the SDK behaviour that needs it
-- * Two agents may share a name (the SDK numbers them name#2 in a RunState), and
--   a tool name is unique per agent only: the global unique names go. A writer
--   that wants one row per definition keys it by the new `fingerprint` columns
--   (unique among live rows).
-- * A handoff is identified by its tool name: two handoffs from one agent may
--   lead to the same agent under different names (agent_handoffs.tool_name; the
--   existing rows get the SDK's default name, transfer_to_<agent name>).
-- * runs.max_turns is NULL for an unlimited run, and a run stopped by
--   MaxTurnsExceeded reached turn max_turns + 1 (the SDK's own count).
-- * Output guardrails have no run_in_parallel in the SDK: they store NULL, and
--   input guardrails always say.
-- * A dynamic prompt (a function returning the prompt) is registered by name,
--   like dynamic instructions: prompt_kind and prompt_ref.
-- * session_items.position has a default from an identity, so concurrent writers
--   never race for the same position (writers that lock the session row first,
--   as the shipped store does, also keep each batch contiguous).
-- * cache_write_tokens in the usage tables; model_responses.request_id, and
--   the token details the run's usage has.
-- * A response id is the provider's, not ours: no longer unique (the SDK's own
--   ScriptedModel answers "resp-789" to every call), only indexed.
-- * run_states.schema_version is the version the SDK wrote ($schemaVersion in
--   state_data): a trigger fills it from the state instead of the '1.0' default,
--   and a CHECK keeps the two equal.
-- * Usage of a run is either one run-wide row or per-agent rows, never both: the
--   document's usage query summed both (twice the tokens). An exclusion
--   constraint (btree_gist, a trusted extension like uuid-ossp) holds this even
--   for concurrent writers. A database that already mixes the two stops this
--   migration with a message; nothing is deleted for you.
--
-- Not a schema matter: PostgreSQL cannot store U+0000 in text or jsonb. The
-- shipped store escapes it reversibly (see schemactl.agent_store); other writers
-- must do the same.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Data, not constraints: well-formed tokens ------------------------------------
-- Each new CHECK is NOT VALID: the list it replaces held only such tokens, so
-- scanning run_items (a big table) under this file's locks would prove nothing.
-- New rows are checked all the same.
CREATE FUNCTION is_sdk_token(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT value ~ '^[a-z0-9][a-z0-9_]{0,63}$' $$;
COMMENT ON FUNCTION is_sdk_token(text) IS
    'True for a value of an SDK- or API-owned list (item kind, tool type, '
    'effort level...): lowercase letters, digits and underscores, 1 to 64 long.';

ALTER TABLE run_items DROP CONSTRAINT run_items_item_type_check;
ALTER TABLE run_items ADD CONSTRAINT run_items_item_type_check
    CHECK (is_sdk_token(item_type)) NOT VALID;
COMMENT ON COLUMN run_items.item_type IS
    'RunItem.type. Known in openai-agents 0.24: message_output_item, '
    'tool_call_item, tool_call_output_item, handoff_call_item, handoff_output_item, '
    'reasoning_item, mcp_list_tools_item, mcp_approval_request_item, '
    'mcp_approval_response_item, tool_approval_item, input_item, '
    'tool_search_call_item, tool_search_output_item, compaction_item.';

ALTER TABLE tools DROP CONSTRAINT tools_tool_type_check;
ALTER TABLE tools ADD CONSTRAINT tools_tool_type_check
    CHECK (is_sdk_token(tool_type)) NOT VALID;
COMMENT ON COLUMN tools.tool_type IS
    'Known in openai-agents 0.24: function, agent, file_search, web_search, '
    'computer, hosted_mcp, local_shell, shell, apply_patch, image_generation, '
    'code_interpreter, custom, tool_search, programmatic_tool_calling.';

ALTER TABLE interruptions DROP CONSTRAINT interruptions_interruption_type_check;
ALTER TABLE interruptions ADD CONSTRAINT interruptions_interruption_type_check
    CHECK (is_sdk_token(interruption_type)) NOT VALID;

ALTER TABLE model_settings DROP CONSTRAINT model_settings_reasoning_effort_check;
ALTER TABLE model_settings ADD CONSTRAINT model_settings_reasoning_effort_check
    CHECK (is_sdk_token(reasoning_effort)) NOT VALID;
COMMENT ON COLUMN model_settings.reasoning_effort IS
    'Known today: none, minimal, low, medium, high, xhigh, max.';
ALTER TABLE model_settings DROP CONSTRAINT model_settings_reasoning_summary_check;
ALTER TABLE model_settings ADD CONSTRAINT model_settings_reasoning_summary_check
    CHECK (is_sdk_token(reasoning_summary)) NOT VALID;
ALTER TABLE model_settings DROP CONSTRAINT model_settings_verbosity_check;
ALTER TABLE model_settings ADD CONSTRAINT model_settings_verbosity_check
    CHECK (is_sdk_token(verbosity)) NOT VALID;
ALTER TABLE model_settings DROP CONSTRAINT model_settings_truncation_check;
ALTER TABLE model_settings ADD CONSTRAINT model_settings_truncation_check
    CHECK (is_sdk_token(truncation)) NOT VALID;
ALTER TABLE model_settings DROP CONSTRAINT model_settings_prompt_cache_retention_check;
ALTER TABLE model_settings ADD CONSTRAINT model_settings_prompt_cache_retention_check
    CHECK (is_sdk_token(prompt_cache_retention)) NOT VALID;

-- Names: unique per definition, not globally ----------------------------------
DROP INDEX agents_name_live_key;
CREATE INDEX agents_name_idx ON agents (name) WHERE deleted_at IS NULL;
ALTER TABLE agents ADD COLUMN fingerprint text CHECK (fingerprint <> '');
COMMENT ON COLUMN agents.fingerprint IS
    'Optional key of one agent definition (e.g. a hash of it), chosen by the '
    'writer: one live row per fingerprint.';
CREATE UNIQUE INDEX agents_fingerprint_live_key ON agents (fingerprint)
    WHERE deleted_at IS NULL;

DROP INDEX tools_name_live_key;
CREATE INDEX tools_name_idx ON tools (name) WHERE deleted_at IS NULL;
ALTER TABLE tools ADD COLUMN fingerprint text CHECK (fingerprint <> '');
COMMENT ON COLUMN tools.fingerprint IS
    'Optional key of one tool definition, chosen by the writer: one live row '
    'per fingerprint.';
CREATE UNIQUE INDEX tools_fingerprint_live_key ON tools (fingerprint)
    WHERE deleted_at IS NULL;

-- Dynamic prompts ---------------------------------------------------------------
ALTER TABLE agents
    ADD COLUMN prompt_kind text NOT NULL DEFAULT 'static'
        CHECK (prompt_kind IN ('static', 'dynamic')),
    ADD COLUMN prompt_ref text,
    ADD CONSTRAINT agents_dynamic_prompt_ref_check CHECK (
        (prompt_kind = 'dynamic') = (prompt_ref IS NOT NULL)
        AND (prompt_kind = 'static' OR prompt IS NULL)
    );
COMMENT ON COLUMN agents.prompt_ref IS
    'A dynamic prompt: the name under which the application registers the '
    'function that returns the prompt.';

-- Handoffs are keyed by their tool name ---------------------------------------
ALTER TABLE agent_handoffs ADD COLUMN tool_name text;
UPDATE agent_handoffs AS h
SET tool_name = coalesce(
    (SELECT c.tool_name_override FROM handoff_configs AS c
     WHERE c.id = h.handoff_config_id),
    -- The SDK's Handoff.default_tool_name.
    lower(regexp_replace('transfer_to_' || t.name, '[^a-zA-Z0-9_]', '_', 'g'))
)
FROM agents AS t
WHERE t.id = h.target_agent_id;
ALTER TABLE agent_handoffs
    ALTER COLUMN tool_name SET NOT NULL,
    ADD CONSTRAINT agent_handoffs_tool_name_check CHECK (tool_name <> ''),
    DROP CONSTRAINT agent_handoffs_pkey,
    ADD PRIMARY KEY (agent_id, tool_name);
COMMENT ON COLUMN agent_handoffs.tool_name IS
    'The handoff''s tool name as the model sees it (Handoff.tool_name).';
-- The old key served lookups by (agent, target); keep one index for them.
CREATE INDEX agent_handoffs_agent_id_target_agent_id_idx
    ON agent_handoffs (agent_id, target_agent_id);

-- Runs: unlimited turns, and the turn that exceeded the limit -----------------
ALTER TABLE runs
    ALTER COLUMN max_turns DROP NOT NULL,
    DROP CONSTRAINT runs_turns_check,
    ADD CONSTRAINT runs_turns_check CHECK (
        current_turn <= max_turns
        OR (status = 'max_turns_exceeded' AND current_turn = max_turns + 1)
    );
COMMENT ON COLUMN runs.max_turns IS 'NULL: the run had no turn limit.';

-- Guardrails: output guardrails have no run_in_parallel -----------------------
ALTER TABLE guardrails
    DROP CONSTRAINT guardrails_parallel_input_only_check,
    ALTER COLUMN run_in_parallel DROP NOT NULL,
    ALTER COLUMN run_in_parallel DROP DEFAULT;
UPDATE guardrails SET run_in_parallel = NULL WHERE guardrail_type = 'output';
ALTER TABLE guardrails ADD CONSTRAINT guardrails_parallel_input_only_check CHECK (
    (guardrail_type = 'input') = (run_in_parallel IS NOT NULL)
);

-- Session positions from an identity ------------------------------------------
ALTER TABLE session_items
    ALTER COLUMN position ADD GENERATED BY DEFAULT AS IDENTITY (MINVALUE 0);
DO $$
BEGIN
    PERFORM setval(
        pg_get_serial_sequence('session_items', 'position'),
        coalesce((SELECT max(position) + 1 FROM session_items), 0),
        false
    );
END;
$$;

-- Usage: cache writes, request ids, one kind of row per run -------------------
ALTER TABLE usage_metrics
    ADD COLUMN cache_write_tokens bigint NOT NULL DEFAULT 0
        CHECK (cache_write_tokens >= 0);
ALTER TABLE request_usage_entries
    ADD COLUMN cache_write_tokens bigint NOT NULL DEFAULT 0
        CHECK (cache_write_tokens >= 0);
ALTER TABLE model_responses
    ADD COLUMN request_id text,
    ADD COLUMN cached_tokens bigint NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    ADD COLUMN cache_write_tokens bigint NOT NULL DEFAULT 0
        CHECK (cache_write_tokens >= 0),
    ADD COLUMN reasoning_tokens bigint NOT NULL DEFAULT 0
        CHECK (reasoning_tokens >= 0);
DROP INDEX model_responses_response_id_key;
CREATE INDEX model_responses_response_id_idx ON model_responses (response_id)
    WHERE response_id IS NOT NULL;
COMMENT ON COLUMN model_responses.request_id IS
    'The provider''s request id (ModelResponse.request_id), for support tickets.';

DO $$
DECLARE
    mixed bigint;
BEGIN
    SELECT count(DISTINCT w.run_id) INTO mixed
    FROM usage_metrics AS w
    JOIN usage_metrics AS a ON a.run_id = w.run_id AND a.agent_id IS NOT NULL
    WHERE w.agent_id IS NULL;
    IF mixed > 0 THEN
        RAISE EXCEPTION '% run(s) have both a run-wide and per-agent usage_metrics rows', mixed
            USING HINT = 'Keep one kind per run (the per-agent rows add up to the '
                'run-wide one), then migrate again: SELECT run_id FROM usage_metrics '
                'WHERE agent_id IS NULL AND run_id IN (SELECT run_id FROM usage_metrics '
                'WHERE agent_id IS NOT NULL)';
    END IF;
END;
$$;
ALTER TABLE usage_metrics ADD CONSTRAINT usage_metrics_one_kind_per_run_excl
    EXCLUDE USING gist (run_id WITH =, (agent_id IS NULL) WITH <>);

-- Run states: the SDK's own schema version ------------------------------------
CREATE FUNCTION run_states_schema_version_from_state() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.schema_version := coalesce(NEW.schema_version, NEW.state_data ->> '$schemaVersion');
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION run_states_schema_version_from_state() IS
    'Trigger function: a run state without schema_version gets the one its '
    'state_data carries ($schemaVersion).';
UPDATE run_states SET schema_version = state_data ->> '$schemaVersion'
WHERE schema_version IS DISTINCT FROM state_data ->> '$schemaVersion'
  AND state_data ? '$schemaVersion';
ALTER TABLE run_states
    ALTER COLUMN schema_version DROP DEFAULT,
    ALTER COLUMN schema_version DROP NOT NULL,
    ADD CONSTRAINT run_states_schema_version_check CHECK (
        schema_version = coalesce(state_data ->> '$schemaVersion', schema_version)
    );
CREATE TRIGGER run_states_schema_version BEFORE INSERT OR UPDATE ON run_states
    FOR EACH ROW EXECUTE FUNCTION run_states_schema_version_from_state();
COMMENT ON COLUMN run_states.schema_version IS
    'RunState''s $schemaVersion (1.21 in openai-agents 0.24); taken from '
    'state_data when not given, NULL when the state carries none.';
