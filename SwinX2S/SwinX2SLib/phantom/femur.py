"""Femurs: an exact spherical head seated in the acetabulum, a neck along the neck axis meeting the shaft axis at
the neck-shaft angle, greater and lesser trochanters, a tubular shaft with a medullary canal, and condyles.

The neck joins the shaft in the trochanteric region: the shaft (metaphysis, then diaphysis, straight along the shaft
axis) starts with a rounded top at the neck-shaft junction, the greater trochanter stands lateral, posterior and
proximal of it and the lesser trochanter posteromedially below it. No other bone reaches the neck between the head
and the trochanteric region, so sections perpendicular to the neck axis there are centred on it, and the neck axis
of the truth is the clinical one (through the head centre and the centres of the neck's sections)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shapes import BoneDensity, Ellipsoid, Part, Structure, Tube, unit

__all__ = ["Femur", "build_femur"]


@dataclass
class Femur:
    """A placed femur (body-frame mm).

    Attributes:
        head_center, head_radius: the head sphere.
        neck_axis: unit vector from the neck-shaft junction towards the head centre.
        shaft_axis: unit vector along the shaft, pointing distally (towards the knee).
        junction: where the neck axis meets the shaft axis.
        neck_shaft_angle: angle between ``neck_axis`` and ``shaft_axis`` (degrees, 115-145).
    """

    name: str
    label: int
    side: int
    head_center: np.ndarray
    head_radius: float
    neck_axis: np.ndarray
    shaft_axis: np.ndarray
    junction: np.ndarray
    neck_shaft_angle: float
    shaft_length: float
    scale: float

    @property
    def neck_length(self) -> float:
        """Distance from the head centre to the neck-shaft junction (mm)."""
        return float(np.linalg.norm(self.head_center - self.junction))

    @property
    def offset(self) -> float:
        """Femoral offset: distance from the head centre to the shaft axis (mm)."""
        return float(np.linalg.norm(np.cross(self.head_center - self.junction, self.shaft_axis)))

    def along_shaft(self, t: float) -> np.ndarray:
        """Point on the shaft axis ``t`` mm distal of the junction."""
        return self.junction + t * self.shaft_axis

    def greater_trochanter(self) -> tuple[np.ndarray, np.ndarray]:
        """The greater trochanter ellipsoid: centre ``(3,)`` (lateral, posterior and proximal of the junction) and
        semi-axes ``(3,)`` along the body axes (mm)."""
        k = self.scale
        centre = self.along_shaft(-16.0 * k) + np.array([14.0 * k * self.side, -6.0 * k, 0.0])
        return centre, np.array([13.0, 17.0, 21.0]) * k

    def proximal_points(self, shaft_mm: float) -> np.ndarray:
        """Points ``(14, 3)`` that must be in the field of view for the proximal femur to be whole: the head's and
        the greater trochanter's extremes along the body axes, the junction and the shaft axis ``shaft_mm`` below it."""
        centre, radii = self.greater_trochanter()
        directions = np.vstack([np.eye(3), -np.eye(3)])
        head = self.head_center + self.head_radius * directions
        trochanter = centre + radii * directions
        return np.vstack([head, trochanter, self.junction, self.along_shaft(shaft_mm)])

    def structure(self, density: BoneDensity, min_radius: float) -> Structure:
        """The femur as a drawable :class:`Structure` (medullary canal as marrow)."""
        k, r, sd = self.scale, self.head_radius, self.shaft_axis
        lateral = np.array([self.side, 0.0, 0.0])
        posterior = np.array([0.0, -1.0, 0.0])
        length = self.shaft_length
        neck = Tube(
            np.array([self.head_center, self.head_center - 0.5 * self.neck_length * self.neck_axis, self.junction]),
            np.maximum([min(16.0 * k, 0.75 * r), 14.0 * k, 19.0 * k], min_radius),
            np.maximum([min(13.0 * k, 0.62 * r), 11.0 * k, 16.0 * k], min_radius),
            up=np.array([0.0, 0.0, 1.0]),
        )
        # The shaft (metaphysis, then diaphysis) starts at the neck-shaft junction, in the trochanteric region: its
        # rounded top stays clear of the neck, so sections of the neck are centred on the neck axis.
        t = np.array([0.0, 30.0, 90.0, length - 70.0, length - 20.0])
        radius = np.array([18.0, 16.0, 13.5, 15.0, 22.0]) * k
        shaft = Tube(self.junction + t[:, None] * sd, radius, radius, up=np.array([0.0, 1.0, 0.0]))
        parts: list[Part] = [
            Ellipsoid(self.head_center, np.full(3, r)),
            neck,
            shaft,
            Ellipsoid(*self.greater_trochanter()),
            Ellipsoid(self.along_shaft(32.0 * k) - 14.0 * k * lateral + 10.0 * k * posterior, np.array([8, 8, 10]) * k),
            Ellipsoid(self.along_shaft(length - 10.0 * k), np.array([38.0, 30.0, 26.0]) * k),
        ]
        canal_t = np.array([45.0, 120.0, length - 90.0])
        canal_r = np.array([8.0, 7.5, 8.5]) * k
        marrow = Tube(self.junction + canal_t[:, None] * sd, canal_r, canal_r, up=np.array([0.0, 1.0, 0.0]))
        return Structure(self.label, parts, density, marrow=[marrow])

    def truth(self) -> dict:
        """Analytic measurements (mm, degrees) and key points / directions (body frame)."""
        n = self.neck_axis
        anteversion = np.rad2deg(np.arctan2(n[1], abs(n[0])))
        return {
            "values": {
                "head_radius": self.head_radius,
                "neck_shaft_angle": float(np.rad2deg(np.arccos(np.clip(np.dot(n, self.shaft_axis), -1, 1)))),
                "offset": self.offset,
                "neck_length": self.neck_length,
                "neck_anteversion": float(anteversion),
            },
            "points": {"head_center": self.head_center, "neck_shaft_junction": self.junction},
            "directions": {"neck_axis": n, "shaft_axis": self.shaft_axis},
        }


def build_femur(
    name: str,
    label: int,
    side: int,
    head_center: np.ndarray,
    head_radius: float,
    neck_shaft_angle: float,
    anteversion: float,
    neck_length: float,
    adduction: float,
    flexion: float,
    scale: float,
) -> Femur:
    """Place a femur whose head centre is ``head_center``.

    Args:
        side: +1 left, -1 right.
        neck_shaft_angle: degrees between neck axis (towards the head) and shaft axis (distal).
        anteversion: forward rotation (degrees) of the neck about the vertical.
        neck_length: head centre to neck-shaft junction (mm).
        adduction, flexion: hip posture (degrees): knee towards the midline / anteriorly.
    """
    shaft = unit([-side * np.tan(np.deg2rad(adduction)), np.tan(np.deg2rad(flexion)), -1.0])
    medial = np.array([-side * np.cos(np.deg2rad(anteversion)), np.sin(np.deg2rad(anteversion)), 0.0])
    medial = unit(medial - np.dot(medial, shaft) * shaft)
    a = np.deg2rad(neck_shaft_angle)
    neck = np.cos(a) * shaft + np.sin(a) * medial
    junction = np.asarray(head_center, dtype=np.float64) - neck_length * neck
    return Femur(
        name,
        label,
        side,
        np.asarray(head_center, float),
        head_radius,
        neck,
        shaft,
        junction,
        neck_shaft_angle,
        380.0 * scale,
        scale,
    )
