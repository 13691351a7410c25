"""Stores written by the REAL old releases (tests/fixtures/old, made by scripts/old_stores/make.py):
ckpt reads each as its old saver showed it, moves it into every current store and upgrades it in
place, and today's official saver then shows the history the old saver showed and resumes the
paused threads (the fan-out's workers run). Issue #20.

Differences that LangGraph itself introduced between the release that wrote a store and today's
are named in ``LANGGRAPH_CHANGED`` with the reason; everything else must be equal.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import ckpt
from tests.old_stores import FIXTURES, FIXTURES_DIR, SCENARIO, expected, loaded, manifest
from tests.servers import fresh_redis, mongo_database, postgres_schema

pytestmark = pytest.mark.skipif(not FIXTURES, reason="no old-release fixtures (scripts/old_stores/make.py)")


def _scenario() -> Any:
    spec = importlib.util.spec_from_file_location("ckpt_old_scenario", SCENARIO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ckpt_old_scenario"] = module
    spec.loader.exec_module(module)
    return module


scenario = _scenario()


def _legacy_task_ids(fixture: Path) -> bool:
    """Checkpoints of format v<4 (LangGraph < 0.3): their task ids were derived differently."""
    return manifest(fixture)["langgraph"].startswith("0.2.")


# (thread, part) -> why today's LangGraph shows it differently from the release that wrote it.
SUBGRAPH_TASK_IDS = (
    "LangGraph 0.3 changed how task ids (and so subgraph namespaces 'middle:<task id>') are derived: "
    "today's graph looks for the paused subgraph under a new namespace and does not find the stored one"
)

# What an old saver showed wrongly of its own store: those parts are checked against the stored
# checkpoints instead (``stored_chains``) and against the scenario (``SCENARIO_NEXT``).
OLD_SAVER_FAULTS: dict[str, tuple[set[str], str]] = {
    "redis-0.0.": (
        {"state", "history", "subgraph_history"},
        "filed each checkpoint under its parent's id, so its own saver showed every checkpoint one step off "
        "(the first under an empty id, the newest missing from get_state)",
    ),
    "redis-0.1.": (
        {"history", "subgraph_history"},
        "its list() ignored the namespace: root histories mixed in subgraphs",
    ),
    "redis-0.2.": ({"history", "subgraph_history"}, "its own history failed on its writes (JSONDecodeError)"),
    "redis-0.3.": ({"history", "subgraph_history"}, "its own history failed on its writes (JSONDecodeError)"),
}
TODAYS_SAVER_FAULTS: dict[str, tuple[set[str], str]] = {
    "redis": (
        {"history", "subgraph_history"},
        "RedisSaver 0.5 list() with checkpoint_ns='' ignores the namespace (spec 5.5): root histories mix in "
        "subgraph checkpoints",
    ),
}
SCENARIO_NEXT = {
    "complete": [],
    "paused-ask": ["ask"],
    "paused-subgraph": ["middle"],
    "paused-workers": ["worker", "worker"],
    "ünï-✓-线程": [],
}
"""What each thread of scripts/old_stores/scenario.py waits for, in every release."""


def _faults(table: dict[str, tuple[set[str], str]], name: str) -> set[str]:
    return next((parts for prefix, (parts, _) in table.items() if name.startswith(prefix)), set())


def langgraph_changed(fixture: Path) -> dict[tuple[str, str], str]:
    if not _legacy_task_ids(fixture):
        return {}
    return {("paused-subgraph", "state"): SUBGRAPH_TASK_IDS, ("paused-subgraph", "subgraph_history"): SUBGRAPH_TASK_IDS}


def differences(old: dict[str, Any], new: dict[str, Any], fixture: Path, target_kind: str) -> list[str]:
    named = langgraph_changed(fixture)
    unreliable = _faults(OLD_SAVER_FAULTS, fixture.name) | _faults(TODAYS_SAVER_FAULTS, target_kind)
    found = []
    for thread, parts in old.items():
        for part, shown in parts.items():
            if part in unreliable or (thread, part) in named:
                continue
            if new.get(thread, {}).get(part) != shown:
                found.append(
                    f"{thread}/{part}: old {str(shown)[:300]} / now {str(new.get(thread, {}).get(part))[:300]}"
                )
    for thread, next_nodes in SCENARIO_NEXT.items():
        state = new.get(thread, {}).get("state", {})
        if (thread, "state") not in named and sorted(state.get("next", [])) != next_nodes:
            found.append(f"{thread}: today's saver says next={state.get('next')}, the thread waits for {next_nodes}")
    return found


def stored_chains(url: str) -> dict[str, list[tuple[str, str | None]]]:
    """Each thread's root checkpoints as ckpt reads them from the old store: ``(id, parent id)``, newest first."""
    chains: dict[str, list[tuple[str, str | None]]] = {}
    with ckpt.open(url) as store:
        for record in store.records():
            if record.key.checkpoint_ns == "":
                chains.setdefault(record.key.thread_id, []).append(
                    (record.key.checkpoint_id, record.parent_checkpoint_id)
                )
    return {thread: sorted(chain, reverse=True) for thread, chain in chains.items()}


