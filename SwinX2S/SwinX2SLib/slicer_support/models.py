"""The models a user can pick (built-in, imported, fine-tuned), requirements and the PyTorch/CUDA probe."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from SwinX2SLib.options import MODEL_VARIANTS

from .commands import library_parent

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
    candidates = _model_dirs(models_dir, name, kind)
    candidate = next(candidates)
    while candidate.exists():
        candidate = next(candidates)
    return candidate


def latest_run_dir(models_dir: str | os.PathLike[str], name: str) -> Path | None:
    """The folder of the last training run started for ``name`` (the one Resume continues), None if there is none.

    Runs of one name are numbered as :func:`unique_model_dir` made them: ``name``, ``name-2``, ``name-3``, ...
    """
    latest = None
    for candidate in _model_dirs(models_dir, name, "finetuned"):
        if not candidate.exists():
            return latest
        latest = candidate
    return latest


def _model_dirs(models_dir: str | os.PathLike[str], name: str, kind: ModelKind) -> Iterator[Path]:
    """``name``, ``name-2``, ``name-3``, ... under the folder of ``kind`` (``name`` made safe for a folder)."""
    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip()).strip("._") or "model"
    parent = Path(models_dir) / ("runs" if kind == "finetuned" else "imported")
    yield parent / clean
    yield from (parent / f"{clean}-{number}" for number in itertools.count(2))


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
