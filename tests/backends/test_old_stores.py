"""Stores written by REAL old releases of the official savers (issue #20): read them today.

Each fixture in tests/fixtures/old was written by an old saver (scripts/old_stores/make.py) and
carries that saver's own view of it (expected.json). Here every fixture is loaded into a real store
and (1) the CURRENT official saver's view is compared with the old one, (2) ckpt's read commands
run on it. Known failures are strict xfails, so a fix shows up as XPASS and must drop the mark.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import Cli
from tests.old_stores import FIXTURES, SCENARIO, expected, loaded, manifest

_SUBGRAPH_TASK_ID = (
    "current LangGraph derives another task id for the paused subgraph task of a langgraph 0.2.x "
    "checkpoint, so get_state(subgraphs=True) looks in ns middle:<new id> and shows no subgraph state "
    "(the subgraph's checkpoints are in the store under the old id)"
)

# (test, fixture) -> why today's official saver shows an old store wrongly as it is, before
# ``ckpt upgrade`` (tests/contract/test_old_layouts.py proves what upgrade and migrate then give).
# ckpt's own commands have no entry: they read every fixture right. Drop an entry when it XPASSes.
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    **{
        ("current_saver_view", name): _SUBGRAPH_TASK_ID
        for name in ("sqlite-1.0.4", "sqlite-2.0.0", "postgres-1.0.9", "postgres-2.0.0")
    },
    **{
        ("current_saver_view", name): (
            "current MongoDBSaver raises 'ValueError: too many values to unpack (expected 2)' on every "
            "get_state/list: metadata leaves up to 0.2.0 are serde.dumps JSON bytes, not [type, bytes] pairs"
        )
        for name in ("mongodb-0.1.4", "mongodb-0.2.0")
    },
    ("current_saver_view", "redis-0.0.8"): (
        "current RedisSaver shows no pending writes on a 0.0.x store (its checkpoint docs have no "
        "has_writes and there are no write_keys_zset keys), so paused-ask/paused-subgraph show next=[] "
        "and no tasks, and every history entry has next/pending_writes different from 0.0.8's"
    ),
    ("current_saver_view", "redis-0.1.3"): (
        "current RedisSaver's list()/get_state_history raises 'JSONDecodeError: str is not valid UTF-8: "
        "surrogates not allowed' on every thread of a 0.1.x store (get_state works)"
    ),
}


# Where run() leaves each thread: the truth, which some old savers themselves do not show
# (RedisSaver 0.0.8 drops the pending Sends of paused-workers and shows next=[]).
TRUE_NEXT = {
    "complete": [],
    "paused-ask": ["ask"],
    "paused-subgraph": ["middle"],
    "paused-workers": ["worker", "worker"],
    "ünï-✓-线程": [],
}


def _load_scenario() -> Any:
    import importlib.util
    import sys

    if "old_stores_scenario" in sys.modules:
        return sys.modules["old_stores_scenario"]
    spec = importlib.util.spec_from_file_location("old_stores_scenario", SCENARIO)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_stores_scenario"] = module
    spec.loader.exec_module(module)
    return module


# ckpt needs a live store; Couchbase fixtures have only the recording stand-in (view test only)
LIVE_FIXTURES = [f for f in FIXTURES if manifest(f)["kind"] != "couchbase"]


def _params(test: str, fixtures: list[Path] | None = None) -> list[Any]:
    params = []
    for fixture in fixtures if fixtures is not None else LIVE_FIXTURES:
        reason = KNOWN_FAILURES.get((test, fixture.name))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(fixture, id=fixture.name, marks=marks))
    return params


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Every leaf where the two views disagree, as 'path: old -> new' (short, for the report)."""
    if isinstance(old, dict) and "__error__" in old and len(old) == 1:
        return []  # the old saver itself failed here: there is nothing it showed to compare with
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            if key not in new:
                out.append(f"{path}/{key}: missing now (was {_short(old[key])})")
            elif key not in old:
                out.append(f"{path}/{key}: new {_short(new[key])}")
            else:
                out += differences(old[key], new[key], f"{path}/{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def _saver_target(kind: str, url: str) -> str:
    """The scenario's open_saver target for the ckpt URL that loaded() yields."""
    if kind == "sqlite":
        return url.removeprefix("sqlite:///")
    if kind == "mongodb":
        parts = urlsplit(url)
        return f"{urlunsplit(parts._replace(path='/'))}#{parts.path.strip('/')}"
    return url


def current_view(fixture: Path) -> Iterator[Any]:
    """The current official saver's view of the fixture's store (loaded fresh)."""
    scenario = _load_scenario()
    kind = manifest(fixture)["kind"]
    if kind == "couchbase":  # no cluster here: the recording stand-in holds the old documents
        from tests.backends import couchbase_standin as standin

        cluster = standin.Cluster()
        for name, docs in json.loads((fixture / "store.json").read_text(encoding="utf-8")).items():
            cluster.collection(name).docs.update(docs)
        with scenario.open_saver(kind, "-", cluster) as saver:
            yield scenario.view(saver)
        return
    with loaded(fixture) as url, scenario.open_saver(kind, _saver_target(kind, url)) as saver:
        yield scenario.view(saver)


@pytest.mark.parametrize("fixture", _params("current_saver_view", FIXTURES))
def test_current_saver_shows_what_the_old_one_showed(fixture: Path) -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    for view in current_view(fixture):
        found = differences(expected(fixture), view)
        assert not found, f"{len(found)} differences:\n" + "\n".join(found[:40])


@pytest.mark.parametrize("fixture", _params("list"))
def test_ckpt_lists_every_thread(cli: Cli, fixture: Path) -> None:
    with loaded(fixture) as url:
        result = cli("list", url, "-o", "json")
        assert result.exit_code == 0, result.stderr
        rows = json.loads(result.stdout)
        assert sorted(r["thread_id"] for r in rows) == sorted(expected(fixture))


@pytest.mark.parametrize("fixture", _params("show"))
def test_ckpt_shows_every_thread(cli: Cli, fixture: Path) -> None:
    with loaded(fixture) as url:
        for thread_id in expected(fixture):
            result = cli("show", url, thread_id, "-o", "json")
            assert result.exit_code == 0, f"{thread_id}: {result.stderr}"
            shown = json.loads(result.stdout)
            assert sorted(shown["next"]) == TRUE_NEXT[thread_id], thread_id


@pytest.mark.parametrize("fixture", _params("export"))
def test_ckpt_exports_and_decodes_everything(cli: Cli, fixture: Path, tmp_path: Path) -> None:
    with loaded(fixture) as url:
        result = cli("export", url, str(tmp_path / "out.jsonl"), "--decode")
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("fixture", _params("check"))
def test_ckpt_finds_no_damage(cli: Cli, fixture: Path) -> None:
    with loaded(fixture) as url:
        result = cli("check", url, "--integrity")
        assert result.exit_code == 0, result.stdout + result.stderr
