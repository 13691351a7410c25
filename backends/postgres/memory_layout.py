"""What PostgresStore (langgraph-checkpoint-postgres 3.2.0) creates and stores for long-term memory:
its migrations verbatim, how its INT ``ttl_minutes`` rounds, pgvector's text form of a vector."""

from __future__ import annotations

import math
import struct

from ckpt.backends.core.errors import DataError

# langgraph-checkpoint-postgres 3.2.0 ``MIGRATIONS``, verbatim; the index is the version ``v``.
MIGRATIONS = [
    """
CREATE TABLE IF NOT EXISTS store (
    -- 'prefix' represents the doc's 'namespace'
    prefix text NOT NULL,
    key text NOT NULL,
    value jsonb NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (prefix, key)
);
""",
    """
-- For faster lookups by prefix
CREATE INDEX CONCURRENTLY IF NOT EXISTS store_prefix_idx ON store USING btree (prefix text_pattern_ops);
""",
    """
-- Add expires_at column to store table
ALTER TABLE store
ADD COLUMN IF NOT EXISTS expires_at TIMESTAMP WITH TIME ZONE,
ADD COLUMN IF NOT EXISTS ttl_minutes INT;
""",
    """
-- Add indexes for efficient TTL sweeping
CREATE INDEX IF NOT EXISTS idx_store_expires_at ON store (expires_at)
WHERE expires_at IS NOT NULL;
""",
]
# ``VECTOR_MIGRATIONS`` 0 and 1 (``vector_type`` 'vector'). Migration 2, the ANN index, is left to
# the app's own ``setup()``: its kind (hnsw, ivfflat, flat) and parameters are the app's
# configuration, recorded nowhere ckpt could copy it from; a flat store skips it the same way.
VECTOR_MIGRATIONS = [
    """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        CREATE EXTENSION vector;
    END IF;
END $$;
""",
    """
CREATE TABLE IF NOT EXISTS store_vectors (
    prefix text NOT NULL,
    key text NOT NULL,
    field_name text NOT NULL,
    embedding %(vector_type)s(%(dims)s),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (prefix, key, field_name),
    FOREIGN KEY (prefix, key) REFERENCES store(prefix, key) ON DELETE CASCADE
);
""",
]
_INT = 2**31
"""``ttl_minutes`` is an int4."""

ROUNDED_TTL = (
    "a fractional ttl_minutes is rounded by PostgresStore's INT column, as its own put rounds it "
    "(expires_at is kept exactly)"
)


def stored_ttl(ttl: float) -> int:
    """What the INT column holds after ``put(ttl=…)``: PostgreSQL's float8 → int4 cast (half-to-even,
    as Python's ``round``). ``DataError`` for what the column cannot hold at all."""
    if not math.isfinite(ttl) or not -_INT - 0.5 < ttl < _INT - 0.5:
        raise DataError(f"ttl_minutes {ttl} does not fit PostgresStore's INT column")
    return round(ttl)


def parse_vector(text: str) -> tuple[float, ...]:
    """pgvector's text form ``[0.1,0.2]`` → the float32 values exactly (as a BLOB would hold them)."""
    floats = [float(x) for x in text.strip("[]").split(",") if x]
    return struct.unpack(f"<{len(floats)}f", struct.pack(f"<{len(floats)}f", *floats))


def vector_text(embedding: tuple[float, ...]) -> str:
    return "[" + ",".join(repr(float(x)) for x in embedding) + "]"
