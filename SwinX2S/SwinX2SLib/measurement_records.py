"""The record format of the clinical measurements: "not measurable" placeholders and flat CSV rows.

Kept apart from :mod:`SwinX2SLib.measurements` (which needs SciPy and scikit-image) so that the Slicer GUI process
can turn a ``measurements.json`` into table rows without importing them.
"""

from __future__ import annotations

from typing import Any


def not_measurable(reason: str) -> dict[str, str]:
    """The placeholder put in place of any value that could not be measured.

    Args:
        reason: why, in words (absent, truncated by the field of view, too small, fused/ambiguous, ...).

    Returns:
        ``{"status": "not_measurable", "reason": reason}``.
    """
    return {"status": "not_measurable", "reason": reason}


def is_measured(value: Any) -> bool:
    """Whether ``value`` is a measurement rather than a :func:`not_measurable` placeholder."""
    return not (isinstance(value, dict) and value.get("status") == "not_measurable")


def csv_rows(measurements: dict) -> list[dict]:
    """Flatten scalar measurements and point coordinates into rows (centrelines and axes are left to the JSON).

    Returns:
        ``[{"structure", "parameter", "value", "status", "reason"}, ...]`` where points give one row per coordinate
        (``<parameter>_r`` / ``_a`` / ``_s``).
    """
    rows: list[dict] = []

    def add(structure: str, parameter: str, value: object) -> None:
        if not is_measured(value):
            rows.append(
                {
                    "structure": structure,
                    "parameter": parameter,
                    "value": "",
                    "status": "not_measurable",
                    "reason": value["reason"],
                }
            )
        elif isinstance(value, float | int):
            rows.append(
                {"structure": structure, "parameter": parameter, "value": f"{value:.4f}", "status": "ok", "reason": ""}
            )
        elif isinstance(value, list) and len(value) == 3 and not parameter.endswith("axis_ras"):
            for axis, coordinate in zip("ras", value, strict=True):
                add(structure, f"{parameter}_{axis}", coordinate)

    groups = {
        **{f"femur_{s}": v for s, v in measurements["femur"].items()},
        "pelvis": measurements["pelvis"]["landmarks_ras"],
        **measurements["vertebrae"],
        **measurements["ribs"],
    }
    for structure, values in groups.items():
        if not is_measured(values):
            add(structure, "all", values)
            continue
        for parameter, value in values.items():
            add(structure, parameter, value)
    return rows
