"""Tables: rich's for a person at a terminal, and a plain formatter that draws the same box.

The plain formatter is for pipes and large listings: rich measures and fits every cell to the
console width (~8 µs a cell row, and folds long ids at 80 columns when piped); this one sizes
the columns in one pass over the rows and never folds. For text without control characters
its output equals rich's at unlimited width, without colour (tests/cli/test_table.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

# rich's box.HEAVY_HEAD, the default box of rich.table.Table.
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_RULE = ("┡", "━", "╇", "┩")
_ROW = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")
# Control characters would break a row over lines; they are shown escaped instead.
_ESCAPES = {i: repr(chr(i))[1:-1] for i in (*range(0x20), 0x7F)}


def plain_table(
    cells: list[list[str]], columns: Sequence[str], right: Sequence[bool], title: str | None
) -> Iterator[str]:
    """The table as lines of text (each ending in a newline), columns as wide as their widest cell."""
    cells = [[_one_line(text) for text in row] for row in cells]
    widths = [_width(c) for c in columns]
    for row in cells:
        for i, text in enumerate(row):
            width = len(text) if text.isascii() else _width(text)
            if width > widths[i]:
                widths[i] = width
    if title is not None:
        yield title + "\n"
    yield _rule(_TOP, widths)
    yield _line(_HEAD, list(columns), widths, right)
    yield _rule(_RULE, widths)
    for row in cells:
        yield _line(_ROW, row, widths, right)
    yield _rule(_BOTTOM, widths)


def rich_table(cells: list[list[str]], columns: Sequence[str], right: Sequence[bool], title: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from ckpt.cli.console import stdout

    table = Table(title=title, title_justify="left")
    for column, is_right in zip(columns, right):
        table.add_column(column, overflow="fold", justify="right" if is_right else "left")
    for row in cells:
        # Text, not str: stored ids like "user[1]" must not be read as rich markup.
        table.add_row(*(Text(text) for text in row))
    stdout().print(table)


def _rule(box: tuple[str, str, str, str], widths: list[int]) -> str:
    left, fill, cross, end = box
    return left + cross.join(fill * (w + 2) for w in widths) + end + "\n"


def _line(box: tuple[str, str, str], texts: list[str], widths: list[int], right: Sequence[bool]) -> str:
    left, between, end = box
    padded = []
    for text, width, is_right in zip(texts, widths, right):
        gap = " " * (width - (len(text) if text.isascii() else _width(text)))
        padded.append(f" {gap}{text} " if is_right else f" {text}{gap} ")
    return left + between.join(padded) + end + "\n"


def _one_line(text: str) -> str:
    return text if text.isprintable() else text.translate(_ESCAPES)


def _width(text: str) -> int:
    """Terminal cells the text takes (wide CJK characters take two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)
