"""Tables: rich's for a person at a terminal, and a plain formatter that draws the same box.

The plain formatter is for pipes and large listings: rich measures and fits every cell to the
console width (~8 µs a cell row, and folds long ids at 80 columns when piped); this one sizes
the columns in one pass over the rows and never folds. For text without control characters
its output equals rich's at unlimited width, without colour (tests/cli/test_table.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

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


def unique_prefix_length(ids: Iterable[str], minimum: int = 8) -> int:
    """The shortest length (at least ``minimum``) at which the prefixes of the distinct ``ids`` are
    all distinct, as ``git log --abbrev`` picks one for a listing: every shown prefix names one id."""
    distinct = sorted(set(ids))
    length = minimum
    for a, b in zip(distinct, distinct[1:]):
        common = 0
        for x, y in zip(a, b):
            if x != y:
                break
            common += 1
        # b sorts after a: b is longer than their common part unless a is a prefix of b
        length = max(length, min(common + 1, len(b)))
    return length


def fit_columns(
    cells: list[list[str]],
    columns: Sequence[str],
    width: int,
    drop: Sequence[str] = (),
    shrink: Sequence[str] = (),
) -> tuple[list[list[str]], list[str]]:
    """Cells and columns of a table that fits in ``width`` terminal cells, so no row wraps: the
    columns in ``drop`` go first, in that order, while the table is too wide; then the cells of the
    columns in ``shrink`` are cut (ending in ``…``) down to no less than 8 cells. A table still too
    wide after that (a very narrow terminal) is returned as it is then."""
    kept = list(columns)
    index = {c: i for i, c in enumerate(columns)}

    def widths() -> dict[str, int]:
        return {c: max([_width(c)] + [_width(_one_line(row[index[c]])) for row in cells]) for c in kept}

    def total(sizes: dict[str, int]) -> int:
        return sum(sizes.values()) + 3 * len(sizes) + 1  # "│ " before each cell, " " after, "│" at the end

    sizes = widths()
    for column in drop:
        if total(sizes) <= width:
            break
        if column in sizes and len(kept) > 1:
            kept.remove(column)
            sizes = widths()
    limits = dict(sizes)
    for column in shrink:
        excess = total(limits) - width
        if excess <= 0:
            break
        if column in limits:
            limits[column] = max(8, _width(column), limits[column] - excess)
    out = [[_cut(_one_line(row[index[c]]), limits[c]) for c in kept] for row in cells]
    return out, kept


def _cut(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    while _width(text) > limit - 1:
        text = text[:-1]
    return text + "…"
