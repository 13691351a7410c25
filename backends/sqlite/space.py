"""How many pages a table or index would take after VACUUM: the packing behind ``reclaimable_bytes``."""

from __future__ import annotations


class PackedTree:
    """Pages a b-tree takes when its cells are inserted in key order (VACUUM): leaves filled one
    after the other (SQLite's append balance), large records spilled to overflow pages, and the
    interior pages above the leaves. An estimate: varints are counted at their usual sizes."""

    def __init__(self, usable: int, *, index: bool) -> None:
        self.usable, self.index = usable, index
        self.leaves = self.overflow = self.cells = 0
        self.fill = usable  # the current leaf is full: the first cell starts one

    def add(self, payload: int) -> None:
        u = self.usable
        most = (u - 12) * 64 // 255 - 23 if self.index else u - 35
        local = payload
        if payload > most:
            least = (u - 12) * 32 // 255 - 23
            local = least + (payload - least) % (u - 4)
            local = local if local <= most else least
            self.overflow += -(-(payload - local) // (u - 4))
            local += 4
        cell = local + (3 if self.index else 6) + 2  # size and rowid varints, the cell pointer
        if self.fill + cell > u - 8:
            self.leaves, self.fill = self.leaves + 1, 0
        self.fill += cell
        self.cells += 1

    def pages(self) -> int:
        if self.cells == 0:
            return 1  # an empty table still has its root page
        interior, level = 0, self.leaves
        while level > 1:  # ~12 bytes a child pointer and key in a table, ~a key in an index
            level = -(-level * (12 if not self.index else 60) // (self.usable - 12))
            interior += level
        return self.leaves + self.overflow + interior
