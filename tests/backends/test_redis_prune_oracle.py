"""Prune and compact on histories written by the official RedisSaver: every kept checkpoint reads as before.

The oracle is RedisSaver itself (``tests/oracle.py``): channel values, metadata, parent and pending
writes of each surviving checkpoint, by id, and the latest checkpoint of each namespace through
the saver's ``checkpoint_latest`` pointer.
"""

from __future__ import annotations

import pytest
import redis

from tests.conftest import Cli
from tests.histories import write_histories
from tests.oracle import Key, assert_kept_unchanged, non_contiguous, snapshot
from tests.servers import fresh_redis
from tests.support import official_saver


def _latest(url: str, kept: list[Key]) -> None:
    """Without an id RedisSaver follows the pointer: it must reach the newest kept checkpoint of the namespace."""
    newest: dict[tuple[str, str], str] = {}
    for thread_id, ns, checkpoint_id in kept:
        newest[(thread_id, ns)] = max(newest.get((thread_id, ns), ""), checkpoint_id)
    with official_saver(url) as saver:
        for (thread_id, ns), checkpoint_id in newest.items():
            found = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}})
            assert found is not None and found.config["configurable"]["checkpoint_id"] == checkpoint_id


@pytest.mark.parametrize(("seed", "prefix"), [(3, "gen"), (11, "user:7")])  # RedisSaver takes ':' in thread ids
def test_prune_and_compact_keep_every_kept_checkpoint_as_redis_saver_reads_it(cli: Cli, seed: int, prefix: str) -> None:
    with fresh_redis() as url:
        with official_saver(url) as saver:
            write_histories(saver, seed, threads=8, prefix=prefix)
        before = snapshot(url, url)

        result = cli("prune", url, "--keep-last", "1", "--keep-daily", "3", "--min-idle", "0s", "--yes")
        assert result.exit_code == 0, result.stderr
        kept = assert_kept_unchanged(url, url, before)
        assert non_contiguous(before, kept), "the policy kept a contiguous run: this test would prove little"
        assert len(kept) < len(before)
        _latest(url, kept)

        assert cli("prune", url, "--keep-last", "2", "--min-idle", "0s", "--yes").exit_code == 0
        kept_2 = assert_kept_unchanged(url, url, before)
        _latest(url, kept_2)

        # A stale pointer: the newest root checkpoint of a thread gone behind ckpt's back.
        thread_id, ns, checkpoint_id = max(k for k in kept_2 if k[1] == "" and sum(j[:2] == k[:2] for j in kept_2) > 1)
        client = redis.Redis.from_url(url)
        assert client.delete(f"checkpoint:{thread_id}:__empty__:{checkpoint_id}") == 1
        kept_2.remove((thread_id, ns, checkpoint_id))
        assert cli("compact", url, "--min-idle", "0s", "--yes").exit_code == 0
        assert assert_kept_unchanged(url, url, before) == kept_2
        _latest(url, kept_2)
