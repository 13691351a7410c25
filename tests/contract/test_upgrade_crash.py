"""``ckpt upgrade`` interrupted and run again ends where an uninterrupted run does (issue #20).

The stores are the real old releases' (tests/fixtures/old). A run is stopped at every kind of
point: before any checkpoint is rewritten, after one batch, halfway, after the last batch, and
halfway through filing the staged Redis documents. Each batch is one transaction (one MULTI/EXEC
on Redis), so stopping between batches is what a kill does; tests/cli/test_upgrade.py kills the
process with SIGKILL as well. The rerun must give the very store the uninterrupted run gave.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import ckpt
from ckpt.backends.core.base import Store
from tests.old_stores import FIXTURES_DIR, dump_store, loaded, manifest

CASES = [name for name in ("redis-0.0.8", "redis-0.2.1", "mongodb-0.1.4") if (FIXTURES_DIR / name).is_dir()]


class Stop(Exception):
    """Stands for the process dying at this point."""


def _upgrade(url: str, sabotage: Callable[[Store], None] | None = None) -> None:
    with ckpt.open(url, write=True, create=False) as store:
        if sabotage is not None:
            sabotage(store)
        ckpt.upgrade(store, batch_size=1)


def _stop_after_batches(count: int) -> Callable[[Store], None]:
    def sabotage(store: Store) -> None:
        original, calls = store.replace, [0]

        def replace(records: Any) -> int:
            if count == 0:
                raise Stop("stopped before the first batch")
            done = original(records)
            calls[0] += 1
            if calls[0] == count:
                raise Stop(f"stopped after {count} batch(es)")
            return done

        store.replace = replace  # type: ignore[method-assign]

    return sabotage


def _stop_while_filing(monkeypatch: pytest.MonkeyPatch) -> Callable[[Store], None]:
    from ckpt.backends.redis import upgrade as redis_upgrade

    original = redis_upgrade._file_staged

    def half_then_stop(client: Any, prefix: str) -> int:
        staged = sorted(client.scan_iter(match=f"{redis_upgrade.STAGING}{prefix}:*"))
        for key in staged[: len(staged) // 2]:  # filed as the step files them: copied, then deleted
            document = client.execute_command("JSON.GET", key)
            text = document if isinstance(document, (str, bytes)) else json.dumps(document)
            client.execute_command("JSON.SET", key.decode()[len(redis_upgrade.STAGING) :], "$", text)
            client.delete(key)
        monkeypatch.setattr(redis_upgrade, "_file_staged", original)  # the rerun files the rest
        raise Stop("stopped halfway through filing")

    def sabotage(store: Store) -> None:
        monkeypatch.setattr(redis_upgrade, "_file_staged", half_then_stop)

    return sabotage


@pytest.mark.parametrize("name", CASES)
def test_a_stopped_upgrade_rerun_ends_where_an_uninterrupted_one_does(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = FIXTURES_DIR / name
    with loaded(fixture) as url:
        _upgrade(url)
        reference = dump_store(url)
    with loaded(fixture) as url, ckpt.open(url) as store:
        total = sum(1 for _ in store.records())
    stops = [_stop_after_batches(n) for n in sorted({0, 1, total // 2, total})]
    if manifest(fixture)["kind"] == "redis":
        stops.append(_stop_while_filing(monkeypatch))
    for stop in stops:
        with loaded(fixture) as url:
            with pytest.raises(Stop):
                _upgrade(url, stop)
            _upgrade(url)
            assert dump_store(url) == reference
            with ckpt.open(url, write=True, create=False) as store:
                assert ckpt.upgrade(store, dry_run=True).current


def test_stopped_upgrade_never_loses_a_checkpoint_in_between() -> None:
    """Between the stop and the rerun the store still holds every checkpoint (ckpt reads them all)."""
    fixture = FIXTURES_DIR / "redis-0.0.8"
    if not fixture.is_dir():
        pytest.skip("no redis-0.0.8 fixture")
    with loaded(fixture) as url:
        with ckpt.open(url) as store:
            before = sorted(str(r.key) for r in store.records())
        for count in (1, len(before) // 2, len(before)):
            with pytest.raises(Stop):
                _upgrade(url, _stop_after_batches(count))
            with ckpt.open(url) as store:
                assert sorted(str(r.key) for r in store.records()) == before
