"""Reconstruction: two radiographs (or a CT rendered to DRRs) in, a 54-bone label map with confidence out.

Example::

    from SwinX2SLib.inference import Reconstructor, write_reconstruction
    rec = Reconstructor("models/my_model", device="auto")
    result = rec.reconstruct_xrays("ap.dcm", "lateral.dcm")
    write_reconstruction(result, "out/", meshes="stl")

Inputs and preprocessing
------------------------
* **Radiographs** (:meth:`Reconstructor.reconstruct_xrays`): read with their geometry by
  :func:`SwinX2SLib.radiograph.read_radiograph` (DICOM tags: mid-plane spacing, ``PatientOrientation``,
  ``ViewPosition``, photometric interpretation, rescale and VOI LUT; other files in display orientation) and
  prepared by :func:`SwinX2SLib.radiograph.prepare_radiograph_pair`: collimation and markers masked, percentile
  window, spacing at the spine's depth, the lateral aligned to the AP image along the superior-inferior axis, one
  region to reconstruct for both views (its SI length fills the grid's ``Z``), histogram matching to the model
  card's ``preprocessing["reference_quantiles"]`` when present. The grid is centred at the origin (radiographs
  carry no patient position).
* **CT** (:meth:`Reconstructor.reconstruct_ct`): rendered with :func:`SwinX2SLib.drr.render_model_inputs` using
  the model card's ``preprocessing`` (``drr_preset``, ``geometry``) and ``in_channels`` views per side; the model
  grid is the CT's field-of-view cube (published pipeline); the result is also resampled onto the CT grid.
* **Published preprocessed pair** (:meth:`Reconstructor.reconstruct_published`): read by
  :func:`SwinX2SLib.conventions.read_published_pair`, used as is.

Output: the label map ``argmax(p + q)`` on the model grid, optionally reduced to the largest connected component of
each label, with per-segment voxel count, volume and confidence (:mod:`SwinX2SLib.confidence`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import catalogue
from .confidence import SegmentConfidence, fuse_slabs, keep_largest_component, segment_confidence
from .conventions import ModelGrid
from .errors import InputError, ModelError, OutputError
from .precision import resolve_precision

if TYPE_CHECKING:
    import SimpleITK as sitk
    import torch

    from .drr import ModelInputs
    from .metrics import Evaluation
    from .radiograph import ClinicalRadiograph, Region

__all__ = [
    "DEFAULT_MODEL_DIR",
    "LOW_AGREEMENT",
    "MAX_BONE_FRACTION",
    "OUTPUT_NAMES",
    "Reconstruction",
    "Reconstructor",
    "SegmentSummary",
    "check_outputs_free",
    "planned_outputs",
    "resolve_device",
    "stage_reconstruction",
    "write_reconstruction",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"
"""The built-in default model (``model.safetensors`` + ``model.json``), trained with ``swinx2s train``."""

MAX_BONE_FRACTION = 0.4
"""Above this fraction of the grid labelled as bone a warning says the output is implausible (bones fill roughly
5-15 % of a trunk field of view): typically an untrained or unsuitable model, or an input that is not a radiograph."""

LOW_AGREEMENT = 0.5
"""Below this mean view agreement over the bones a warning says the two views may be swapped or mismatched."""

OUTPUT_NAMES = {
    "labels": "segmentation.nii.gz",
    "segmentation": "segmentation.seg.nrrd",
    "labels_ct": "segmentation_ct.nii.gz",
    "confidence": "confidence.nii.gz",
    "summary": "summary.json",
    "metrics": "metrics.json",
    "metrics_csv": "metrics.csv",
    "meshes": "meshes",
}
"""File names written by :func:`write_reconstruction` inside the output folder."""

Progress = Callable[[str, float, str], None]


@dataclass(frozen=True)
class SegmentSummary:
    """One reconstructed segment.

    Attributes:
        id: catalogue id; name: catalogue name; voxels: voxel count; volume_ml: volume in mL;
        confidence: view agreement (1 − mean Jensen–Shannon divergence of the two views, in [0, 1]);
        mean_max_probability: mean fused maximum class probability over the segment.
    """

    id: int
    name: str
    voxels: int
    volume_ml: float
    confidence: float
    mean_max_probability: float


@dataclass(frozen=True)
class Reconstruction:
    """Result of a :class:`Reconstructor` call.

    Attributes:
        labels: uint8 ``(X, Y, Z)`` label map on ``grid`` (55-class scheme).
        grid: the model grid (patient geometry; RAS affine via ``grid.affine_ras()``).
        agreement: float32 ``(X, Y, Z)`` voxel-wise view agreement (1 − JS divergence).
        segments: per present segment, in id order.
        coronal: ``(N, X, Z)`` network input; sagittal: ``(N, Y, Z)`` network input.
        source: what the inputs were (``{"kind": "xray" | "ct" | "published", ...}``).
        model: model card summary; device: the device that ran the network.
        timings_s: seconds per stage.
        reference: the CT the inputs were rendered from (``None`` otherwise), for output on its grid.
        label: ground truth on ``grid`` when a CT label was given.
    """

    labels: np.ndarray
    grid: ModelGrid
    agreement: np.ndarray
    segments: tuple[SegmentSummary, ...]
    coronal: np.ndarray
    sagittal: np.ndarray
    source: dict[str, Any]
    model: dict[str, Any]
    device: str
    timings_s: dict[str, float] = field(default_factory=dict)
    reference: Any = None
    label: np.ndarray | None = None

    def label_image(self) -> sitk.Image:
        """The label map as a SimpleITK image with the model grid's geometry."""
        from .conventions import sitk_from_array

        return sitk_from_array(self.labels, self.grid)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: inputs, model, grid, timings and per-segment statistics."""
        return {
            "source": self.source,
            "model": self.model,
            "device": self.device,
            "grid": self.grid.to_dict(),
            "coordinate_system": "RAS (Slicer); grid axes x = patient left, y = anterior, z = superior",
            "segments": [asdict(s) for s in self.segments],
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"`` / ``"cuda"`` (``"cuda:N"``) forced."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available (use --device cpu or auto)")
    return torch.device(device)


class Reconstructor:
    """Loads a model directory once and reconstructs any number of cases.

    Args:
        model_dir: folder with ``model.safetensors`` and ``model.json`` (see :mod:`SwinX2SLib.checkpoints`);
            ``None`` = :data:`DEFAULT_MODEL_DIR`.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        precision: one of :data:`SwinX2SLib.precision.PRECISIONS`.
        progress: optional ``callback(stage, fraction, message)``.
        engine: the float32 computation, one of :data:`SwinX2SLib.network.ENGINES`; ``"auto"`` takes the model
            card's ``engine``, and a ``fast`` the model does not fit runs ``plain`` with a warning
            (:func:`SwinX2SLib.network.resolve_engine`). :attr:`engine` is the one that runs.

    Raises:
        ModelError: no model there (the message says how to get one), tampered weights, or a class table that is
            not the catalogue's (a subset model's labels are mapped to catalogue ids).
    """

    def __init__(self, model_dir: str | PathLike[str] | None = None, device: str = "auto",
                 progress: Progress | None = None, precision: str = "auto", engine: str = "auto") -> None:
        from .network import resolve_engine

        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        self.device = resolve_device(device)
        self.autocast_dtype = resolve_precision(precision, self.device)
        self._progress = progress or (lambda stage, fraction, message: None)
        self.model, self.card = _load(self.model_dir, self.device)
        self.img_size: tuple[int, int, int] = tuple(int(s) for s in self.card.img_size)
        self.in_channels = int(self.card.in_channels)
        self.preprocessing: dict[str, Any] = dict(getattr(self.card, "preprocessing", {}) or {})
        self._to_catalogue = _label_table(self.card)
        self.engine = resolve_engine(self.model, self.card.engine if engine == "auto" else engine)

    # -- inputs -----------------------------------------------------------------------------------------------
    def reconstruct_xrays(self, coronal: ClinicalRadiograph | str | PathLike[str],
                          sagittal: ClinicalRadiograph | str | PathLike[str], pixel_spacing_mm: float | None = None,
                          keep_largest: bool = False, *, magnification: float | None = None,
                          region: Region | None = None, si_offset_mm: float | None = None) -> Reconstruction:
        """Reconstruct from an AP (coronal) and a lateral (sagittal) radiograph, as files or read radiographs.

        Args:
            coronal, sagittal: the two radiographs (:class:`~SwinX2SLib.radiograph.ClinicalRadiograph` or paths).
            pixel_spacing_mm: mid-plane pixel spacing of both files (overrides their tags).
            keep_largest: keep only the largest connected component of each label.
            magnification: detector-to-mid-plane magnification of both files (overrides their tags).
            region: SI extent to reconstruct on the AP image (default: what both views show).
            si_offset_mm: lateral SI position of the AP image's top edge (default: estimated).
        """
        from .radiograph import prepare_radiograph_pair, read_radiograph

        start = time.perf_counter()
        self._progress("read", 0.02, "reading radiographs")
        if self.in_channels != 1:
            raise ModelError(f"{self.model_dir}: the model needs {self.in_channels} images per view; "
                             "two radiographs give one each (use a CT input)")
        pair = [x if not isinstance(x, str | PathLike) else read_radiograph(x, view, pixel_spacing_mm, magnification)
                for x, view in ((coronal, "coronal"), (sagittal, "sagittal"))]
        prepared = prepare_radiograph_pair(pair[0], pair[1], self.img_size, region, si_offset_mm,
                                           self.preprocessing.get("reference_quantiles"))
        source = {"kind": "xray", "coronal": pair[0].path, "sagittal": pair[1].path,
                  "pixel_spacing_mm": {r.view: list(r.spacing_mm) for r in pair},
                  "spacing_source": {r.view: r.provenance["spacing_mm"]["source"] for r in pair},
                  "preprocessing": prepared.report}
        return self.reconstruct(prepared.coronal[None], prepared.sagittal[None], prepared.grid, source, keep_largest,
                                {"read": time.perf_counter() - start})

    def reconstruct_ct(self, ct: sitk.Image, label: sitk.Image | None = None, keep_largest: bool = False,
                       source: dict[str, Any] | None = None) -> Reconstruction:
        """Render the CT to DRRs with the model card's preset and reconstruct; ``label`` is carried to the grid."""
        from .drr import render_model_inputs

        start = time.perf_counter()
        self._progress("drr", 0.05, "rendering DRRs from the CT")
        inputs: ModelInputs = render_model_inputs(
            ct, preset=self.preprocessing.get("drr_preset", "published"), shape=self.img_size,
            views=self.in_channels, label=label, geometry=self.preprocessing.get("geometry", "parallel"),
            device=self.device,
        )
        info = {"kind": "ct", "drr_preset": self.preprocessing.get("drr_preset", "published"), **(source or {})}
        result = self.reconstruct(inputs.coronal, inputs.sagittal, inputs.grid, info, keep_largest,
                                  {"drr": time.perf_counter() - start})
        return _replace(result, reference=ct, label=inputs.label)

    def reconstruct_published(self, coronal_path: str | PathLike[str], sagittal_path: str | PathLike[str],
                              keep_largest: bool = False) -> Reconstruction:
        """Reconstruct from a published preprocessed pair (``*_input_cor.nii.gz``, ``*_input_sag.nii.gz``)."""
        from .conventions import read_published_pair

        start = time.perf_counter()
        cor, sag, grid = read_published_pair(coronal_path, sagittal_path)
        if grid.shape != self.img_size:
            raise InputError(coronal_path, f"is on a {grid.shape} grid but the model expects {self.img_size}")
        source = {"kind": "published", "coronal": str(coronal_path), "sagittal": str(sagittal_path)}
        return self.reconstruct(cor[None], sag[None], grid, source, keep_largest, {"read": time.perf_counter() - start})

    # -- network ----------------------------------------------------------------------------------------------
    def reconstruct(self, coronal: np.ndarray, sagittal: np.ndarray, grid: ModelGrid,
                    source: dict[str, Any] | None = None, keep_largest: bool = False,
                    timings_s: dict[str, float] | None = None) -> Reconstruction:
        """Run the network on prepared inputs.

        Args:
            coronal: ``(N, X, Z)`` float in [0, 1].
            sagittal: ``(N, Y, Z)`` float in [0, 1].
            grid: the model grid the images belong to.
            source: description of the inputs for the summary.
            keep_largest: keep only the largest connected component of each label.
            timings_s: earlier stage timings to carry.

        Returns:
            The :class:`Reconstruction`.
        """
        expected = {"coronal": (self.in_channels, self.img_size[0], self.img_size[2]),
                    "sagittal": (self.in_channels, self.img_size[1], self.img_size[2])}
        for name, array in (("coronal", coronal), ("sagittal", sagittal)):
            if tuple(array.shape) != expected[name]:
                raise InputError(f"{name} input", f"shape {tuple(array.shape)} does not match the model's "
                                                  f"{expected[name]}")
            if not np.all(np.isfinite(array)):
                raise InputError(f"{name} input", "contains NaN or infinite values")
        timings = dict(timings_s or {})
        self._progress("predict", 0.1, f"running the network on {self.device.type}")
        start = time.perf_counter()
        fused = self._predict(coronal, sagittal)
        timings["predict"] = time.perf_counter() - start
        start = time.perf_counter()
        self._progress("postprocess", 0.85, "confidence and statistics")
        labels = self._to_catalogue[fused.labels]
        labels = keep_largest_component(labels) if keep_largest else labels
        confidence = segment_confidence(labels, fused.js_divergence, fused.max_probability)
        segments = _segments(labels, confidence, grid.spacing)
        bones = labels > 0
        if bones.mean() > MAX_BONE_FRACTION:
            warnings.warn(f"implausible reconstruction: {bones.mean():.0%} of the volume is labelled as bone; the "
                          f"model ({self.model_dir}) may be untrained or unsuited to this input", UserWarning,
                          stacklevel=2)
        if bones.any():
            mean_agreement = 1.0 - float(fused.js_divergence[bones].mean())
            if mean_agreement < LOW_AGREEMENT:
                warnings.warn(f"the two views' predictions disagree strongly (mean agreement {mean_agreement:.2f}): "
                              "check that the coronal input is the AP image and the sagittal one the lateral "
                              "image of the same patient", UserWarning, stacklevel=2)
        timings["postprocess"] = time.perf_counter() - start
        return Reconstruction(
            labels=labels, grid=grid, agreement=(1.0 - fused.js_divergence).astype(np.float32),
            segments=segments, coronal=np.asarray(coronal, np.float32), sagittal=np.asarray(sagittal, np.float32),
            source=dict(source or {}), model=self._model_info(), device=str(self.device), timings_s=timings,
        )

    def _predict(self, coronal: np.ndarray, sagittal: np.ndarray):
        import torch

        try:
            return self._forward(coronal, sagittal)
        except torch.cuda.OutOfMemoryError:
            if self.device.type == "cpu":
                raise
            warnings.warn(f"CUDA ran out of memory on {self.device}; retrying on the CPU (slower)", UserWarning,
                          stacklevel=3)
            torch.cuda.empty_cache()
            self.device = torch.device("cpu")
            self.autocast_dtype = None  # float32: half precision is for CUDA (see SwinX2SLib.precision)
            self.model.to(self.device)
            return self._forward(coronal, sagittal)

    def _forward(self, coronal: np.ndarray, sagittal: np.ndarray):
        """The network's two logit volumes, computed and fused slab by slab into labels and confidence."""
        import torch

        from .network import logit_slabs

        cor = torch.as_tensor(np.asarray(coronal, np.float32), device=self.device)[None]
        sag = torch.as_tensor(np.asarray(sagittal, np.float32), device=self.device)[None]
        slabs = ((p[0], q[0]) for _, _, p, q in logit_slabs(self.model, cor, sag, autocast_dtype=self.autocast_dtype,
                                                             engine=self.engine))
        return fuse_slabs(slabs, tuple(self.img_size))

    def _model_info(self) -> dict[str, Any]:
        info = {"dir": str(self.model_dir), "img_size": list(self.img_size), "in_channels": self.in_channels,
                "num_classes": int(self.card.num_classes), "preprocessing": self.preprocessing,
                "precision": str(self.autocast_dtype or "torch.float32").removeprefix("torch."),
                "engine": "plain" if self.autocast_dtype is not None else self.engine}
        for key in ("variant", "name", "sha256"):
            if getattr(self.card, key, None) is not None:
                info[key] = getattr(self.card, key)
        return info


