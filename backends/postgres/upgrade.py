"""``ckpt upgrade`` for PostgreSQL: the saver's own schema migrations, as its ``setup()`` runs them.

langgraph-checkpoint-postgres 1.0.x and 2.0.0 shipped migrations 0-4; 2.0.x added 5-9 (indexes
on ``thread_id``, ``checkpoint_writes.task_path``). Their data is read as it is by today's saver
(blobs per channel version, v<4 Sends rebuilt from the parent's writes), so only the missing
migrations run; each is recorded as it completes, so a rerun after a kill continues from there.
"""

from __future__ import annotations

from collections.abc import Callable

from ckpt.backends.core.upgrade import LayoutUpgrade, UpgradeStep
from ckpt.backends.postgres import schema as pg_schema


def layout_upgrade(migration: int | None, migrate: Callable[[], None]) -> LayoutUpgrade | None:
    """``migration``: the highest recorded in ``checkpoint_migrations`` (``None``: no such table)."""
    latest = pg_schema.LATEST_VERSION
    if migration is None or migration > latest:
        return None  # not written by a saver ckpt knows, or by a newer one: never touched
    generation = f"langgraph-checkpoint-postgres, migrations 0-{migration} of 0-{latest}"
    if migration == latest:
        return LayoutUpgrade(generation)
    missing = latest - migration
    step = UpgradeStep(
        "run-migrations",
        f"run the saver's migrations {migration + 1}-{latest}, as PostgresSaver.setup() does",
        missing,
        lambda: _run(migrate, missing),
    )
    return LayoutUpgrade(generation, steps=(step,))


def _run(migrate: Callable[[], None], missing: int) -> int:
    migrate()
    return missing
