-- 003_agents_sdk_runs: let the schema hold every run the OpenAI Agents SDK can
-- produce today (openai-agents 0.24.0, read and run against it), and the values
-- it will add next.
--
-- Which lists are constraints, and which are data
-- * Data: the kinds the SDK and the model API own and grow every few releases:
--   run item kinds, tool types, interruption kinds and the model settings' enum
--   values (reasoning effort and summary, verbosity, truncation, prompt cache
--   retention). A new kind must not fail a whole run at its last INSERT, so these
--   columns only check that the value is a well-formed token (is_sdk_token:
--   lowercase letters, digits, '_', '.', '-'; at most 64 characters). The kinds
--   known today are listed in each column's comment.
-- * Constraints: the lists the application owns (run, tool call and interruption
--   statuses), the two guardrail kinds and the shapes of definitions (MCP
--   transports, tool use behaviour, instructions): a bad value there is a bug in
--   the writer, and the row is written long before a run depends on it.
--
-- What changes, by the SDK behaviour that needs it
-- * Two agents may share a name (the SDK numbers them name#2 in a RunState), and
--   tool names are the SDK's to keep apart (per agent, at run time): the global
--   unique names go. A writer that wants one row per definition keys it by the
--   new `fingerprint` columns (unique among live rows).
-- * A handoff is identified by its tool name: two handoffs from one agent may
--   lead to the same agent under different names (agent_handoffs.tool_name), and
--   an agent may hand off to itself. Existing rows get their configuration's
--   name override, or the SDK's default name, transfer_to_<agent name>; so does
--   a new row that names none (a trigger, for writers built for version 2).
-- * runs.max_turns is NULL for an unlimited run, and any number the SDK takes
--   (it refuses neither 0 nor a negative one); a run stopped by MaxTurnsExceeded
--   may count the turn that went past it, as the SDK does.
-- * Output guardrails have no run_in_parallel in the SDK: they store NULL, input
--   guardrails always say (a trigger fills true, the SDK's default, and NULL for
--   output guardrails, so writers built for version 2 keep working).
-- * A dynamic prompt (a function returning the prompt) is registered by name,
--   like dynamic instructions: prompt_kind and prompt_ref.
-- * session_items.position is filled when omitted: the next position of that
--   session, taken under the session row's lock, so concurrent writers never
--   race for it (under READ COMMITTED, PostgreSQL's default; under REPEATABLE
--   READ the second writer retries a serialization failure).
-- * cache_write_tokens in the usage tables; model_responses.request_id, and the
--   token details the run's usage has.
-- * A response id is the provider's, not ours: no longer unique (the SDK's own
--   ScriptedModel answers "resp-789" to every call), only indexed.
-- * run_states.schema_version is the version the SDK wrote ($schemaVersion in
--   state_data): a trigger takes it from the state, a CHECK keeps the two equal.
--   Rows whose state carries no version keep what they had.
-- * runs.attempt_id: the token of the process driving a run, so a process
--   that was taken over (its lock lost) stops rather than run a tool twice.
-- * Usage of a run is either one run-wide row or per-agent rows, never both: the
--   document's usage query summed both (twice the tokens). An exclusion
--   constraint (btree_gist) holds this even for concurrent writers.
--
-- Writers that upsert ON CONFLICT on a key that went (agents (name) among
-- live rows, agent_handoffs (agent_id, target_agent_id), model_responses
-- (response_id)) move to the new ones: agents or tools (fingerprint),
-- agent_handoffs (agent_id, tool_name).
--
-- Before any change, the file checks the data version 2 may hold and this
-- version cannot: usage rows of both kinds for one run, two handoffs of one
-- agent that would get one tool name. It stops with a message and a query
-- that finds them; nothing is deleted or renamed for you. (With
-- `psql -v ON_ERROR_STOP=1 -f`, the checks come first so a refusal leaves
-- nothing half-done; without ON_ERROR_STOP psql runs on after an error.)
-- The handoffs that would share a tool name:
--   SELECT h.agent_id, coalesce(
--       (SELECT nullif(c.tool_name_override, '') FROM handoff_configs AS c
--        WHERE c.id = h.handoff_config_id AND c.deleted_at IS NULL
--          AND c.target_agent_id = h.target_agent_id),
--       lower(regexp_replace('transfer_to_' || a.name, '[^a-zA-Z0-9_]', '_', 'g')))
--       AS tool_name,
--       array_agg(a.name || CASE WHEN a.deleted_at IS NULL THEN '' ELSE ' (deleted)' END)
--   FROM agent_handoffs AS h JOIN agents AS a ON a.id = h.target_agent_id
--   GROUP BY 1, 2 HAVING count(*) > 1;
--
-- Cost on a large database: one transaction holding ACCESS EXCLUSIVE locks on
-- the tables it alters (reads of run_items, runs and agents wait too). Measured
-- on PostgreSQL 15 with 500,000 runs, usage rows and run items and 200,000
-- states: 7 to 9 s in all, most of it the exclusion constraint's GiST index
-- over usage_metrics (3 to 6 s) and rewriting the run_states rows whose
-- schema_version differs from their state's (about 3 s for 2 KB states). The new CHECKs on the token
-- columns are NOT VALID: the lists they replace held only such tokens, so
-- scanning run_items would prove nothing; new rows are checked all the same.
--
-- Not a schema matter: PostgreSQL cannot store U+0000 (or a lone surrogate) in
-- text or jsonb. The shipped store escapes them reversibly (see
-- schemactl.agent_store); other writers must do the same.
--
-- Extensions: btree_gist, like uuid-ossp in 001, is trusted from PostgreSQL 13
-- on (a database owner may create it); on 12, a superuser must.