def history_chains(view: dict[str, Any]) -> dict[str, list[tuple[str, str | None]]]:
    """The same from today's saver's ``get_state_history`` (root namespace)."""
    chains = {}
    for thread, parts in view.items():
        history = parts["history"]
        assert isinstance(history, list), f"{thread}: today's saver failed: {history}"
        chains[thread] = sorted(
            (
                (entry["config"]["checkpoint_id"], (entry["parent"] or {}).get("checkpoint_id"))
                for entry in history
                if entry["config"]["checkpoint_ns"] == ""
            ),
            reverse=True,
        )
    return chains


# -- the current official saver on a ckpt URL ------------------------------------------------------


def saver_target(url: str, libpq: str | None = None) -> tuple[str, str]:
    """``(kind, target)`` as scenario.open_saver takes them."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return "sqlite", parts.path if not parts.path.startswith("//") else parts.path[1:]
    if parts.scheme.startswith("postgres"):
        return "postgres", libpq or url
    if parts.scheme.startswith("redis"):
        return "redis", url
    database = parts.path.strip("/")
    return "mongodb", f"{parts.scheme}://{parts.netloc}/?{parts.query}#{database}"


def current_view(url: str, libpq: str | None = None) -> dict[str, Any]:
    kind, target = saver_target(url, libpq)
    with scenario.open_saver(kind, target) as saver:
        return dict(scenario.view(saver))


def resume_ask(url: str, libpq: str | None = None) -> list[str]:
    """Resume the thread paused before ``ask``: the message ids it has afterwards."""
    kind, target = saver_target(url, libpq)
    with scenario.open_saver(kind, target) as saver:
        graph = scenario.build_graph(saver)
        config = {"configurable": {"thread_id": scenario.T_ASK}}
        graph.invoke(None, config)
        return [m.id for m in graph.get_state(config).values.get("messages", [])]


def resume_workers(url: str, libpq: str | None = None) -> list[str]:
    """Resume the thread paused before the fan-out with today's LangGraph; the workers' results."""
    kind, target = saver_target(url, libpq)
    with scenario.open_saver(kind, target) as saver:
        graph = scenario.build_graph(saver)
        config = {"configurable": {"thread_id": scenario.T_WORKERS}}
        graph.invoke(None, config)
        return list(graph.get_state(config).values.get("results", []))


# -- target stores ---------------------------------------------------------------------------------


@contextmanager
def target_store(kind: str, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """An empty store of ``kind``: ``(ckpt URL, libpq URL for PostgreSQL)``."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.sqlite'}", None
    elif kind == "postgres":
        with postgres_schema() as (url, libpq):
            yield url, libpq
    elif kind == "mongodb":
        with mongo_database() as url:
            yield url, None
    elif kind in ("redis", "redis2"):
        with fresh_redis(kind) as url:  # today's RedisSaver reads its default key prefixes only
            yield url, None
    else:
        raise AssertionError(kind)


def _ids(fixture: Path) -> str:
    return fixture.name


# -- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES, ids=_ids)
def test_show_gives_what_the_old_saver_showed(fixture: Path) -> None:
    old = expected(fixture)
    with loaded(fixture) as url, ckpt.open(url) as store:
        listed = {t.thread_id for t in store.threads()}
        assert listed == set(old), "list shows every thread the old saver wrote"
        for thread, shown in old.items():
            view = ckpt.show(store, thread)
            state = shown["state"]
            assert sorted(view.next) == SCENARIO_NEXT[thread], f"{thread}: next"
            if "state" in _faults(OLD_SAVER_FAULTS, fixture.name):
                continue  # the old saver showed the wrong checkpoint (see OLD_SAVER_FAULTS)
            assert sorted(view.next) == sorted(state["next"]), f"{thread}: next as the old saver showed it"
            # A channel never written is not stored; the graph shows it with its reducer's default.
            stored = {k for k, v in state["values"].items() if v not in ([], {}, None, "")}
            assert stored <= set(view.values) <= set(state["values"]), f"{thread}: state channels"
            messages = [m.get("id") for m in view.values.get("messages", []) if isinstance(m, dict)]
            assert len(messages) == len(state["values"].get("messages", [])), f"{thread}: messages"


@pytest.mark.parametrize("fixture", FIXTURES, ids=_ids)
def test_doctor_names_the_layout_and_what_brings_it_current(fixture: Path) -> None:
    from ckpt.backends.ops.doctor import diagnose

    with loaded(fixture) as url, ckpt.open(url) as store:
        report = diagnose(store, "0")
        assert report.generation is not None, f"{fixture.name}: layout generation not recognised"
        assert report.undecodable == 0, report.findings
        needs = store.layout_upgrade()
        assert needs is not None
        if not needs.current or report.sends_to_inline:
            assert any("ckpt upgrade" in finding for finding in report.findings), report.findings


# -- moving into every current store ---------------------------------------------------------------

TARGETS = ["sqlite", "postgres", "mongodb", "redis"]


