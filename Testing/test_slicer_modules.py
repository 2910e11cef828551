"""The Slicer modules, checked without Slicer.

* static: both module files (and their in-Slicer tests) compile; every widget the code reads exists in the ``.ui``
  file with the expected class; every ``SlicerParameterName`` binds a parameter-node field to a widget that Slicer's
  ``parameterNodeWrapper`` can connect; the CMake metadata is complete; the Extensions Index entry matches it;
  ``requirements.txt`` agrees with ``pyproject.toml``; the icons are 128 x 128 PNGs.
* :mod:`SwinX2SLib.slicer_support` against the real ``swinx2s`` command line, run the way the modules run it
  (``python -m SwinX2SLib.cli`` with :func:`~SwinX2SLib.slicer_support.subprocess_environment`).
"""

from __future__ import annotations

import ast
import json
import os
import py_compile
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SwinX2SLib import slicer_support
from SwinX2SLib.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
MODULES = {
    "SwinX2S": (ROOT / "SwinX2S" / "SwinX2S.py", ROOT / "SwinX2S" / "Resources" / "UI" / "SwinX2S.ui"),
    "SwinX2STrain": (ROOT / "SwinX2STrain" / "SwinX2STrain.py",
                     ROOT / "SwinX2STrain" / "Resources" / "UI" / "SwinX2STrain.ui"),
}

# ------------------------------------------------------------------------------------------------ static checks

WIDGET_SUFFIX_CLASSES = {
    "CollapsibleButton": {"ctkCollapsibleButton"},
    "PathLineEdit": {"ctkPathLineEdit"},
    "Button": {"QPushButton", "QToolButton"},
    "Selector": {"qMRMLNodeComboBox"},
    "ComboBox": {"QComboBox"},
    "CheckBox": {"QCheckBox"},
    "SpinBox": {"QSpinBox", "QDoubleSpinBox"},
    "LineEdit": {"QLineEdit"},
    "Label": {"QLabel"},
    "ProgressBar": {"QProgressBar"},
    "GroupBox": {"QGroupBox"},
}
"""Naming rule of the modules: a widget's name ends with its kind (longest suffix wins)."""

CONNECTABLE = {
    "bool": {"QCheckBox", "QPushButton"},
    "int": {"QSpinBox", "QSlider"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget"},
    "str": {"QLineEdit", "QTextEdit"},
    "Path": {"ctkPathLineEdit", "ctkDirectoryButton"},
    "node": {"qMRMLNodeComboBox"},
}
"""Widget classes Slicer's parameterNodeWrapper connects to each field type (``guiConnectors.py``, Slicer 5.x);
a ``QComboBox`` connects to a str/int/float/bool field only with a ``Choice`` annotation."""


def _ui_widgets(ui_file: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """``{name: (class, {property: text})}`` of every widget of a Qt Designer file."""
    widgets = {}
    for element in ET.parse(ui_file).getroot().iter("widget"):
        properties = {}
        for prop in element.findall("property"):
            values = [v.text.strip() for v in prop.iter() if v is not prop and v.text and v.text.strip()]
            properties[prop.get("name")] = ";".join(values)
        widgets[element.get("name")] = (element.get("class"), properties)
    return widgets


def _ui_names_read_by_code(source: str) -> set[str]:
    return set(re.findall(r"\bself\.ui\.(\w+)", source))


def _expected_classes(name: str) -> set[str]:
    capitalised = name[:1].upper() + name[1:]
    for suffix in sorted(WIDGET_SUFFIX_CLASSES, key=len, reverse=True):
        if capitalised.endswith(suffix):
            return WIDGET_SUFFIX_CLASSES[suffix]
    raise AssertionError(f"widget name {name!r} does not end with a known kind ({', '.join(WIDGET_SUFFIX_CLASSES)})")


def _parameter_fields(source: str) -> dict[str, tuple[str, bool]]:
    """Fields of the ``@parameterNodeWrapper`` class: ``{name: (type kind, has Choice)}``."""
    tree = ast.parse(source)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)
               and any(getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list)]
    assert len(classes) == 1, "expected exactly one @parameterNodeWrapper class"
    fields = {}
    for statement in classes[0].body:
        if not isinstance(statement, ast.AnnAssign):
            continue
        annotation, choice = statement.annotation, False
        if isinstance(annotation, ast.Subscript) and getattr(annotation.value, "id", None) == "Annotated":
            base, *extras = annotation.slice.elts
            choice = any(isinstance(e, ast.Call) and getattr(e.func, "id", None) == "Choice" for e in extras)
            annotation = base
        name = ast.unparse(annotation)
        fields[statement.target.id] = ("node" if name.startswith("vtkMRML") else name, choice)
    return fields


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_files_compile(module: str, tmp_path: Path) -> None:
    module_file = MODULES[module][0]
    for path in [module_file, *sorted((module_file.parent / "Testing" / "Python").glob("*.py"))]:
        py_compile.compile(str(path), cfile=str(tmp_path / f"{path.stem}.pyc"), doraise=True)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_widgets_read_by_the_code_exist_with_the_expected_class(module: str) -> None:
    module_file, ui_file = MODULES[module]
    widgets = _ui_widgets(ui_file)
    used = _ui_names_read_by_code(module_file.read_text(encoding="utf-8"))
    assert used, f"{module_file.name} reads no widget"
    missing = sorted(used - set(widgets))
    assert not missing, f"{module_file.name} reads widgets that {ui_file.name} lacks: {missing}"
    for name in sorted(used):
        assert widgets[name][0] in _expected_classes(name), f"{ui_file.name}: {name} is a {widgets[name][0]}"
    assert widgets[module][0] == "qMRMLWidget", "the top-level widget must be a qMRMLWidget named after the module"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_parameter_names_bind_fields_to_connectable_widgets(module: str) -> None:
    module_file, ui_file = MODULES[module]
    fields = _parameter_fields(module_file.read_text(encoding="utf-8"))
    bound = {props["SlicerParameterName"]: (name, cls)
             for name, (cls, props) in _ui_widgets(ui_file).items() if "SlicerParameterName" in props}
    assert bound, f"{ui_file.name} binds no parameter"
    for parameter, (widget, widget_class) in sorted(bound.items()):
        assert parameter in fields, f"{ui_file.name}: {widget} is bound to unknown parameter {parameter!r}"
        kind, choice = fields[parameter]
        if widget_class == "QComboBox":
            assert choice, f"{parameter}: a QComboBox needs a Choice-annotated field"
        else:
            assert widget_class in CONNECTABLE[kind], f"{parameter} ({kind}) cannot be bound to a {widget_class}"
    assert len({w for w, _ in bound.values()}) == len(bound)


