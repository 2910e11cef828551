#!/usr/bin/env python3
"""Render ``docs/radiograph_geometry.png``: the clinical radiograph geometry and what the preprocessing makes of it.

Left: the axial plane of an AP and a left-lateral acquisition with the project's default distances
(:class:`SwinX2SLib.radiograph.simulate.Acquisition`): sources, detectors, isocentre, mid-planes and the spine
behind the AP mid-plane (:mod:`SwinX2SLib.radiograph.depth`). Right: a simulated pair of a phantom (stored as
MONOCHROME1 with rotated ``PatientOrientation``), the prepared model inputs and the ideal model inputs (the
published parallel DRR of the same field of view), with the measured Pearson r and SI offset error.

Usage::

    python tools/make_radiograph_figure.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "SwinX2S"))

from SwinX2SLib.conventions import image_to_display  # noqa: E402
from SwinX2SLib.phantom import make_phantom  # noqa: E402
from SwinX2SLib.radiograph import read_radiograph  # noqa: E402
from SwinX2SLib.radiograph.simulate import Acquisition  # noqa: E402
from SwinX2SLib.radiograph.targets import ideal_model_inputs, measure_simulated_pair  # noqa: E402

OUT = ROOT / "docs" / "radiograph_geometry.png"
FOV_MM, SHAPE = 200.0, (64, 64, 80)


def _geometry(ax: plt.Axes, ap: Acquisition, lateral: Acquisition) -> None:
    """Axial plane seen from the feet: patient right on the left of the plot, anterior at the top."""
    ax.add_patch(matplotlib.patches.Ellipse((0, 0), 340, 240, fill=False, color="0.3"))
    ax.add_patch(matplotlib.patches.Circle((0, -70), 18, color="0.55"))
    ax.annotate("spine", (0, -70), (40, -125), arrowprops={"arrowstyle": "-", "color": "0.4"}, fontsize=8)
    ax.plot(0, 0, "k+", ms=10)
    ax.annotate("isocentre", (0, 0), (12, 8), fontsize=8)
    for acq, direction, colour, label_at in ((ap, np.array([0.0, 1.0]), "tab:blue", (-520.0, -260.0)),
                                             (lateral, np.array([-1.0, 0.0]), "tab:orange", (60.0, 280.0))):
        source = direction * acq.sod_mm
        detector = source - direction * acq.sid_mm
        across = np.array([-direction[1], direction[0]]) * acq.detector_mm[1] / 2.0
        ax.plot(*source, "o", color=colour)
        ax.plot(*np.stack([detector - across, detector + across]).T, color=colour, lw=4)
        for sign in (-1.0, 1.0):
            ax.plot(*np.stack([source, detector + sign * across]).T, color=colour, lw=0.6, alpha=0.6)
        mid = across / acq.magnification
        ax.plot(*np.stack([-mid, mid]).T, "--", color=colour, lw=1)
        ax.annotate(f"{acq.view_position} source\nSOD {acq.sod_mm:.0f} mm", source, source * 0.86 + [10, 0],
                    fontsize=8, color=colour)
        ax.annotate(f"{acq.view_position} detector\nSID {acq.sid_mm:.0f} mm", detector, label_at, fontsize=8,
                    color=colour)
    ax.set_xlim(-1300, 450)
    ax.set_ylim(-450, 1100)
    ax.set_aspect("equal")
    ax.set_xlabel("patient right ← x (mm) → patient left")
    ax.set_ylabel("posterior ← y (mm) → anterior")
    ax.set_title("axial plane: perspective beams, mid-planes (dashed)", fontsize=9)


def main() -> None:
    warnings.simplefilter("ignore", UserWarning)
    phantom = make_phantom(seed=6, shape=(96, 96, 96), spacing_mm=4.0)
    ap = Acquisition("AP", pixel_mm=2.0, photometric="MONOCHROME1", patient_orientation=("H", "R"))
    lateral = Acquisition("LL", pixel_mm=2.0, sid_mm=1500.0, sod_mm=1250.0, si_offset_mm=30.0,
                          patient_orientation=("A", "H"))
    with tempfile.TemporaryDirectory() as folder:
        found, pair = measure_simulated_pair(phantom.ct, phantom.grid, ap, lateral, folder, FOV_MM, SHAPE)
        ideal = ideal_model_inputs(phantom.ct, phantom.grid, FOV_MM, SHAPE)
        stored = {view: pydicom.dcmread(Path(folder) / f"{view}.dcm").pixel_array for view in ideal}
        shown = {view: read_radiograph(Path(folder) / f"{view}.dcm", view).pixels for view in ideal}
    figure = plt.figure(figsize=(15, 6.2))
    grid = figure.add_gridspec(2, 5, width_ratios=[2.2, 1, 1, 1, 1])
    _geometry(figure.add_subplot(grid[:, 0]), replace(ap, patient_orientation=None), lateral)
    for row, view in enumerate(("coronal", "sagittal")):
        panels = [
            (stored[view], f"{view}: stored DX ({(ap if row == 0 else lateral).photometric}, rotated)"),
            (shown[view], "read: display orientation"),
            (image_to_display(getattr(pair, view), view), f"prepared model input (r = {found['pearson_r'][view]})"),
            (image_to_display(ideal[view], view), "ideal: published parallel DRR"),
        ]
        for column, (image, title) in enumerate(panels, start=1):
            ax = figure.add_subplot(grid[row, column])
            ax.imshow(image, cmap="gray")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle(f"Clinical pair (simulated, phantom seed 6): SI offset error {found['si_offset_error_mm']} mm "
                    f"(model pixel {found['model_pixel_mm']} mm), SI scale {found['si_scale']['coronal']} / "
                    f"{found['si_scale']['sagittal']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(OUT, dpi=90)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
