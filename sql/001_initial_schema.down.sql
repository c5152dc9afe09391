-- 001_initial_schema (down): drop the OpenAI Agents SDK tables, children first.
-- The uuid-ossp extension stays: other schemas may use it, and re-running the up
-- file finds it with CREATE EXTENSION IF NOT EXISTS.

DROP TABLE run_states;
DROP TABLE request_usage_entries;
DROP TABLE usage_metrics;
DROP TABLE agent_mcp_servers;
DROP TABLE mcp_servers;
DROP TABLE interruptions;
DROP TABLE tool_guardrail_results;
DROP TABLE tool_calls;
DROP TABLE tool_guardrails;
DROP TABLE guardrail_results;
DROP TABLE agent_guardrails;
DROP TABLE guardrails;
DROP TABLE agent_handoffs;
DROP TABLE handoff_configs;
DROP TABLE agent_tools;
DROP TABLE tools;
DROP TABLE model_responses;
DROP TABLE run_items;
DROP TABLE session_items;
DROP TABLE runs;
DROP TABLE sessions;
DROP TABLE agents;
DROP TABLE model_settings;
DROP FUNCTION set_updated_at();
