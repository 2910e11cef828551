"""Evaluation metrics of the Swin-X2S paper, computed per class, per anatomy and overall.

All functions take label maps as integer arrays of one shape (any axis order, as long as ``spacing`` lists the
voxel size of each array axis in mm) and return plain Python numbers, so the results serialise to JSON directly.

Definitions:

* **Dice**: MONAI :func:`monai.metrics.compute_dice` on the binary masks of a class (identical to
  ``DiceMetric(include_background=True, ignore_empty=True)`` on that channel): ``2|P∩L| / (|P| + |L|)``, undefined
  (``None``) when the class is absent from the ground truth. This is how the published evaluation computed its
  per-class numbers; :func:`dice` also takes several ids to score a region (the published pelvis Dice is the Dice of
  the union of sacrum and both hips).
* **HD95**: MONAI :func:`monai.metrics.compute_hausdorff_distance` with ``percentile=95`` and the voxel spacing, in
  mm; ``None`` when the class is missing from the prediction or the ground truth.
* **Localisation error**: distance in mm between the centroids of the predicted and the true class;
  ``None`` when either is missing.
* **Identification** (VerSe rule): a ground-truth class is identified when it is predicted and the true centroid
  nearest to its predicted centroid is its own and closer than 20 mm. It is judged over the classes present in the
  ground truth, so a class that was missed counts as not identified. (The published evaluation passed prediction and
  label in the wrong order and so judged over the predicted classes, which hides missed classes.)

Per-anatomy and overall figures are means over the classes where the value is defined; the identification rate is
the identified fraction of the ground-truth classes. Background (0) is never scored.
"""

from __future__ import annotations

import csv
import io as _stdio
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from SwinX2SLib import catalogue

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = [
    "IDENTIFICATION_THRESHOLD_MM",
    "ClassMetrics",
    "Evaluation",
    "SummaryMetrics",
    "centroids_mm",
    "dice",
    "evaluate",
    "evaluate_images",
    "hd95_mm",
    "identified_classes",
    "write_evaluation",
]

