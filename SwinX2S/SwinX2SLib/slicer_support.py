"""Plain-Python logic behind the SwinX2S and SwinX2STrain Slicer modules.

The Slicer modules keep every computation out of the GUI process: they run the ``swinx2s`` command line as
``PythonSlicer -m SwinX2SLib.cli <command> ... --progress json`` in a ``qt.QProcess`` and turn its output into
MRML nodes. Everything here is the part of that glue that needs neither Slicer nor Qt, so that it is tested
against the real command line without Slicer (``Testing/test_slicer_modules.py``):

- parameter dataclasses (:class:`ReconstructParameters`, :class:`MeasureParameters`, :class:`DrrParameters`,
  :class:`ModelImportParameters`, :class:`TrainParameters`) whose ``as_arg_list()`` builds the command line, and
  :func:`command_line` / :func:`subprocess_environment` that turn it into a runnable process;
- :class:`EventParser`, which splits the process output into JSON-lines events (:func:`parse_event`);
- :func:`process_tree`, :func:`terminate_processes`, :func:`kill_processes`: Cancel ends the whole process tree;
- :func:`read_drr_result` / :func:`detector_ijk_to_ras`, which place the rendered radiographs on their detector
  planes in 3-D;
- :func:`read_reconstruction_result`, :func:`read_measure_result`, :func:`segment_table`,
  :func:`measurement_table` and :func:`landmark_markups`, which map the commands' result files onto table rows,
  markup points and lines;
- :func:`list_models`, which lists the models a user can pick (built-in, imported and fine-tuned);
- :func:`read_training_curves` / :func:`format_duration` for the live training plot and its ETA;
- :func:`device_probe_command` / :func:`parse_device_probe`, which report PyTorch, CUDA and the GPU.

This module never imports ``slicer``, ``qt``, ``ctk``, ``vtk`` or ``torch`` at import time (only inside the
functions that need the library: numpy, SimpleITK or torch, all of which Slicer provides).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from SwinX2SLib.errors import InputError

__all__ = [
    "CLI_MODULE",
    "DEVICES",
    "DRR_GEOMETRIES",
    "MESH_FORMATS",
    "MODELS_DIR_ENV",
    "MODEL_VARIANTS",
    "RUN_MODEL_DIR",
    "SHAFT_LINE_MM",
    "STOP_FILE",
    "TRAIN_PRESETS",
    "Device",
    "DeviceInfo",
    "DrrParameters",
    "ErrorEvent",
    "Event",
    "EventParser",
    "GpuInfo",
    "LogLine",
    "MarkupLine",
    "MarkupPoint",
    "Markups",
    "MeasureParameters",
    "ModelEntry",
    "ModelImportParameters",
    "ModelKind",
    "PlacedImage",
    "ProgressEvent",
    "ReconstructParameters",
    "ReconstructionResult",
    "ResultEvent",
    "Segment",
    "Table",
    "TrainParameters",
    "TrainingCurves",
    "WarningEvent",
    "clear_stop_request",
    "command_line",
    "detector_ijk_to_ras",
    "device_probe_command",
    "format_duration",
    "kill_processes",
    "landmark_markups",
    "library_parent",
    "list_models",
    "measurement_table",
    "missing_requirements",
    "models_directory",
    "parse_device_probe",
    "parse_event",
    "probe_devices",
    "process_tree",
    "read_drr_result",
    "read_measure_result",
    "read_reconstruction_result",
    "read_training_curves",
    "request_stop",
    "result_files",
    "resume_arg_list",
    "segment_table",
    "subprocess_environment",
    "terminate_processes",
    "unique_model_dir",
    "wait_for_exit",
]

CLI_MODULE = "SwinX2SLib.cli"
"""The module run by ``python -m`` for every ``swinx2s`` command."""

Device = Literal["auto", "cuda", "cpu"]
DEVICES: tuple[Device, ...] = ("auto", "cuda", "cpu")
MESH_FORMATS: tuple[str, ...] = ("stl", "obj", "vtp")


def library_parent() -> Path:
    """The folder that contains the ``SwinX2SLib`` package (prepended to ``PYTHONPATH`` of the subprocess)."""
    return Path(__file__).resolve().parent.parent


def command_line(python_executable: str | os.PathLike[str], args: Sequence[str]) -> list[str]:
    """The full command line that runs ``swinx2s <args>`` with ``python_executable``.

    Args:
        python_executable: the interpreter, e.g. Slicer's ``PythonSlicer`` (``shutil.which("PythonSlicer")``).
        args: the command and its options, e.g. ``ReconstructParameters(...).as_arg_list()``.

    Returns:
        ``[python_executable, "-m", "SwinX2SLib.cli", *args]``.
    """
    return [str(python_executable), "-m", CLI_MODULE, *args]


def subprocess_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``swinx2s`` subprocess.

    ``SwinX2SLib`` is importable inside Slicer because Slicer adds the module folder to ``sys.path``; a child
    process does not inherit that, so the folder is prepended to ``PYTHONPATH``. Output is made unbuffered and
    UTF-8 so that progress lines arrive as soon as they are printed.

    Args:
        base: the environment to extend (default: ``os.environ``); it is not modified.

    Returns:
        A new environment mapping.
    """
    env = dict(os.environ if base is None else base)
    parent = str(library_parent())
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != parent]
    env["PYTHONPATH"] = os.pathsep.join([parent, *paths])
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _progress_args(progress: bool) -> list[str]:
    return ["--progress", "json"] if progress else []