def test_node_selectors_offer_the_field_node_class() -> None:
    """Each node selector lists the node class of the field it is bound to."""
    module_file, ui_file = MODULES["SwinX2S"]
    source = module_file.read_text(encoding="utf-8")
    annotations = dict(re.findall(r"^    (\w+): (vtkMRML\w+)$", source, flags=re.MULTILINE))
    for _name, (cls, props) in _ui_widgets(ui_file).items():
        if cls == "qMRMLNodeComboBox":
            assert props["nodeTypes"] == annotations[props["SlicerParameterName"]]


def _cmake_metadata() -> dict[str, str]:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    return dict(re.findall(r'set\(EXTENSION_(\w+)\s+"([^"]*)"\)', text))


def test_cmake_metadata_is_complete() -> None:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    meta = _cmake_metadata()
    required = ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS")
    assert not [key for key in required if not meta.get(key, "").strip()]
    assert meta["HOMEPAGE"] == "https://github.com/swinx2s/SlicerSwinX2S"
    assert meta["CATEGORY"] == "Segmentation"
    assert meta["DEPENDS"] == "PyTorch"
    for key in ("ICONURL", "SCREENSHOTURLS"):
        for url in meta[key].split():
            prefix = "https://raw.githubusercontent.com/swinx2s/SlicerSwinX2S/main/"
            assert url.startswith(prefix), url
            assert (ROOT / url.removeprefix(prefix)).is_file(), f"{key} points to a file the repository lacks: {url}"
    for line in ("project(SwinX2S)", "find_package(Slicer 5.10 REQUIRED)", "include(${Slicer_USE_FILE})",
                 "add_subdirectory(SwinX2S)", "add_subdirectory(SwinX2STrain)",
                 "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"):
        assert line in text, f"CMakeLists.txt lacks {line}"


SCHEMA_V102_PROPERTIES = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                          "dicom_support_rule", "build_subdirectory", "enabled", "tier"}
"""Properties of Slicer's ``slicer-extension-catalog-entry-schema-v1.0.2.json`` (additionalProperties: false)."""


def test_the_minimum_slicer_version_is_stated_truly_everywhere() -> None:
    """Slicer 5.10 (Python 3.12) is the first with colour tables carrying terminology (5.8.1 ships Python 3.9, on
    which the modules do not even import): CMake requires it, the README and the user guide say so."""
    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    required = re.search(r"find_package\(Slicer ([0-9.]+) REQUIRED\)", cmake)
    assert required is not None and required.group(1) == "5.10"
    for document in ("README.md", "docs/user_guide.md"):
        text = (ROOT / document).read_text(encoding="utf-8")
        assert "Slicer 5.10 or later (Python 3.12" in text, document
        assert not re.search(r"Slicer 5\.[0-9] or later", text), document
    for module, (path, _ui) in MODULES.items():
        ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 12))
        assert "Slicer 5.10 or later" in path.read_text(encoding="utf-8"), module