def _load(model_dir: Path, device: torch.device):
    """Load a model directory and check that it predicts the 55-class scheme."""
    from .checkpoints import load_model_dir

    if not (model_dir / "model.json").is_file() or not (model_dir / "model.safetensors").is_file():
        default = " (the built-in default model has not been trained yet)" if model_dir == DEFAULT_MODEL_DIR else ""
        raise ModelError(f"{model_dir}: no trained model here{default}. A model folder holds model.safetensors and "
                         "model.json; create one with `swinx2s train` or `swinx2s model import` (published "
                         "checkpoint) and pass it with --model DIR")
    try:
        model, card = load_model_dir(model_dir, device)
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"{model_dir}: cannot load the model ({exc})") from None
    model.eval()
    return model, card


def _label_table(card: Any) -> np.ndarray:
    """Model output index -> catalogue id (identity for a full model, the subset's ids for a subset model)."""
    names = tuple(getattr(card, "classes", ()) or ())
    if not names:
        if int(card.num_classes) != catalogue.NUM_CLASSES:
            raise ModelError(f"the model predicts {card.num_classes} classes but names none; SwinX2S needs the "
                             f"{catalogue.NUM_CLASSES}-class scheme or a named subset")
        return np.arange(catalogue.NUM_CLASSES, dtype=np.uint8)
    return np.array([0, *(catalogue.by_name(n).id for n in names[1:])], dtype=np.uint8)


