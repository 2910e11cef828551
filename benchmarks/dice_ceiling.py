"""How much one voxel costs: Dice of each phantom's truth against itself moved by one voxel, per anatomy and grid.

A reconstruction from two projections that places a bone one voxel off (left-right here) scores this Dice even
with a perfect shape. The figure bounds what a model on a given grid can reach before it is accurate to a fraction
of a voxel, and so shows why the built-in model's targets (femur >= 0.90, pelvis >= 0.85) need a fine grid
(see docs/default_model.md).

Usage::

    python benchmarks/dice_ceiling.py                      # 3 held-out phantoms at 64x64x96, 96x96x128, 128x128x160
    python benchmarks/dice_ceiling.py --seeds 1000000 1000001 --grids 96,96,128
"""

from __future__ import annotations

import argparse

import numpy as np

from SwinX2SLib import catalogue
from SwinX2SLib.phantom import make_phantom


def one_voxel_dice(labels: np.ndarray, axis: int = 0) -> dict[str, list[float]]:
    """Per-class Dice of ``labels`` against itself moved one voxel along ``axis``, grouped by anatomy."""
    moved = np.roll(labels, 1, axis=axis)
    per: dict[str, list[float]] = {a: [] for a in catalogue.ANATOMIES}
    for cls in catalogue.CLASSES:
        truth, shifted = labels == cls.id, moved == cls.id
        if truth.any():
            per[cls.anatomy].append(2.0 * float((truth & shifted).sum()) / float(truth.sum() + shifted.sum()))
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1_000_000, 1_000_001, 1_000_002])
    parser.add_argument("--grids", nargs="+", default=["64,64,96", "96,96,128", "128,128,160"])
    args = parser.parse_args()
    print(f"{'grid':>12s} {'voxel mm':>8s} " + " ".join(f"{a:>7s}" for a in catalogue.ANATOMIES))
    for text in args.grids:
        shape = tuple(int(v) for v in text.split(","))
        per: dict[str, list[float]] = {a: [] for a in catalogue.ANATOMIES}
        spacings = []
        for seed in args.seeds:
            phantom = make_phantom(seed=seed, shape=shape)
            spacings.append(phantom.grid.spacing)
            for anatomy, values in one_voxel_dice(phantom.labels).items():
                per[anatomy] += values
        print(f"{'x'.join(map(str, shape)):>12s} {np.mean(spacings):8.2f} "
              + " ".join(f"{np.mean(per[a]):7.3f}" for a in catalogue.ANATOMIES))


if __name__ == "__main__":
    main()
