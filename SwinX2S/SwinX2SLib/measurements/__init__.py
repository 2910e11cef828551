"""Clinical measurements from a 55-class bone label map, in millimetres and degrees in patient (RAS) space.

Deterministic and fast (no stochastic fitting): each structure is cropped to its bounding box and measured on its
voxels' RAS coordinates, so model-grid reconstructions and full-resolution CT label maps of any spacing and
direction are treated alike. One module per anatomy (:mod:`.femur`, :mod:`.pelvis`, :mod:`.vertebra`, :mod:`.rib`);
:mod:`.compare` compares a prediction with a reference. Anything that cannot be measured is reported as
``{"status": "not_measurable", "reason": ...}`` in place of its value.

Example::

    >>> from SwinX2SLib.conventions import read_published_volume
    >>> labels, grid = read_published_volume("s0308_label.nii.gz")   # [x, y, z] array + ModelGrid
    >>> m = measure(labels, grid)
    >>> m["femur"]["left"]["head_radius_mm"], m["pelvis"]["landmarks_ras"]["ASIS_L"]

A new measurement goes into its anatomy module and :func:`measure_volume`; its tests into
``Testing/test_measurements.py`` (against the analytic truth of the phantoms).
"""

from __future__ import annotations

import csv
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import catalogue
from ..measurement_records import csv_rows, is_measured, not_measurable
from ._geometry import LabelVolume
from .compare import compare_measurements, rib_overlap_metrics
from .femur import FEMUR_IDS, measure_femur
from .pelvis import measure_pelvis
from .rib import measure_ribs
from .vertebra import measure_vertebrae

if TYPE_CHECKING:
    import SimpleITK as sitk

    from ..conventions import ModelGrid
    from ..progress import ProgressReporter

__all__ = [
    "LabelVolume",
    "compare",
    "csv_rows",
    "is_measured",
    "label_volume",
    "label_volume_from_image",
    "landmarks",
    "measure",
    "measure_report",
    "measure_volume",
    "not_measurable",
    "read_label_volume",
    "write_report",
]

VERTEBRA_IDS = {c.name: c.id for c in catalogue.CLASSES if c.name.startswith("vertebrae_")}
RIB_IDS = {c.name: c.id for c in catalogue.CLASSES if c.anatomy == "rib"}


def label_volume(labels_xyz: np.ndarray, geometry: ModelGrid | np.ndarray) -> LabelVolume:
    """Wrap a label array ``[x, y, z]`` with its geometry.

    Args:
        labels_xyz: integer labels ``(X, Y, Z)`` in the 55-class scheme.
        geometry: a :class:`~SwinX2SLib.conventions.ModelGrid`, or a 4x4 voxel-index -> RAS matrix.
    """
    affine = geometry if isinstance(geometry, np.ndarray) else geometry.affine_ras()
    return LabelVolume(labels_xyz, affine)


def label_volume_from_image(image: sitk.Image) -> LabelVolume:
    """A SimpleITK label image of any spacing and direction as a :class:`LabelVolume` (index -> RAS from its header)."""
    from ..conventions import array_from_sitk, lps_to_ras

    corners = np.vstack([np.zeros(3), np.eye(3)])
    lps = np.array([image.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners])
    ras = lps_to_ras(lps)
    affine = np.eye(4)
    affine[:3, :3] = (ras[1:] - ras[0]).T
    affine[:3, 3] = ras[0]
    return LabelVolume(array_from_sitk(image), affine)


def measure(labels_xyz: np.ndarray, geometry: ModelGrid | np.ndarray) -> dict:
    """Measure every structure of a 55-class label map.

    Args:
        labels_xyz: integer labels ``(X, Y, Z)``.
        geometry: :class:`~SwinX2SLib.conventions.ModelGrid` or 4x4 voxel-index -> RAS matrix.

    Returns:
        ``{"femur": {"left", "right"}, "pelvis": {"landmarks_ras", "app"}, "vertebrae": {name: ...},
        "ribs": {name: ...}, "geometry": {"shape", "spacing_mm"}}``; see the anatomy modules for the keys.
    """
    return measure_volume(label_volume(labels_xyz, geometry))


def measure_volume(volume: LabelVolume) -> dict:
    """:func:`measure` on an already wrapped :class:`LabelVolume`."""
    femurs = {side: measure_femur(volume, side) for side in FEMUR_IDS}
    joints = {side[0].upper(): np.asarray(f["head_center_ras"]) for side, f in femurs.items() if is_measured(f)}
    return {
        "femur": femurs,
        "pelvis": measure_pelvis(volume, joints),
        "vertebrae": measure_vertebrae(volume, VERTEBRA_IDS),
        "ribs": measure_ribs(volume, RIB_IDS),
        "geometry": {"shape": list(volume.shape), "spacing_mm": volume.spacing.tolist()},
    }


