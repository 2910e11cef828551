#!/usr/bin/env python3
"""Regenerate the file lists of the Slicer module CMakeLists from the source tree.

``slicerMacroBuildScriptedModule`` installs only the files its ``SCRIPTS`` and ``RESOURCES`` lists name, so a
library file that is missing there is missing from the extension a user installs. This script rewrites the
``set(MODULE_PYTHON_SCRIPTS ...)`` and ``set(MODULE_PYTHON_RESOURCES ...)`` blocks of every module's
``CMakeLists.txt``:

- scripts: the module file ``<Module>.py`` and every ``.py`` file of a library package inside the module folder
  (``SwinX2S/SwinX2SLib/**``, ``SwinX2S/SwinX2SModuleLib/**``);
- resources: every file under ``<Module>/Resources/`` and every other (non-Python) file of the library packages
  (configs, built-in model files).

Files git ignores (caches, build outputs) are left out. ``Testing/test_extension_layout.py`` fails whenever
the lists and the tree disagree.

Usage::

    python tools/sync_cmake_lists.py           # rewrite the lists
    python tools/sync_cmake_lists.py --check   # exit 1 and print the differences instead
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES: dict[str, tuple[str, ...]] = {"SwinX2S": ("SwinX2SLib", "SwinX2SModuleLib"), "SwinX2STrain": ()}
"""Each module folder and the library packages it ships."""

BLOCKS = ("MODULE_PYTHON_SCRIPTS", "MODULE_PYTHON_RESOURCES")
_SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def _tree_files(folder: Path) -> list[Path]:
    """Files under ``folder`` that belong to the source tree (git's view when available), relative to ROOT."""
    if not folder.is_dir():
        return []
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", str(folder)],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8")
        candidates = [ROOT / name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        candidates = [path for path in folder.rglob("*")]
    return sorted(
        path.relative_to(ROOT)
        for path in candidates
        if path.is_file()
        and not _SKIPPED_PARTS.intersection(path.parts)
        and path.suffix not in _SKIPPED_SUFFIXES
        and not any(part.endswith(".egg-info") for part in path.parts)
    )


def expected_lists(module: str) -> dict[str, list[str]]:
    """The scripts and resources ``module`` must list, as paths relative to the module folder.

    Returns:
        ``{"MODULE_PYTHON_SCRIPTS": [...], "MODULE_PYTHON_RESOURCES": [...]}``, each sorted, module file first.
    """
    module_dir = ROOT / module
    scripts = [f"{module}.py"]
    resources = [path.relative_to(module).as_posix() for path in _tree_files(module_dir / "Resources")]
    for package in MODULES[module]:
        for path in _tree_files(module_dir / package):
            relative = path.relative_to(module).as_posix()
            (scripts if path.suffix == ".py" else resources).append(relative)
    return {"MODULE_PYTHON_SCRIPTS": scripts, "MODULE_PYTHON_RESOURCES": sorted(resources)}


def _block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(set\(\s*{name}\b)(.*?)(\n\s*\))", re.DOTALL)


def _expand(entry: str, module: str) -> str:
    return entry.replace("${MODULE_NAME}", module)


def cmake_lists(cmake_text: str, module: str) -> dict[str, list[str]]:
    """The entries of the list blocks of a module ``CMakeLists.txt`` (``${MODULE_NAME}`` expanded).

    Raises:
        ValueError: when a block is missing.
    """
    lists = {}
    for name in BLOCKS:
        match = _block_pattern(name).search(cmake_text)
        if match is None:
            raise ValueError(f"{module}/CMakeLists.txt: no set({name} ...) block")
        lines = (line.split("#", 1)[0].strip() for line in match.group(2).splitlines())
        lists[name] = [_expand(line, module) for line in lines if line]
    return lists


def render(cmake_text: str, module: str) -> str:
    """``cmake_text`` with its list blocks replaced by :func:`expected_lists`."""
    expected = expected_lists(module)
    for name in BLOCKS:
        body = "".join(f"\n  {entry}" for entry in expected[name])
        cmake_text, count = _block_pattern(name).subn(lambda m, body=body: m.group(1) + body + m.group(3),
                                                      cmake_text, count=1)
        if count != 1:
            raise ValueError(f"{module}/CMakeLists.txt: no set({name} ...) block")
    return cmake_text


def differences(module: str) -> list[str]:
    """Human-readable differences between the tree and the module's CMake lists (empty when in sync)."""
    listed = cmake_lists((ROOT / module / "CMakeLists.txt").read_text(encoding="utf-8"), module)
    problems = []
    for name, expected in expected_lists(module).items():
        missing = sorted(set(expected) - set(listed[name]))
        stale = sorted(set(listed[name]) - set(expected))
        problems += [f"{module}/{entry}: exists but is not in {name}" for entry in missing]
        problems += [f"{module}/{entry}: listed in {name} but does not exist" for entry in stale]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences instead of rewriting")
    args = parser.parse_args(argv)
    if args.check:
        problems = [problem for module in MODULES for problem in differences(module)]
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for module in MODULES:
        path = ROOT / module / "CMakeLists.txt"
        text = path.read_text(encoding="utf-8")
        new_text = render(text, module)
        if new_text != text:
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(new_text, encoding="utf-8")
            os.replace(temporary, path)
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
