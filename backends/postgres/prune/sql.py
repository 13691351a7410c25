"""The SQL of PostgreSQL's server-side prune: the retention rules as CTEs over a batch's rows, and
the parameters (id bounds) that make them equal to the general planner's, row for row.

:mod:`ckpt.backends.postgres.prune.rules` plans with them, :mod:`ckpt.backends.postgres.prune.batches`
plans and deletes with them; this module imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from ckpt.backends.core.policy import Policy
from ckpt.backends.postgres.globs import glob_like
from ckpt.backends.postgres.prune import blobs as pg_prune_blobs

Range = tuple[Optional[str], Optional[str]]
"""A half-open range of thread ids in byte order; ``None`` leaves that end open."""
_GREGORIAN_OFFSET = 0x01B21DD213814000
# The row's id is a lowercase uuid6 (the shape; then only hex digits and hyphens, and no fifth
# hyphen) and its metadata a JSON object. translate() cost 4 µs a row, most of the plan's scan.
_REGULAR = (
    "c.checkpoint_id COLLATE \"C\" LIKE '________-____-6___-____-____________' "
    "AND c.checkpoint_id COLLATE \"C\" ~ '^[-0-9a-f]*$' AND c.checkpoint_id COLLATE \"C\" NOT LIKE '%%-%%-%%-%%-%%-%%' "
    "AND jsonb_typeof(c.metadata) = 'object'"
)
# A half-open range of thread ids in the column's own collation (an index range: ``--jobs`` shares
# and the run's batches are cut where the index puts them), or everything when an end is NULL.
IN_RANGE = "(%({lo})s::text IS NULL OR {col} >= %({lo})s) AND (%({hi})s::text IS NULL OR {col} < %({hi})s)"
# --shard K/N (core.shards): the hash of rows.SHARD_SQL; NULL (no shard) keeps every thread
IN_SHARD = (
    "(%(shard_n)s::bigint IS NULL OR "
    "(('x' || substr(md5(convert_to({col}, 'UTF8')), 1, 15))::bit(60)::bigint %% %(shard_n)s) = %(shard_k)s)"
)
_MIN_IDLE = "written within --min-idle"
# Per transaction, for these statements only: JIT compiles the plan's subplans for seconds
# (measured 10 s of 18 s on 100k checkpoints), and the plan's one pass sorts in memory.
SESSION = "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL plan_cache_mode = force_custom_plan"


def supports(policy: Policy) -> bool:
    """Whether the SQL plan equals the general one for this policy (else the caller plans in Python)."""
    globs = [g for g in (policy.thread_glob, policy.exempt) if g is not None]
    return (
        policy.keep_daily is None
        and policy.keep_weekly is None
        and not policy.metadata
        and not any("[" in g for g in globs)  # character classes: no exact LIKE form
    )


def first_tick(holds: Callable[[float], bool]) -> int:
    """The smallest uuid6 tick whose decoded time satisfies ``holds`` (monotone: false, then true)."""
    low, high = 0, (1 << 60) - 1
    while low < high:
        mid = (low + high) // 2
        if holds((mid - _GREGORIAN_OFFSET) / 1e7):  # the very float checkpoint_time returns
            high = mid
        else:
            low = mid + 1
    return low


def id_at_tick(ticks: int) -> str:
    """The smallest lowercase uuid6 string with these ticks: ids ``>=`` it are exactly the later ones."""
    return f"{ticks >> 28:08x}-{(ticks >> 12) & 0xFFFF:04x}-6{ticks & 0xFFF:03x}-0000-000000000000"


def bounds(policy: Policy, now: float) -> dict[str, Any]:
    """The SQL parameters: every time rule of the policy as an id bound."""
    params: dict[str, Any] = {
        "like": glob_like(policy.thread_glob) if policy.thread_glob else "%",
        "exempt": glob_like(policy.exempt) if policy.exempt else None,
        "shard_n": policy.shard.count if policy.shard is not None else None,
        "shard_k": policy.shard.index if policy.shard is not None else None,
        # skipped when now - newest < min_idle (plan_thread), i.e. newest at or after this id
        "idle": id_at_tick(first_tick(lambda t: now - t < policy.min_idle)),
        "dead": None,
        "keep": policy.has_keep_rules,
        "keep_last": max(1, policy.keep_last or 1),  # the newest always stays
        "within": None,
    }
    if policy.delete_idle is not None:
        # whole thread when now - newest >= delete_idle, i.e. newest before the first id where it fails
        delete_idle = policy.delete_idle
        params["dead"] = id_at_tick(first_tick(lambda t: not now - t >= delete_idle))
    if policy.keep_within is not None:
        within = policy.keep_within
        params["within"] = id_at_tick(first_tick(lambda t: now - t <= within))
    return params


_PER_CALL = """
SELECT NOT EXISTS (SELECT 1 FROM checkpoints y
                   WHERE y.thread_id = q.thread_id AND y.checkpoint_ns = '' AND y.checkpoint_id = q.root)
    OR EXISTS (
         SELECT 1 FROM checkpoints y
         WHERE y.thread_id = q.thread_id AND y.checkpoint_id = q.root AND strpos(y.checkpoint_ns, ':') = 0
           AND NOT EXISTS (SELECT 1 FROM checkpoints z WHERE z.thread_id = y.thread_id
                           AND z.checkpoint_ns = y.checkpoint_ns AND z.metadata ? 'counters_since_delta_snapshot')
           AND (%(within)s::text IS NULL OR y.checkpoint_id < %(within)s)
           AND (SELECT count(*) FROM (SELECT 1 FROM checkpoints z WHERE z.thread_id = y.thread_id
                AND z.checkpoint_ns = y.checkpoint_ns AND z.checkpoint_id > y.checkpoint_id LIMIT %(keep_last)s) l)
               >= %(keep_last)s)
