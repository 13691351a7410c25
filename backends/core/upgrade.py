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

    ``steps`` run before the records are rewritten, ``after`` once they all are (dropping what
    the old layout kept beside them). ``rewrite_all``: every checkpoint is stored again in the
    current form (the old documents cannot be read by today's saver); otherwise only those
    whose v<4 Sends must be put inline are. A store that is current has no steps and no
    ``rewrite_all``.
    """

    generation: str
    steps: tuple[UpgradeStep, ...] = ()
    after: tuple[UpgradeStep, ...] = ()
    rewrite_all: bool = False

    @property
    def current(self) -> bool:
        return not (self.steps or self.after or self.rewrite_all)
