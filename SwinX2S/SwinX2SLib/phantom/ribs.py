"""Ribs 1-12 on both sides: tubes along a curved centreline from the costovertebral joint of T1-T12, past the
transverse process, round the chest on an ellipse, descending towards their anterior ends."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .shapes import BoneDensity, Structure, Tube
from .spine import Vertebra

__all__ = ["RIB_SHAPES", "Rib", "build_ribs"]

_SOFT_TISSUE_HU = 45.0

#: per rib 1..12: cage half-width A, half-depth B (mm), angular extent of the arc (deg, 180 = anterior midline),
#: drop of the anterior end below the head (mm), cross-section semi-axes: height, thickness (mm).
RIB_SHAPES: tuple[tuple[float, float, float, float, float, float], ...] = (
    (55, 42, 160, 30, 3.5, 8.0),
    (80, 56, 165, 45, 6.0, 3.5),
    (95, 70, 165, 60, 6.0, 3.0),
    (105, 80, 165, 70, 6.5, 3.0),
    (112, 88, 165, 80, 6.5, 3.0),
    (118, 94, 165, 90, 6.5, 3.0),
    (122, 98, 163, 95, 6.5, 3.0),
    (125, 100, 150, 95, 6.5, 3.0),
    (125, 100, 140, 90, 6.0, 3.0),
    (122, 98, 128, 80, 6.0, 3.0),
    (115, 92, 105, 50, 5.0, 3.0),
    (105, 85, 85, 30, 4.5, 3.0),
)


@dataclass
class Rib:
    """One placed rib: catalogue label and its centreline (body-frame mm) with cross-section semi-axes."""

    name: str
    label: int
    centreline: np.ndarray
    height: np.ndarray
    thickness: np.ndarray

    def structure(self, density: BoneDensity, min_radius: float) -> Structure:
        """The rib as a tube (semi-axes widened to ``min_radius`` so thin ribs stay connected on coarse grids)."""
        height, thickness = np.maximum(self.height, min_radius), np.maximum(self.thickness, min_radius)
        tube = Tube(self.centreline, height, thickness, up=np.array([0.0, 0.0, 1.0]))
        # keep the projected bone mass of a widened rib: dilute its CT numbers towards soft tissue
        ratio = float(np.mean(self.height * self.thickness / (height * thickness)))
        soft = _SOFT_TISSUE_HU
        diluted = replace(
            density,
            cortical_hu=soft + (density.cortical_hu - soft) * ratio,
            cancellous_hu=soft + (density.cancellous_hu - soft) * ratio,
        )
        return Structure(self.label, [tube], diluted)

    def length(self) -> float:
        """Length of the centreline (mm)."""
        return float(np.linalg.norm(np.diff(self.centreline, axis=0), axis=1).sum())


def build_ribs(vertebrae: dict[str, Vertebra], scale: float, cage: float, rng: np.random.Generator) -> list[Rib]:
    """Ribs attached to the thoracic vertebrae, left side first then right (label order).

    Args:
        vertebrae: placed vertebrae by catalogue name (T1-T12 are used).
        scale: body size factor; cage: extra rib-cage width/depth factor (habitus).
        rng: small per-rib variation of the drop.
    """
    from ..catalogue import by_name

    ribs: list[Rib] = []
    for side, side_name in ((1, "left"), (-1, "right")):
        for k, (half_w, half_d, arc_end, drop, height, thick) in enumerate(RIB_SHAPES, start=1):
            v = vertebrae[f"vertebrae_T{k}"]
            a_w, b_d = half_w * scale * cage, half_d * scale * cage
            head = v.to_body([side * 0.40 * v.width, -0.40 * v.depth, 0.3 * v.h_center])
            tubercle = v.to_body(v.transverse_tip(side) + np.array([0.0, 6.0 * scale, 0.0]))
            lateral = abs(tubercle[0] - v.center[0]) + 20.0 * scale
            phi0 = np.arcsin(min(0.95, lateral / a_w))
            centre_l = v.center[0]
            centre_a = tubercle[1] - 10.0 * scale + b_d * np.cos(phi0)
            phi1 = np.deg2rad(arc_end)
            n = max(6, int(np.ceil((phi1 - phi0) * 0.5 * (a_w + b_d) / 18.0)))
            phi = np.linspace(phi0, phi1, n)
            frac = (phi - phi0) / (phi1 - phi0)
            fall = drop * scale * rng.uniform(0.9, 1.1)
            arc = np.stack(
                [
                    centre_l + side * a_w * np.sin(phi),
                    centre_a - b_d * np.cos(phi),
                    tubercle[2] - 4.0 * scale * frac - fall * frac**1.4,
                ],
                axis=1,
            )
            line = np.vstack([head, tubercle, arc])
            m = len(line)
            widen = np.linspace(1.0, 1.3, m)  # ribs are taller towards their anterior end
            ribs.append(
                Rib(
                    name=f"rib_{side_name}_{k}",
                    label=by_name(f"rib_{side_name}_{k}").id,
                    centreline=line,
                    height=height * scale * widen,
                    thickness=np.full(m, thick * scale),
                )
            )
    return ribs