def test_extensions_index_entry_matches_the_cmake_metadata() -> None:
    entry = json.loads((ROOT / "SwinX2S.json").read_text(encoding="utf-8"))
    meta = _cmake_metadata()
    assert set(entry) <= SCHEMA_V102_PROPERTIES, f"not in schema v1.0.2: {sorted(set(entry) - SCHEMA_V102_PROPERTIES)}"
    assert {"$schema", "category", "scm_url"} <= set(entry)
    assert entry["$schema"].endswith("/Schemas/slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry["category"] == meta["CATEGORY"]
    assert entry["scm_url"].removesuffix(".git") == meta["HOMEPAGE"]
    assert entry["build_dependencies"] == meta["DEPENDS"].split()
    assert entry["scm_revision"]
    assert isinstance(entry["tier"], int) and 1 <= entry["tier"] <= 5


SLICER_BUNDLED = {"numpy", "simpleitk", "vtk", "pydicom", "pillow", "torch"}
"""Packages Slicer ships (or the PyTorch extension installs): never pip-installed into Slicer by SwinX2S."""


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].strip().lower() for line in requirements}


def test_requirements_match_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    lines = [line.split("#")[0].strip() for line in (ROOT / "SwinX2S" / "Resources" / "requirements.txt")
             .read_text(encoding="utf-8").splitlines()]
    requirements = [line for line in lines if line]
    assert _names(requirements) == _names(project) - SLICER_BUNDLED
    assert slicer_support.missing_requirements(ROOT / "SwinX2S" / "Resources" / "requirements.txt") == []


def test_missing_requirements_reports_what_is_absent_or_too_old(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\n--index-url https://example.org\nnumpy>=1.0\nnumpy>=999\n"
                    "surely-not-installed-package-xyz\nscipy; python_version < '3.0'\n")
    assert slicer_support.missing_requirements(path) == ["numpy>=999", "surely-not-installed-package-xyz"]


@pytest.mark.parametrize("icon", ["Resources/Icons/SwinX2S.png", "SwinX2S/Resources/Icons/SwinX2S.png",
                                  "SwinX2STrain/Resources/Icons/SwinX2STrain.png"])
def test_icons_are_128_pixel_pngs(icon: str) -> None:
    from PIL import Image

    with Image.open(ROOT / icon) as image:
        assert image.format == "PNG" and image.size == (128, 128)
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 50, "icon looks blank"


# ------------------------------------------------------------------------------------ command lines and events


def test_reconstruct_arguments_follow_the_mode() -> None:
    xray = slicer_support.ReconstructParameters("out", coronal="ap.png", sagittal="lat.png", pixel_spacing_mm=0.3,
                                                model="models/m", meshes="stl", largest_component=True, measure=True)
    assert xray.as_arg_list() == ["reconstruct", "--coronal", "ap.png", "--sagittal", "lat.png", "--pixel-spacing",
                                  "0.3", "-o", "out", "--device", "auto", "--model", "models/m", "--meshes", "stl",
                                  "--largest-component", "--measure", "--overwrite", "--progress", "json"]
    ct = slicer_support.ReconstructParameters("out", ct="ct.nrrd", label="lab.nrrd", device="cpu", overwrite=False)
    assert ct.mode == "ct"
    assert ct.as_arg_list(progress=False) == ["reconstruct", "--ct", "ct.nrrd", "--label", "lab.nrrd", "-o", "out",
                                              "--device", "cpu"]
    for bad, reason in [
        (slicer_support.ReconstructParameters("out", coronal="ap.png"), "both X-rays"),
        (slicer_support.ReconstructParameters("out", ct="ct.nrrd", coronal="ap.png"), "not both"),
        (slicer_support.ReconstructParameters("", ct="ct.nrrd"), "output folder"),
        (slicer_support.ReconstructParameters("out", ct="ct.nrrd", device="tpu"), "device"),
        (slicer_support.ReconstructParameters("out", ct="ct.nrrd", meshes="ply"), "mesh format"),
    ]:
        assert not bad.is_valid()[0] and reason in bad.is_valid()[1]
        with pytest.raises(ValueError, match=reason):
            bad.as_arg_list()


def test_every_command_is_listed_and_a_broken_command_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """``swinx2s --help`` (a real subprocess) lists every command module; one that does not import is an error,
    never a silently missing command."""
    help_text = _swinx2s(["--help"]).stdout
    listed = {name for name in COMMANDS if re.search(rf"^\s+{name}\s", help_text, flags=re.MULTILINE)}
    assert listed == set(COMMANDS)
    import SwinX2SLib.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", (*COMMANDS, "no_such_command"))
    with pytest.raises(ModuleNotFoundError, match="no_such_command"):
        cli.build_parser()


def test_option_lists_are_shared_by_the_command_line_and_the_modules() -> None:
    """Each option list is written once (``SwinX2SLib.options``): argparse offers exactly the lists the modules
    build their commands and parameter nodes from."""
    from SwinX2SLib import options
    from SwinX2SLib.cli import build_parser

    commands = {a.dest: a for a in build_parser()._actions if a.dest == "command"}["command"].choices
    choices = {(name, a.dest): a.choices for name, p in commands.items() for a in p._actions if a.choices}
    assert choices[("reconstruct", "device")] is options.DEVICES is slicer_support.DEVICES
    assert choices[("reconstruct", "meshes")] is options.MESH_FORMATS is slicer_support.MESH_FORMATS
    assert choices[("drr", "geometry")] is options.DRR_GEOMETRIES is slicer_support.DRR_GEOMETRIES
    assert choices[("train", "progress")] is options.PROGRESS_MODES
    imports = {a.dest: a for a in commands["model"]._actions}["model_command"].choices["import"]
    assert {a.dest: a.choices for a in imports._actions}["task"] is options.SUBSET_TASK_NAMES
    assert slicer_support.MODEL_VARIANTS is options.MODEL_VARIANTS
    assert slicer_support.TRAIN_PRESETS is options.TRAIN_PRESETS


