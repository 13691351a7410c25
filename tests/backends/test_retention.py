"""Retention rules decided from headers: keep rules, idle threads, exemptions, the always-on guards."""

from __future__ import annotations

from ckpt.backends import CheckpointHeader, CheckpointKey
from ckpt.backends.core.ids import lowest_id_at
from ckpt.backends.ops.retention import Policy, parse_duration, plan_thread

DAY = 86400.0
NOW = 1_800_000_000.0


def _id(at: float, n: int = 0) -> str:
    base = lowest_id_at(at)
    return base[:19] + f"{n:04x}-000000000000"


def _headers(times: list[float], ns: str = "", metadata: dict[str, object] | None = None) -> list[CheckpointHeader]:
    return [
        CheckpointHeader(CheckpointKey("t", ns, _id(at, i)), None, dict(metadata or {"step": i}), 10, 5, 1)
        for i, at in enumerate(times)
    ]


def _kept(headers: list[CheckpointHeader], policy: Policy) -> list[float]:
    doomed = set(plan_thread("t", headers, policy, NOW).delete)
    return sorted(round((NOW - h.key_tuple_time) / DAY, 1) for h in [_Timed(h) for h in headers] if h.key not in doomed)


class _Timed:
    def __init__(self, header: CheckpointHeader) -> None:
        from ckpt.backends.core.ids import checkpoint_time

        self.key = header.key
        self.key_tuple_time = checkpoint_time(header.key.checkpoint_id) or 0.0


def test_keep_rules_are_a_union_and_the_newest_always_stays() -> None:
    headers = _headers([NOW - d * DAY for d in (30, 20, 10, 5, 2, 1.5, 1)])
    assert _kept(headers, Policy(keep_last=2, min_idle=0)) == [1.0, 1.5]
    assert _kept(headers, Policy(keep_within=6 * DAY, min_idle=0)) == [1.0, 1.5, 2.0, 5.0]
    assert _kept(headers, Policy(keep_last=1, keep_within=3 * DAY, min_idle=0)) == [1.0, 1.5, 2.0]
    # calendar days (UTC): 1.5 and 2 days ago fall on the same day, whose newest is kept
    assert _kept(headers, Policy(keep_daily=3, min_idle=0)) == [1.0, 1.5, 5.0]
    assert _kept(headers, Policy(keep_weekly=2, min_idle=0))[0] == 1.0


def test_idle_threads_go_whole_and_guards_skip_threads() -> None:
    old = _headers([NOW - 100 * DAY, NOW - 95 * DAY])
    whole = plan_thread("t", old, Policy(delete_idle=90 * DAY), NOW)
    assert whole.whole_thread and len(whole.delete) == 2 and whole.writes == 2 and whole.bytes == 30
    assert plan_thread("t", old, Policy(delete_idle=90 * DAY, exempt="t*"), NOW).skipped == "exempt"
    fresh = _headers([NOW - 60, NOW - 30])
    assert plan_thread("t", fresh, Policy(keep_last=1), NOW).skipped == "written within --min-idle"
    tagged = _headers([NOW - 100 * DAY], metadata={"tenant": "a"})
    assert plan_thread("t", tagged, Policy(delete_idle=DAY, metadata=(("tenant", "b"),)), NOW).skipped
    assert plan_thread("t", tagged, Policy(delete_idle=DAY, metadata=(("tenant", "a"),)), NOW).whole_thread


def test_delta_channel_history_is_kept_whole() -> None:
    headers = _headers(
        [NOW - d * DAY for d in (5, 4, 3)], metadata={"counters_since_delta_snapshot": {"items": [1, 3]}}
    )
    assert plan_thread("t", headers, Policy(keep_last=1, min_idle=0), NOW).delete == []


def test_subgraph_calls_follow_their_root() -> None:
    root = _headers([NOW - d * DAY for d in (5, 4, 3)])
    old_root, new_root = root[0].key.checkpoint_id, root[2].key.checkpoint_id
    gone = _headers([NOW - 5 * DAY + 1], ns="sub:1", metadata={"parents": {"": old_root}})
    kept = _headers([NOW - 3 * DAY + 1], ns="sub:2", metadata={"parents": {"": new_root}})
    result = plan_thread("t", root + gone + kept, Policy(keep_last=1, min_idle=0), NOW)
    assert {k.checkpoint_ns for k in result.delete} == {"", "sub:1"}
    assert all(k.checkpoint_ns != "sub:2" for k in result.delete)


def test_durations() -> None:
    assert parse_duration("30d", "--x") == 30 * DAY and parse_duration("90m", "--x") == 5400
    for bad in ("30", "3x", "-1d", "d"):
        try:
            parse_duration(bad, "--x")
        except Exception as exc:
            assert "cannot read duration" in str(exc)
        else:
            raise AssertionError(bad)