-- Data version 2 may hold and this version cannot ------------------------------
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

DO $$
DECLARE
    clashes bigint;
BEGIN
    -- handoff_tool_name() below, inline: nothing is created before the checks.
    SELECT count(*) INTO clashes FROM (
        SELECT h.agent_id, coalesce(
            (SELECT nullif(c.tool_name_override, '') FROM handoff_configs AS c
             WHERE c.id = h.handoff_config_id AND c.deleted_at IS NULL
               AND c.target_agent_id = h.target_agent_id),
            lower(regexp_replace('transfer_to_' || a.name, '[^a-zA-Z0-9_]', '_', 'g')))
        FROM agent_handoffs AS h JOIN agents AS a ON a.id = h.target_agent_id
        GROUP BY 1, 2 HAVING count(*) > 1
    ) AS twice;
    IF clashes > 0 THEN
        RAISE EXCEPTION '% agent(s) have two handoffs that would get one tool name', clashes
            USING HINT = 'Delete a handoff to a soft-deleted agent, or give one of '
                'each pair a handoff_configs.tool_name_override (the SDK''s default '
                'name is transfer_to_ and the target''s name, lowercased, every '
                'character but a-z, 0-9 and _ replaced by _), then migrate again. '
                'The query that finds the pairs is in the header of '
                '003_agents_sdk_runs.sql.';
    END IF;
END;
$$;

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Handoff tool names as the SDK gives them -------------------------------------
CREATE FUNCTION handoff_default_tool_name(target_agent_id uuid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    -- The SDK's Handoff.default_tool_name: transfer_to_<name>, every character
    -- but ASCII letters, digits and '_' replaced by '_', lowercased.
    SELECT pg_catalog.lower(pg_catalog.regexp_replace(
        'transfer_to_' || a.name, '[^a-zA-Z0-9_]', '_', 'g'))
    FROM public.agents AS a WHERE a.id = target_agent_id
$$;
COMMENT ON FUNCTION handoff_default_tool_name(uuid) IS
    'The tool name the SDK gives a handoff to this agent when none is set.';

CREATE FUNCTION handoff_tool_name(target_agent_id uuid, handoff_config_id uuid)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT nullif(c.tool_name_override, '')
         FROM public.handoff_configs AS c
         WHERE c.id = handoff_config_id AND c.deleted_at IS NULL
           AND c.target_agent_id = handoff_tool_name.target_agent_id),
        public.handoff_default_tool_name(target_agent_id))
$$;
COMMENT ON FUNCTION handoff_tool_name(uuid, uuid) IS
    'A handoff''s tool name: its live configuration''s override, else the '
    'SDK''s default.';


-- Data, not constraints: well-formed tokens ------------------------------------
CREATE FUNCTION is_sdk_token(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT value OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_.-]{0,63}$' $$;
COMMENT ON FUNCTION is_sdk_token(text) IS
    'True for a value of an SDK- or API-owned list (item kind, tool type, '
    'effort level...): lowercase letters, digits, _ . and -, 1 to 64 long.';

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
COMMENT ON COLUMN interruptions.interruption_type IS
    'Known today: tool_approval, mcp_approval.';

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
COMMENT ON TABLE agents IS
    'Agent definitions: instructions and prompt (static or dynamic), model and '
    'settings, output type, tool use behavior. Names may repeat; a writer keys '
    'definitions by fingerprint. Soft-deleted via deleted_at.';

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
UPDATE agent_handoffs
SET tool_name = handoff_tool_name(target_agent_id, handoff_config_id);
ALTER TABLE agent_handoffs
    ALTER COLUMN tool_name SET NOT NULL,
    ADD CONSTRAINT agent_handoffs_tool_name_check CHECK (tool_name <> ''),
    DROP CONSTRAINT agent_handoffs_not_self_check,
    DROP CONSTRAINT agent_handoffs_pkey,
    ADD PRIMARY KEY (agent_id, tool_name);