@dataclass(frozen=True)
class ReconstructParameters:
    """Options of ``swinx2s reconstruct`` as set in the SwinX2S module.

    Exactly one input mode is used: two X-rays (``coronal`` and ``sagittal``) or a CT (``ct``, from which the
    command renders the two DRRs itself). Empty strings mean "not set" (they map to Slicer parameter nodes
    without ``None``).

    Args:
        output_dir: folder that receives the labels, the result summary and the optional meshes/measurements.
        coronal: AP (coronal) radiograph file.
        sagittal: lateral (sagittal) radiograph file.
        ct: CT volume file ("From CT" mode).
        label: reference label volume on the CT; the command then also reports Dice against it.
        model: model name or model folder; empty = the built-in default.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        pixel_spacing_mm: detector pixel spacing override in mm; 0 = read it from the files.
        meshes: also write one surface file per present structure in this format (``"stl"``, ``"obj"``,
            ``"vtp"``); empty = none (Slicer builds its own surfaces).
        largest_component: keep only the largest connected piece of each bone.
        overwrite: replace existing files in ``output_dir``.
    """

    output_dir: str
    coronal: str = ""
    sagittal: str = ""
    ct: str = ""
    label: str = ""
    model: str = ""
    device: Device = "auto"
    pixel_spacing_mm: float = 0.0
    meshes: str = ""
    largest_component: bool = False
    overwrite: bool = True

    @property
    def mode(self) -> Literal["xray", "ct"]:
        """``"ct"`` when a CT is given, else ``"xray"``."""
        return "ct" if self.ct else "xray"

    def is_valid(self) -> tuple[bool, str]:
        """Whether the command can run, and if not, what the user has to fix."""
        if not self.output_dir:
            return False, "choose an output folder"
        if self.ct and (self.coronal or self.sagittal):
            return False, "give either a CT or two X-rays, not both"
        if not self.ct and not (self.coronal and self.sagittal):
            return False, "choose both X-rays (AP and lateral) or a CT"
        if self.label and not self.ct:
            return False, "a reference label can only be used with a CT"
        if self.device not in DEVICES:
            return False, f"device must be one of {', '.join(DEVICES)}, not {self.device!r}"
        if self.pixel_spacing_mm < 0:
            return False, "pixel spacing must be positive (or 0 to read it from the files)"
        if self.meshes not in ("", *MESH_FORMATS):
            return False, f"mesh format must be one of {', '.join(MESH_FORMATS)}, not {self.meshes!r}"
        return True, ""

    def as_arg_list(self, progress: bool = True) -> list[str]:
        """The ``swinx2s`` arguments (command included).

        Raises:
            ValueError: when :meth:`is_valid` says the parameters cannot run.
        """
        ok, reason = self.is_valid()
        if not ok:
            raise ValueError(f"cannot reconstruct: {reason}")
        args = ["reconstruct"]
        if self.ct:
            args += ["--ct", self.ct]
            if self.label:
                args += ["--label", self.label]
        else:
            args += ["--coronal", self.coronal, "--sagittal", self.sagittal]
            if self.pixel_spacing_mm > 0:
                args += ["--pixel-spacing", repr(float(self.pixel_spacing_mm))]
        args += ["-o", self.output_dir, "--device", self.device]
        if self.model:
            args += ["--model", self.model]
        if self.meshes:
            args += ["--meshes", self.meshes]
        if self.largest_component:
            args.append("--largest-component")
        if self.overwrite:
            args.append("--overwrite")
        return args + _progress_args(progress)


@dataclass(frozen=True)
class MeasureParameters:
    """Options of ``swinx2s measure`` ("Compute clinical measurements" of the SwinX2S module).

    Args:
        labels: the reconstructed label map (55-class scheme, any geometry).
        output_dir: folder that receives ``measurements.json``, ``measurements.csv`` and ``landmarks.json``.
        overwrite: replace existing files.
    """

    labels: str
    output_dir: str
    overwrite: bool = True

    def as_arg_list(self, progress: bool = True) -> list[str]:
        """The ``swinx2s`` arguments (command included).

        Raises:
            ValueError: a path is missing.
        """
        if not self.labels or not self.output_dir:
            raise ValueError("cannot measure: give the label map and an output folder")
        return ["measure", self.labels, "-o", self.output_dir, *(["--overwrite"] if self.overwrite else []),
                *_progress_args(progress)]


def result_files(payload: Mapping[str, Any]) -> dict[str, str]:
    """The files a command reports in its ``result`` event, keyed by file name.

    Commands list their outputs as ``"files": [path, ...]`` or ``"outputs": [path, ...]`` or
    ``"outputs": {name: path}``; all three are accepted.
    """
    found: dict[str, str] = {}
    for key in ("files", "outputs"):
        entries = payload.get(key) or []
        paths = entries.values() if isinstance(entries, Mapping) else entries
        for path in paths:
            if isinstance(path, str):
                found.setdefault(Path(path).name, path)
    return found


DRR_GEOMETRIES: tuple[str, ...] = ("parallel", "perspective")