def test_the_label_rule_is_the_command_lines(tmp_path: Path) -> None:
    """A reference label goes with a CT or a published input pair, never with plain radiographs: the module's
    check and the command line agree (the module used to refuse the published pair)."""
    published = slicer_support.ReconstructParameters("out", coronal="s_input_cor.nii.gz",
                                                     sagittal="s_input_sag.nii.gz", label="s_label.nii.gz")
    assert published.is_valid()[0] and published.as_arg_list()[5:7] == ["--label", "s_label.nii.gz"]
    plain = slicer_support.ReconstructParameters("out", coronal="ap.png", sagittal="lat.png", label="l.nii.gz")
    assert "published input pair" in plain.is_valid()[1]
    for name in ("ap.png", "lat.png", "l.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    completed = _swinx2s(["reconstruct", "--coronal", str(tmp_path / "ap.png"), "--sagittal", str(tmp_path / "lat.png"),
                          "--label", str(tmp_path / "l.nii.gz"), "-o", str(tmp_path / "o")])
    assert completed.returncode != 0 and "published input pair" in completed.stderr


def test_reconstruct_options_exist_in_the_command_line() -> None:
    """Every option the module passes is accepted by ``swinx2s reconstruct`` (checked on its --help)."""
    help_text = _swinx2s(["reconstruct", "--help"]).stdout
    for option in ("--coronal", "--sagittal", "--ct", "--label", "--model", "--device", "--pixel-spacing",
                   "--meshes", "--largest-component", "--overwrite", "--progress"):
        assert option in help_text
    assert "--progress" in _swinx2s(["measure", "--help"]).stdout


def _environment() -> dict[str, str]:
    env = slicer_support.subprocess_environment()
    env.pop("SWINX2S_MODELS_DIR", None)
    return env


def _swinx2s(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(slicer_support.command_line(sys.executable, args), env=_environment(),
                          capture_output=True, timeout=timeout, text=True)


def _events(stdout: bytes | str, chunk: int = 7) -> list[slicer_support.Event]:
    """Parse output the way QProcess delivers it: in small chunks that split lines (and UTF-8 characters)."""
    data = stdout.encode() if isinstance(stdout, str) else stdout
    parser = slicer_support.EventParser()
    events = []
    for start in range(0, len(data), chunk):
        events += parser.feed(data[start:start + chunk])
    return events + parser.finish()


def test_event_parser_handles_split_lines_and_non_protocol_output() -> None:
    text = ('{"event": "progress", "stage": "load", "fraction": 0.25, "message": "lecture — ok"}\n'
            "plain log line\n\n"
            '{"event": "warning", "message": "no spacing"}\n'
            '{"event": "progress", "stage": "x"}\n'
            '[1, 2]\n'
            '{"event": "result", "files": ["a.nii.gz"], "n": 3}')
    events = _events(text, chunk=5)
    assert events == [
        slicer_support.ProgressEvent("load", 0.25, "lecture — ok"),
        slicer_support.LogLine("plain log line"),
        slicer_support.WarningEvent("no spacing"),
        slicer_support.LogLine('{"event": "progress", "stage": "x"}'),
        slicer_support.LogLine("[1, 2]"),
        slicer_support.ResultEvent({"files": ["a.nii.gz"], "n": 3}),
    ]


def test_subprocess_environment_makes_the_library_importable_elsewhere(tmp_path: Path) -> None:
    env = slicer_support.subprocess_environment({"PYTHONPATH": "/somewhere", "PATH": os.environ["PATH"]})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT / "SwinX2S"), "/somewhere"]
    completed = subprocess.run([sys.executable, "-c", "import SwinX2SLib.cli, sys; print(SwinX2SLib.__file__)"],
                               env=env, cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert Path(completed.stdout.strip()).parent == ROOT / "SwinX2S" / "SwinX2SLib"


def test_catalogue_matches_the_colour_table_the_module_loads() -> None:
    """The colour table (segment names / colours in Slicer) names every class the command line knows, by label."""
    completed = _swinx2s(["catalogue", "--json"])
    assert completed.returncode == 0, completed.stderr
    classes = {int(c["id"]): c for c in json.loads(completed.stdout)}
    rows = (ROOT / "SwinX2S" / "Resources" / "SwinX2S_ColorTable.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    table = {int(r.split(",")[0]): dict(zip(header, r.split(","), strict=False)) for r in rows[1:] if r.strip()}
    assert set(classes) <= set(table)
    for label, entry in classes.items():
        assert table[label]["Name"] == entry["display_name"]
    assert table[53]["Name"] == "Left femur"  # the module's own self-test relies on it


def _write_bead_ct(path: Path) -> tuple[float, float, float]:
    """A small CT (air, a water box, one dense bead); returns the bead centre in RAS."""
    array = np.full((40, 48, 56), -1000, np.int16)  # (z, y, x)
    array[5:35, 10:38, 8:48] = 0
    array[20:24, 14:18, 40:44] = 2000
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 2.5))
    image.SetOrigin((-50.0, -40.0, 100.0))
    sitk.WriteImage(image, str(path))
    lps = image.TransformContinuousIndexToPhysicalPoint((41.5, 15.5, 21.5))
    return -lps[0], -lps[1], lps[2]


