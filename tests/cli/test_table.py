"""The plain table formatter draws what rich draws, without folding, one line per row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ckpt.cli.table import plain_table
from tests.conftest import Cli, sqlite_url

CASES = [
    (("thread_id", "checkpoints"), [["thread-1", "10"], ["a-much-longer-thread-id", "7"]], None),
    (("name", "bytes"), [["user[1] [bold]x[/]", "1.2 KiB"], ["", ""]], "12 KiB in 3 checkpoints; by thread"),
    (("name", "bytes"), [["élan 中文 🙂", "12 B"], ["x", "1023.0 GiB"]], "t"),
    (("thread_id", "checkpoints", "first", "last"), [], None),
]


def _rich(cells: list[list[str]], columns: tuple[str, ...], right: list[bool], title: str | None) -> str:
    out = io.StringIO()
    table = Table(title=title, title_justify="left")
    for column, is_right in zip(columns, right):
        table.add_column(column, overflow="fold", justify="right" if is_right else "left")
    for row in cells:
        table.add_row(*(Text(t) for t in row))
    Console(file=out, width=1000, highlight=False, soft_wrap=True).print(table)
    return out.getvalue()


@pytest.mark.parametrize(("columns", "cells", "title"), CASES)
def test_plain_table_equals_rich_at_full_width(
    columns: tuple[str, ...], cells: list[list[str]], title: str | None
) -> None:
    right = [c in ("checkpoints", "bytes") for c in columns]
    assert "".join(plain_table(cells, columns, right, title)) == _rich(cells, columns, right, title)


def test_control_characters_stay_on_their_row() -> None:
    lines = "".join(plain_table([["a\nb\tc", "1"]], ("name", "bytes"), [False, True], None)).splitlines()
    assert len(lines) == 5 and lines[3] == "│ a\\nb\\tc │     1 │"


def test_piped_table_is_not_folded(cli: Cli, official_db: Path) -> None:
    rendered = cli("list", sqlite_url(official_db), "-c", "-o", "table").stdout
    rows = rendered.splitlines()[3:-1]
    assert len(rows) == 29 and all(len(row) == len(rows[0]) > 80 for row in rows)