@dataclass(frozen=True)
class DrrParameters:
    """Options of ``swinx2s drr`` ("Generate DRRs" of the SwinX2S module).

    Args:
        ct: CT volume file (HU).
        output_dir: folder that receives ``coronal.nii.gz``, ``sagittal.nii.gz`` and ``geometry.json``.
        geometry: ``"parallel"`` (as the published training data) or ``"perspective"`` (point source).
        source_to_detector_mm: source-to-detector distance (perspective only).
        source_to_isocenter_mm: source-to-isocentre distance (perspective only).
        preset: intensity preset of the DRR renderer.
        overwrite: replace existing files.
    """

    ct: str
    output_dir: str
    geometry: str = "parallel"
    source_to_detector_mm: float = 1400.0
    source_to_isocenter_mm: float = 1000.0
    preset: str = "published"
    overwrite: bool = True

    def is_valid(self) -> tuple[bool, str]:
        """Whether the command can run, and if not, what the user has to fix."""
        if not self.ct:
            return False, "choose a CT volume"
        if not self.output_dir:
            return False, "choose an output folder"
        if self.geometry not in DRR_GEOMETRIES:
            return False, f"geometry must be one of {', '.join(DRR_GEOMETRIES)}, not {self.geometry!r}"
        if self.geometry == "perspective" and not 0 < self.source_to_isocenter_mm < self.source_to_detector_mm:
            return False, "the source-to-isocentre distance must be positive and shorter than source-to-detector"
        return True, ""

    def as_arg_list(self, progress: bool = True) -> list[str]:
        """The ``swinx2s`` arguments (command included).

        Raises:
            ValueError: when :meth:`is_valid` says the parameters cannot run.
        """
        ok, reason = self.is_valid()
        if not ok:
            raise ValueError(f"cannot render DRRs: {reason}")
        args = ["drr", self.ct, "-o", self.output_dir, "--geometry", self.geometry, "--preset", self.preset]
        if self.geometry == "perspective":
            args += ["--sid", repr(float(self.source_to_isocenter_mm)),
                     "--sdd", repr(float(self.source_to_detector_mm))]
        if self.overwrite:
            args.append("--overwrite")
        return args + _progress_args(progress)


@dataclass(frozen=True)
class PlacedImage:
    """A 2-D radiograph file and the 4x4 IJK-to-RAS matrix that puts it on its detector plane in 3-D.

    ``I`` is the column and ``J`` the row of the file as stored (display orientation), ``K`` is one millimetre along
    the central ray, so a Slicer volume node with this matrix shows the image where the detector was.
    """

    path: str
    view: str
    ijk_to_ras: tuple[tuple[float, float, float, float], ...]


def detector_ijk_to_ras(image: Mapping[str, Any]) -> tuple[tuple[float, float, float, float], ...]:
    """IJK-to-RAS matrix of a display-oriented DRR file from its ``geometry.json`` entry.

    Args:
        image: one entry of ``images`` in ``geometry.json`` (``view``, ``shape`` of the model image, ``spacing_mm``,
            ``detector_origin_lps``, ``detector_row_dir_lps``, ``detector_col_dir_lps``, ``ray_dir_lps``).

    Returns:
        The 4x4 matrix as nested tuples (row-major).
    """
    import numpy as np

    from SwinX2SLib.conventions import image_to_display, lps_to_ras

    rows, cols = (int(n) for n in image["shape"])
    view = str(image["view"])
    row_index, col_index = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    display_rows, display_cols = image_to_display(row_index, view), image_to_display(col_index, view)
    origin = np.asarray(image["detector_origin_lps"], dtype=float)
    row_step = float(image["spacing_mm"][0]) * np.asarray(image["detector_row_dir_lps"], dtype=float)
    col_step = float(image["spacing_mm"][1]) * np.asarray(image["detector_col_dir_lps"], dtype=float)

    def position(display_row: int, display_col: int) -> np.ndarray:
        model_row, model_col = display_rows[display_row, display_col], display_cols[display_row, display_col]
        return lps_to_ras(origin + model_row * row_step + model_col * col_step)

    corner = position(0, 0)
    axis_i, axis_j = position(0, 1) - corner, position(1, 0) - corner
    axis_k = lps_to_ras(np.asarray(image["ray_dir_lps"], dtype=float))
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = axis_i, axis_j, axis_k, corner
    return tuple(tuple(float(v) for v in row) for row in matrix)


def read_drr_result(payload: Mapping[str, Any]) -> dict[str, PlacedImage]:
    """The first coronal (AP) and sagittal (lateral) image of a ``drr`` result, placed in 3-D.

    Args:
        payload: the ``result`` event of ``swinx2s drr --progress json`` (``files`` and ``images``).

    Returns:
        ``{"coronal": PlacedImage, "sagittal": PlacedImage}``.

    Raises:
        InputError: when a view or its file is missing from the result.
    """
    files = result_files(payload)
    placed = {}
    for image in payload.get("images", []):
        view = image.get("view")
        if view in ("coronal", "sagittal") and view not in placed:
            if image.get("file") not in files:
                raise InputError("drr result", f"the {view} image {image.get('file')!r} is not among its files")
            placed[view] = PlacedImage(files[image["file"]], view, detector_ijk_to_ras(image))
    for view in ("coronal", "sagittal"):
        if view not in placed:
            raise InputError("drr result", f"no {view} image")
    return placed


MODEL_VARIANTS: tuple[str, ...] = ("tiny", "small", "base", "large")
"""Network variants of the published checkpoints (``swinx2s model import --variant``)."""

MODELS_DIR_ENV = "SWINX2S_MODELS_DIR"
"""Environment variable that overrides the models folder of the Slicer modules."""

ModelKind = Literal["builtin", "imported", "finetuned"]


