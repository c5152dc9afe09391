-- 002_wai_sdk_platform (down): drop the WAI SDK Platform schema and its tables.
DROP TABLE wai.users;
DROP TABLE wai.orchestration_sessions;
DROP TABLE wai.mcp_tools;
DROP TABLE wai.llm_providers;
DROP TABLE wai.agent_executions;
DROP TABLE wai.agents;
DROP SCHEMA wai;
