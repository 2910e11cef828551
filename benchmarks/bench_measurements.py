"""Speed of ``SwinX2SLib.measurements.measure``: all structures of one model-grid case and of a full-resolution map.

Targets (issue 6): a 128x128x160 case <= 5 s and a 512x512x400 CT label map <= 30 s on 2 cores (the RibSeg
centreline pipeline alone takes > 80 s per case).

The model-grid case is the published ``TotalSegAll_s0308`` ground truth when ``../shared`` (or
``$SWINX2S_SHARED``) is there, else a phantom. The full-resolution map is that case upsampled (nearest neighbour)
to 512x512x400 voxels of 0.92 x 0.92 x 1.47 mm, the typical size and anisotropy of an abdominal CT.

Usage::

    python benchmarks/bench_measurements.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy import ndimage


def _model_grid_case() -> tuple[np.ndarray, object, str]:
    """Labels [x, y, z], ModelGrid and a description."""
    shared = Path(os.environ.get("SWINX2S_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    path = shared / "data/official_samples/TotalSegAll_s0308/Totalsegmentator_all/s0308_label.nii.gz"
    if path.is_file():
        from SwinX2SLib.conventions import read_published_volume

        labels, grid = read_published_volume(path)
        return labels.astype(np.uint8), grid, "published s0308 ground truth"
    from SwinX2SLib.phantom import make_phantom

    phantom = make_phantom(seed=0)
    return phantom.labels, phantom.grid, "phantom seed 0"


def _time(fn, repeat: int) -> float:
    """Best wall time (s) of ``repeat`` calls."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return float(best)


def main() -> None:
    """Print the timings."""
    from SwinX2SLib.measurements import is_measured, measure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="calls per timing (the best is reported)")
    args = parser.parse_args()

    labels, grid, what = _model_grid_case()
    result = measure(labels, grid)
    counted = sum(is_measured(v) for group in ("vertebrae", "ribs") for v in result[group].values())
    seconds = _time(lambda: measure(labels, grid), args.repeat)
    print(f"model grid {labels.shape} ({what}, {counted} vertebrae+ribs measured): {seconds:.2f} s (target 5 s)")

    target = (512, 512, 400)
    full = ndimage.zoom(labels, np.divide(target, labels.shape), order=0)
    affine = grid.affine_ras() @ np.diag([*(np.divide(labels.shape, full.shape)), 1.0])
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    seconds = _time(lambda: measure(full, affine), max(1, args.repeat - 2))
    print(f"full resolution {full.shape} ({spacing.round(2).tolist()} mm): {seconds:.2f} s (target 30 s)")


if __name__ == "__main__":
    main()
