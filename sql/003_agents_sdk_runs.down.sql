-- 003_agents_sdk_runs (down): back to the 002 catalog.
--
-- Rows that only 003 allows cannot go back: the first statement finds every
-- kind there is and stops with the list, before anything changed (with psql,
-- run it as `psql -v ON_ERROR_STOP=1 -f`: without it psql runs on after an
-- error); nothing is deleted for you. Columns 003 added are dropped with
-- their values (fingerprints, handoff tool names, cache write tokens, request
-- ids, the token details of responses, run attempts). A run state whose
-- version is unknown gets 002's default, '1.0'. btree_gist stays installed, as
-- uuid-ossp does.

DO $$
DECLARE
    found text[] := '{}';
BEGIN
    IF EXISTS (SELECT 1 FROM agents WHERE prompt_kind = 'dynamic') THEN
        found := found || 'agents with a dynamic prompt (prompt_ref)'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM runs WHERE max_turns IS NULL OR max_turns <= 0
               OR current_turn > max_turns) THEN
        found := found || 'runs without a turn limit, with one below 1, or past it'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM agents WHERE deleted_at IS NULL
               GROUP BY name HAVING count(*) > 1) THEN
        found := found || 'live agents that share a name'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM tools WHERE deleted_at IS NULL
               GROUP BY name HAVING count(*) > 1) THEN
        found := found || 'live tools that share a name'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM agent_handoffs WHERE agent_id = target_agent_id)
       OR EXISTS (SELECT 1 FROM agent_handoffs GROUP BY agent_id, target_agent_id
                  HAVING count(*) > 1) THEN
        found := found || 'handoffs to the agent itself, or two from one agent to another'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM model_responses WHERE response_id IS NOT NULL
               GROUP BY response_id HAVING count(*) > 1) THEN
        found := found || 'model responses that share a response_id'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM run_items WHERE item_type NOT IN (
                   'message_output_item', 'tool_call_item', 'tool_call_output_item',
                   'handoff_call_item', 'handoff_output_item', 'reasoning_item',
                   'mcp_list_tools_item', 'mcp_approval_request_item',
                   'mcp_approval_response_item', 'tool_approval_item'))
       OR EXISTS (SELECT 1 FROM tools WHERE tool_type NOT IN (
                   'function', 'agent', 'file_search', 'web_search', 'computer',
                   'hosted_mcp', 'local_shell', 'shell', 'apply_patch',
                   'image_generation', 'code_interpreter'))
       OR EXISTS (SELECT 1 FROM interruptions
                  WHERE interruption_type NOT IN ('tool_approval', 'mcp_approval'))
       OR EXISTS (SELECT 1 FROM model_settings
                  WHERE reasoning_effort NOT IN
                        ('none', 'minimal', 'low', 'medium', 'high', 'xhigh')
                     OR reasoning_summary NOT IN ('auto', 'concise', 'detailed')
                     OR verbosity NOT IN ('low', 'medium', 'high')
                     OR truncation NOT IN ('auto', 'disabled')
                     OR prompt_cache_retention NOT IN ('in_memory', '24h')) THEN
        found := found || 'item kinds, tool types or settings version 2 does not list'::text;
    END IF;
    IF cardinality(found) > 0 THEN
        RAISE EXCEPTION 'version 2 cannot hold: %', array_to_string(found, '; ')
            USING HINT = 'Change or delete those rows first; this file deletes nothing.';
    END IF;
END;
$$;

DROP TRIGGER run_states_schema_version ON run_states;
DROP FUNCTION run_states_schema_version_from_state();
UPDATE run_states SET schema_version = '1.0' WHERE schema_version IS NULL;
ALTER TABLE run_states
    DROP CONSTRAINT run_states_schema_version_check,
    ALTER COLUMN schema_version SET DEFAULT '1.0',
    ALTER COLUMN schema_version SET NOT NULL;
COMMENT ON COLUMN run_states.schema_version IS NULL;

ALTER TABLE usage_metrics DROP CONSTRAINT usage_metrics_one_kind_per_run_excl;
COMMENT ON TABLE usage_metrics IS
    'Aggregated Usage of a run (per agent when agent_id is set): requests, '
    'tokens with cached and reasoning details, estimated cost.';
DROP INDEX model_responses_response_id_idx;
CREATE UNIQUE INDEX model_responses_response_id_key ON model_responses (response_id)
    WHERE response_id IS NOT NULL;
ALTER TABLE model_responses
    DROP COLUMN request_id,
    DROP COLUMN cached_tokens,
    DROP COLUMN cache_write_tokens,
    DROP COLUMN reasoning_tokens;
ALTER TABLE request_usage_entries DROP COLUMN cache_write_tokens;
ALTER TABLE usage_metrics DROP COLUMN cache_write_tokens;

DROP TRIGGER session_items_fill_position ON session_items;
DROP FUNCTION session_items_fill_position();