@pytest.mark.parametrize("geometry", ["parallel", pytest.param("perspective", marks=pytest.mark.slow)])
def test_drr_images_are_placed_on_their_detector_planes(tmp_path: Path, geometry: str) -> None:
    """Generate DRRs: the bead's image lands where the bead is, seen along each beam; axes follow the display."""
    bead = np.array(_write_bead_ct(tmp_path / "ct.nrrd"))
    params = slicer_support.DrrParameters(str(tmp_path / "ct.nrrd"), str(tmp_path / "drr"), geometry=geometry)
    completed = _swinx2s(params.as_arg_list())
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    events = _events(completed.stdout)
    fractions = [e.fraction for e in events if isinstance(e, slicer_support.ProgressEvent)]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert isinstance(events[-1], slicer_support.ResultEvent)
    placed = slicer_support.read_drr_result(events[-1].payload)
    entries = {entry["view"]: entry for entry in events[-1].payload["images"]}
    beam_axis = {"coronal": 1, "sagittal": 0}  # RAS axis each beam runs along
    for view, image in placed.items():
        pixels = sitk.GetArrayFromImage(sitk.ReadImage(image.path))
        rows, cols = np.nonzero(pixels >= 0.9 * pixels.max())
        matrix = np.array(image.ijk_to_ras)
        spot = (matrix @ np.array([cols.mean(), rows.mean(), 0.0, 1.0]))[:3]
        assert abs(abs(matrix[beam_axis[view], 2]) - 1.0) < 0.05, "K must run along the beam"
        assert matrix[2, 1] < 0, "display rows run from superior to inferior"
        if view == "coronal":
            assert matrix[0, 0] < 0, "AP columns run from patient right to left"
        else:
            assert matrix[1, 0] < 0, "lateral columns run from anterior to posterior"
        entry = entries[view]
        if geometry == "parallel":
            ray = np.array(entry["ray_dir_lps"]) * [-1, -1, 1]
        else:
            ray = bead - np.array(entry["source_lps"]) * [-1, -1, 1]
        ray = ray / np.linalg.norm(ray)
        offset = spot - bead
        miss = np.linalg.norm(offset - (offset @ ray) * ray)
        assert miss < 1.5, f"{view}: the bead's image is {miss:.2f} mm off the ray through the bead"


def test_errors_come_back_as_error_events(tmp_path: Path) -> None:
    completed = _swinx2s(["measure", str(tmp_path / "missing.nrrd"), "-o", str(tmp_path / "m"), "--progress", "json"])
    assert completed.returncode == 2
    errors = [e for e in _events(completed.stdout) if isinstance(e, slicer_support.ErrorEvent)]
    assert len(errors) == 1 and "missing.nrrd" in errors[0].message


def test_device_probe_reports_this_interpreter() -> None:
    import torch

    completed = subprocess.run(slicer_support.device_probe_command(sys.executable), env=_environment(),
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    info = slicer_support.parse_device_probe(completed.stdout)
    assert info.torch_version == torch.__version__
    assert info.cuda_available == torch.cuda.is_available()
    assert len(info.gpus) == (torch.cuda.device_count() if info.cuda_available else 0)
    assert info.torch_version in info.summary()
    with pytest.raises(ValueError, match="no device description"):
        slicer_support.parse_device_probe("Traceback ...\nImportError: no torch\n")
    assert slicer_support.DeviceInfo("", False).summary() == "PyTorch is not installed"


_TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def test_cancel_ends_the_whole_process_tree() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _TREE], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        tree = slicer_support.process_tree(parent.pid)
        assert tree[0] == parent.pid and child in tree
        slicer_support.terminate_processes(tree)
        parent.wait(timeout=10)
        assert slicer_support.wait_for_exit(tree, timeout_s=10)
        assert slicer_support.kill_processes(tree) == []
    finally:
        for pid in slicer_support.process_tree(parent.pid):
            slicer_support.kill_processes([pid])
        parent.kill()
        parent.wait()


def test_kill_forces_a_process_that_ignores_sigterm() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
           "time.sleep(120)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        tree = slicer_support.process_tree(process.pid)
        slicer_support.terminate_processes(tree)
        assert not slicer_support.wait_for_exit(tree, timeout_s=0.5)
        assert slicer_support.kill_processes(tree) == [process.pid]
        assert process.wait(timeout=10) != 0
    finally:
        process.kill()
        process.wait()


