"""Sharded prune and delete, proven by what they kept (issue #23): the official saver reads every
surviving checkpoint exactly as before, on every store a shard can change; and the shards together
delete what one unsharded run plans, no more. Counting what went proves nothing by itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends.core.shards import shard_of
from tests.oracle import TARGETS, assert_kept_unchanged, populate, snapshot

SHARDS = 3


def _populate(location: Path | str) -> list[str]:
    thread_ids = populate(location, 7, threads=12)
    assert len({shard_of(t, SHARDS) for t in thread_ids}) == SHARDS  # every shard has work
    return thread_ids


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_sharded_prune_keeps_what_the_saver_reads(kind: str, cli: Any, tmp_path: Path) -> None:
    with TARGETS[kind](tmp_path) as (url, location):
        _populate(location)
        rules = ["--keep-last", "2", "--min-idle", "0s"]
        planned = cli("prune", url, *rules, "--dry-run", "-o", "json")
        assert planned.exit_code == 0, planned.output
        plan = json.loads(planned.stdout)
        per_shard = [
            sum(row["delete"] for row in plan["plan"] if shard_of(row["thread_id"], SHARDS) == k) for k in range(SHARDS)
        ]
        before = snapshot(url, location)
        deleted = []
        for index in range(SHARDS):
            result = cli("prune", url, *rules, "--yes", "--shard", f"{index}/{SHARDS}", "-o", "json")
            assert result.exit_code == 0, result.output
            deleted.append(json.loads(result.stdout)["checkpoints_deleted"])
        kept = assert_kept_unchanged(url, location, before)  # every survivor reads exactly as before
        assert deleted == per_shard  # each shard deleted its own threads' part of the one plan
        assert 0 < plan["checkpoints_to_delete"] == sum(deleted) == len(before) - len(kept)


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_sharded_delete_keeps_what_the_saver_reads(kind: str, cli: Any, tmp_path: Path) -> None:
    with TARGETS[kind](tmp_path) as (url, location):
        thread_ids = _populate(location)
        doomed = {t for t in thread_ids if t.endswith(("1", "3", "5", "7", "9"))}
        before = snapshot(url, location)
        for index in range(SHARDS):
            result = cli("delete", url, "--thread", "*[13579]", "--yes", "--shard", f"{index}/{SHARDS}", "-o", "json")
            assert result.exit_code == 0, result.output
            body = json.loads(result.stdout)
            assert body["clean"] and {shard_of(t, SHARDS) for t in body["thread_ids"]} <= {index}
        kept = assert_kept_unchanged(url, location, before)
        assert kept == sorted(key for key in before if key[0] not in doomed) != []