FROM (SELECT x.thread_id, x.metadata -> 'parents' ->> '' AS root FROM checkpoints x
      WHERE x.thread_id = s.thread_id AND x.checkpoint_ns = s.checkpoint_ns
        AND jsonb_typeof(x.metadata -> 'parents' -> '') = 'string'
      ORDER BY x.checkpoint_id LIMIT 1) q
"""

# A per-call subgraph namespace follows its root checkpoint (the first ``parents[""]`` by id):
# deleted when the root is doomed in a non-per-call namespace (rank and DeltaChannel rule
# recomputed for that one row) or already gone from the root namespace. Rare: runs per row of
# per-call namespaces only.
# One pass over the selected checkpoints, sorted once in (thread, namespace, id) order (a
# whole-table plan reads the table, a batch its range by the index; see ``rows``). Windows give
# each row its thread's size and newest id, its namespace's DeltaChannel flag and its rank from
# the newest. For regular ids that order is the same in every collation (fixed-width lowercase
# hex), so ranks and id bounds agree with Python's string order.
_BASE = f"""
base AS (  -- the per-row facts, read once; the windows then carry narrow rows
  SELECT c.ctid AS row_ctid, c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id AS parent,
         {_REGULAR} AS ok,
         c.metadata ? 'counters_since_delta_snapshot' AS delta_row,
         pg_column_size(c.checkpoint) + pg_column_size(c.metadata) AS size
  FROM checkpoints c WHERE c.thread_id LIKE %(like)s AND {IN_SHARD.format(col="c.thread_id")} AND __RANGE__
),"""
_RULES = f"""
ranked AS (
  SELECT c.row_ctid, c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.size,
         coalesce(c.parent = lag(c.checkpoint_id) OVER w, false) OR lag(c.checkpoint_id) OVER w IS NULL AS chained,
         count(*) OVER t AS n, max(c.checkpoint_id COLLATE "C") OVER t AS newest, bool_and(c.ok) OVER t AS regular,
         count(*) OVER w - row_number() OVER w + 1 AS rank,
         bool_or(c.delta_row) OVER w AS delta
  FROM base c
  -- Two window clauses, both over the whole partition (row_number and lag ignore the frame): one
  -- sort, two passes. Four clauses (a partition and its ordered twin, twice) made four passes.
  WINDOW t AS (PARTITION BY c.thread_id ORDER BY c.checkpoint_ns, c.checkpoint_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),
         w AS (PARTITION BY c.thread_id, c.checkpoint_ns ORDER BY c.checkpoint_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
status AS (
  SELECT r.*,
         CASE WHEN NOT regular THEN NULL
              WHEN %(exempt)s::text IS NOT NULL AND thread_id LIKE %(exempt)s THEN 'exempt'
              WHEN newest >= %(idle)s THEN '{_MIN_IDLE}' END AS skipped,
         coalesce(newest < %(dead)s::text, false) AS whole
  FROM ranked r
),
planned AS (
  SELECT s.row_ctid, s.thread_id, s.checkpoint_ns, s.checkpoint_id, s.chained, s.n, s.regular, s.skipped, s.whole,
         s.regular AND s.skipped IS NULL AND (s.whole OR (%(keep)s AND CASE
           WHEN strpos(s.checkpoint_ns, ':') = 0 THEN
             NOT s.delta AND s.rank > %(keep_last)s AND (%(within)s::text IS NULL OR s.checkpoint_id < %(within)s)
           ELSE coalesce(({_PER_CALL}), false) END)) AS doomed,
         s.size
  FROM status s
  OFFSET 0  -- a fence: "doomed" is evaluated once per row, not once per reference
)"""


def rows(thread_range: str) -> str:
    """The CTEs ``base`` … ``planned``: every selected checkpoint with its thread's status,
    whether the rules delete it and the ``ctid`` it was read at. ``thread_range`` limits the threads
    (SQL over this module's parameters): a plan of everything reads the table, a batch its short
    range by the index. ``base`` is a fence: its per-row facts are computed where the rows are read,
    so the sort and the windows carry ~130-byte rows, not the ~1 KB of checkpoint and metadata each
    (~13% of the rules' time; session 8, git show 52bc7f0:bench/results/prune.md)."""
    return _BASE.replace("__RANGE__", thread_range + "\n  OFFSET 0  -- the fence") + _RULES


_PLAN_RANGE = IN_RANGE.format(lo="from", hi="to", col="c.thread_id")
# The plan shows writes and bytes per deleted checkpoint: one grouped pass over the job's writes.
_WRITES_SELECTED = f"{IN_SHARD.format(col='thread_id')} AND {IN_RANGE.format(lo='from', hi='to', col='thread_id')}"
_SIZED = f"""
sized AS (
  SELECT p.*, coalesce(w.n, 0) AS writes, p.size + coalesce(w.bytes, 0) AS bytes
  FROM planned p LEFT JOIN (
    SELECT thread_id, checkpoint_ns, checkpoint_id, count(*) AS n, sum(octet_length(blob)) AS bytes
    FROM checkpoint_writes WHERE thread_id LIKE %(like)s AND {_WRITES_SELECTED}
    GROUP BY thread_id, checkpoint_ns, checkpoint_id
  ) w ON p.doomed AND w.thread_id = p.thread_id AND w.checkpoint_ns = p.checkpoint_ns
     AND w.checkpoint_id = p.checkpoint_id
)"""

# Per thread, in the general path's order: its status and what the plan deletes from it, blobs included.
_PER_THREAD = f"""
SELECT t.thread_id, t.n, t.regular, t.skipped, t.whole, t.doomed, t.writes, t.bytes,
       coalesce(f.blobs, 0), coalesce(f.blob_bytes, 0)
FROM (SELECT thread_id, max(n) AS n, bool_and(regular) AS regular, max(skipped) AS skipped,
             bool_or(whole) AS whole, count(*) FILTER (WHERE doomed) AS doomed,
             coalesce(sum(writes) FILTER (WHERE doomed), 0) AS writes,
             coalesce(sum(bytes) FILTER (WHERE doomed), 0) AS bytes
      FROM sized GROUP BY thread_id) t
LEFT JOIN ({pg_prune_blobs.PER_THREAD.format("freed")}) f ON f.thread_id = t.thread_id
ORDER BY t.thread_id COLLATE "C"
"""
_PLAN = f"WITH {rows(_PLAN_RANGE)}, {_SIZED}, {pg_prune_blobs.ctes('sized')} {_PER_THREAD}"
