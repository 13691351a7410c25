"""langgraph-checkpoint-conformance 0.0.2 against every ``ckpt.savers`` class, capability by capability,
with the extended capabilities (``copy_thread``, ``delete_for_runs``, ``prune``) on."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from langgraph.checkpoint.conformance import validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, Capability

from ckpt.backends.core.base import Store
from ckpt.backends.ops import threads
from tests.savers.conformance import FACTORIES, registered

CAPABILITIES = sorted(c.value for c in ALL_CAPABILITIES)
THREAD_OPS = {Capability.COPY_THREAD.value, Capability.DELETE_FOR_RUNS.value}
_REDIS_NS = (
    "the official RedisSaver 0.5.2's list() returns every namespace for checkpoint_ns='' (its own read, "
    "untouched; test_redis_prune_keeps_latest_per_namespace checks the store itself)"
)
_REDIS_LIST = {
    "test_list_by_namespace": _REDIS_NS,
    "test_list_multiple_namespaces": _REDIS_NS,
    "test_list_metadata_custom_keys": "RedisSaver 0.5.2's list() refuses filters on metadata keys it does not index",
    "test_list_before": "RedisSaver 0.5.2's list(before=...) includes the `before` checkpoint itself",
    "test_list_limit_plus_before": "RedisSaver 0.5.2's list(before=...) includes the `before` checkpoint itself",
}
_NX_FILTER = "nx-27017 (the MongoDB stand-in server) cannot bind the list parameter of MongoDBSaver's metadata filter"
SAVER_LIMITS: dict[tuple[str, str], dict[str, str]] = {
    **{
        (saver, "prune"): {"test_prune_keep_latest_across_namespaces": _REDIS_NS}
        for saver in ("RedisSaver", "AsyncRedisSaver")
    },
    **{
        (saver, "copy_thread"): {"test_copy_thread_preserves_namespaces": _REDIS_NS}
        for saver in ("RedisSaver", "AsyncRedisSaver")
    },
    **{(saver, "list"): _REDIS_LIST for saver in ("RedisSaver", "AsyncRedisSaver")},
    ("MongoDBSaver", "list"): {
        name: _NX_FILTER
        for name in (
            "test_list_metadata_filter_single_key",
            "test_list_metadata_filter_step",
            "test_list_metadata_filter_multiple_keys",
            "test_list_metadata_filter_no_match",
            "test_list_metadata_custom_keys",
            "test_list_combined_thread_and_filter",
            "test_list_empty_result",
        )
    },
}
"""Conformance tests a saver's own (official, untouched) methods fail whatever ckpt does, and why."""


def _threads_pending() -> bool:
    """Whether ``ckpt.backends.ops.threads`` still has its placeholder bodies (issue #22)."""
    try:
        threads.copy_thread(cast(Store, None), "a", "b")
    except NotImplementedError:
        return True
    except Exception:
        return False
    return False


@pytest.mark.parametrize("capability", CAPABILITIES)
@pytest.mark.parametrize("saver", sorted(FACTORIES))
def test_conformance(saver: str, capability: str) -> None:
    report = asyncio.run(validate(registered(saver), capabilities={capability}))
    result = report.results[capability]
    assert result.detected, f"{saver} does not implement {capability}"
    if not result.passed and capability in THREAD_OPS and _threads_pending():
        pytest.xfail(f"ops.threads is not implemented yet (issue #22): {result.failures}")
    failed = {f.split(":", 1)[0] for f in result.failures}
    known = SAVER_LIMITS.get((saver, capability), {})
    if failed and failed <= set(known):
        pytest.xfail("; ".join(f"{name}: {known[name]}" for name in sorted(failed)))
    assert result.passed, f"{saver} {capability}: {result.tests_failed} failed: {result.failures}"
    assert result.tests_failed == 0 and result.tests_passed > 0