IDENTIFICATION_THRESHOLD_MM = 20.0


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class; ``None`` where the value is not defined (see the module docstring)."""

    name: str
    dice: float | None
    hd95_mm: float | None
    centroid_distance_mm: float | None
    identified: bool | None


@dataclass(frozen=True)
class SummaryMetrics:
    """Means over a group of classes (an anatomy, or all classes); ``None`` when no class of the group is defined."""

    dice: float | None
    hd95_mm: float | None
    localization_error_mm: float | None
    identification_rate: float | None
    num_classes: int


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes:
        per_class: class id -> metrics, for every foreground class present in the prediction or the ground truth.
        per_anatomy: ``"spine"``, ``"rib"``, ``"pelvis"``, ``"femur"`` -> summary.
        overall: summary over all classes.
        spacing_mm: the voxel spacing used.
    """

    per_class: dict[int, ClassMetrics]
    per_anatomy: dict[str, SummaryMetrics]
    overall: SummaryMetrics
    spacing_mm: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``per_class`` keyed by the class id as a string, ``None`` for undefined values."""
        return {
            "per_class": {str(k): asdict(v) for k, v in sorted(self.per_class.items())},
            "per_anatomy": {k: asdict(v) for k, v in self.per_anatomy.items()},
            "overall": asdict(self.overall),
            "spacing_mm": list(self.spacing_mm),
        }

    def csv_rows(self) -> list[list[str]]:
        """Table rows (header first): one row per class, then one per anatomy and ``overall``."""
        rows = [["scope", "id", "name", "dice", "hd95_mm", "centroid_distance_mm", "identified"]]
        for cid, m in sorted(self.per_class.items()):
            rows.append(["class", str(cid), m.name, *map(_cell, (m.dice, m.hd95_mm, m.centroid_distance_mm,
                                                                  m.identified))])
        for scope, s in [*self.per_anatomy.items(), ("overall", self.overall)]:
            rows.append(["summary", "", scope, *map(_cell, (s.dice, s.hd95_mm, s.localization_error_mm,
                                                            s.identification_rate))])
        return rows


def dice(pred: np.ndarray, label: np.ndarray, class_ids: int | Iterable[int]) -> float | None:
    """MONAI Dice of one class, or of the union of several classes.

    Args:
        pred: predicted label map, integer array of any shape.
        label: ground-truth label map, same shape.
        class_ids: a class id, or several ids scored as one region.

    Returns:
        The Dice coefficient, or ``None`` when the region is absent from the ground truth.
    """
    ids = _as_ids(class_ids)
    p, lab = _crop_pair(np.isin(pred, ids), np.isin(label, ids))
    return _monai_dice(p, lab)


def hd95_mm(pred: np.ndarray, label: np.ndarray, class_ids: int | Iterable[int],
            spacing: Sequence[float]) -> float | None:
    """95th-percentile symmetric Hausdorff distance (MONAI) of a class or region, in mm.

    Args:
        pred: predicted label map, integer array with ``len(spacing)`` axes.
        label: ground-truth label map, same shape.
        class_ids: a class id, or several ids scored as one region.
        spacing: voxel size along each array axis, in mm.

    Returns:
        The distance, or ``None`` when the region is missing from the prediction or the ground truth.
    """
    ids = _as_ids(class_ids)
    p, lab = _crop_pair(np.isin(pred, ids), np.isin(label, ids), margin=1)
    return _monai_hd95(p, lab, spacing)


def centroids_mm(labels: np.ndarray, spacing: Sequence[float],
                 class_ids: Iterable[int] | None = None) -> dict[int, np.ndarray]:
    """Centroid of each present class, in mm from the centre of voxel 0 along the array axes.

    Args:
        labels: label map, integer array with ``len(spacing)`` axes.
        spacing: voxel size along each array axis, in mm.
        class_ids: classes to locate (default: every foreground class present).

    Returns:
        class id -> centroid (``len(spacing)``,) float64, for the present classes only.
    """
    present = [int(c) for c in np.unique(labels) if c != catalogue.BACKGROUND]
    wanted = present if class_ids is None else [c for c in class_ids if c in set(present)]
    if not wanted:
        return {}
    centres = ndimage.center_of_mass(np.ones(labels.shape, dtype=np.uint8), labels, wanted)
    scale = np.asarray(spacing, dtype=np.float64)
    return {c: np.asarray(centre, dtype=np.float64) * scale for c, centre in zip(wanted, centres, strict=True)}


def identified_classes(pred_centroids: dict[int, np.ndarray], true_centroids: dict[int, np.ndarray],
                       threshold_mm: float = IDENTIFICATION_THRESHOLD_MM) -> dict[int, bool]:
    """Apply the VerSe identification rule to every ground-truth class.

    Args:
        pred_centroids: class id -> predicted centroid (mm).
        true_centroids: class id -> true centroid (mm); the classes judged.
        threshold_mm: maximum distance from the predicted centroid to its own true centroid.

    Returns:
        class id -> whether it is identified, for every class in ``true_centroids``.
    """
    true_ids = list(true_centroids)
    if not true_ids:
        return {}
    true_points = np.stack([true_centroids[c] for c in true_ids])
    result = {}
    for cid in true_ids:
        if cid not in pred_centroids:
            result[cid] = False
            continue
        distances = np.linalg.norm(true_points - pred_centroids[cid], axis=1)
        nearest = int(np.argmin(distances))
        result[cid] = bool(true_ids[nearest] == cid and distances[nearest] < threshold_mm)
    return result


def evaluate(pred: np.ndarray, label: np.ndarray, spacing: Sequence[float],
             threshold_mm: float = IDENTIFICATION_THRESHOLD_MM) -> Evaluation:
    """All metrics of a prediction against its ground truth.

    Args:
        pred: predicted label map in the 55-class scheme, integer array (e.g. ``(X, Y, Z)`` on the model grid).
        label: ground-truth label map, same shape and grid.
        spacing: voxel size along each array axis, in mm.
        threshold_mm: identification distance threshold.

    Returns:
        The :class:`Evaluation`.

    Raises:
        ValueError: when shapes differ, ``spacing`` does not match the number of axes, or a label is outside
            the catalogue.
    """
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    if len(spacing) != pred.ndim or any(not s > 0 for s in spacing):
        raise ValueError(f"spacing {tuple(spacing)} must give one positive size per axis of a {pred.ndim}-D array")
    for what, arr in (("prediction", pred), ("label", label)):
        if arr.size and (arr.min() < 0 or arr.max() >= catalogue.NUM_CLASSES):
            raise ValueError(f"{what} holds values outside 0..{catalogue.NUM_CLASSES - 1}")
    pred_boxes = _bounding_boxes(pred)
    label_boxes = _bounding_boxes(label)
    true_c = centroids_mm(label, spacing)
    pred_c = centroids_mm(pred, spacing)
    ident = identified_classes(pred_c, true_c, threshold_mm)
    per_class: dict[int, ClassMetrics] = {}
    for cid in sorted(set(pred_boxes) | set(label_boxes)):
        box = _union_box(pred_boxes.get(cid), label_boxes.get(cid), pred.shape, margin=1)
        p, lab = pred[box] == cid, label[box] == cid
        dist = (float(np.linalg.norm(pred_c[cid] - true_c[cid])) if cid in pred_c and cid in true_c else None)
        per_class[cid] = ClassMetrics(
            name=catalogue.by_id(cid).name,
            dice=_monai_dice(p, lab),
            hd95_mm=_monai_hd95(p, lab, spacing),
            centroid_distance_mm=dist,
            identified=ident.get(cid),
        )
    per_anatomy = {a: _summarise(per_class, catalogue.class_ids(a)) for a in catalogue.ANATOMIES}
    overall = _summarise(per_class, per_class)
    return Evaluation(per_class, per_anatomy, overall, tuple(float(s) for s in spacing))


def evaluate_images(pred: sitk.Image, label: sitk.Image,
                    threshold_mm: float = IDENTIFICATION_THRESHOLD_MM) -> Evaluation:
    """:func:`evaluate` for two SimpleITK label images.

    When the label is on another grid than the prediction (e.g. a CT-grid label and a model-grid prediction) it is
    resampled onto the prediction's grid by nearest neighbour, in physical space.

    Args:
        pred: predicted label image (55-class scheme).
        label: ground-truth label image.
        threshold_mm: identification distance threshold.
    """
    import SimpleITK as sitk

    from SwinX2SLib.conventions import array_from_sitk

    if not _same_grid(pred, label):
        label = sitk.Resample(label, pred, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return evaluate(array_from_sitk(pred), array_from_sitk(label), pred.GetSpacing(), threshold_mm)


def write_evaluation(evaluation: Evaluation, json_path: str | PathLike[str] | None = None,
                     csv_path: str | PathLike[str] | None = None, overwrite: bool = False) -> None:
    """Write an evaluation as JSON (:meth:`Evaluation.to_dict`) and/or CSV (:meth:`Evaluation.csv_rows`), atomically.

    Raises:
        OutputError: when a file exists and ``overwrite`` is false, or cannot be written.
    """
    from SwinX2SLib.io import atomic_write, write_json

    if json_path is not None:
        write_json(evaluation.to_dict(), json_path, overwrite)
    if csv_path is not None:
        buffer = _stdio.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(evaluation.csv_rows())
        with atomic_write(csv_path, overwrite=overwrite) as tmp:
            tmp.write_text(buffer.getvalue(), encoding="utf-8")


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-5))


def _as_ids(class_ids: int | Iterable[int]) -> list[int]:
    ids = [int(class_ids)] if isinstance(class_ids, (int, np.integer)) else [int(c) for c in class_ids]
    if not ids or any(c == catalogue.BACKGROUND for c in ids):
        raise ValueError(f"class ids must be foreground ids, got {ids}")
    return ids


def _bounding_boxes(labels: np.ndarray) -> dict[int, tuple[slice, ...]]:
    """Bounding box (tuple of slices) of every foreground class present."""
    boxes = ndimage.find_objects(labels.astype(np.int32, copy=False))
    return {i + 1: box for i, box in enumerate(boxes) if box is not None}


def _union_box(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None, shape: tuple[int, ...],
               margin: int) -> tuple[slice, ...]:
    """Smallest box holding boxes ``a`` and ``b`` (either may be None), grown by ``margin`` voxels."""
    boxes = [x for x in (a, b) if x is not None]
    return tuple(
        slice(max(min(bx[d].start for bx in boxes) - margin, 0), min(max(bx[d].stop for bx in boxes) + margin, n))
        for d, n in enumerate(shape)
    )


def _crop_pair(p: np.ndarray, lab: np.ndarray, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Crop two masks to the box of their union (Dice and distances do not change)."""
    union = p | lab
    if not union.any():
        return p[(slice(0, 0),) * p.ndim], lab[(slice(0, 0),) * lab.ndim]
    box = ndimage.find_objects(union.astype(np.uint8))[0]
    box = _union_box(box, None, p.shape, margin)
    return p[box], lab[box]


