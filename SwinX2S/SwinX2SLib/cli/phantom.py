"""``swinx2s phantom``: write a procedural phantom CT with its 55-class labels and analytic ground truth.

Example::

    swinx2s phantom -o phantom_out --seed 7                       # 128 x 128 x 160, C1 (or a cut) to mid-thigh
    swinx2s phantom -o full_res --shape 512 512 400 --spacing 1   # 1 mm, centred on the same field of view

writes ``ct.nii.gz`` (HU), ``labels.nii.gz`` (catalogue ids), ``truth.json`` (RAS mm, degrees) and
``overview.png`` (AP and lateral DRRs with the label outlines, display orientation).
"""

from __future__ import annotations

import argparse

from .common import (
    GRID_SIZE,
    SEED,
    add_overwrite_argument,
    add_progress_argument,
    bounded,
    check_grid,
    reporter_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``phantom`` command."""
    p = subparsers.add_parser(
        "phantom",
        help="write a procedural torso-pelvis-thigh phantom (CT, labels, analytic truth, overview)",
        description="Build a seeded procedural phantom: CT in HU, the 55-class label map, truth.json with the "
        "analytic femur, pelvis, vertebra and rib measurements, and an overview PNG.",
    )
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (same seed, same phantom; default 0)")
    p.add_argument(
        "--shape", type=GRID_SIZE, nargs=3, default=None, metavar=("X", "Y", "Z"),
        help="grid size (default 128 128 160)",
    )
    p.add_argument(
        "--spacing",
        type=bounded(float, 0, 50, above=True, unit=" mm"),
        default=None,
        metavar="MM",
        help="isotropic voxel size; default: the field of view spans the Z axis (about 4-6.5 mm for 160 slices)",
    )
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build and write the phantom; prints a JSON result with ``--progress json``."""
    from pathlib import Path

    from SwinX2SLib.conventions import DEFAULT_GRID_SHAPE
    from SwinX2SLib.io import staged_outputs, write_png
    from SwinX2SLib.phantom import make_phantom

    shape = check_grid(args.shape or DEFAULT_GRID_SHAPE)
    reporter = reporter_from_args(args)
    out_dir = Path(args.output)
    names = ("ct.nii.gz", "labels.nii.gz", "truth.json", "overview.png")
    with staged_outputs(out_dir, names, args.overwrite) as stage:
        reporter.update("build", 0.0, f"phantom seed {args.seed}, grid {list(shape)}")
        phantom = make_phantom(seed=args.seed, shape=shape, spacing_mm=args.spacing)
        reporter.update("write", 0.6, f"writing to {out_dir}")
        phantom.write(stage)
        reporter.update("overview", 0.8, "rendering the overview")
        write_png(phantom.overview(), stage / "overview.png")
    files = [str(out_dir / name) for name in names]
    present = [n for n, s in phantom.truth["structures"].items() if s["status"] != "absent"]
    reporter.update("done", 1.0, f"{len(present)} structures in the field of view")
    reporter.result({"files": files, "seed": args.seed, "grid": phantom.grid.to_dict(), "structures": len(present)})
    return 0
