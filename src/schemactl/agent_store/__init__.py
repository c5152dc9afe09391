"""Keep OpenAI Agents SDK sessions and runs in the schema schemactl ships.

Needs the ``agents`` extra (``pip install 'schemactl[agents]'``): the SDK and
psycopg's connection pool. The CLI never imports this package.
"""

from schemactl.agent_store.errors import LockLost, RecordingFailed, StoreError
from schemactl.agent_store.session import PostgresSession
from schemactl.agent_store.store import AgentStore, StoredRun, StoredStream

__all__ = [
    "AgentStore",
    "LockLost",
    "PostgresSession",
    "RecordingFailed",
    "StoreError",
    "StoredRun",
    "StoredStream",
]
