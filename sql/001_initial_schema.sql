-- 001_initial_schema: the database behind the OpenAI Agents SDK (Python and JS).
--
-- 23 tables in schema public: agent definitions, runs and their items, sessions,
-- tools, handoffs, guardrails, interruptions, MCP servers, usage and run states.
-- Runs with `schemactl migrate` and with `psql -v ON_ERROR_STOP=1 -f` alike.
--
-- Conventions
-- * Keys are uuid (uuid-ossp, so PostgreSQL 12 works too).
-- * Every point in time is timestamptz.
-- * Definition tables (agents, model_settings, tools, handoff_configs, guardrails,
--   tool_guardrails, mcp_servers, sessions) are soft-deleted through deleted_at;
--   their unique names hold among live rows only (partial unique indexes).
-- * updated_at is kept current by the set_updated_at() trigger.
-- * ON DELETE: the document fixes agents -> model_settings SET NULL, agent_tools
--   and agent_handoffs CASCADE, runs -> agents RESTRICT, runs -> sessions SET NULL,
--   and runs -> run_items/tool_calls/interruptions CASCADE. Elsewhere: what a run
--   produced goes with the run (CASCADE); a history row never loses the definition
--   it points at (RESTRICT: soft-delete definitions instead); an optional link to
--   something that may go away is cleared (SET NULL). Each choice is named below.
--
-- Partitioning: runs, run_items and session_items are the high-volume tables.
-- Each carries a NOT NULL creation time (runs.started_at, run_items.created_at,
-- session_items.created_at) that range partitioning by month would use: recreate
-- the table as PARTITION BY RANGE (that column) with the column added to the
-- primary key, e.g. PRIMARY KEY (id, created_at), and point child foreign keys at
-- the pair. Nothing here depends on a single-column key being global.

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'Trigger function: sets updated_at to now() on every UPDATE.';