def _server_of(fixture: Path, target: str) -> str:
    """A Redis fixture moved into Redis goes to the second server: on one they would share the
    default key prefixes (today's RedisSaver reads only those) and the write registries."""
    return "redis2" if target == "redis" and manifest(fixture)["kind"] == "redis" else target


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fixture", FIXTURES, ids=_ids)
def test_migrate_then_todays_saver_shows_the_old_history(fixture: Path, target: str, tmp_path: Path) -> None:
    target = _server_of(fixture, target)
    old = expected(fixture)
    with loaded(fixture) as source, target_store(target, tmp_path) as (url, libpq):
        chains = stored_chains(source)
        report = ckpt.migrate(source, url, verify=True)
        assert report.verified is not None and report.verified.ok, (
            report.verified.as_json() if report.verified else None
        )
        now = current_view(url, libpq)
        assert differences(old, now, fixture, target) == []
        assert history_chains(now) == chains, "today's saver walks every stored checkpoint, parent by parent"
        assert sorted(resume_workers(url, libpq)) == ["done:alpha", "done:beta"], "the fan-out's workers ran"
        assert "ai-ask" in resume_ask(url, libpq), "the thread paused before ask ran ask"


@pytest.mark.parametrize("fixture", FIXTURES, ids=_ids)
def test_export_then_import_into_sqlite_as_the_old_saver_showed(fixture: Path, tmp_path: Path) -> None:
    old = expected(fixture)
    exported = tmp_path / "old.jsonl.gz"
    target = f"sqlite:///{tmp_path / 'imported.sqlite'}"
    with loaded(fixture) as source:
        chains = stored_chains(source)
        ckpt.export(source, str(exported))
    ckpt.import_(str(exported), target)
    with ckpt.open(str(exported)) as backup, ckpt.open(target) as store:
        from ckpt.backends.ops.verify import verify

        assert verify(backup, store).ok
    now = current_view(target)
    assert differences(old, now, fixture, "sqlite") == []
    assert history_chains(now) == chains
    assert sorted(resume_workers(target)) == ["done:alpha", "done:beta"], "the fan-out's workers ran"


# -- upgrading in place ----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES, ids=_ids)
def test_upgrade_in_place_then_todays_saver_shows_the_old_history(fixture: Path, tmp_path: Path) -> None:
    old = expected(fixture)
    with loaded(fixture) as url:
        chains = stored_chains(url)
        with ckpt.open(url, write=True, create=False) as store:
            report = ckpt.upgrade(store, backup=str(tmp_path / "before.jsonl.gz"), verify=True)
        assert report.current, report.as_json()
        with ckpt.open(url, write=True, create=False) as store:
            again = ckpt.upgrade(store)
        assert not again.changes, f"a second upgrade changes nothing: {again.as_json()}"
        now = current_view(url)
        assert differences(old, now, fixture, manifest(fixture)["kind"]) == []
        assert history_chains(now) == chains, "today's saver walks every stored checkpoint, parent by parent"
        assert sorted(resume_workers(url)) == ["done:alpha", "done:beta"], "the fan-out's workers ran"
        assert "ai-ask" in resume_ask(url), "the thread paused before ask ran ask"


# -- Couchbase: the documents langgraph-checkpointer-couchbase 1.0.9 wrote -------------------------


def test_couchbase_1_0_documents_move_into_sqlite_as_the_old_saver_showed_them(tmp_path: Path) -> None:
    """No Couchbase Server runs here: the 1.0.9 saver wrote through the recording stand-in
    (tests/backends/couchbase_standin.py). ckpt's reading of those documents is proved; its N1QL
    paths are not (they run only against a live cluster)."""
    import json

    from ckpt.backends.couchbase.layout import record_from_documents
    from ckpt.backends.jsonl.store import JsonlStore

    fixture = FIXTURES_DIR / "couchbase-1.0.9"
    if not fixture.is_dir():
        pytest.skip("no couchbase-1.0.9 fixture")
    dump = json.loads((fixture / "store.json").read_text(encoding="utf-8"))
    writes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for doc in dump["checkpoint_writes"].values():  # document key -> document, as the saver wrote them
        writes.setdefault((doc["thread_id"], doc["checkpoint_ns"], doc["checkpoint_id"]), []).append(doc)
    docs = dump["checkpoints"].values()
    records = sorted(
        (
            record_from_documents(d, writes.get((d["thread_id"], d["checkpoint_ns"], d["checkpoint_id"]), []))
            for d in docs
        ),
        key=lambda r: (r.key.thread_id, r.key.checkpoint_ns, r.key.checkpoint_id),
    )
    exported = tmp_path / "couchbase.jsonl"
    with JsonlStore.open(str(exported), write=True) as out:
        out.write(records)
    target = f"sqlite:///{tmp_path / 'from-couchbase.sqlite'}"
    report = ckpt.migrate(str(exported), target, verify=True)
    assert report.verified is not None and report.verified.ok
    assert differences(expected(fixture), current_view(target), fixture, "sqlite") == []
    assert sorted(resume_workers(target)) == ["done:alpha", "done:beta"]
