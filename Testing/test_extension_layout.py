"""The Slicer extension's CMake files list exactly the files of the tree.

``slicerMacroBuildScriptedModule`` installs only what its ``SCRIPTS`` / ``RESOURCES`` lists name: a library file
missing there is missing from the extension users install; a listed file that does not exist breaks the build.
When a test here fails, run ``python tools/sync_cmake_lists.py`` (and register new in-Slicer test scripts in
``<Module>/Testing/Python/CMakeLists.txt``).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = "run `python tools/sync_cmake_lists.py` to regenerate the lists"


def _load_sync_tool():
    spec = importlib.util.spec_from_file_location("sync_cmake_lists", ROOT / "tools" / "sync_cmake_lists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_sync_tool()


@pytest.mark.parametrize("module", sorted(sync.MODULES))
def test_cmake_lists_match_the_tree(module: str) -> None:
    problems = sync.differences(module)
    assert not problems, f"{module}/CMakeLists.txt is out of date ({FIX}):\n" + "\n".join(problems)


def test_library_files_are_all_scripts_or_resources() -> None:
    """Every file of SwinX2SLib that git tracks (or would track) ends up in one of the two lists."""
    expected = sync.expected_lists("SwinX2S")
    listed = set(expected["MODULE_PYTHON_SCRIPTS"]) | set(expected["MODULE_PYTHON_RESOURCES"])
    on_disk = {
        path.relative_to(ROOT / "SwinX2S").as_posix()
        for path in (ROOT / "SwinX2S" / "SwinX2SLib").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert on_disk <= listed, f"library files missing from the expected lists: {sorted(on_disk - listed)}"
    assert "SwinX2SLib/slicer_support/__init__.py" in expected["MODULE_PYTHON_SCRIPTS"]
    assert "Resources/UI/SwinX2S.ui" in expected["MODULE_PYTHON_RESOURCES"]


def test_sync_tool_detects_a_missing_and_a_stale_entry(tmp_path: Path) -> None:
    """The check is strict both ways: an unlisted file and a listed non-existent file are both reported."""
    text = (ROOT / "SwinX2STrain" / "CMakeLists.txt").read_text(encoding="utf-8")
    listed = sync.cmake_lists(text, "SwinX2STrain")
    assert listed == sync.expected_lists("SwinX2STrain")
    broken = text.replace("Resources/UI/SwinX2STrain.ui", "Resources/UI/Missing.ui")
    broken_lists = sync.cmake_lists(broken, "SwinX2STrain")["MODULE_PYTHON_RESOURCES"]
    assert "Resources/UI/Missing.ui" in broken_lists and "Resources/UI/SwinX2STrain.ui" not in broken_lists
    regenerated = sync.cmake_lists(sync.render(broken, "SwinX2STrain"), "SwinX2STrain")
    assert regenerated == sync.expected_lists("SwinX2STrain")


def _registered_tests(cmake_file: Path) -> set[str]:
    return set(re.findall(r"slicer_add_python_unittest\(\s*SCRIPT\s+([\w./${}]+)\s*\)", cmake_file.read_text()))


@pytest.mark.parametrize("module", sorted(sync.MODULES))
def test_in_slicer_tests_are_registered(module: str) -> None:
    """Every script of ``<Module>/Testing/Python`` is registered with ``slicer_add_python_unittest`` and vice versa."""
    folder = ROOT / module / "Testing" / "Python"
    registered = _registered_tests(folder / "CMakeLists.txt")
    scripts = {path.name for path in folder.glob("*.py")}
    assert scripts, f"{folder}: no in-Slicer test script"
    assert registered == scripts, f"{folder}/CMakeLists.txt registers {sorted(registered)}; files: {sorted(scripts)}"
    assert "add_subdirectory(Python)" in (ROOT / module / "Testing" / "CMakeLists.txt").read_text()
    assert "${MODULE_NAME}.py" in _registered_tests(ROOT / module / "CMakeLists.txt")


_FAKE_SLICER = {
    "SlicerConfig.cmake": """