@dataclass(frozen=True)
class ModelImportParameters:
    """Options of ``swinx2s model import`` ("Import checkpoint..." of the SwinX2S module).

    Args:
        checkpoint: published Swin-X2S checkpoint (``.pt``).
        output_dir: the model folder to create (see :func:`unique_model_dir`).
        variant: the network variant the checkpoint must have (one of :data:`MODEL_VARIANTS`); empty = accept the
            architecture the checkpoint holds.
    """

    checkpoint: str
    output_dir: str
    variant: str = ""

    def as_arg_list(self) -> list[str]:
        """The ``swinx2s`` arguments (command included); the command reports no progress, only its exit status.

        Raises:
            ValueError: unknown variant or missing path.
        """
        if self.variant and self.variant not in MODEL_VARIANTS:
            raise ValueError(f"cannot import: variant must be one of {', '.join(MODEL_VARIANTS)}, not {self.variant!r}")
        if not self.checkpoint or not self.output_dir:
            raise ValueError("cannot import: choose a checkpoint file and an output folder")
        variant = ["--variant", self.variant] if self.variant else []
        return ["model", "import", self.checkpoint, *variant, "-o", self.output_dir]


def models_directory(default: str | os.PathLike[str]) -> Path:
    """The models folder: ``$SWINX2S_MODELS_DIR`` when set, else ``default`` (the Slicer module passes a folder
    beside its settings). Imported checkpoints go to ``<folder>/imported/<name>``, training runs to
    ``<folder>/runs/<name>`` (their model is ``<folder>/runs/<name>/model``)."""
    return Path(os.environ.get(MODELS_DIR_ENV) or default)


def unique_model_dir(models_dir: str | os.PathLike[str], name: str, kind: ModelKind = "imported") -> Path:
    """A new, not yet existing folder for a model called ``name`` (``name``, ``name-2``, ...).

    Args:
        models_dir: the models folder (:func:`models_directory`).
        name: wanted name; characters other than letters, digits, ``-``, ``_`` and ``.`` become ``_``.
        kind: ``"imported"`` (a model folder) or ``"finetuned"`` (a training run folder).
    """
    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip()).strip("._") or "model"
    parent = Path(models_dir) / ("runs" if kind == "finetuned" else "imported")
    candidate, number = parent / clean, 1
    while candidate.exists():
        number += 1
        candidate = parent / f"{clean}-{number}"
    return candidate


@dataclass(frozen=True)
class ModelEntry:
    """One entry of the model list.

    Args:
        display_name: what the list shows.
        model_argument: the ``--model`` value (a model folder).
        kind: ``"builtin"``, ``"imported"`` or ``"finetuned"``.
        description: the model card's description and variant (tooltip).
    """

    display_name: str
    model_argument: str
    kind: ModelKind
    description: str = ""


_KIND_LABELS = {"builtin": "built-in", "imported": "imported", "finetuned": "fine-tuned"}


def list_models(models_dir: str | os.PathLike[str] | None) -> list[ModelEntry]:
    """The models a user can choose: built-in ones first, then imported, then fine-tuned (each sorted by name).

    A folder counts when it holds a readable model card (``model.json``); folders with a broken card are skipped.

    Args:
        models_dir: the models folder (:func:`models_directory`), or None for the built-in models only.
    """
    from SwinX2SLib.checkpoints import read_model_card
    from SwinX2SLib.errors import ModelError

    sources: list[tuple[ModelKind, list[Path]]] = [("builtin", sorted((library_parent() / "SwinX2SLib" / "models")
                                                                       .glob("*/")))]
    if models_dir is not None:
        root = Path(models_dir)
        sources.append(("imported", sorted((root / "imported").glob("*/"))))
        sources.append(("finetuned", sorted(path / "model" for path in (root / "runs").glob("*/"))))
    entries = []
    for kind, folders in sources:
        for folder in folders:
            try:
                card = read_model_card(folder)
            except (ModelError, OSError, TypeError, ValueError):
                continue
            name = folder.parent.name if kind == "finetuned" else folder.name
            details = ", ".join(part for part in (card.description, card.variant and f"variant {card.variant}",
                                                  f"input {'x'.join(map(str, card.img_size))}") if part)
            entries.append(ModelEntry(f"{name} ({_KIND_LABELS[kind]})", str(folder), kind, details))
    return entries


