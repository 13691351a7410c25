"""Report files (``--report FILE``) and ``ckpt report merge``: the shards of one job added up.

A sharded job (``--shard K/N`` in N pods) leaves N report files; merging them gives the job's
totals and says which shards have not reported (a pod that failed, or has not run yet). A report
file is one JSON document::

    {"format": "ckpt/report", "version": 1, "command": "migrate", "ckpt_version": "...",
     "finished_at": "2026-12-05T06:00:00Z", "shard": {"index": 2, "count": 7, "hash": "md5-60"} | null,
     "report": {... what -o json prints ...}}
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ckpt.backends.core.errors import DataError, NotFoundError, UsageError
from ckpt.backends.core.files import PartialFile
from ckpt.backends.core.shards import HASH, Shard

FORMAT = "ckpt/report"
VERSION = 1
VERDICTS = frozenset({"ok", "clean", "current"})
"""Booleans that say a run went right: merged, they hold only if every shard's holds."""


def report_document(command: str, body: dict[str, Any], shard: Shard | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ckpt_version = version("langgraph-ckpt")
    except PackageNotFoundError:  # a checkout without an install
        ckpt_version = "0+unknown"
    return {
        "format": FORMAT,
        "version": VERSION,
        "command": command,
        "ckpt_version": ckpt_version,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shard": shard.as_json() if shard is not None else None,
        "report": body,
    }


def write_report(path: str, command: str, body: dict[str, Any], shard: Shard | None) -> str:
    """The report written to ``path`` (``{shard}`` → ``K-of-N``), whole or not at all (renamed
    into place when complete). Returns the path written."""
    from ckpt.backends.core.shards import shard_path

    path = shard_path(path, shard)
    file = PartialFile(path)
    file.write(orjson.dumps(report_document(command, body, shard), option=orjson.OPT_INDENT_2) + b"\n")
    file.finish()
    return path


@dataclass
class MergedReport:
    """The reports of one job added up, and which of its shards are missing."""

    command: str
    reports: int
    shards: int | None
    """N of the split (``None``: the reports are of unsharded runs)."""
    missing: list[int] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    """Numbers summed, lists joined, verdicts (``ok``, ``clean``, ``current``) true only if true in every report,
    other values kept when all reports agree, else listed."""

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def ok(self) -> bool:
        """Complete, and no shard's verdict says otherwise."""
        return self.complete and _verdicts_hold(self.totals)

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "reports": self.reports,
            "shards": self.shards,
            "complete": self.complete,
            "missing_shards": self.missing,
            "ok": self.ok,
            "totals": self.totals,
        }


def merge_reports(paths: Sequence[str]) -> MergedReport:
    """Read and add up report files. Refuses (``UsageError``) reports of different commands or
    splits, and the same shard twice; a file that is not a report is ``DataError``."""
    if not paths:
        raise UsageError("name the report files to merge")
    documents = [(path, _read(path)) for path in paths]
    commands = {doc["command"] for _, doc in documents}
    if len(commands) > 1:
        raise UsageError(f"these reports are of different commands ({', '.join(sorted(commands))}): merge one job")
    counts = {doc["shard"]["count"] if doc["shard"] else None for _, doc in documents}
    if len(counts) > 1:
        shown = ", ".join("unsharded" if n is None else f"N={n}" for n in sorted(counts, key=lambda n: n or 0))
        raise UsageError(f"these reports are of different splits ({shown}): merge one job")
    count = counts.pop()
    seen: dict[int, str] = {}
    for path, doc in documents:
        if doc["shard"] is not None:
            index = doc["shard"]["index"]
            if index in seen:
                raise UsageError(f"{path} and {seen[index]} both report shard {index}/{count}: keep one")
            seen[index] = path
    totals: dict[str, Any] = {}
    for _, doc in documents:
        totals = _merge(totals, doc["report"])
    missing = [] if count is None else [k for k in range(count) if k not in seen]
    return MergedReport(commands.pop(), len(documents), count, missing, totals)


def _read(path: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no such report file: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read report {path}: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path}: not a ckpt report (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f'{path}: not a ckpt report (no "format": "{FORMAT}"; write one with --report FILE)')
    if doc.get("version") != VERSION:
        raise DataError(f"{path}: unsupported report version {doc.get('version')!r}")
    shard = doc.get("shard")
    if shard is not None and (not isinstance(shard, dict) or shard.get("hash") != HASH):
        raise DataError(f"{path}: shard {shard!r} is not a ckpt {HASH} shard")
    if not isinstance(doc.get("report"), dict) or not isinstance(doc.get("command"), str):
        raise DataError(f'{path}: a ckpt report needs "command" and a "report" object')
    return doc


def _merge(into: Any, value: Any, key: str = "") -> Any:
    """``value`` added into ``into`` (see ``MergedReport.totals``)."""
    if isinstance(value, dict):
        base = into if isinstance(into, dict) else {}
        for name, item in value.items():
            if name == "shard":
                continue  # each report's own; the merged report says which shards it holds
            base[name] = _merge(base.get(name, _MISSING), item, name)
        return base
    if into is _MISSING:
        return list(value) if isinstance(value, list) else value
    if isinstance(value, bool):
        return (bool(into) and value) if key in VERDICTS else _agree(into, value)
    if isinstance(value, (int, float)) and isinstance(into, (int, float)) and not isinstance(into, bool):
        return into + value
    if isinstance(value, list) and isinstance(into, list):
        return into + value
    return _agree(into, value)


def _agree(into: Any, value: Any) -> Any:
    """A value every report gives once; where reports differ, the distinct values in order."""
    if isinstance(into, _Differing):
        if value not in into:
            into.append(value)
        return into
    return into if into == value else _Differing([into, value])


def _verdicts_hold(totals: Any) -> bool:
    if isinstance(totals, dict):
        return all(v for k, v in totals.items() if k in VERDICTS and isinstance(v, bool)) and all(
            _verdicts_hold(v) for v in totals.values()
        )
    return True


class _Differing(list[Any]):
    """The values reports disagreed on (serialised as a plain list)."""


_MISSING = object()