-- 2. model_settings ---------------------------------------------------------
CREATE TABLE model_settings (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    name text NOT NULL,
    temperature numeric(4, 3) CHECK (temperature BETWEEN 0 AND 2),
    top_p numeric(4, 3) CHECK (top_p BETWEEN 0 AND 1),
    frequency_penalty numeric(4, 3) CHECK (frequency_penalty BETWEEN -2 AND 2),
    presence_penalty numeric(4, 3) CHECK (presence_penalty BETWEEN -2 AND 2),
    -- 'auto', 'required', 'none', or the name of one tool the model must call.
    tool_choice text CHECK (tool_choice <> ''),
    parallel_tool_calls boolean,
    truncation text CHECK (truncation IN ('auto', 'disabled')),
    max_tokens integer CHECK (max_tokens > 0),
    reasoning_effort text
        CHECK (reasoning_effort IN ('none', 'minimal', 'low', 'medium', 'high', 'xhigh')),
    reasoning_summary text CHECK (reasoning_summary IN ('auto', 'concise', 'detailed')),
    verbosity text CHECK (verbosity IN ('low', 'medium', 'high')),
    metadata jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    store boolean,
    prompt_cache_retention text CHECK (prompt_cache_retention IN ('in_memory', '24h')),
    include_usage boolean,
    response_include text[],
    top_logprobs integer CHECK (top_logprobs BETWEEN 0 AND 20),
    extra_query jsonb,
    extra_body jsonb,
    extra_headers jsonb,
    extra_args jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
COMMENT ON TABLE model_settings IS
    'ModelSettings: per-call model parameters (sampling, tool choice, reasoning, '
    'truncation, provider extras), shared by agents.';
CREATE UNIQUE INDEX model_settings_name_live_key ON model_settings (name)
    WHERE deleted_at IS NULL;

-- 1. agents -----------------------------------------------------------------
CREATE TABLE agents (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    name text NOT NULL CHECK (name <> ''),
    -- Static instructions are stored as text; dynamic ones are a function the
    -- application registers under instructions_ref.
    instructions_kind text NOT NULL DEFAULT 'static'
        CHECK (instructions_kind IN ('static', 'dynamic')),
    instructions text,
    instructions_ref text,
    -- A stored prompt: {"id": ..., "version": ..., "variables": {...}}.
    prompt jsonb CHECK (prompt IS NULL OR prompt ? 'id'),
    handoff_description text,
    model text,
    -- SET NULL (document): the agent falls back to the run's default settings.
    model_settings_id uuid REFERENCES model_settings (id) ON DELETE SET NULL,
    output_type_name text,
    output_schema jsonb,
    output_schema_strict boolean NOT NULL DEFAULT true,
    tool_use_behavior text NOT NULL DEFAULT 'run_llm_again'
        CHECK (tool_use_behavior IN
            ('run_llm_again', 'stop_on_first_tool', 'stop_at_tools', 'custom')),
    stop_at_tool_names text[],
    reset_tool_choice boolean NOT NULL DEFAULT true,
    mcp_config jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT agents_dynamic_instructions_ref_check CHECK (
        (instructions_kind = 'dynamic') = (instructions_ref IS NOT NULL)
    ),
    CONSTRAINT agents_stop_at_tools_check CHECK (
        (tool_use_behavior = 'stop_at_tools')
        = (coalesce(cardinality(stop_at_tool_names), 0) > 0)
    )
);
COMMENT ON TABLE agents IS
    'Agent definitions: instructions (static or dynamic), prompt, model and '
    'settings, output type, tool use behavior. Soft-deleted via deleted_at.';
CREATE UNIQUE INDEX agents_name_live_key ON agents (name) WHERE deleted_at IS NULL;
CREATE INDEX agents_model_settings_id_idx ON agents (model_settings_id);
CREATE INDEX agents_metadata_gin ON agents USING gin (metadata jsonb_path_ops);

-- 4. sessions ---------------------------------------------------------------
CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- The session_id string the SDK's Session protocol is keyed by.
    session_key text NOT NULL CHECK (session_key <> ''),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
COMMENT ON TABLE sessions IS
    'Conversation sessions (the SDK Session protocol): the history runs read from '
    'and append to. Soft-deleted via deleted_at.';
CREATE UNIQUE INDEX sessions_session_key_live_key ON sessions (session_key)
    WHERE deleted_at IS NULL;

-- 3. runs -------------------------------------------------------------------
CREATE TABLE runs (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- RESTRICT (document): an agent with run history cannot be deleted.
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    -- RESTRICT: the agent that produced final_output is part of the history.
    last_agent_id uuid REFERENCES agents (id) ON DELETE RESTRICT,
    -- SET NULL (document): a run outlives its session.
    session_id uuid REFERENCES sessions (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'interrupted', 'completed', 'failed',
                          'cancelled', 'max_turns_exceeded')),
    input jsonb NOT NULL,
    final_output jsonb,
    context jsonb,
    current_turn integer NOT NULL DEFAULT 0 CHECK (current_turn >= 0),
    max_turns integer NOT NULL DEFAULT 10 CHECK (max_turns > 0),
    workflow_name text,
    trace_id text,
    group_id text,
    previous_response_id text,
    conversation_id text,
    error jsonb,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT runs_turns_check CHECK (current_turn <= max_turns),
    CONSTRAINT runs_completed_after_start_check CHECK (completed_at >= started_at),
    CONSTRAINT runs_finished_have_completed_at_check CHECK (
        (status IN ('completed', 'failed', 'cancelled', 'max_turns_exceeded'))
        = (completed_at IS NOT NULL)
    )
);
COMMENT ON TABLE runs IS
    'Agent execution runs (Runner.run): starting and last agent, input, final '
    'output, status and turns. Partition candidate by started_at.';
-- The document's "active runs for an agent" query: agent, status, newest first.
CREATE INDEX runs_agent_id_active_idx ON runs (agent_id, started_at DESC)
    WHERE status IN ('running', 'interrupted');