def compare(
    pred: LabelVolume,
    reference: LabelVolume,
    pred_measurements: dict | None = None,
    reference_measurements: dict | None = None,
) -> dict:
    """Compare a predicted label map with a reference one.

    Args:
        pred: predicted label map.
        reference: reference (ground-truth) label map.
        pred_measurements: :func:`measure_volume` of ``pred`` when already computed.
        reference_measurements: :func:`measure_volume` of ``reference`` when already computed.

    Returns:
        :func:`~.compare.compare_measurements` errors, with each measured rib extended by ``dice``, ``cldice``,
        ``nldice`` and ``lscd_error`` (not measurable when the two maps are on different grids).
    """
    pred_m = pred_measurements if pred_measurements is not None else measure_volume(pred)
    ref_m = reference_measurements if reference_measurements is not None else measure_volume(reference)
    result = compare_measurements(pred_m, ref_m)
    same_grid = pred.shape == reference.shape and np.allclose(pred.affine, reference.affine, atol=1e-3)
    for name, errors in result["ribs"].items():
        p, r = pred_m["ribs"][name], ref_m["ribs"][name]
        if not is_measured(errors):
            continue
        if not same_grid:
            reason = "prediction and reference are on different grids"
            errors |= {k: not_measurable(reason) for k in ("dice", "cldice", "nldice", "lscd_error")}
        else:
            errors |= rib_overlap_metrics(pred, reference, RIB_IDS[name], p["centerline_ras"], r["centerline_ras"])
    return result


def landmarks(measurements: dict) -> list[dict]:
    """Named RAS points for Slicer markups: femoral head centres, pelvic landmarks, vertebral body centres.

    Returns:
        ``[{"name": str, "ras": [r, a, s]}, ...]`` (measured points only).
    """
    points = []
    for side, femur in measurements["femur"].items():
        if is_measured(femur):
            points.append({"name": f"femoral_head_{side}", "ras": femur["head_center_ras"]})
    points += [
        {"name": name, "ras": ras} for name, ras in measurements["pelvis"]["landmarks_ras"].items() if is_measured(ras)
    ]
    for name, vertebra in measurements["vertebrae"].items():
        if is_measured(vertebra):
            points.append({"name": f"{name}_body", "ras": vertebra["body_center_ras"]})
    return points


def write_report(
    measurements: dict,
    output_dir: str | PathLike[str],
    comparison: dict | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``measurements.json``, ``measurements.csv``, ``landmarks.json`` (and ``comparison.json``) atomically.

    Args:
        measurements: :func:`measure` result.
        output_dir: existing or new folder.
        comparison: :func:`compare` result, written when given.
        overwrite: replace existing files.

    Returns:
        The written paths.

    Raises:
        OutputError: a file exists and ``overwrite`` is false, or the folder is not writable.
    """
    from ..io import atomic_write, staged_outputs, write_json

    documents = {"measurements.json": measurements, "landmarks.json": landmarks(measurements)}
    if comparison is not None:
        documents["comparison.json"] = comparison
    names = [*documents, "measurements.csv"]
    with staged_outputs(output_dir, names, overwrite) as stage:  # all files or none
        for name, document in documents.items():
            write_json(document, stage / name)
        with atomic_write(stage / "measurements.csv") as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["structure", "parameter", "value", "status", "reason"])
            writer.writeheader()
            writer.writerows(csv_rows(measurements))
    return [Path(output_dir) / name for name in names]


def read_label_volume(path: str | PathLike[str], published: bool = False) -> LabelVolume:
    """Read a 55-class label map of any geometry.

    Args:
        path: label map file.
        published: the file is a published Swin-X2S model-grid NIfTI, whose header is wrong in A/P; its array is
            then read through :func:`~SwinX2SLib.conventions.read_published_volume`.

    Raises:
        InputError: unreadable, or labels outside 0-54.
    """
    from ..conventions import read_published_volume
    from ..errors import InputError
    from ..io import read_label_map

    volume = (label_volume(*read_published_volume(path)) if published
              else label_volume_from_image(read_label_map(path)))
    values = np.unique(volume.labels)
    if values.min() < 0 or values.max() >= catalogue.NUM_CLASSES:
        raise InputError(
            path,
            f"labels {values.min()}..{values.max()} outside 0-{catalogue.NUM_CLASSES - 1}: "
            "not a 55-class label map (convert subset label maps with catalogue.subset_to_full)",
        )
    return volume


def measure_report(
    labels: str | PathLike[str],
    output_dir: str | PathLike[str],
    against: str | PathLike[str] | None = None,
    overwrite: bool = False,
    reporter: ProgressReporter | None = None,
    published: bool = False,
) -> list[Path]:
    """Measure a label-map file (and compare it with a reference file) and write the report; the entry point
    used by ``swinx2s measure`` and by ``reconstruct`` / ``demo`` when they are asked to measure.

    Args:
        labels: label map file (55-class scheme, any geometry).
        output_dir: folder for :func:`write_report`.
        against: reference label map file; adds ``comparison.json``.
        overwrite: replace existing files.
        reporter: progress reporter (stages ``measure``, ``compare``, ``write``).
        published: both files are published Swin-X2S model-grid NIfTIs (see :func:`read_label_volume`).

    Returns:
        The written paths.
    """

    def update(stage: str, fraction: float, message: str) -> None:
        if reporter is not None:
            reporter.update(stage, fraction, message)

    update("measure", 0.0, f"reading {labels}")
    volume = read_label_volume(labels, published)
    update("measure", 0.1, "measuring")
    measurements = measure_volume(volume)
    comparison = None
    if against is not None:
        update("compare", 0.5, f"measuring the reference {against}")
        reference = read_label_volume(against, published)
        comparison = compare(volume, reference, measurements, measure_volume(reference))
    update("write", 0.9, f"writing to {output_dir}")
    written = write_report(measurements, output_dir, comparison, overwrite=overwrite)
    update("write", 1.0, "done")
    return written