# ------------------------------------------------------------------------------- phantom, measure, reconstruct


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A phantom CT with labels, made by ``swinx2s phantom`` (default grid: C1 to mid-thigh)."""
    folder = tmp_path_factory.mktemp("phantom")
    completed = _swinx2s(["phantom", "-o", str(folder), "--seed", "7", "--progress", "json"])
    assert completed.returncode == 0, completed.stderr[-3000:]
    return slicer_support.result_files(_events(completed.stdout)[-1].payload)


def test_measurements_become_table_rows_and_markups(phantom_case: dict[str, str], tmp_path: Path) -> None:
    """``Compute clinical measurements``: the measure command's files become table rows, landmarks and axes."""
    completed = _swinx2s(["measure", phantom_case["labels.nii.gz"], "-o", str(tmp_path / "m"), "--progress", "json"])
    assert completed.returncode == 0, completed.stderr[-3000:]
    measurements_path, landmarks_path = slicer_support.read_measure_result(_events(completed.stdout)[-1].payload)
    truth = json.loads(Path(phantom_case["truth.json"]).read_text())["femur"]

    table = slicer_support.measurement_table(measurements_path)
    assert table.columns == ("Structure", "Parameter", "Value", "Unit", "Note")
    rows = {(r[0], r[1]): r for r in table.rows}
    radius = rows.get(("Left femur", "head radius"))
    assert radius is not None, sorted(rows)[:20]
    assert radius[3] == "mm" and abs(radius[2] - truth["left"]["head_radius"]) < 3.0
    angle = rows[("Left femur", "neck shaft angle")]
    assert angle[3] == "°" and 90 < angle[2] < 160
    unmeasured = [r for r in table.rows if r[2] is None]
    assert all(r[4] for r in unmeasured), "a value that could not be measured must say why"

    markups = slicer_support.landmark_markups(landmarks_path, measurements_path)
    points = {p.label: np.array(p.position_ras) for p in markups.points}
    for side in ("left", "right"):
        np.testing.assert_allclose(points[f"femoral_head_{side}"], truth[side]["head_center"], atol=6.0)
    assert points["femoral_head_left"][0] < points["femoral_head_right"][0], "RAS: the left head has the lower R"
    lines = {line.label: line for line in markups.lines}
    assert set(lines) == {f"femoral_{axis}_axis_{side}" for axis in ("neck", "shaft") for side in ("left", "right")}
    for side in ("left", "right"):
        neck, shaft = lines[f"femoral_neck_axis_{side}"], lines[f"femoral_shaft_axis_{side}"]
        np.testing.assert_allclose(neck.start_ras, points[f"femoral_head_{side}"])
        assert neck.end_ras == shaft.start_ras
        assert np.linalg.norm(np.subtract(neck.end_ras, truth[side]["neck_shaft_junction"])) < 20.0
        assert shaft.end_ras[2] < shaft.start_ras[2] - 0.9 * slicer_support.SHAFT_LINE_MM, "the shaft runs distally"


@pytest.mark.slow
def test_reconstruction_result_becomes_the_segment_table(phantom_case: dict[str, str], tmp_path: Path) -> None:
    """Reconstruct (CT mode, a tiny untrained model, with measurements): summary, label map on the CT grid and the
    segment table agree; the measurement files come back in the same result."""
    model = _tiny_model_dir(tmp_path / "model")
    params = slicer_support.ReconstructParameters(str(tmp_path / "out"), ct=phantom_case["ct.nii.gz"],
                                                  model=str(model), device="cpu", measure=True)
    completed = _swinx2s(params.as_arg_list())
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    events = _events(completed.stdout)
    measurements_path, landmarks_path = slicer_support.read_measure_result(events[-1].payload)
    assert slicer_support.measurement_table(measurements_path).rows and Path(landmarks_path).is_file()
    assert [type(e).__name__ for e in events if not isinstance(e, slicer_support.ProgressEvent)][-1] == "ResultEvent"
    result = slicer_support.read_reconstruction_result(events[-1].payload)
    assert Path(result.labels_path).name == "segmentation_ct.nii.gz"
    labels = sitk.ReadImage(result.labels_path)
    ct = sitk.ReadImage(phantom_case["ct.nii.gz"])
    assert labels.GetSize() == ct.GetSize() and np.allclose(labels.GetOrigin(), ct.GetOrigin())
    present = sorted(int(v) for v in np.unique(sitk.GetArrayFromImage(sitk.ReadImage(
        slicer_support.result_files(result.summary)["segmentation.nii.gz"]))) if v)
    assert [s.id for s in result.segments] == present
    table = slicer_support.segment_table(result)
    assert [row[1] for row in table.rows] == present
    assert table.units[table.columns.index("Volume")] == "mL"
    assert all(0.0 <= row[3] <= 1.0 for row in table.rows)