def _segments(labels: np.ndarray, confidence: dict[int, SegmentConfidence], spacing: float
              ) -> tuple[SegmentSummary, ...]:
    counts = np.bincount(labels.ravel(), minlength=catalogue.NUM_CLASSES)
    voxel_ml = spacing**3 / 1000.0
    return tuple(
        SegmentSummary(cid, catalogue.by_id(cid).name, int(counts[cid]), round(float(counts[cid] * voxel_ml), 3),
                       round(confidence[cid].agreement, 4), round(confidence[cid].mean_max_probability, 4))
        for cid in sorted(confidence)
    )


def _replace(result: Reconstruction, **changes: Any) -> Reconstruction:
    from dataclasses import replace

    return replace(result, **changes)


def planned_outputs(folder: str | PathLike[str], ct_grid: bool = False, with_metrics: bool = False,
                    meshes: str | None = None) -> list[Path]:
    """The paths :func:`write_reconstruction` will create (the meshes folder as one entry)."""
    keys = ["labels", "segmentation", "confidence", "summary"]
    keys += ["labels_ct"] if ct_grid else []
    keys += ["metrics", "metrics_csv"] if with_metrics else []
    keys += ["meshes"] if meshes else []
    return [Path(folder) / OUTPUT_NAMES[k] for k in keys]


