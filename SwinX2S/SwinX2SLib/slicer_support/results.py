"""Result files of ``reconstruct`` and ``measure`` → table rows, markup points and lines."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from SwinX2SLib.errors import InputError

from .commands import result_files


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
    """``(measurements.json, landmarks.json)`` paths of a ``swinx2s reconstruct --measure`` (or ``measure``) result.

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
    from SwinX2SLib.measurement_records import csv_rows

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

    from SwinX2SLib.measurement_records import is_measured

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