# ------------------------------------------------------------------------------------------- models and training


def _tiny_model_dir(path: Path, description: str = "tiny test model") -> Path:
    from SwinX2SLib.checkpoints import ModelCard, save_model_dir
    from SwinX2SLib.network import create_model

    model = create_model("test", img_size=(32, 32, 64))
    return save_model_dir(model, path, ModelCard(description=description, preprocessing={"drr_preset": "published"}))


def test_list_models_finds_builtin_imported_and_finetuned(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _tiny_model_dir(models / "imported" / "b_model")
    _tiny_model_dir(models / "imported" / "a_model")
    _tiny_model_dir(models / "runs" / "run1" / "model", "fine-tuned test")
    (models / "imported" / "broken").mkdir()
    (models / "imported" / "broken" / "model.json").write_text("{not json")
    (models / "runs" / "unfinished").mkdir()
    entries = slicer_support.list_models(models)
    builtin = [e for e in entries if e.kind == "builtin"]
    assert [e.kind for e in entries] == ["builtin"] * len(builtin) + ["imported", "imported", "finetuned"]
    assert [e.display_name for e in entries[len(builtin):]] == ["a_model (imported)", "b_model (imported)",
                                                                "run1 (fine-tuned)"]
    assert entries[-1].model_argument == str(models / "runs" / "run1" / "model")
    assert "fine-tuned test" in entries[-1].description and "32x32x64" in entries[-1].description
    for entry in builtin:
        assert (Path(entry.model_argument) / "model.safetensors").is_file()
    assert slicer_support.list_models(None) == builtin


def test_resume_continues_the_run_start_created_last(tmp_path: Path) -> None:
    """A second Start of "knee" trains in ``runs/knee-2``; Resume must continue that run, not ``runs/knee``."""
    assert slicer_support.latest_run_dir(tmp_path, "knee") is None
    first = slicer_support.unique_model_dir(tmp_path, "knee", "finetuned")
    first.mkdir(parents=True)
    assert slicer_support.latest_run_dir(tmp_path, "knee") == first
    second = slicer_support.unique_model_dir(tmp_path, "knee", "finetuned")
    second.mkdir()
    assert second.name == "knee-2" and slicer_support.latest_run_dir(tmp_path, "knee") == second
    assert slicer_support.latest_run_dir(tmp_path, "knee 2") is None


def test_unique_model_dir_never_reuses_a_folder(tmp_path: Path) -> None:
    first = slicer_support.unique_model_dir(tmp_path, "my model/v1")
    assert first == tmp_path / "imported" / "my_model_v1"
    first.mkdir(parents=True)
    assert slicer_support.unique_model_dir(tmp_path, "my model/v1") == tmp_path / "imported" / "my_model_v1-2"
    assert slicer_support.unique_model_dir(tmp_path, "../..", "finetuned") == tmp_path / "runs" / "model"
    assert slicer_support.models_directory(tmp_path) == tmp_path or os.environ.get(slicer_support.MODELS_DIR_ENV)


@pytest.mark.slow
def test_model_import_of_a_published_checkpoint(tmp_path: Path, shared_dir: Path) -> None:
    """``Import checkpoint...``: a checkpoint with the published key names and shapes becomes a listed model."""
    import torch

    keys = shared_dir / "reference" / "official_model" / "keys_tiny_128x128x160_55.tsv"
    state = {}
    for line in keys.read_text().splitlines()[1:]:
        name, shape = line.split("\t")
        state[name] = torch.zeros([int(d) for d in shape.split("x")],
                                  dtype=torch.long if name.endswith("index") else torch.float32)
    checkpoint = tmp_path / "Swin-X2S-Tiny.pt"
    torch.save({"state_dict": state}, checkpoint)
    target = slicer_support.unique_model_dir(tmp_path / "models", checkpoint.stem)
    completed = _swinx2s(slicer_support.ModelImportParameters(str(checkpoint), str(target), "tiny").as_arg_list())
    assert completed.returncode == 0, completed.stdout + completed.stderr
    entries = [e for e in slicer_support.list_models(tmp_path / "models") if e.kind == "imported"]
    assert [(e.display_name, e.model_argument) for e in entries] == [("Swin-X2S-Tiny (imported)", str(target))]
    assert "variant tiny" in entries[0].description
    wrong = _swinx2s(slicer_support.ModelImportParameters(str(checkpoint), str(target) + "-b", "base").as_arg_list())
    assert wrong.returncode == 2 and not Path(str(target) + "-b", "model.json").exists()


def test_model_import_arguments() -> None:
    assert slicer_support.ModelImportParameters("a.pt", "out").as_arg_list() == ["model", "import", "a.pt", "-o",
                                                                                 "out"]
    assert slicer_support.ModelImportParameters("a.pt", "out", "base").as_arg_list()[3:5] == ["--variant", "base"]
    with pytest.raises(ValueError, match="variant"):
        slicer_support.ModelImportParameters("a.pt", "out", variant="huge").as_arg_list()
    with pytest.raises(ValueError, match="checkpoint"):
        slicer_support.ModelImportParameters("", "out").as_arg_list()


def test_train_parameters_make_a_configuration_the_engine_accepts(tmp_path: Path) -> None:
    from SwinX2SLib.checkpoints import read_model_card
    from SwinX2SLib.training.config import load_config
    from SwinX2SLib.training.trainer import MODEL_DIR, STOP_FILE

    assert (STOP_FILE, MODEL_DIR) == (slicer_support.STOP_FILE, slicer_support.RUN_MODEL_DIR)
    base = _tiny_model_dir(tmp_path / "base")
    published = tmp_path / "published"
    published.mkdir()
    (published / "data_list.json").write_text("{}")
    params = slicer_support.TrainParameters(str(tmp_path / "runs" / "ft"), dataset_dir=str(published),
                                            base_model=str(base), epochs=3, learning_rate=2e-5, batch_size=2,
                                            device="cpu", model_name="ft")
    assert params.data_source == "published"
    config = load_config(params.write_config(tmp_path / "config.json"))
    card = read_model_card(base)
    assert (config.name, config.preset, config.data.source, config.data.root) == ("ft", "finetune", "published",
                                                                                   str(published))
    assert (config.optim.epochs, config.optim.lr, config.optim.batch_size) == (3, 2e-5, 2)
    assert config.finetune.init_from == str(base) and config.schedule.device == "cpu"
    assert tuple(config.model.img_size) == card.img_size and config.model.num_classes == card.num_classes
    assert params.as_arg_list("c.json") == ["train", "--config", "c.json", "-o", params.run_dir, "--progress", "json"]
    ct_params = slicer_support.TrainParameters("run", dataset_dir=str(tmp_path))
    assert ct_params.data_source == "ct"
    assert not slicer_support.TrainParameters("run", dataset_dir=str(tmp_path / "nope")).is_valid()[0]
    assert not slicer_support.TrainParameters("run", preset="smoke").is_valid()[0]


def test_training_curves_tolerate_a_log_being_written(tmp_path: Path) -> None:
    records = [
        {"event": "step", "epoch": 1, "step": 1, "loss": 2.0, "eta_s": 50.0},
        {"event": "step", "epoch": 1, "step": 2, "loss": 1.5, "eta_s": 40.0},
        {"event": "epoch", "epoch": 1, "step": 2, "train_loss": 1.75, "eta_s": 39.0, "val": {"dice": 0.25}},
        {"event": "step", "epoch": 2, "step": 3, "loss": 1.0, "eta_s": 20.0},
        {"event": "epoch", "epoch": 2, "step": 3, "train_loss": 1.0, "eta_s": 19.0, "val": None},
    ]
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"event": "step", "epo'
    (tmp_path / "log.jsonl").write_text(text)
    curves = slicer_support.read_training_curves(tmp_path)
    assert curves.steps == (1, 2, 3) and curves.step_losses == (2.0, 1.5, 1.0)
    assert curves.epochs == (1, 2) and curves.epoch_losses == (1.75, 1.0)
    assert (curves.val_epochs, curves.val_steps, curves.val_dice) == ((1,), (2,), (0.25,))
    assert (curves.eta_s, curves.epoch, curves.stop_reason) == (19.0, 2, "")
    assert slicer_support.read_training_curves(tmp_path / "none") == slicer_support.TrainingCurves()
    assert [slicer_support.format_duration(s) for s in (None, 12.4, 250, 7500)] == ["unknown", "12 s", "4 min 10 s",
                                                                                   "2 h 05 min"]


@pytest.mark.slow
def test_training_run_stop_and_resume(tmp_path: Path) -> None:
    """A real fine-tuning run of a tiny model on two phantoms, stopped through the STOP file, then resumed."""
    base = _tiny_model_dir(tmp_path / "base")
    run_dir = slicer_support.unique_model_dir(tmp_path / "models", "tiny ft", "finetuned")
    params = slicer_support.TrainParameters(str(run_dir), base_model=str(base), epochs=2, learning_rate=1e-3,
                                            device="cpu", phantom_count=2)
    config = params.write_config(tmp_path / "config.json")
    process = subprocess.Popen(slicer_support.command_line(sys.executable, params.as_arg_list(config)),
                               env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not slicer_support.read_training_curves(run_dir).steps and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    slicer_support.request_stop(run_dir)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-3000:]
    stopped = [e for e in _events(stdout) if isinstance(e, slicer_support.ResultEvent)][-1].payload
    slicer_support.clear_stop_request(run_dir)
    completed = _swinx2s(slicer_support.resume_arg_list(run_dir), timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    resumed = [e for e in _events(completed.stdout) if isinstance(e, slicer_support.ResultEvent)][-1].payload
    assert resumed["step"] > stopped["step"]
    curves = slicer_support.read_training_curves(run_dir)
    assert curves.steps == tuple(sorted(curves.steps)) and all(np.isfinite(curves.step_losses))
    assert [e.kind for e in slicer_support.list_models(tmp_path / "models")][-1] == "finetuned"
