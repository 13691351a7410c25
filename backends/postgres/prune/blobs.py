"""Which blobs a PostgreSQL prune frees, planned together with the checkpoints (spec §4.4, §8.8).

A blob ``(thread, namespace, channel, version)`` is freed when a deleted checkpoint of its namespace
references it and no remaining one does. Reading every deleted and remaining checkpoint's
``channel_versions`` was most of a prune's time (3.2 s of server time per 100,000 checkpoints), so a
namespace whose deleted checkpoints form one parent chain, continued by the oldest remaining
checkpoint, is planned from two maps instead: along a chain a channel's version only grows (the
saver's ``get_next_version`` increments the zero-padded counter), so every version up to the newest
deleted checkpoint's was referenced by deleted checkpoints only, except that newest version itself
when the oldest remaining checkpoint still references it. Namespaces that are not such a chain
(forks, versions not in the saver's padded form) are planned exactly, map by map; threads planned in
Python (irregular ids) too, by :func:`exact_in_python`.

What differs from the exact rule: a blob below that version that no checkpoint references (left by a
``put`` that failed between its blobs and its checkpoint, or by a fork abandoned before it was
written) is freed as well. A blob above it (a ``put`` in flight after the thread's newest
checkpoint) never is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from ckpt.backends.core.base import CheckpointKey


def _padded(version: str) -> str:
    """SQL: ``version`` is the saver's padded form: 32 digits, then a dot (its first). The same test
    as the regular expression ``'^[0-9]{32}[.]'``, which cost ~4.7 µs a call (the bounded
    repetition's automaton is built again for every string) against ~1.2 µs here: over a second of
    server time per million checkpoints."""
    return f"(strpos({version}, '.') = 33 AND ltrim(left({version}, 32), '0123456789') = '')"


def _in_span(blob: str, target: str) -> str:
    """SQL: the ``blob`` row's version is one a chain channel's ``target`` frees: at most the newest
    deleted checkpoint's (``hi``), and not the oldest remaining one's (``keep``). The plan counts
    (``by_span``) and the run deletes (:data:`MATCHES`) by this one condition."""
    return f'{blob}.version COLLATE "C" <= {target}.hi AND {blob}.version IS DISTINCT FROM {target}.keep'


# __DOOMED__: rows (thread_id, checkpoint_ns, checkpoint_id, chained) of the deleted checkpoints; ``chained``:
# the row's parent is the namespace's previous checkpoint (or it has none before it).
_CTES = f"""
chains AS (  -- the namespaces with deleted checkpoints, and whether those are one parent chain
  SELECT thread_id, checkpoint_ns, max(checkpoint_id) AS dm, bool_and(chained) AS chained
  FROM __DOOMED__ x GROUP BY thread_id, checkpoint_ns
),
ends AS (  -- the newest deleted checkpoint and the oldest remaining one: a primary-key descent each
  SELECT g.thread_id, g.checkpoint_ns, g.dm, g.chained, l.last, k.kept, k.kept_parent,
         coalesce(k.found, false) AS has_kept
  FROM chains g
  LEFT JOIN LATERAL (SELECT c.checkpoint -> 'channel_versions' AS last FROM checkpoints c
                     WHERE c.thread_id = g.thread_id AND c.checkpoint_ns = g.checkpoint_ns
                       AND c.checkpoint_id = g.dm) l ON true
  LEFT JOIN LATERAL (SELECT c.checkpoint -> 'channel_versions' AS kept, c.parent_checkpoint_id AS kept_parent,
                            true AS found
                     FROM checkpoints c
                     WHERE c.thread_id = g.thread_id AND c.checkpoint_ns = g.checkpoint_ns AND c.checkpoint_id > g.dm
                     ORDER BY c.checkpoint_id LIMIT 1) k ON true
),
candidates AS (  -- one row per channel of the newest deleted checkpoint, with what makes its group a chain
  SELECT e.thread_id, e.checkpoint_ns, v.key AS channel, v.value AS hi, e.kept ->> v.key AS keep,
         e.chained AND (NOT e.has_kept OR e.kept_parent = e.dm)
           AND {_padded("v.value")} AND coalesce({_padded("e.kept ->> v.key")}, true) AS ok
  FROM ends e CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(e.last) = 'object' THEN e.last END) v
),
linear AS (
  SELECT thread_id, checkpoint_ns FROM candidates GROUP BY thread_id, checkpoint_ns HAVING bool_and(ok)
),
kept_refs AS (  -- what the remaining checkpoints of those namespaces reference: never freed
  SELECT k.thread_id, k.checkpoint_ns, e.key AS channel, e.value AS version
  FROM __KEPT__ k
  JOIN chains g ON g.thread_id = k.thread_id AND g.checkpoint_ns = k.checkpoint_ns
  JOIN checkpoints c ON c.ctid = k.row_ctid
  CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(c.checkpoint -> 'channel_versions') = 'object'
                                          THEN c.checkpoint -> 'channel_versions' END) e
),
spanned AS (  -- each namespace's blobs read once and matched to its channels (a scan per channel re-read them all)
  SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.bytes
  FROM linear l
  CROSS JOIN LATERAL (SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, octet_length(b.blob) AS bytes
                      FROM checkpoint_blobs b WHERE b.thread_id = l.thread_id AND b.checkpoint_ns = l.checkpoint_ns
                      OFFSET 0) b
  JOIN candidates s ON s.thread_id = b.thread_id AND s.checkpoint_ns = b.checkpoint_ns AND s.channel = b.channel
  WHERE {_in_span("b", "s")}
),
spared AS MATERIALIZED (  -- of those, the ones a remaining checkpoint still references (none unless versions repeat)
  SELECT thread_id, checkpoint_ns, channel, version FROM spanned
  INTERSECT SELECT thread_id, checkpoint_ns, channel, version FROM kept_refs
),
by_span AS (
  SELECT s.* FROM spanned s LEFT JOIN spared p USING (thread_id, checkpoint_ns, channel, version)
  WHERE p.thread_id IS NULL
),
other AS (  -- the namespaces that are not one chain (few: found before any checkpoint is read)
  SELECT g.thread_id, g.checkpoint_ns FROM chains g
  WHERE NOT EXISTS (SELECT 1 FROM linear l WHERE l.thread_id = g.thread_id AND l.checkpoint_ns = g.checkpoint_ns)
  OFFSET 0
),
refs AS (  -- their every checkpoint's references, deleted or not
  SELECT c.thread_id, c.checkpoint_ns, e.key AS channel, e.value AS version, d.checkpoint_id IS NOT NULL AS gone
  FROM other g
  CROSS JOIN LATERAL (SELECT * FROM checkpoints c
                      WHERE c.thread_id = g.thread_id AND c.checkpoint_ns = g.checkpoint_ns OFFSET 0) c
  LEFT JOIN __DOOMED__ d
    ON d.thread_id = c.thread_id AND d.checkpoint_ns = c.checkpoint_ns AND d.checkpoint_id = c.checkpoint_id
  CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') e
),
by_refs_keys AS (SELECT thread_id, checkpoint_ns, channel, version FROM refs GROUP BY 1, 2, 3, 4 HAVING bool_and(gone)),
by_refs AS (
  SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, octet_length(b.blob) AS bytes
  FROM by_refs_keys r
  JOIN checkpoint_blobs b
    ON b.thread_id = r.thread_id AND b.checkpoint_ns = r.checkpoint_ns AND b.channel = r.channel
   AND b.version = r.version
),
targets AS (  -- what a delete matches blobs against: a range of versions per chain channel, else the version
  SELECT s.thread_id, s.checkpoint_ns, s.channel, s.hi, s.keep, false AS exact
  FROM candidates s JOIN linear l ON l.thread_id = s.thread_id AND l.checkpoint_ns = s.checkpoint_ns
  UNION ALL
  SELECT thread_id, checkpoint_ns, channel, version, NULL, true FROM by_refs_keys
),
freed AS (SELECT * FROM by_span UNION ALL SELECT * FROM by_refs)"""


MATCHES = f"""x.thread_id = f.thread_id AND x.checkpoint_ns = f.checkpoint_ns AND x.channel = f.channel
    AND CASE WHEN f.exact THEN x.version = f.hi
             ELSE {_in_span("x", "f")} END"""
"""Blob ``x`` is one the ``targets`` row ``f`` frees (the condition ``by_span`` and ``by_refs`` select by)."""


def doomed_of(cte: str) -> str:
    """The deleted checkpoints of a plan CTE (``doomed AND regular`` rows), as :func:`ctes` reads them."""
    return f"(SELECT thread_id, checkpoint_ns, checkpoint_id, chained FROM {cte} WHERE doomed AND regular)"


def kept_of(cte: str) -> str:
    """The remaining checkpoints of a plan CTE, with the ``ctid`` they were read at."""
    return f"(SELECT row_ctid, thread_id, checkpoint_ns FROM {cte} WHERE NOT doomed)"


def ctes(cte: str) -> str:
    """The blob-plan CTEs for the plan CTE ``cte`` (rows with ``doomed``, ``regular``, ``chained``
    and ``row_ctid``): ``freed``, one row per freed blob with its bytes (what a plan reports),
    ``targets``, what a delete matches blobs against (:data:`MATCHES`) without reading them first,
    and ``kept_refs``, the versions the remaining checkpoints reference, which are never freed.

    The span rule alone assumed that a channel's version only grows along a chain. Stores written
    otherwise (a history replayed with its versions, as ``bench/make_store.py`` writes, a hand-made
    fix-up) broke that, and a kept checkpoint lost its ``messages`` (issue #17): the span now only
    proposes, and what ``kept_refs`` names is taken out again by set difference (``EXCEPT``,
    ``INTERSECT``: hashed, linear; an anti-join against a CTE was planned as a nested loop)."""
    return _CTES.replace("__DOOMED__", doomed_of(cte)).replace("__KEPT__", kept_of(cte))


PER_THREAD = "SELECT thread_id, count(*) AS blobs, coalesce(sum(bytes), 0) AS blob_bytes FROM {0} GROUP BY thread_id"
"""Blobs and their bytes per thread, from the ``freed`` CTE."""


def exact_in_python(
    conn: psycopg.Connection[Any], thread_id: str, doomed: Iterable[CheckpointKey]
) -> list[tuple[str, str, str, str, int]]:
    """The freed blobs of one thread planned in Python: each map read, referenced by a deleted
    checkpoint and by no remaining one of its namespace, as rows ``(thread, ns, channel, version, bytes)``."""
    gone = {(k.checkpoint_ns, k.checkpoint_id) for k in doomed}
    if not gone:
        return []
    referenced: dict[tuple[str, str, str], bool] = {}
    rows = conn.execute(
        "SELECT checkpoint_ns, checkpoint_id, checkpoint -> 'channel_versions' FROM checkpoints WHERE thread_id = %s",
        (thread_id,),
    )
    for ns, checkpoint_id, versions in rows:
        deleted = (ns, checkpoint_id) in gone
        for channel, version in (versions or {}).items() if isinstance(versions, dict) else ():
            key = (ns, str(channel), version if isinstance(version, str) else str(version))
            referenced[key] = referenced.get(key, True) and deleted
    freed = [key for key, only_deleted in referenced.items() if only_deleted]
    if not freed:
        return []
    found = conn.execute(
        "SELECT b.checkpoint_ns, b.channel, b.version, octet_length(b.blob) FROM checkpoint_blobs b "
        "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS f(ns, channel, version) "
        "ON b.checkpoint_ns = f.ns AND b.channel = f.channel AND b.version = f.version WHERE b.thread_id = %s",
        ([k[0] for k in freed], [k[1] for k in freed], [k[2] for k in freed], thread_id),
    )
    return [(thread_id, ns, channel, version, int(size or 0)) for ns, channel, version, size in found]
