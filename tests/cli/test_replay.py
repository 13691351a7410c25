"""replay: a schema-valid timeline whose deltas rebuild every checkpoint's state."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from ckpt.backends import Selection, open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.formats.diff import apply_patch
from ckpt.formats.payloads import PayloadDecoder
from ckpt.formats.state import view_record
from tests.conftest import Cli, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "formats" / "schemas" / "replay-v1.schema.json").read_text())


def test_timeline_validates_and_rebuilds_every_state(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    assert cli("replay", sqlite_url(official_db), "thread-1", "-o", str(out)).exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for number, line in enumerate(lines, start=1):
        errors = list(validator.iter_errors(line))
        assert not errors, f"line {number}: {errors[0].message[:200]}"
    header, events = lines[0], lines[1:]
    assert header["format"] == "ckpt/replay" and header["thread_id"] == "thread-1"
    with open_store(sqlite_url(official_db)) as store:
        expected = {
            r.key.checkpoint_id: view_record(r, PayloadDecoder()).values
            for r in store.records(Selection(thread_id="thread-1"))
        }
    assert [e["checkpoint_id"] for e in events if e["checkpoint_ns"] == ""] == sorted(
        k for k, _ in expected.items() if any(e["checkpoint_id"] == k and e["checkpoint_ns"] == "" for e in events)
    )
    state: dict[str, object] = {}
    for event in events:
        state[event["checkpoint_ns"]] = (
            event["state"] if "state" in event else apply_patch(state[event["checkpoint_ns"]], event["delta"])
        )
        assert state[event["checkpoint_ns"]] == expected[event["checkpoint_id"]], event["checkpoint_id"]
    subgraph = [i for i, e in enumerate(events) if e["checkpoint_ns"]]
    root_of_subgraph = events[subgraph[0] - 1]
    assert root_of_subgraph["checkpoint_ns"] == "" and [t["node"] for t in events[subgraph[-1] + 1]["ran"]] == [
        "research"
    ]
    assert [t["node"] for t in events[2]["ran"]] == ["agent"] and events[0]["next"] == ["__start__"]


def test_full_state_and_unknown_thread(cli: Cli, official_db: Path) -> None:
    result = cli("replay", sqlite_url(official_db), "thread-3", "--full-state")
    events = [json.loads(line) for line in result.stdout.splitlines()[1:]]
    assert all("state" in e and "delta" not in e for e in events)
    assert events[-1]["next"] == ["approve"] and events[-1]["interrupts"][0]["value"]["question"] == "Send the summary?"
    missing = cli("replay", sqlite_url(official_db), "nobody")
    assert missing.exit_code == ExitCode.NOT_FOUND