CREATE INDEX runs_agent_id_started_at_idx ON runs (agent_id, started_at DESC);
CREATE INDEX runs_last_agent_id_idx ON runs (last_agent_id);
CREATE INDEX runs_session_id_idx ON runs (session_id);
CREATE INDEX runs_started_at_idx ON runs (started_at);
CREATE INDEX runs_trace_id_idx ON runs (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX runs_context_user_id_idx ON runs ((context ->> 'user_id'))
    WHERE context IS NOT NULL;

-- 5. session_items ----------------------------------------------------------
CREATE TABLE session_items (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: the items are the session's history and die with it.
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- SET NULL: the item stays in the conversation when its run is deleted.
    run_id uuid REFERENCES runs (id) ON DELETE SET NULL,
    position bigint NOT NULL CHECK (position >= 0),
    -- A Responses API input item: {"role": ..., "content": ...} or {"type": ...}.
    item_data jsonb NOT NULL CHECK (jsonb_typeof(item_data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT session_items_session_id_position_key UNIQUE (session_id, position)
);
COMMENT ON TABLE session_items IS
    'Items of a session history, in order (get_items/add_items/pop_item). '
    'Partition candidate by created_at.';
CREATE INDEX session_items_run_id_idx ON session_items (run_id);
CREATE INDEX session_items_created_at_idx ON session_items (created_at);
CREATE INDEX session_items_item_data_gin ON session_items
    USING gin (item_data jsonb_path_ops);
CREATE INDEX session_items_role_idx ON session_items (session_id, (item_data ->> 'role'));

-- 6. run_items --------------------------------------------------------------
CREATE TABLE run_items (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE (document): a run's items go with it.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- RESTRICT: the agent that produced an item is part of the history.
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    sequence integer NOT NULL CHECK (sequence >= 0),
    item_type text NOT NULL CHECK (item_type IN (
        'message_output_item', 'tool_call_item', 'tool_call_output_item',
        'handoff_call_item', 'handoff_output_item', 'reasoning_item',
        'mcp_list_tools_item', 'mcp_approval_request_item',
        'mcp_approval_response_item', 'tool_approval_item')),
    -- Handoff output items name both ends of the handoff.
    source_agent_id uuid REFERENCES agents (id) ON DELETE RESTRICT,
    target_agent_id uuid REFERENCES agents (id) ON DELETE RESTRICT,
    item_data jsonb NOT NULL CHECK (jsonb_typeof(item_data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT run_items_run_id_sequence_key UNIQUE (run_id, sequence),
    CONSTRAINT run_items_handoff_agents_check CHECK (
        item_type <> 'handoff_output_item'
        OR (source_agent_id IS NOT NULL AND target_agent_id IS NOT NULL)
    )
);
COMMENT ON TABLE run_items IS
    'Items generated during a run (RunItem): messages, tool calls and outputs, '
    'handoffs, reasoning, MCP and tool approvals. Partition candidate by created_at.';
CREATE INDEX run_items_agent_id_idx ON run_items (agent_id);
CREATE INDEX run_items_source_agent_id_idx ON run_items (source_agent_id);
CREATE INDEX run_items_target_agent_id_idx ON run_items (target_agent_id);
CREATE INDEX run_items_run_id_item_type_idx ON run_items (run_id, item_type);
CREATE INDEX run_items_created_at_idx ON run_items (created_at);
CREATE INDEX run_items_item_data_gin ON run_items USING gin (item_data jsonb_path_ops);
-- Tool call and tool output items are matched by the model's call_id.
CREATE INDEX run_items_call_id_idx ON run_items ((item_data ->> 'call_id'))
    WHERE item_data ? 'call_id';

-- 7. model_responses --------------------------------------------------------
CREATE TABLE model_responses (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: raw responses belong to their run.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- RESTRICT: the agent that asked is part of the history.
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    turn integer NOT NULL CHECK (turn >= 0),
    response_id text,
    model text,
    output jsonb NOT NULL CHECK (jsonb_typeof(output) = 'array'),
    requests integer NOT NULL DEFAULT 1 CHECK (requests >= 0),
    input_tokens integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    total_tokens integer NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE model_responses IS
    'Raw LLM responses (ModelResponse): output items, usage and response_id.';
CREATE INDEX model_responses_run_id_turn_idx ON model_responses (run_id, turn);
CREATE INDEX model_responses_agent_id_idx ON model_responses (agent_id);
CREATE UNIQUE INDEX model_responses_response_id_key ON model_responses (response_id)
    WHERE response_id IS NOT NULL;

-- 8. tools ------------------------------------------------------------------
CREATE TABLE tools (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    name text NOT NULL CHECK (name <> ''),
    tool_type text NOT NULL CHECK (tool_type IN (
        'function', 'agent', 'file_search', 'web_search', 'computer', 'hosted_mcp',
        'local_shell', 'shell', 'apply_patch', 'image_generation', 'code_interpreter')),
    description text,
    params_json_schema jsonb,
    strict_json_schema boolean NOT NULL DEFAULT true,
    -- Agent.as_tool(): the agent this tool runs. SET NULL: the tool definition
    -- stays, disabled by the application, when that agent is hard-deleted.
    agent_as_tool_id uuid REFERENCES agents (id) ON DELETE SET NULL,
    -- Hosted tool configuration (vector store ids, MCP server label, ...).
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    needs_approval boolean NOT NULL DEFAULT false,
    is_enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT tools_function_schema_check CHECK (
        tool_type NOT IN ('function', 'agent') OR params_json_schema IS NOT NULL
    )
);
COMMENT ON TABLE tools IS
    'Tool definitions of every SDK kind: function tools, agents as tools and '
    'hosted tools. Soft-deleted via deleted_at.';
CREATE UNIQUE INDEX tools_name_live_key ON tools (name) WHERE deleted_at IS NULL;
CREATE INDEX tools_agent_as_tool_id_idx ON tools (agent_as_tool_id);
CREATE INDEX tools_tool_type_idx ON tools (tool_type) WHERE deleted_at IS NULL;

-- 9. agent_tools ------------------------------------------------------------
CREATE TABLE agent_tools (
    -- CASCADE both ways (document): the link dies with either end.
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tool_id uuid NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    position integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, tool_id)
);
COMMENT ON TABLE agent_tools IS 'Which tools an agent may call, in order.';
CREATE INDEX agent_tools_tool_id_idx ON agent_tools (tool_id);

-- 10. handoff_configs -------------------------------------------------------
CREATE TABLE handoff_configs (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: a handoff() configuration is meaningless without its target.
    target_agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tool_name_override text,
    tool_description_override text,
    input_json_schema jsonb,
    input_filter text,
    strict_json_schema boolean NOT NULL DEFAULT true,
    is_enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
COMMENT ON TABLE handoff_configs IS
    'handoff() configurations: tool name and description overrides, input '
    'schema and filter. Soft-deleted via deleted_at.';
CREATE INDEX handoff_configs_target_agent_id_idx ON handoff_configs (target_agent_id);

-- 11. agent_handoffs --------------------------------------------------------
CREATE TABLE agent_handoffs (
    -- CASCADE both ways (document).
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    target_agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    -- SET NULL: without its configuration the handoff uses the defaults.
    handoff_config_id uuid REFERENCES handoff_configs (id) ON DELETE SET NULL,
    position integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, target_agent_id),
    CONSTRAINT agent_handoffs_not_self_check CHECK (agent_id <> target_agent_id)
);
COMMENT ON TABLE agent_handoffs IS 'Which agents an agent may hand off to, in order.';
CREATE INDEX agent_handoffs_target_agent_id_idx ON agent_handoffs (target_agent_id);
CREATE INDEX agent_handoffs_handoff_config_id_idx ON agent_handoffs (handoff_config_id);

-- 12. guardrails ------------------------------------------------------------
CREATE TABLE guardrails (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    name text NOT NULL CHECK (name <> ''),
    guardrail_type text NOT NULL CHECK (guardrail_type IN ('input', 'output')),
    description text,
    -- Input guardrails may run in parallel with the agent (the SDK default).
    run_in_parallel boolean NOT NULL DEFAULT true,
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT guardrails_parallel_input_only_check CHECK (
        guardrail_type = 'input' OR run_in_parallel
    )
);
COMMENT ON TABLE guardrails IS
    'Input and output guardrail definitions. Soft-deleted via deleted_at.';
CREATE UNIQUE INDEX guardrails_name_live_key ON guardrails (name, guardrail_type)
    WHERE deleted_at IS NULL;

-- 13. agent_guardrails ------------------------------------------------------
CREATE TABLE agent_guardrails (
    -- CASCADE both ways: an attachment dies with either end.
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    guardrail_id uuid NOT NULL REFERENCES guardrails (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, guardrail_id)
);
COMMENT ON TABLE agent_guardrails IS 'Which guardrails an agent runs.';
CREATE INDEX agent_guardrails_guardrail_id_idx ON agent_guardrails (guardrail_id);

-- 14. guardrail_results -----------------------------------------------------
CREATE TABLE guardrail_results (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: results belong to their run.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- RESTRICT: a result keeps the definition it came from (soft-delete it).
    guardrail_id uuid NOT NULL REFERENCES guardrails (id) ON DELETE RESTRICT,
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    guardrail_type text NOT NULL CHECK (guardrail_type IN ('input', 'output')),
    tripwire_triggered boolean NOT NULL,
    output_info jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE guardrail_results IS
    'InputGuardrailResult/OutputGuardrailResult: tripwire and output info.';
CREATE INDEX guardrail_results_run_id_idx ON guardrail_results (run_id);
CREATE INDEX guardrail_results_guardrail_id_idx ON guardrail_results (guardrail_id);
CREATE INDEX guardrail_results_agent_id_idx ON guardrail_results (agent_id);
CREATE INDEX guardrail_results_tripped_idx ON guardrail_results (created_at)
    WHERE tripwire_triggered;

-- 15. tool_guardrails -------------------------------------------------------
CREATE TABLE tool_guardrails (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: a tool guardrail is defined for one tool.
    tool_id uuid NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name <> ''),
    guardrail_type text NOT NULL CHECK (guardrail_type IN ('tool_input', 'tool_output')),
    description text,
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
COMMENT ON TABLE tool_guardrails IS
    'Tool input/output guardrails attached to one tool. Soft-deleted via deleted_at.';
CREATE UNIQUE INDEX tool_guardrails_name_live_key
    ON tool_guardrails (tool_id, name, guardrail_type) WHERE deleted_at IS NULL;
-- The partial index above cannot serve ON DELETE CASCADE from tools.
CREATE INDEX tool_guardrails_tool_id_idx ON tool_guardrails (tool_id);

-- 17. tool_calls ------------------------------------------------------------
CREATE TABLE tool_calls (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE (document): a run's tool calls go with it.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- SET NULL: the call keeps its own copy of name and arguments.
    run_item_id uuid REFERENCES run_items (id) ON DELETE SET NULL,
    tool_id uuid REFERENCES tools (id) ON DELETE SET NULL,
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    call_id text NOT NULL,
    tool_name text NOT NULL,
    tool_type text NOT NULL,
    arguments jsonb,
    output jsonb,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'awaiting_approval', 'in_progress', 'completed', 'failed',
        'rejected')),
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT tool_calls_run_id_call_id_key UNIQUE (run_id, call_id),
    CONSTRAINT tool_calls_completed_after_start_check CHECK (completed_at >= started_at)
);
COMMENT ON TABLE tool_calls IS
    'Tool call executions: arguments, output, status and timing.';
CREATE INDEX tool_calls_run_item_id_idx ON tool_calls (run_item_id);
CREATE INDEX tool_calls_tool_id_idx ON tool_calls (tool_id);
CREATE INDEX tool_calls_agent_id_idx ON tool_calls (agent_id);
CREATE INDEX tool_calls_tool_name_started_at_idx ON tool_calls (tool_name, started_at);

-- 16. tool_guardrail_results ------------------------------------------------
CREATE TABLE tool_guardrail_results (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- RESTRICT: a result keeps the definition it came from (soft-delete it).
    tool_guardrail_id uuid NOT NULL REFERENCES tool_guardrails (id) ON DELETE RESTRICT,
    -- CASCADE: the result describes that call.
    tool_call_id uuid REFERENCES tool_calls (id) ON DELETE CASCADE,
    behavior text NOT NULL
        CHECK (behavior IN ('allow', 'reject_content', 'raise_exception')),
    message text,
    output_info jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tool_guardrail_results_reject_message_check CHECK (
        behavior <> 'reject_content' OR message IS NOT NULL
    )
);
COMMENT ON TABLE tool_guardrail_results IS
    'ToolGuardrailFunctionOutput per call: allow, reject_content or raise_exception.';
CREATE INDEX tool_guardrail_results_run_id_idx ON tool_guardrail_results (run_id);
CREATE INDEX tool_guardrail_results_tool_guardrail_id_idx
    ON tool_guardrail_results (tool_guardrail_id);
CREATE INDEX tool_guardrail_results_tool_call_id_idx
    ON tool_guardrail_results (tool_call_id);

-- 18. interruptions ---------------------------------------------------------
CREATE TABLE interruptions (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE (document): a run's interruptions go with it.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- SET NULL: the approval record outlives a deleted call row.
    tool_call_id uuid REFERENCES tool_calls (id) ON DELETE SET NULL,
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    interruption_type text NOT NULL DEFAULT 'tool_approval'
        CHECK (interruption_type IN ('tool_approval', 'mcp_approval')),
    tool_name text NOT NULL,
    call_id text,
    arguments jsonb,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected')),
    -- always_approve / always_reject: the decision sticks for the tool in this run.
    sticky boolean NOT NULL DEFAULT false,
    rejection_message text,
    resolved_by text,
    resolved_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT interruptions_resolution_check CHECK (
        (status = 'pending') = (resolved_at IS NULL)
    ),
    CONSTRAINT interruptions_resolved_after_created_check CHECK (
        resolved_at >= created_at
    )
);
COMMENT ON TABLE interruptions IS
    'Run interruptions (ToolApprovalItem): approval requests and their resolution.';
CREATE INDEX interruptions_run_id_idx ON interruptions (run_id);
CREATE INDEX interruptions_tool_call_id_idx ON interruptions (tool_call_id);
CREATE INDEX interruptions_agent_id_idx ON interruptions (agent_id);
CREATE INDEX interruptions_unresolved_idx ON interruptions (created_at)
    WHERE status = 'pending';

-- 19. mcp_servers -----------------------------------------------------------
CREATE TABLE mcp_servers (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    name text NOT NULL CHECK (name <> ''),
    transport text NOT NULL CHECK (transport IN ('stdio', 'sse', 'streamable_http')),
    command text,
    args text[] NOT NULL DEFAULT '{}',
    env jsonb,
    cwd text,
    url text,
    headers jsonb,
    timeout_seconds numeric(8, 2) CHECK (timeout_seconds > 0),
    sse_read_timeout_seconds numeric(8, 2) CHECK (sse_read_timeout_seconds > 0),
    client_session_timeout_seconds numeric(8, 2)
        CHECK (client_session_timeout_seconds > 0),
    terminate_on_close boolean,
    cache_tools_list boolean NOT NULL DEFAULT false,
    tool_filter jsonb,
    require_approval jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT mcp_servers_transport_params_check CHECK (
        CASE transport
            WHEN 'stdio' THEN command IS NOT NULL AND url IS NULL
            ELSE url IS NOT NULL AND command IS NULL
        END
    ),
    CONSTRAINT mcp_servers_terminate_on_close_check CHECK (
        transport = 'streamable_http' OR terminate_on_close IS NULL
    )
);
COMMENT ON TABLE mcp_servers IS
    'MCP server configurations (MCPServerStdio, MCPServerSse, '
    'MCPServerStreamableHttp). Soft-deleted via deleted_at.';
CREATE UNIQUE INDEX mcp_servers_name_live_key ON mcp_servers (name)
    WHERE deleted_at IS NULL;

-- 20. agent_mcp_servers -----------------------------------------------------
CREATE TABLE agent_mcp_servers (
    -- CASCADE both ways: an attachment dies with either end.
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    mcp_server_id uuid NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, mcp_server_id)
);
COMMENT ON TABLE agent_mcp_servers IS 'Which MCP servers an agent uses.';
CREATE INDEX agent_mcp_servers_mcp_server_id_idx ON agent_mcp_servers (mcp_server_id);

-- 21. usage_metrics ---------------------------------------------------------
CREATE TABLE usage_metrics (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: usage is reported per run.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- RESTRICT: usage keeps the agent it is attributed to.
    agent_id uuid REFERENCES agents (id) ON DELETE RESTRICT,
    requests integer NOT NULL DEFAULT 0 CHECK (requests >= 0),
    input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    total_tokens bigint NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    cached_tokens bigint NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    reasoning_tokens bigint NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    estimated_cost numeric(14, 6) CHECK (estimated_cost >= 0),
    currency char(3) NOT NULL DEFAULT 'USD',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_metrics_cached_within_input_check CHECK (cached_tokens <= input_tokens),
    CONSTRAINT usage_metrics_reasoning_within_output_check CHECK (
        reasoning_tokens <= output_tokens
    )
);
COMMENT ON TABLE usage_metrics IS
    'Aggregated Usage of a run (per agent when agent_id is set): requests, '
    'tokens with cached and reasoning details, estimated cost.';
-- One aggregate per (run, agent), and one run-wide aggregate (agent_id NULL);
-- two indexes instead of NULLS NOT DISTINCT, which needs PostgreSQL 15.
CREATE UNIQUE INDEX usage_metrics_run_id_agent_id_key ON usage_metrics (run_id, agent_id);
CREATE UNIQUE INDEX usage_metrics_run_wide_key ON usage_metrics (run_id)
    WHERE agent_id IS NULL;
CREATE INDEX usage_metrics_agent_id_idx ON usage_metrics (agent_id);

-- 22. request_usage_entries -------------------------------------------------
CREATE TABLE request_usage_entries (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: entries break down one aggregate.
    usage_metric_id uuid NOT NULL REFERENCES usage_metrics (id) ON DELETE CASCADE,
    -- SET NULL: the entry keeps its numbers if the raw response is purged.
    model_response_id uuid REFERENCES model_responses (id) ON DELETE SET NULL,
    request_index integer NOT NULL CHECK (request_index >= 0),
    model text,
    input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    total_tokens bigint NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    cached_tokens bigint NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    reasoning_tokens bigint NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    estimated_cost numeric(14, 6) CHECK (estimated_cost >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT request_usage_entries_usage_metric_id_request_index_key
        UNIQUE (usage_metric_id, request_index)
);
COMMENT ON TABLE request_usage_entries IS
    'Per-request usage (Usage.request_usage_entries) behind an aggregate.';
CREATE INDEX request_usage_entries_model_response_id_idx
    ON request_usage_entries (model_response_id);

-- 23. run_states ------------------------------------------------------------
CREATE TABLE run_states (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    -- CASCADE: snapshots are only useful with their run.
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- RunState.to_json(): the serialised state a run resumes from.
    state_data jsonb NOT NULL CHECK (jsonb_typeof(state_data) = 'object'),
    schema_version text NOT NULL DEFAULT '1.0',
    current_turn integer NOT NULL DEFAULT 0 CHECK (current_turn >= 0),
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE run_states IS
    'Serialised RunState snapshots for resuming interrupted runs; at most one '
    'active snapshot per run.';
-- One active snapshot per run; it also serves "get run state for resuming".
CREATE UNIQUE INDEX run_states_one_active_per_run_key ON run_states (run_id)
    WHERE is_active;
CREATE INDEX run_states_run_id_created_at_idx ON run_states (run_id, created_at);

-- updated_at triggers -------------------------------------------------------
CREATE TRIGGER model_settings_set_updated_at BEFORE UPDATE ON model_settings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER agents_set_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER sessions_set_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER runs_set_updated_at BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER tools_set_updated_at BEFORE UPDATE ON tools
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER handoff_configs_set_updated_at BEFORE UPDATE ON handoff_configs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER guardrails_set_updated_at BEFORE UPDATE ON guardrails
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER tool_guardrails_set_updated_at BEFORE UPDATE ON tool_guardrails
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER mcp_servers_set_updated_at BEFORE UPDATE ON mcp_servers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER usage_metrics_set_updated_at BEFORE UPDATE ON usage_metrics
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
