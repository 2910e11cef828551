"""Reload & Test: re-import a package with all its submodules (Slicer's Reload re-runs only the module file)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def reload_package(package: ModuleType) -> list[str]:
    """Re-import every loaded submodule of ``package``, deepest first, then the package itself.

    Returns:
        The names of the reloaded modules, in reload order.
    """
    prefix = package.__name__ + "."
    names = sorted((name for name in sys.modules if name.startswith(prefix)), key=lambda n: (-n.count("."), n))
    for name in names:
        importlib.reload(sys.modules[name])
    importlib.reload(package)
    return [*names, package.__name__]