def missing_requirements(requirements_file: str | os.PathLike[str]) -> list[str]:
    """The lines of a ``requirements.txt`` that the running interpreter does not satisfy.

    Used where ``slicer.packaging.pip_ensure`` is not available (Slicer < 5.12); comments, blank lines and pip
    options are ignored, environment markers are honoured.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    missing = []
    for line in Path(requirements_file).read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            missing.append(text)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(text)
    return missing


TRAIN_PRESETS: tuple[str, ...] = ("finetune", "paper")
"""Training presets offered by the SwinX2STrain module (see :data:`SwinX2SLib.training.config.PRESETS`)."""

STOP_FILE = "STOP"
"""File whose appearance in the run folder stops a training run cleanly (``training.trainer.STOP_FILE``)."""

RUN_MODEL_DIR = "model"
"""Sub-folder of a run that holds its best model (``training.trainer.MODEL_DIR``)."""


@dataclass(frozen=True)
class TrainParameters:
    """What the SwinX2STrain module asks for, turned into a training configuration and a ``swinx2s train`` call.

    Args:
        run_dir: the run folder (``unique_model_dir(models_dir, name, "finetuned")``); its ``model`` sub-folder
            becomes a fine-tuned entry of the model list.
        dataset_dir: training data: a folder with ``data_list.json`` (published layout) or one folder per CT case
            (``ct.nii.gz`` + labels); empty = procedural phantoms.
        base_model: model folder whose weights and architecture the run starts from; empty = train from scratch.
        preset: ``"finetune"`` (short schedule, low learning rate) or ``"paper"`` (the paper's recipe).
        epochs: number of epochs.
        learning_rate: peak learning rate.
        batch_size: samples per step.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        model_name: name of the run and of its model (default: the run folder's name).
        phantom_count: number of distinct phantoms when ``dataset_dir`` is empty.
    """

    run_dir: str
    dataset_dir: str = ""
    base_model: str = ""
    preset: str = "finetune"
    epochs: int = 30
    learning_rate: float = 1e-5
    batch_size: int = 1
    device: Device = "auto"
    model_name: str = ""
    phantom_count: int = 2

    @property
    def data_source(self) -> Literal["phantom", "published", "ct"]:
        """How the training engine reads ``dataset_dir``."""
        if not self.dataset_dir:
            return "phantom"
        return "published" if (Path(self.dataset_dir) / "data_list.json").is_file() else "ct"

    def is_valid(self) -> tuple[bool, str]:
        """Whether training can start, and if not, what the user has to fix."""
        checks = [
            (bool(self.run_dir), "choose an output model name"),
            (self.preset in TRAIN_PRESETS, f"preset must be one of {', '.join(TRAIN_PRESETS)}"),
            (not self.dataset_dir or Path(self.dataset_dir).is_dir(), f"{self.dataset_dir}: dataset folder not found"),
            (not self.base_model or Path(self.base_model).is_dir(), f"{self.base_model}: base model not found"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.learning_rate > 0, "the learning rate must be positive"),
            (self.batch_size >= 1, "the batch size must be at least 1"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.phantom_count >= 1, "at least one phantom is needed"),
        ]
        for ok, reason in checks:
            if not ok:
                return False, reason
        return True, ""

    def config(self) -> dict[str, Any]:
        """The training configuration mapping (``preset`` plus the user's values; see ``training.config``).

        With a base model its architecture (variant, input size, classes) is copied from its model card, so the
        run builds the network the weights belong to.
        """
        data: dict[str, Any] = {"source": self.data_source}
        if self.dataset_dir:
            data["root"] = self.dataset_dir
        else:
            data.update(pool_size=self.phantom_count, val_count=1, holdout_count=1)
        mapping: dict[str, Any] = {
            "name": self.model_name or Path(self.run_dir).name,
            "preset": self.preset,
            "data": data,
            "optim": {"epochs": self.epochs, "lr": self.learning_rate, "batch_size": self.batch_size},
            "schedule": {"device": self.device, "export_best": True},
        }
        if self.base_model:
            from SwinX2SLib.checkpoints import read_model_card

            card = read_model_card(self.base_model)
            mapping["model"] = {"variant": card.variant or dict(card.config), "img_size": list(card.img_size),
                                "in_channels": card.in_channels, "num_classes": card.num_classes}
            mapping["finetune"] = {"init_from": self.base_model}
        return mapping

    def write_config(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`config` as JSON (atomically) and return the path."""
        from SwinX2SLib.io import atomic_write

        path = Path(path)
        with atomic_write(path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        return path

    def as_arg_list(self, config_path: str | os.PathLike[str], progress: bool = True) -> list[str]:
        """The ``swinx2s train`` arguments for a new run with the configuration file ``config_path``.

        Raises:
            ValueError: when :meth:`is_valid` says training cannot start.
        """
        ok, reason = self.is_valid()
        if not ok:
            raise ValueError(f"cannot train: {reason}")
        return ["train", "--config", str(config_path), "-o", self.run_dir, *_progress_args(progress)]


def resume_arg_list(run_dir: str | os.PathLike[str], progress: bool = True) -> list[str]:
    """The ``swinx2s train`` arguments that continue the run in ``run_dir`` from its last checkpoint."""
    return ["train", "--resume", str(run_dir), *_progress_args(progress)]


def request_stop(run_dir: str | os.PathLike[str]) -> Path:
    """Ask a running training to stop cleanly after its current step (creates ``RUN_DIR/STOP``)."""
    path = Path(run_dir) / STOP_FILE
    path.touch()
    return path


def clear_stop_request(run_dir: str | os.PathLike[str]) -> None:
    """Remove a stop request left by an earlier Stop, so that a resumed run does not stop at once."""
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class TrainingCurves:
    """What the training plot and the ETA label show, read from ``RUN_DIR/log.jsonl``.

    Attributes:
        steps, step_losses: loss of every logged step.
        epochs, epoch_losses: mean training loss of every finished epoch.
        val_epochs, val_steps, val_dice: epoch, step count and mean validation Dice of every validated epoch.
        eta_s: the trainer's latest estimate of the remaining time in seconds (None before the first step).
        epoch: the last epoch reported (0 before the first).
        stop_reason: why the run ended (``""`` while it runs).
    """

    steps: tuple[int, ...] = ()
    step_losses: tuple[float, ...] = ()
    epochs: tuple[int, ...] = ()
    epoch_losses: tuple[float, ...] = ()
    val_epochs: tuple[int, ...] = ()
    val_steps: tuple[int, ...] = ()
    val_dice: tuple[float, ...] = ()
    eta_s: float | None = None
    epoch: int = 0
    stop_reason: str = ""


def read_training_curves(run_dir: str | os.PathLike[str]) -> TrainingCurves:
    """Read the run's JSON-lines log while the run is writing it (an incomplete last line is ignored).

    Args:
        run_dir: the run folder.
    """
    from SwinX2SLib.training.logging import LOG_NAME

    path = Path(run_dir) / LOG_NAME
    if not path.is_file():
        return TrainingCurves()
    steps, epochs, validations = [], [], []
    eta, epoch, reason = None, 0, ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = record.get("event") if isinstance(record, dict) else None
        if kind in ("step", "epoch") and record.get("eta_s") is not None:
            eta = float(record["eta_s"])
        if kind == "step" and record.get("loss") is not None:
            steps.append((int(record["step"]), float(record["loss"])))
        elif kind == "epoch":
            epoch = int(record["epoch"])
            if record.get("train_loss") is not None:
                epochs.append((epoch, float(record["train_loss"])))
            dice = (record.get("val") or {}).get("dice")
            if dice is not None:
                validations.append((epoch, int(record.get("step", 0)), float(dice)))
        elif kind == "stop":
            reason = str(record.get("reason", "stopped"))
    return TrainingCurves(
        steps=tuple(s for s, _ in steps), step_losses=tuple(v for _, v in steps),
        epochs=tuple(e for e, _ in epochs), epoch_losses=tuple(v for _, v in epochs),
        val_epochs=tuple(e for e, _, _ in validations), val_steps=tuple(s for _, s, _ in validations),
        val_dice=tuple(v for _, _, v in validations),
        eta_s=eta, epoch=epoch, stop_reason=reason,
    )  # fmt: skip


def format_duration(seconds: float | None) -> str:
    """``"2 h 05 min"``, ``"4 min 10 s"``, ``"12 s"``; ``"unknown"`` for None."""
    if seconds is None:
        return "unknown"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@dataclass(frozen=True)
class Segment:
    """One reconstructed segment of the result summary (``inference.SegmentSummary``)."""

    id: int
    name: str
    volume_ml: float
    confidence: float
    mean_max_probability: float


@dataclass(frozen=True)
class ReconstructionResult:
    """The files and numbers of a ``reconstruct`` run that the Slicer module loads.

    Attributes:
        labels_path: the label map to load: on the input CT's grid when the input was a CT, else on the model grid.
        segments: the present segments, in id order.
        summary: the whole ``summary.json`` document.
    """

    labels_path: str
    segments: tuple[Segment, ...]
    summary: dict[str, Any] = field(default_factory=dict)


def _read_json(path: str | os.PathLike[str], what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the {what} ({exc})") from None


def read_reconstruction_result(payload: Mapping[str, Any]) -> ReconstructionResult:
    """Read the result of ``swinx2s reconstruct --progress json`` and the ``summary.json`` it names.

    Args:
        payload: the ``result`` event (``outputs``: file name -> path, including ``summary.json``).

    Raises:
        InputError: the summary cannot be read or names no label map.
    """
    outputs = result_files(payload)
    if "summary.json" not in outputs:
        raise InputError("reconstruct result", f"no summary.json among the outputs {sorted(outputs)}")
    summary = _read_json(outputs["summary.json"], "reconstruction summary")
    outputs.update(result_files(summary))
    labels = outputs.get("segmentation_ct.nii.gz") or outputs.get("segmentation.nii.gz")
    if not labels:
        raise InputError(outputs["summary.json"], f"no label map among the outputs {sorted(outputs)}")
    segments = tuple(
        Segment(int(s["id"]), str(s["name"]), float(s["volume_ml"]), float(s["confidence"]),
                float(s.get("mean_max_probability", float("nan"))))
        for s in summary.get("segments", [])
    )
    return ReconstructionResult(labels, segments, summary)


def read_measure_result(payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(measurements.json, landmarks.json)`` paths of a ``swinx2s measure --progress json`` result.

    Raises:
        InputError: a file is missing from the result.
    """
    outputs = result_files(payload)
    missing = [name for name in ("measurements.json", "landmarks.json") if name not in outputs]
    if missing:
        raise InputError("measure result", f"{', '.join(missing)} missing from the outputs {sorted(outputs)}")
    return outputs["measurements.json"], outputs["landmarks.json"]


@dataclass(frozen=True)
class Table:
    """Rows for a Slicer table node.

    Attributes:
        columns: column titles.
        kinds: ``"string"`` or ``"number"`` per column.
        units: unit label per column (``""`` for none).
        rows: one tuple per row, aligned with ``columns`` (None = empty cell).
    """

    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    units: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def segment_table(result: ReconstructionResult) -> Table:
    """Per-segment table: name, label value, volume (mL), view agreement and mean probability."""
    from SwinX2SLib import catalogue

    rows = tuple(
        (catalogue.by_id(s.id).display_name, s.id, round(s.volume_ml, 2), round(s.confidence, 3),
         round(s.mean_max_probability, 3))
        for s in result.segments
    )
    return Table(("Segment", "Label", "Volume", "Confidence", "Mean probability"),
                 ("string", "number", "number", "number", "number"), ("", "", "mL", "", ""), rows)


_UNIT_SUFFIXES = (("_deg", "°"), ("_mm", "mm"), ("_ml", "mL"), ("_ras_r", "mm"), ("_ras_a", "mm"), ("_ras_s", "mm"))


def _structure_title(structure: str) -> str:
    from SwinX2SLib import catalogue

    try:
        return catalogue.by_name(structure).display_name
    except (KeyError, ValueError):
        return structure.replace("_", " ").capitalize()


def measurement_table(measurements_path: str | os.PathLike[str]) -> Table:
    """The clinical measurements of ``measurements.json`` as table rows.

    Each scalar (and each coordinate of a point) is a row: structure, parameter, value, unit and, for what could not
    be measured, the reason.
    """
    from SwinX2SLib.measurements import csv_rows

    measurements = _read_json(measurements_path, "measurements")
    rows = []
    for row in csv_rows(measurements):
        parameter = row["parameter"]
        unit = next((u for suffix, u in _UNIT_SUFFIXES if parameter.endswith(suffix)), "")
        name = parameter
        for suffix, _unit in _UNIT_SUFFIXES[:3]:
            name = name.removesuffix(suffix)
        value = float(row["value"]) if row["value"] != "" else None
        rows.append((_structure_title(row["structure"]), name.replace("_", " "), value, unit, row["reason"]))
    return Table(("Structure", "Parameter", "Value", "Unit", "Note"),
                 ("string", "string", "number", "string", "string"), ("", "", "", "", ""), tuple(rows))


@dataclass(frozen=True)
class MarkupPoint:
    """A named landmark at a RAS position (mm)."""

    label: str
    position_ras: tuple[float, float, float]


@dataclass(frozen=True)
class MarkupLine:
    """A named line segment between two RAS positions (mm)."""

    label: str
    start_ras: tuple[float, float, float]
    end_ras: tuple[float, float, float]


@dataclass(frozen=True)
class Markups:
    """Landmarks (pelvic landmarks, femoral head centres, vertebral body centres) and femoral axis lines."""

    points: tuple[MarkupPoint, ...]
    lines: tuple[MarkupLine, ...]


SHAFT_LINE_MM = 80.0
"""Length of the drawn femoral shaft axis, from where it meets the neck axis, distally."""


def _femur_lines(side: str, femur: Mapping[str, Any]) -> tuple[MarkupLine, ...]:
    """Neck and shaft axis lines of one femur: the neck axis runs from the head centre to the point where it meets
    the shaft axis (at ``offset / sin(neck-shaft angle)`` from the centre, the two axes taken as intersecting); the
    shaft axis runs from there distally."""
    import math

    from SwinX2SLib.measurements import is_measured

    keys = ("head_center_ras", "neck_axis_ras", "shaft_axis_ras", "neck_shaft_angle_deg", "offset_mm")
    if not is_measured(femur) or not all(is_measured(femur.get(k)) for k in keys):
        return ()
    centre = [float(v) for v in femur["head_center_ras"]]
    neck, shaft = femur["neck_axis_ras"], femur["shaft_axis_ras"]
    reach = float(femur["offset_mm"]) / max(math.sin(math.radians(float(femur["neck_shaft_angle_deg"]))), 1e-3)
    junction = tuple(c - reach * float(n) for c, n in zip(centre, neck, strict=True))
    distal = tuple(j - SHAFT_LINE_MM * float(a) for j, a in zip(junction, shaft, strict=True))
    return (MarkupLine(f"femoral_neck_axis_{side}", tuple(centre), junction),
            MarkupLine(f"femoral_shaft_axis_{side}", junction, distal))


def landmark_markups(landmarks_path: str | os.PathLike[str],
                     measurements_path: str | os.PathLike[str] | None = None) -> Markups:
    """Markup points from ``landmarks.json`` and, when ``measurements.json`` is given, the femoral axis lines.

    Raises:
        InputError: a file cannot be read.
    """
    landmarks = _read_json(landmarks_path, "landmarks")
    measurements = None if measurements_path is None else _read_json(measurements_path, "measurements")
    points = tuple(MarkupPoint(str(p["name"]), tuple(float(v) for v in p["ras"])) for p in landmarks)
    lines: tuple[MarkupLine, ...] = ()
    if measurements is not None:
        for side, femur in measurements.get("femur", {}).items():
            lines += _femur_lines(side, femur)
    return Markups(points, lines)


@dataclass(frozen=True)
class ProgressEvent:
    """``{"event": "progress"}``: the whole command is ``fraction`` (0-1) done and is in ``stage``."""

    stage: str
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class WarningEvent:
    """``{"event": "warning"}``: something the user should know; the run goes on."""

    message: str


@dataclass(frozen=True)
class ResultEvent:
    """``{"event": "result"}``: the last line of a successful run; ``payload`` holds the other keys."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class ErrorEvent:
    """``{"event": "error"}``: the command failed (it exits with a non-zero status)."""

    message: str


@dataclass(frozen=True)
class LogLine:
    """A line of output that is not a protocol event (library logging, tracebacks)."""

    text: str


Event = ProgressEvent | WarningEvent | ResultEvent | ErrorEvent | LogLine


def parse_event(line: str) -> Event | None:
    """Parse one line of ``--progress json`` output.

    Args:
        line: one line, with or without its line end.

    Returns:
        The event, a :class:`LogLine` for a line that is not a JSON object with a known ``"event"``, or ``None``
        for a blank line.
    """
    text = line.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return LogLine(text)
    if not isinstance(record, dict):
        return LogLine(text)
    kind = record.get("event")
    try:
        if kind == "progress":
            return ProgressEvent(str(record["stage"]), float(record["fraction"]), str(record.get("message", "")))
        if kind == "warning":
            return WarningEvent(str(record["message"]))
        if kind == "error":
            return ErrorEvent(str(record["message"]))
    except (KeyError, TypeError, ValueError):
        return LogLine(text)
    if kind == "result":
        return ResultEvent({k: v for k, v in record.items() if k != "event"})
    return LogLine(text)


class EventParser:
    """Turns the chunks a process writes on standard output into events.

    ``QProcess.readyReadStandardOutput`` delivers arbitrary chunks: a chunk can end in the middle of a line, or
    of a multi-byte UTF-8 character. The parser keeps the incomplete tail until the rest arrives.

    Examples::

        parser = EventParser()
        parser.feed(b'{"event": "progress", "stage": "load", "fr')   # -> []
        parser.feed(b'action": 0.1}\\n')                              # -> [ProgressEvent("load", 0.1, "")]
        parser.finish()                                              # -> events of an unterminated last line
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes | str) -> list[Event]:
        """Add output and return the events of every line it completes."""
        data = self._pending + (chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk))
        *lines, self._pending = data.split(b"\n")
        return self._parse(lines)

    def finish(self) -> list[Event]:
        """Return the events of the last, unterminated line (call when the process has ended)."""
        lines, self._pending = [self._pending], b""
        return self._parse(lines)

    @staticmethod
    def _parse(lines: list[bytes]) -> list[Event]:
        events = (parse_event(line.decode("utf-8", errors="replace")) for line in lines)
        return [event for event in events if event is not None]


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device: its index, name and total memory in GiB."""

    index: int
    name: str
    memory_gib: float


@dataclass(frozen=True)
class DeviceInfo:
    """What the Python environment of the subprocess offers for inference and training.

    Args:
        torch_version: installed PyTorch version, or ``""`` when PyTorch is missing.
        cuda_available: whether ``torch.cuda.is_available()``.
        gpus: the CUDA devices.
    """

    torch_version: str
    cuda_available: bool
    gpus: tuple[GpuInfo, ...] = ()

    def summary(self) -> str:
        """One line for the device label of the module, e.g. ``"CUDA: NVIDIA H100 (79.1 GiB)"``."""
        if not self.torch_version:
            return "PyTorch is not installed"
        if not self.cuda_available or not self.gpus:
            return f"CPU only (PyTorch {self.torch_version}, no CUDA device)"
        names = ", ".join(f"{gpu.name} ({gpu.memory_gib:.1f} GiB)" for gpu in self.gpus)
        return f"CUDA: {names} (PyTorch {self.torch_version})"


def probe_devices() -> dict[str, Any]:
    """Describe PyTorch and the CUDA devices of *this* interpreter (imports torch; run it in the subprocess).

    Returns:
        ``{"torch_version": str, "cuda_available": bool, "gpus": [{"index", "name", "memory_gib"}, ...]}``.
    """
    try:
        import torch
    except ImportError:
        return {"torch_version": "", "cuda_available": False, "gpus": []}
    available = bool(torch.cuda.is_available())
    gpus = []
    for index in range(torch.cuda.device_count() if available else 0):
        props = torch.cuda.get_device_properties(index)
        gpus.append({"index": index, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 2)})
    return {"torch_version": str(torch.__version__), "cuda_available": available, "gpus": gpus}


def device_probe_command(python_executable: str | os.PathLike[str]) -> list[str]:
    """Command line that prints :func:`probe_devices` as one JSON line (parse it with :func:`parse_device_probe`).

    Run with :func:`subprocess_environment`, so that importing torch never happens inside Slicer itself.
    """
    code = "import json; from SwinX2SLib.slicer_support import probe_devices; print(json.dumps(probe_devices()))"
    return [str(python_executable), "-c", code]


def parse_device_probe(stdout: str) -> DeviceInfo:
    """Read the output of :func:`device_probe_command`.

    Raises:
        ValueError: when the output holds no probe result (e.g. the interpreter failed to start).
    """
    for line in reversed(stdout.strip().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "torch_version" in record:
            gpus = tuple(GpuInfo(int(g["index"]), str(g["name"]), float(g["memory_gib"])) for g in record["gpus"])
            return DeviceInfo(str(record["torch_version"]), bool(record["cuda_available"]), gpus)
    raise ValueError(f"no device description in the probe output: {stdout.strip()[-200:]!r}")


def _parent_map() -> dict[int, list[int]]:
    """``{parent pid: [child pids]}`` of all processes (POSIX ``ps``)."""
    out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2:
            children.setdefault(int(fields[1]), []).append(int(fields[0]))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, parents before children.

    Collect the tree *before* signalling it: once a parent has died its children are re-parented and can no
    longer be found from it. On Windows only ``pid`` is returned (``taskkill /T`` walks the tree itself).
    """
    if os.name == "nt":
        return [pid]
    children = _parent_map()
    tree, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        tree.append(current)
        queue.extend(child for child in children.get(current, []) if child not in tree)
    return tree


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) counts as ended
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return True
    return bool(state.strip()) and not state.strip().startswith("Z")


def terminate_processes(pids: Sequence[int]) -> None:
    """Ask the processes of a tree (from :func:`process_tree`) to end.

    On POSIX each gets ``SIGTERM``; the ``swinx2s`` command line turns it into ``KeyboardInterrupt``, so partly
    written outputs are removed. On Windows ``taskkill /T /F`` ends the whole tree at once.
    """
    if os.name == "nt":
        for pid in pids:
            subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True)
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def kill_processes(pids: Sequence[int]) -> list[int]:
    """Force the processes that are still running to end (``SIGKILL``); returns the pids that had to be killed."""
    killed = []
    for pid in pids:
        if os.name != "nt" and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def wait_for_exit(pids: Sequence[int], timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` seconds for all ``pids`` to end; returns whether they did."""
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
