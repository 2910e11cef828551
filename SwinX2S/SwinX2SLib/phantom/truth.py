"""Analytic ground truth of a phantom as a JSON-ready dict (RAS mm, lengths mm, angles degrees).

Layout::

    {
      "format": "swinx2s-phantom-truth", "version": 1, "seed": int, "grid": ModelGrid.to_dict(),
      "patient": {... sampled parameters ...},
      "structures": {name: {"id", "status": "present" | "truncated" | "absent", "voxels", "removed_voxels"}},
      "femur": {"left" | "right": {"head_center", "head_radius", "neck_axis", "shaft_axis", "neck_shaft_angle",
                                   "offset", "neck_length", "neck_anteversion", "neck_shaft_junction", "status",
                                   "proximal_status"}},
      "pelvis": {"landmarks": {"left" | "right": {"ASIS", "PSIS", "PT", "IS"}}, "acetabulum": {...},
                 "s1_endplate": {"center", "normal"}},
      "vertebrae": {name: {"status", values..., points..., axes...}},
      "ribs": {name: {"status", "centreline": [[R, A, S], ...], "length"}},
    }

Points are RAS millimetres computed with ``ModelGrid.index_to_ras`` from the continuous voxel index of the body-frame
point; directions are unit RAS vectors. ``status`` says whether the structure is inside the field of view.

Definitions:

* femur: ``neck_axis`` points from ``neck_shaft_junction`` (where the neck axis meets the shaft axis) to the head
  centre and runs through the centres of the neck's cross-sections; ``shaft_axis`` (the diaphysis axis) points
  distally; ``neck_shaft_angle`` is the clinical neck-shaft angle, the angle between the two (115-145°);
  ``offset`` is the distance from the head centre to the shaft axis line; ``neck_anteversion`` is the elevation
  of the neck axis above the patient's coronal plane (not the condylar plane). The head is an exact sphere.
* pelvic landmarks (surface points), defined in the anterior pelvic plane (APP) frame as in Fischer et al. 2019:
  ASIS = most anterior point of the prominence at the anterior end of the iliac crest, PT = most anterior point of
  the pubic tubercle (on the superior pubic ramus, lateral to the symphysis), PSIS = most posterior point of the
  prominence at the posterior end of the crest, the APP being the plane through both ASIS and the midpoint of both
  PT (solved as a fixed point, :func:`.pelvis.app_landmarks`); IS is the tip of the ischial spine. The phantom is
  built so that these are also the extreme points of the whole upper (ASIS, PSIS) / lower (PT) hip bone in the APP
  frame. ``acetabulum.center`` is the hip joint centre
  (the femoral head centre), ``cavity_radius`` the head radius plus the joint space.
* vertebrae (in the vertebra's own frame ``left_axis``, ``anterior_axis``, ``superior_axis``; mid-sagittal
  plane): ``anterior_height`` / ``posterior_height`` of the body at its anterior / posterior wall;
  ``superior_endplate_depth`` / ``inferior_endplate_depth`` (antero-posterior) and ``..._width`` (largest
  left-right); ``canal_depth`` (antero-posterior, from the posterior body wall) and ``canal_width`` of the
  vertebral foramen; ``spinous_length`` from ``spinous_base`` (posterior canal margin) to ``spinous_tip``;
  ``spinous_angle`` between the process and the vertebra's posterior direction, positive when the tip points
  caudally. The corner points are those of the body outline in the mid-sagittal plane. C1 has canal values only.
* ribs: ``centreline`` runs from the rib head (inside the costovertebral joint) past the tubercle (at the tip of
  the transverse process) round the chest to the anterior end.
"""

from __future__ import annotations

import numpy as np

from ..conventions import ModelGrid
from .femur import Femur
from .pelvis import Pelvis
from .ribs import Rib
from .shapes import Canvas
from .spine import Vertebra

__all__ = ["PROXIMAL_SHAFT_MM", "TruthWriter"]

PROXIMAL_SHAFT_MM = 120.0
"""A femur's ``proximal_status`` is ``present`` when its head, greater trochanter, neck-shaft junction and the shaft
down to this distance below the junction are inside the grid, clear of its outermost voxels (``status`` also counts
the distal femur, cut at mid-thigh)."""


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
            inside = self._inside(f.proximal_points(PROXIMAL_SHAFT_MM))
            status = "present" if inside.all() else ("truncated" if inside.any() else "absent")
            out[side] = {
                "status": self.status[f.name],
                "proximal_status": status,
                **self._geometry(f.head_center, f.truth()),
            }
        return out

    def _inside(self, points: np.ndarray) -> np.ndarray:
        """Whether body-frame points ``(N, 3)`` lie inside the grid, clear of its outermost voxels (so that a bone
        reaching no farther than these points has no voxel on a face of the grid)."""
        idx = self.canvas.body_to_index(points)
        return np.all((idx > 0.5) & (idx < np.array(self.grid.shape) - 1.5), axis=1)

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