DROP TRIGGER guardrails_fill_run_in_parallel ON guardrails;
DROP FUNCTION guardrails_fill_run_in_parallel();
COMMENT ON COLUMN guardrails.run_in_parallel IS NULL;
ALTER TABLE guardrails DROP CONSTRAINT guardrails_parallel_input_only_check;
UPDATE guardrails SET run_in_parallel = true WHERE run_in_parallel IS NULL;
ALTER TABLE guardrails
    ALTER COLUMN run_in_parallel SET DEFAULT true,
    ALTER COLUMN run_in_parallel SET NOT NULL,
    ADD CONSTRAINT guardrails_parallel_input_only_check CHECK (
        guardrail_type = 'input' OR run_in_parallel
    );

COMMENT ON COLUMN runs.max_turns IS NULL;
ALTER TABLE runs DROP COLUMN attempt_id;
ALTER TABLE runs
    DROP CONSTRAINT runs_turns_check,
    ALTER COLUMN max_turns SET NOT NULL,
    ADD CONSTRAINT runs_max_turns_check CHECK (max_turns > 0),
    ADD CONSTRAINT runs_turns_check CHECK (current_turn <= max_turns);

DROP TRIGGER agent_handoffs_fill_tool_name ON agent_handoffs;
DROP FUNCTION agent_handoffs_fill_tool_name();
DROP INDEX agent_handoffs_agent_id_target_agent_id_idx;
ALTER TABLE agent_handoffs
    DROP CONSTRAINT agent_handoffs_pkey,
    ADD PRIMARY KEY (agent_id, target_agent_id),
    ADD CONSTRAINT agent_handoffs_not_self_check CHECK (agent_id <> target_agent_id),
    DROP COLUMN tool_name;

ALTER TABLE agents
    DROP CONSTRAINT agents_dynamic_prompt_ref_check,
    DROP COLUMN prompt_ref,
    DROP COLUMN prompt_kind;

DROP INDEX tools_fingerprint_live_key;
ALTER TABLE tools DROP COLUMN fingerprint;
DROP INDEX tools_name_idx;
CREATE UNIQUE INDEX tools_name_live_key ON tools (name) WHERE deleted_at IS NULL;

DROP INDEX agents_fingerprint_live_key;
ALTER TABLE agents DROP COLUMN fingerprint;
DROP INDEX agents_name_idx;
CREATE UNIQUE INDEX agents_name_live_key ON agents (name) WHERE deleted_at IS NULL;
COMMENT ON TABLE agents IS
    'Agent definitions: instructions (static or dynamic), prompt, model and '
    'settings, output type, tool use behavior. Soft-deleted via deleted_at.';

ALTER TABLE model_settings
    DROP CONSTRAINT model_settings_prompt_cache_retention_check,
    DROP CONSTRAINT model_settings_truncation_check,
    DROP CONSTRAINT model_settings_verbosity_check,
    DROP CONSTRAINT model_settings_reasoning_summary_check,
    DROP CONSTRAINT model_settings_reasoning_effort_check,
    ADD CONSTRAINT model_settings_prompt_cache_retention_check
        CHECK (prompt_cache_retention IN ('in_memory', '24h')),
    ADD CONSTRAINT model_settings_truncation_check
        CHECK (truncation IN ('auto', 'disabled')),
    ADD CONSTRAINT model_settings_verbosity_check
        CHECK (verbosity IN ('low', 'medium', 'high')),
    ADD CONSTRAINT model_settings_reasoning_summary_check
        CHECK (reasoning_summary IN ('auto', 'concise', 'detailed')),
    ADD CONSTRAINT model_settings_reasoning_effort_check
        CHECK (reasoning_effort IN ('none', 'minimal', 'low', 'medium', 'high', 'xhigh'));
COMMENT ON COLUMN model_settings.reasoning_effort IS NULL;

COMMENT ON COLUMN interruptions.interruption_type IS NULL;
ALTER TABLE interruptions
    DROP CONSTRAINT interruptions_interruption_type_check,
    ADD CONSTRAINT interruptions_interruption_type_check
        CHECK (interruption_type IN ('tool_approval', 'mcp_approval'));

ALTER TABLE tools
    DROP CONSTRAINT tools_tool_type_check,
    ADD CONSTRAINT tools_tool_type_check CHECK (tool_type IN (
        'function', 'agent', 'file_search', 'web_search', 'computer', 'hosted_mcp',
        'local_shell', 'shell', 'apply_patch', 'image_generation', 'code_interpreter'));
COMMENT ON COLUMN tools.tool_type IS NULL;

ALTER TABLE run_items
    DROP CONSTRAINT run_items_item_type_check,
    ADD CONSTRAINT run_items_item_type_check CHECK (item_type IN (
        'message_output_item', 'tool_call_item', 'tool_call_output_item',
        'handoff_call_item', 'handoff_output_item', 'reasoning_item',
        'mcp_list_tools_item', 'mcp_approval_request_item',
        'mcp_approval_response_item', 'tool_approval_item'));
COMMENT ON COLUMN run_items.item_type IS NULL;

DROP FUNCTION is_sdk_token(text);
DROP FUNCTION handoff_tool_name(uuid, uuid);
DROP FUNCTION handoff_default_tool_name(uuid);
