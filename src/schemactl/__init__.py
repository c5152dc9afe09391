"""schemactl: a raw-SQL migration runner for PostgreSQL."""

__version__ = "0.1.0"
