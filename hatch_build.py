"""Hatchling build hook: editable installs expose cli/, backends/, formats/, savers/ as ``ckpt.*``.

Hatchling's editable wheels copy ``force-include`` entries (edits would not show)
and reject ``sources`` rewrites that add a prefix. For editable builds only, we
create ``build/editable/ckpt/<pkg>`` as directory symlinks into the checkout and
ship a ``.pth`` naming ``build/editable``. Imports, new modules and mypy then all
see the live folders. Normal wheels are untouched.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGES = ("cli", "backends", "formats", "savers")
PUBLIC_INIT = "backends/public.py"
"""Installed as ``ckpt/__init__.py`` (the wheel: pyproject.toml's force-include)."""


class EditableLinkTree(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "editable":
            return
        tree = os.path.join(self.root, "build", "editable")
        os.makedirs(os.path.join(tree, "ckpt"), exist_ok=True)
        for name in PACKAGES:
            link = os.path.join(tree, "ckpt", name)
            if os.path.islink(link):  # refresh: the checkout may have moved
                os.unlink(link)
            os.symlink(os.path.join(self.root, name), link, target_is_directory=True)
        init = os.path.join(tree, "ckpt", "__init__.py")  # ``import ckpt``: the public API
        if os.path.lexists(init):
            os.unlink(init)
        os.symlink(os.path.join(self.root, PUBLIC_INIT), init)
        self._tmp = tempfile.TemporaryDirectory()
        pth = os.path.join(self._tmp.name, "_ckpt_editable.pth")
        with open(pth, "w", encoding="utf-8") as f:
            f.write(tree + "\n")
        # A non-empty force_include_editable replaces the wheel's force-include map.
        build_data["force_include_editable"] = {pth: "_ckpt_editable.pth"}

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if version == "editable":
            self._tmp.cleanup()
