"""Placing rendered radiographs on their detector planes in 3-D (IJK-to-RAS of the DRR images)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from SwinX2SLib.errors import InputError

from .commands import result_files


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
