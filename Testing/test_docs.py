"""The documentation names what exists: files, tests and commands in docs/*.md and README.md (no stale references)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from SwinX2SLib.cli import COMMANDS, build_parser

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_named_tests_and_test_files_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for file, test in re.findall(r"`?(Testing/\w+\.py)(?:::(\w+))?", text):
        assert (REPO_ROOT / file).is_file(), f"{page.name} names {file}"
        if test:
            assert test in _test_names(REPO_ROOT / file), f"{page.name} names {file}::{test}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_named_commands_and_options_exist(page: Path) -> None:
    """Every ``swinx2s COMMAND [SUBCOMMAND] --option`` in backticks parses, up to its first argument."""
    parser = build_parser()
    for snippet in re.findall(r"`(swinx2s [^`]+)`", page.read_text(encoding="utf-8")):
        words = snippet.split()[1:]
        assert words[0] in COMMANDS or words[0].startswith("-"), f"{page.name}: {snippet}"
        sub = parser._subparsers._group_actions[0].choices.get(words[0])
        if sub is None:
            continue
        nested = [a for a in sub._actions if a.choices and not a.option_strings and isinstance(a.choices, dict)]
        if nested and len(words) > 1 and not words[1].startswith("-"):
            assert words[1] in nested[0].choices, f"{page.name}: {snippet}: unknown sub-command {words[1]}"
            sub = nested[0].choices[words[1]]  # the options of `swinx2s model import` are import's
        known = {option for action in sub._actions for option in action.option_strings}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"{page.name}: {snippet}: unknown option {word}"


def test_architecture_page_names_existing_library_files() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    library = REPO_ROOT / "SwinX2S" / "SwinX2SLib"
    names = re.findall(r"(published )?`((?:network/|measurements/|training/|cli/)?\w+\.py)(?:::\w+)?`", text)
    assert len(names) > 10
    for published, name in names:
        if published:  # a file of the published Swin-X2S code
            continue
        assert (library / name).is_file() or (REPO_ROOT / name).is_file(), f"architecture.md names {name}"


def test_architecture_layout_names_existing_files_and_folders() -> None:
    """Every ``name.py`` and ``folder/`` of the page's layout block exists where the block puts it: top-level
    entries in the repository or ``SwinX2S/``, indented ones in ``SwinX2S/SwinX2SLib/`` (or in the folder their
    entry starts with, e.g. ``network/``)."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("```")[1]
    library = REPO_ROOT / "SwinX2S" / "SwinX2SLib"
    folder = ""
    checked = 0
    for line in layout.splitlines():
        indent = len(line) - len(line.lstrip())
        first = line.split()[0] if line.strip() else ""
        if indent <= 4:
            folder = first if first.endswith("/") else ""
        bases = [library, library / folder] if indent >= 4 else [REPO_ROOT, REPO_ROOT / "SwinX2S"]
        for token in re.findall(r"(?<![\w./])([\w/]+(?:\.py|/))(?=[\s,):;]|$)", line):
            checked += 1
            assert any((base / token).exists() for base in bases), f"architecture.md's layout: {token} ({line.strip()})"
    assert checked > 20
