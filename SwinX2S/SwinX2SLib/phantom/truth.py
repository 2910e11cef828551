"""Analytic ground truth of a phantom as a JSON-ready dict (RAS mm, lengths mm, angles degrees).

Layout::

    {
      "format": "swinx2s-phantom-truth", "version": 1, "seed": int, "grid": ModelGrid.to_dict(),
      "patient": {... sampled parameters ...},
      "structures": {name: {"id", "status": "present" | "truncated" | "absent", "voxels", "removed_voxels"}},
      "femur": {"left" | "right": {"head_center", "head_radius", "neck_axis", "shaft_axis", "neck_shaft_angle",
                                   "offset", "neck_length", "neck_anteversion", "neck_shaft_junction", "status"}},
      "pelvis": {"landmarks": {"left" | "right": {"ASIS", "PSIS", "PT", "IS"}}, "acetabulum": {...},
                 "s1_endplate": {"center", "normal"}},
      "vertebrae": {name: {"status", values..., points..., axes...}},
      "ribs": {name: {"status", "centreline": [[R, A, S], ...], "length"}},
    }

Points are RAS millimetres computed with ``ModelGrid.index_to_ras`` from the continuous voxel index of the body-frame
point; directions are unit RAS vectors. ``status`` says whether the structure is inside the field of view.
"""

from __future__ import annotations

import numpy as np

from ..conventions import ModelGrid
from .femur import Femur
from .pelvis import Pelvis
from .ribs import Rib
from .shapes import Canvas
from .spine import Vertebra

__all__ = ["TruthWriter"]


def _num(x: float) -> float:
    return round(float(x), 4)


class TruthWriter:
    """Converts body-frame geometry to RAS through the canvas and the grid."""

    def __init__(self, canvas: Canvas, grid: ModelGrid, status: dict[str, str]):
        self.canvas = canvas
        self.grid = grid
        self.status = status

    def point(self, p: np.ndarray) -> list[float]:
        """Body-frame mm ``(3,)`` → RAS mm list."""
        return [_num(c) for c in self.grid.index_to_ras(self.canvas.body_to_index(p))]

    def points(self, p: np.ndarray) -> list[list[float]]:
        """Body-frame mm ``(N, 3)`` → RAS mm lists."""
        return [[_num(c) for c in row] for row in self.grid.index_to_ras(self.canvas.body_to_index(p))]

    def direction(self, origin: np.ndarray, d: np.ndarray) -> list[float]:
        """Body-frame unit direction at ``origin`` → unit RAS direction."""
        a = self.grid.index_to_ras(self.canvas.body_to_index(origin))
        b = self.grid.index_to_ras(self.canvas.body_to_index(origin + 100.0 * np.asarray(d)))
        return [_num(c) for c in (b - a) / np.linalg.norm(b - a)]

    def _geometry(self, origin: np.ndarray, item: dict) -> dict:
        out = {k: _num(v) for k, v in item["values"].items()}
        out.update({k: self.point(v) for k, v in item["points"].items()})
        out.update({k: self.direction(origin, v) for k, v in item["directions"].items()})
        return out

    def femurs(self, femurs: dict[str, Femur]) -> dict:
        out = {}
        for side, f in femurs.items():
            out[side] = {"status": self.status[f.name], **self._geometry(f.head_center, f.truth())}
        return out

    def pelvis(self, pelvis: Pelvis) -> dict:
        landmarks = {
            side: {name: self.point(p) for name, p in marks.items()} for side, marks in pelvis.landmarks.items()
        }
        acetabulum = {
            side: {"center": self.point(c), "cavity_radius": _num(pelvis.cavity_radius[side])}
            for side, c in pelvis.hip_centers.items()
        }
        return {
            "landmarks": landmarks,
            "acetabulum": acetabulum,
            "s1_endplate": {
                "center": self.point(pelvis.s1_center),
                "normal": self.direction(pelvis.s1_center, pelvis.s1_normal),
            },
        }

    def vertebrae(self, vertebrae: list[Vertebra]) -> dict:
        return {v.name: {"status": self.status[v.name], **self._geometry(v.center, v.truth())} for v in vertebrae}

    def ribs(self, ribs: list[Rib]) -> dict:
        return {
            r.name: {"status": self.status[r.name], "centreline": self.points(r.centreline), "length": _num(r.length())}
            for r in ribs
        }
