"""Command lines of the ``swinx2s`` subprocesses the Slicer modules start (parameters → ``as_arg_list()``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from SwinX2SLib.options import DEVICES, DRR_GEOMETRIES, MESH_FORMATS, Device, label_can_be_aligned

CLI_MODULE = "SwinX2SLib.cli"
"""The module run by ``python -m`` for every ``swinx2s`` command."""

def library_parent() -> Path:
    """The folder that contains the ``SwinX2SLib`` package (prepended to ``PYTHONPATH`` of the subprocess)."""
    return Path(__file__).resolve().parents[2]


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
        label: reference label volume on the CT's grid or a published pair's model grid (see
            :func:`SwinX2SLib.options.label_can_be_aligned`); the command then also reports Dice against it.
        model: model name or model folder; empty = the built-in default.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        pixel_spacing_mm: detector pixel spacing override in mm; 0 = read it from the files.
        meshes: also write one surface file per present structure in this format (``"stl"``, ``"obj"``,
            ``"vtp"``); empty = none (Slicer builds its own surfaces).
        largest_component: keep only the largest connected piece of each bone.
        measure: also compute the clinical measurements in the same command ("Compute clinical measurements":
            ``measurements.json``/``.csv`` and ``landmarks.json`` join the outputs).
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
    measure: bool = False
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
        if self.label and not label_can_be_aligned(self.ct, self.coronal, self.sagittal):
            return False, "a reference label can only be used with a CT or a published input pair"
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
        else:
            args += ["--coronal", self.coronal, "--sagittal", self.sagittal]
            if self.pixel_spacing_mm > 0:
                args += ["--pixel-spacing", repr(float(self.pixel_spacing_mm))]
        if self.label:
            args += ["--label", self.label]
        args += ["-o", self.output_dir, "--device", self.device]
        if self.model:
            args += ["--model", self.model]
        if self.meshes:
            args += ["--meshes", self.meshes]
        if self.largest_component:
            args.append("--largest-component")
        if self.measure:
            args.append("--measure")
        if self.overwrite:
            args.append("--overwrite")
        return args + _progress_args(progress)


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