def check_outputs_free(paths: list[Path], overwrite: bool) -> None:
    """Raise :class:`OutputError` when an output exists and ``overwrite`` is false (checked before computing)."""
    if overwrite:
        return
    existing = [p for p in paths if p.exists() and not (p.is_dir() and not any(p.iterdir()))]
    if existing:
        raise OutputError(f"{existing[0]}: already exists (use --overwrite to replace the outputs)")


def write_reconstruction(result: Reconstruction, folder: str | PathLike[str], overwrite: bool = False,
                         meshes: str | None = None, evaluation: Evaluation | None = None,
                         extra_summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write all outputs of a reconstruction into ``folder``, all or nothing.

    Files (:data:`OUTPUT_NAMES`): the label map on the model grid (NIfTI, RAS affine) and as a Slicer
    ``.seg.nrrd`` (names, colours, terminology), the voxel-wise view agreement (NIfTI), a JSON summary, the label
    map on the CT grid (CT input), metrics (JSON, CSV) when ``evaluation`` is given, one surface per segment in
    ``meshes/`` when ``meshes`` is ``"stl"``, ``"obj"`` or ``"vtp"``.

    Everything is first written into a hidden staging folder inside ``folder`` and moved into place at the end
    (:func:`SwinX2SLib.io.staged_outputs`); on any error or interruption (Ctrl-C, SIGTERM) no output is left.

    Returns:
        The summary written to ``summary.json`` (with ``"outputs"``: name → path).

    Raises:
        OutputError: the folder is not writable, or outputs exist and ``overwrite`` is false.
    """
    from .io import staged_outputs

    targets = planned_outputs(folder, result.reference is not None, evaluation is not None, meshes)
    with staged_outputs(folder, [p.name for p in targets], overwrite) as stage:
        return stage_reconstruction(result, stage, Path(folder), meshes, evaluation, extra_summary)


def stage_reconstruction(result: Reconstruction, stage: Path, folder: Path, meshes: str | None = None,
                         evaluation: Evaluation | None = None,
                         extra_summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the outputs of :func:`write_reconstruction` into the staging folder ``stage`` of ``folder``.

    Returns:
        The summary (its ``"outputs"`` name the final paths in ``folder``).
    """
    from .conventions import model_grid_to_reference, sitk_from_array
    from .io import write_json, write_segmentation, write_volume
    from .meshes import write_meshes

    start = time.perf_counter()
    label_image = result.label_image()
    write_segmentation(label_image, stage / OUTPUT_NAMES["labels"])
    write_segmentation(label_image, stage / OUTPUT_NAMES["segmentation"])
    write_volume(sitk_from_array(result.agreement, result.grid), stage / OUTPUT_NAMES["confidence"])
    if result.reference is not None:
        on_ct = model_grid_to_reference(result.labels, result.grid, result.reference, "nearest")
        write_segmentation(on_ct, stage / OUTPUT_NAMES["labels_ct"])
    if evaluation is not None:
        from .metrics import write_evaluation

        write_evaluation(evaluation, stage / OUTPUT_NAMES["metrics"], stage / OUTPUT_NAMES["metrics_csv"])
    if meshes:
        (stage / OUTPUT_NAMES["meshes"]).mkdir()
        write_meshes(result.labels, result.grid.affine_ras(), stage / OUTPUT_NAMES["meshes"], meshes)
    summary = result.summary()
    summary["timings_s"]["write"] = round(time.perf_counter() - start, 3)
    if evaluation is not None:
        summary["metrics"] = {"per_anatomy": evaluation.to_dict()["per_anatomy"],
                              "overall": evaluation.to_dict()["overall"]}
    summary.update(extra_summary or {})
    staged = sorted(p for p in stage.rglob("*") if p.is_file())
    summary["outputs"] = {p.relative_to(stage).as_posix(): str(folder / p.relative_to(stage)) for p in staged}
    summary["outputs"][OUTPUT_NAMES["summary"]] = str(folder / OUTPUT_NAMES["summary"])
    write_json(summary, stage / OUTPUT_NAMES["summary"])
    return summary