set(Slicer_USE_FILE "${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake")
set(Slicer_EXTENSION_GENERATE_CONFIG "${CMAKE_CURRENT_LIST_DIR}/GenerateConfig.cmake")
set(Slicer_EXTENSION_CPACK "${CMAKE_CURRENT_LIST_DIR}/CPack.cmake")
set(RECORD "${CMAKE_BINARY_DIR}/record.txt")
file(WRITE "${RECORD}" "")
""",
    "UseSlicer.cmake": """
function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY "WITH_GENERIC_TESTS;WITH_SUBDIR" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  foreach(f IN LISTS MY_SCRIPTS MY_RESOURCES)
    if(NOT EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${f}")
      message(SEND_ERROR "${MY_NAME}: listed file ${f} does not exist")
    endif()
  endforeach()
  file(APPEND "${RECORD}" "SCRIPTS ${MY_NAME}=${MY_SCRIPTS}\\nRESOURCES ${MY_NAME}=${MY_RESOURCES}\\n")
endfunction()
function(slicer_add_python_unittest)
  cmake_parse_arguments(MY "" "SCRIPT" "" ${ARGN})
  if(NOT EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${MY_SCRIPT}")
    message(SEND_ERROR "unit test script ${MY_SCRIPT} does not exist")
  endif()
  file(APPEND "${RECORD}" "TEST ${CMAKE_CURRENT_SOURCE_DIR}=${MY_SCRIPT}\\n")
endfunction()
""",
    "GenerateConfig.cmake": """
foreach(key HOMEPAGE CATEGORY CONTRIBUTORS DESCRIPTION ICONURL SCREENSHOTURLS DEPENDS)
  file(APPEND "${RECORD}" "EXTENSION ${key}=${EXTENSION_${key}}\\n")
endforeach()
""",
    "CPack.cmake": "file(APPEND \"${RECORD}\" \"CPACK included\\n\")\n",
}


_FAKE_SLICER_VERSION = """
set(PACKAGE_VERSION "{version}")
if("${{PACKAGE_VERSION}}" VERSION_LESS "${{PACKAGE_FIND_VERSION}}")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
"""
"""``SlicerConfigVersion.cmake`` as Slicer generates it (``CMake/SlicerConfigVersion.cmake.in``)."""


def _configure_with_stand_in_slicer(tmp_path: Path, version: str) -> tuple[subprocess.CompletedProcess, Path]:
    fake = tmp_path / "fake-slicer"
    fake.mkdir()
    for name, text in _FAKE_SLICER.items():
        (fake / name).write_text(text)
    (fake / "SlicerConfigVersion.cmake").write_text(_FAKE_SLICER_VERSION.format(version=version))
    build = tmp_path / "build"
    completed = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), f"-DSlicer_DIR={fake}", "-DBUILD_TESTING:BOOL=ON",
         "-DCMAKE_C_COMPILER_WORKS=1", "-DCMAKE_CXX_COMPILER_WORKS=1"],
        capture_output=True, text=True, timeout=120,
    )
    return completed, build


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_refuses_a_slicer_older_than_5_10(tmp_path: Path) -> None:
    """Slicer 5.8 (Python 3.9, colour tables without terminology) cannot run the modules: the build says so."""
    completed, _build = _configure_with_stand_in_slicer(tmp_path, "5.8")
    assert completed.returncode != 0 and "5.10" in completed.stderr


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_configures_with_a_stand_in_slicer(tmp_path: Path) -> None:
    """Configure the real CMakeLists with a stand-in Slicer package: the lists CMake itself sees match the tree."""
    completed, build = _configure_with_stand_in_slicer(tmp_path, "5.10")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record: dict[str, str] = {}
    for line in (build / "record.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        record[key] = value
    assert "CPACK included" in record
    for module in sync.MODULES:
        expected = sync.expected_lists(module)
        assert record[f"SCRIPTS {module}"].split(";") == expected["MODULE_PYTHON_SCRIPTS"], FIX
        assert record[f"RESOURCES {module}"].split(";") == expected["MODULE_PYTHON_RESOURCES"], FIX
        assert record[f"TEST {ROOT / module}"] == f"{module}.py"
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert record[f"EXTENSION {key}"], f"EXTENSION_{key} is empty"


def test_sync_tool_check_mode_passes() -> None:
    completed = subprocess.run([sys.executable, str(ROOT / "tools" / "sync_cmake_lists.py"), "--check"],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