COMMENT ON COLUMN agent_handoffs.tool_name IS
    'The handoff''s tool name as the model sees it (Handoff.tool_name); when '
    'omitted, its configuration''s override or the SDK''s default.';
-- The old key served lookups by (agent, target); keep one index for them.
CREATE INDEX agent_handoffs_agent_id_target_agent_id_idx
    ON agent_handoffs (agent_id, target_agent_id);

-- SECURITY DEFINER, as session_items_fill_position below: a role that may only
-- insert handoffs (enough in version 2) needs no rights on the configurations.
-- An UPDATE that moves the handoff (another target or configuration) and
-- leaves its name as it was takes the new one's name, as version 2 would have
-- derived it (a writer that sets the same name again with a new configuration
-- gets that configuration's name too); the stored name is the handoff's own
-- otherwise (renaming an agent does not rename the handoffs to it, as in the
-- SDK).
CREATE FUNCTION agent_handoffs_fill_tool_name() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- pg_trigger_depth() = 1: not when a deleted configuration's foreign key
    -- clears handoff_config_id (the handoff keeps the name runs have seen).
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() = 1
       AND NEW.tool_name IS NOT DISTINCT FROM OLD.tool_name
       AND (NEW.target_agent_id, NEW.handoff_config_id)
           IS DISTINCT FROM (OLD.target_agent_id, OLD.handoff_config_id) THEN
        NEW.tool_name := NULL;
    END IF;
    NEW.tool_name := coalesce(
        nullif(NEW.tool_name, ''),
        public.handoff_tool_name(NEW.target_agent_id, NEW.handoff_config_id));
    RETURN NEW;
END;
$$;
REVOKE EXECUTE ON FUNCTION agent_handoffs_fill_tool_name() FROM PUBLIC;
COMMENT ON FUNCTION agent_handoffs_fill_tool_name() IS
    'Trigger function: a handoff without a tool name gets the one the SDK '
    'would give it.';
CREATE TRIGGER agent_handoffs_fill_tool_name
    BEFORE INSERT OR UPDATE OF tool_name, target_agent_id, handoff_config_id
    ON agent_handoffs
    FOR EACH ROW EXECUTE FUNCTION agent_handoffs_fill_tool_name();

-- Runs: any turn limit the SDK takes, and the turn that went past it ----------
ALTER TABLE runs
    ALTER COLUMN max_turns DROP NOT NULL,
    DROP CONSTRAINT runs_max_turns_check,
    DROP CONSTRAINT runs_turns_check,
    ADD CONSTRAINT runs_turns_check CHECK (
        CASE WHEN status = 'max_turns_exceeded'
            THEN max_turns IS NOT NULL
            ELSE max_turns IS NULL OR current_turn <= greatest(max_turns, 0)
        END
    );
COMMENT ON COLUMN runs.max_turns IS 'NULL: the run had no turn limit.';

-- Runs: who drives them ---------------------------------------------------------
ALTER TABLE runs ADD COLUMN attempt_id uuid;
COMMENT ON COLUMN runs.attempt_id IS
    'Set by the process that starts or resumes the run (a new value each time): '
    'a process whose attempt is no longer the row''s has been taken over, and '
    'neither continues nor writes the run. Other updates of the row leave it.';

-- Guardrails: output guardrails have no run_in_parallel -----------------------
ALTER TABLE guardrails
    DROP CONSTRAINT guardrails_parallel_input_only_check,
    ALTER COLUMN run_in_parallel DROP NOT NULL,
    ALTER COLUMN run_in_parallel DROP DEFAULT;
UPDATE guardrails SET run_in_parallel = NULL WHERE guardrail_type = 'output';
ALTER TABLE guardrails ADD CONSTRAINT guardrails_parallel_input_only_check CHECK (
    (guardrail_type = 'input') = (run_in_parallel IS NOT NULL)
);
COMMENT ON COLUMN guardrails.run_in_parallel IS
    'Input guardrails only (true when omitted, as in the SDK); NULL for output '
    'guardrails.';

CREATE FUNCTION guardrails_fill_run_in_parallel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.run_in_parallel := CASE NEW.guardrail_type
        WHEN 'input' THEN coalesce(NEW.run_in_parallel, true)
        WHEN 'output' THEN NULL
        ELSE NEW.run_in_parallel
    END;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION guardrails_fill_run_in_parallel() IS
    'Trigger function: input guardrails default to running in parallel; output '
    'guardrails have no such flag.';
CREATE TRIGGER guardrails_fill_run_in_parallel
    BEFORE INSERT OR UPDATE OF guardrail_type, run_in_parallel ON guardrails
    FOR EACH ROW EXECUTE FUNCTION guardrails_fill_run_in_parallel();

-- Session positions: the session's next one, under its row lock ---------------
-- The first item a transaction adds to a session updates the session's row
-- (its updated_at; later items find the row as this transaction left it):
-- writers of one session take turns from there to commit, under READ
-- COMMITTED each then sees the other's items, and under REPEATABLE READ the
-- second gets a serialization failure to retry rather than a taken position.
-- It is the row lock the shipped store takes first, so the two never
-- deadlock. Rows an INSERT already added are visible to its later rows, so a
-- multi-row INSERT gets consecutive positions. SECURITY DEFINER: a role that
-- may only INSERT items gets positions too; no one else may call it.
CREATE FUNCTION session_items_fill_position() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- The session row's version this transaction last wrote, as
    -- "session:xmin" in one setting of the transaction (a savepoint's row
    -- version has its own xmin; a rolled-back savepoint takes both back).
    mark text := current_setting('schemactl.session_items_mark', true);
BEGIN
    IF NEW.position IS NULL THEN
        IF NOT EXISTS (
            SELECT 1 FROM public.sessions AS s
            WHERE s.id = NEW.session_id
              AND (s.xmin = pg_current_xact_id()::xid
                   OR NEW.session_id::text || ':' || s.xmin::text = mark)
        ) THEN
            UPDATE public.sessions SET updated_at = now() WHERE id = NEW.session_id
            RETURNING NEW.session_id::text || ':' || xmin::text INTO mark;
            PERFORM set_config('schemactl.session_items_mark', coalesce(mark, ''), true);
        END IF;
        SELECT coalesce(max(i.position) + 1, 0) INTO NEW.position
        FROM public.session_items AS i WHERE i.session_id = NEW.session_id;
    END IF;
    RETURN NEW;
END;
$$;
REVOKE EXECUTE ON FUNCTION session_items_fill_position() FROM PUBLIC;
COMMENT ON FUNCTION session_items_fill_position() IS
    'Trigger function: an item without a position goes after the last item of '
    'its session.';
CREATE TRIGGER session_items_fill_position BEFORE INSERT ON session_items
    FOR EACH ROW EXECUTE FUNCTION session_items_fill_position();

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

-- The boolean is cast to int: btree_gist has boolean only from version 1.7
-- (PostgreSQL 15), and a cluster upgraded from 14 keeps 1.6.
ALTER TABLE usage_metrics ADD CONSTRAINT usage_metrics_one_kind_per_run_excl
    EXCLUDE USING gist (run_id WITH =, ((agent_id IS NULL)::int) WITH <>);
COMMENT ON TABLE usage_metrics IS
    'Aggregated Usage of a run: one run-wide row (agent_id NULL) or one row per '
    'agent, never both, so summing a run''s rows counts each token once. '
    'Requests, tokens with cached, cache write and reasoning details, cost.';

-- Run states: the SDK's own schema version ------------------------------------
CREATE FUNCTION run_states_schema_version_from_state() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state_data ->> '$schemaVersion' IS NOT NULL THEN
        NEW.schema_version := NEW.state_data ->> '$schemaVersion';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION run_states_schema_version_from_state() IS
    'Trigger function: schema_version is the $schemaVersion its state_data '
    'carries, when it carries one.';
UPDATE run_states SET schema_version = state_data ->> '$schemaVersion'
WHERE schema_version IS DISTINCT FROM state_data ->> '$schemaVersion'
  AND state_data ->> '$schemaVersion' IS NOT NULL;
ALTER TABLE run_states
    ALTER COLUMN schema_version DROP DEFAULT,
    ALTER COLUMN schema_version DROP NOT NULL,
    ADD CONSTRAINT run_states_schema_version_check CHECK (
        schema_version IS NOT DISTINCT FROM
            coalesce(state_data ->> '$schemaVersion', schema_version)
    );
CREATE TRIGGER run_states_schema_version
    BEFORE INSERT OR UPDATE OF state_data, schema_version ON run_states
    FOR EACH ROW EXECUTE FUNCTION run_states_schema_version_from_state();
COMMENT ON COLUMN run_states.schema_version IS
    'RunState''s $schemaVersion (1.21 in openai-agents 0.24), taken from '
    'state_data; NULL for a new state that carries none.';
