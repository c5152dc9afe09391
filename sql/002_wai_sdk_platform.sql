-- 002_wai_sdk_platform: the WAI SDK Platform tables, in their own schema `wai`
-- because their `agents` table would clash with public.agents (001).
--
-- Tables, columns, types, defaults, unique constraints and index names follow the
-- platform's schema document exactly (TIMESTAMP without time zone included), so
-- the platform's Drizzle code works unchanged once its search_path includes wai.

CREATE SCHEMA wai;

CREATE TABLE wai.agents (
  id SERIAL PRIMARY KEY,
  agent_id VARCHAR(255) UNIQUE NOT NULL,
  name VARCHAR(255) NOT NULL,
  tier VARCHAR(50) NOT NULL,
  roma_level VARCHAR(10) NOT NULL,
  capabilities TEXT[],
  status VARCHAR(50) DEFAULT 'active',
  config JSONB,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
);
COMMENT ON TABLE wai.agents IS 'WAI SDK Platform: agent definitions and configurations.';

CREATE INDEX idx_agents_tier ON wai.agents(tier);
CREATE INDEX idx_agents_roma_level ON wai.agents(roma_level);
CREATE INDEX idx_agents_status ON wai.agents(status);

CREATE TABLE wai.agent_executions (
  id SERIAL PRIMARY KEY,
  agent_id VARCHAR(255) NOT NULL,
  task_id VARCHAR(255),
  input JSONB,
  output JSONB,
  status VARCHAR(50) NOT NULL,
  started_at TIMESTAMP DEFAULT NOW(),
  completed_at TIMESTAMP,
  duration_ms INTEGER,
  tokens_used INTEGER,
  cost_usd DECIMAL(10, 6)
);
COMMENT ON TABLE wai.agent_executions IS 'WAI SDK Platform: agent task executions.';

CREATE INDEX idx_executions_agent ON wai.agent_executions(agent_id);
CREATE INDEX idx_executions_status ON wai.agent_executions(status);

CREATE TABLE wai.llm_providers (
  id SERIAL PRIMARY KEY,
  provider_id VARCHAR(100) UNIQUE NOT NULL,
  name VARCHAR(255) NOT NULL,
  status VARCHAR(50) DEFAULT 'healthy',
  models TEXT[],
  config JSONB,
  last_health_check TIMESTAMP,
  created_at TIMESTAMP DEFAULT NOW()
);
COMMENT ON TABLE wai.llm_providers IS 'WAI SDK Platform: LLM provider configurations.';

CREATE TABLE wai.mcp_tools (
  id SERIAL PRIMARY KEY,
  tool_id VARCHAR(255) UNIQUE NOT NULL,
  name VARCHAR(255) NOT NULL,
  category VARCHAR(100) NOT NULL,
  description TEXT,
  input_schema JSONB,
  output_schema JSONB,
  status VARCHAR(50) DEFAULT 'active',
  created_at TIMESTAMP DEFAULT NOW()
);
COMMENT ON TABLE wai.mcp_tools IS 'WAI SDK Platform: MCP tool definitions.';

CREATE INDEX idx_tools_category ON wai.mcp_tools(category);

CREATE TABLE wai.orchestration_sessions (
  id SERIAL PRIMARY KEY,
  session_id VARCHAR(255) UNIQUE NOT NULL,
  user_id INTEGER,
  agents_used TEXT[],
  status VARCHAR(50) NOT NULL,
  started_at TIMESTAMP DEFAULT NOW(),
  completed_at TIMESTAMP,
  metadata JSONB
);
COMMENT ON TABLE wai.orchestration_sessions IS 'WAI SDK Platform: orchestration sessions.';

CREATE TABLE wai.users (
  id SERIAL PRIMARY KEY,
  email VARCHAR(255) UNIQUE NOT NULL,
  password_hash VARCHAR(255),
  name VARCHAR(255),
  role VARCHAR(50) DEFAULT 'user',
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
);
COMMENT ON TABLE wai.users IS 'WAI SDK Platform: user accounts for authentication.';

-- Performance indexes
CREATE INDEX idx_agents_capabilities ON wai.agents USING GIN(capabilities);
CREATE INDEX idx_executions_date ON wai.agent_executions(started_at);
CREATE INDEX idx_tools_status ON wai.mcp_tools(status);
