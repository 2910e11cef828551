"""Measured targets of the clinical radiograph pipeline (issue 16) on simulated clinical pairs of phantoms.

For each phantom seed and each acquisition variant (AP/PA, LL/RL, MONOCHROME1/2, rotated PatientOrientation,
SI offsets, source distances 1150-1800 mm, water-referenced attenuation), simulates the pair as DICOM DX, prepares
it as ``swinx2s reconstruct`` does and prints the Pearson r of each view against the published parallel DRR of
the same field of view and the SI offset error (:func:`SwinX2SLib.radiograph.targets.measure_simulated_pair`).

Run::

    python benchmarks/bench_radiograph.py [--seeds 3 4 5 6] [--fov 200]

Targets: r ≥ 0.95 per view, SI offset within one model pixel (fov / 80 mm on the 64 × 64 × 80 grid used here),
SI scale of each prepared view within 1 % of the ideal one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from dataclasses import replace

import numpy as np

from SwinX2SLib.phantom import make_phantom
from SwinX2SLib.radiograph.simulate import Acquisition
from SwinX2SLib.radiograph.targets import ideal_model_inputs, measure_simulated_pair

SHAPE = (64, 64, 80)
AP = Acquisition("AP", pixel_mm=2.0)
LATERAL = Acquisition("LL", pixel_mm=2.0, sid_mm=1500.0, sod_mm=1250.0, si_offset_mm=30.0)
VARIANTS = {
    "AP + LL, +30 mm": (AP, LATERAL),
    "PA + RL, -45 mm": (replace(AP, view_position="PA"), replace(LATERAL, view_position="RL", si_offset_mm=-45.0)),
    "MONOCHROME1, rotated": (replace(AP, photometric="MONOCHROME1", patient_orientation=("H", "R")),
                             replace(LATERAL, photometric="MONOCHROME1", patient_orientation=("A", "H"))),
    "SID 1800/1650 mm": (replace(AP, sid_mm=1800.0, sod_mm=1650.0), replace(LATERAL, sid_mm=1800.0, sod_mm=1650.0)),
    "no vendor processing": (replace(AP, unsharp_amount=0.0, gamma=1.0), replace(LATERAL, unsharp_amount=0.0,
                                                                                   gamma=1.0)),
    "water attenuation": (replace(AP, attenuation="water"), replace(LATERAL, attenuation="water")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5, 6])
    parser.add_argument("--fov", type=float, default=200.0, help="SI extent of the model field of view (mm)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-radiograph-") as folder:
        for seed in args.seeds:
            phantom = make_phantom(seed=seed, shape=(96, 96, 96), spacing_mm=4.0)
            ideal = ideal_model_inputs(phantom.ct, phantom.grid, args.fov, SHAPE)
            for name, (ap, lateral) in VARIANTS.items():
                found, _ = measure_simulated_pair(phantom.ct, phantom.grid, ap, lateral, folder, args.fov, SHAPE,
                                                  seed=seed, ideal=ideal)
                rows.append({"seed": seed, "variant": name, **found})
                r, scale = found["pearson_r"], found["si_scale"]
                print(f"seed {seed} {name:24s} r coronal {r['coronal']:.3f} sagittal {r['sagittal']:.3f}  SI offset "
                      f"error {found['si_offset_error_mm']:+6.2f} mm  SI scale {scale['coronal']:.4f} "
                      f"{scale['sagittal']:.4f}", flush=True)
    summary = {}
    for name in VARIANTS:
        chosen = [row for row in rows if row["variant"] == name]
        summary[name] = {
            "r_coronal_min": min(row["pearson_r"]["coronal"] for row in chosen),
            "r_sagittal_min": min(row["pearson_r"]["sagittal"] for row in chosen),
            "si_offset_error_max_mm": float(np.max([abs(row["si_offset_error_mm"]) for row in chosen])),
            "si_scale_error_max": round(max(abs(s - 1.0) for row in chosen for s in row["si_scale"].values()), 4),
            "model_pixel_mm": chosen[0]["model_pixel_mm"],
        }
    print(json.dumps({"seeds": args.seeds, "fov_mm": args.fov, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
