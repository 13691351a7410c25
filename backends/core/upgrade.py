"""What bringing a store to its current saver's layout takes (``ckpt upgrade``), per driver.

A driver that recognises the layout generation it found describes it and lists the steps that
make it current; each step is idempotent (a rerun after a kill finishes the work and changes
nothing that is already done). Rewriting records (v<4 Sends put inline) is store-independent
and lives in :mod:`ckpt.backends.ops.upgrade`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UpgradeStep:
    """One change: what it does, how much it touches, and the call that does it (idempotently)."""

    name: str
    description: str
    count: int
    apply: Callable[[], int] = field(compare=False, repr=False)


@dataclass(frozen=True)
class LayoutUpgrade:
    """The layout generation a driver found and what makes it current.

    ``steps`` is empty for a store that is current already. ``rewrite_records`` says whether
    the store's checkpoints must carry v<4 Sends inline (its saver does not rebuild them).
    """

    generation: str
    steps: tuple[UpgradeStep, ...] = ()
    rewrite_records: bool = True