def _monai_dice(p: np.ndarray, lab: np.ndarray) -> float | None:
    """MONAI Dice of two binary masks; None when the ground truth is empty."""
    import torch
    from monai.metrics import compute_dice

    if not lab.any():
        return None
    value = compute_dice(_batch(torch, p), _batch(torch, lab), include_background=True, ignore_empty=True)
    return float(value[0, 0])


def _monai_hd95(p: np.ndarray, lab: np.ndarray, spacing: Sequence[float]) -> float | None:
    """MONAI 95th-percentile Hausdorff distance (mm) of two binary masks; None when either is empty."""
    import torch
    from monai.metrics import compute_hausdorff_distance

    if not p.any() or not lab.any():
        return None
    with warnings.catch_warnings():  # MONAI 1.5+ warns about an argument it passes to itself
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_hausdorff_distance(_batch(torch, p), _batch(torch, lab), include_background=True,
                                           percentile=95, spacing=[float(s) for s in spacing])
    return float(value[0, 0])


def _batch(torch: Any, mask: np.ndarray) -> Any:
    """Binary mask (...) -> float tensor (1, 1, ...) as MONAI metrics expect."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]


def _summarise(per_class: dict[int, ClassMetrics], ids: Iterable[int]) -> SummaryMetrics:
    members = [per_class[c] for c in ids if c in per_class]
    judged = [m.identified for m in members if m.identified is not None]
    return SummaryMetrics(
        dice=_mean(m.dice for m in members),
        hd95_mm=_mean(m.hd95_mm for m in members),
        localization_error_mm=_mean(m.centroid_distance_mm for m in members),
        identification_rate=(sum(judged) / len(judged)) if judged else None,
        num_classes=len(members),
    )


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(defined)) if defined else None


def _cell(value: float | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return f"{value:.6g}"
