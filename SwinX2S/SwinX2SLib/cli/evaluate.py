"""``swinx2s evaluate``: the paper's metrics of a predicted label map against a ground truth.

Example::

    swinx2s evaluate --pred case_pred.nii.gz --label case_label.nii.gz --json metrics.json --csv metrics.csv
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    p = subparsers.add_parser(
        "evaluate",
        help="Dice, HD95, localisation error and identification rate of a prediction against a ground truth",
        description="Per-class, per-anatomy and overall metrics (see SwinX2SLib.metrics). A label on another grid "
        "than the prediction is resampled onto the prediction's grid (nearest neighbour).",
    )
    p.add_argument("--pred", required=True, help="predicted label map (55-class scheme; NIfTI, NRRD, .seg.nrrd)")
    p.add_argument("--label", required=True, help="ground-truth label map (55-class scheme)")
    p.add_argument("--json", dest="json_path", help="write the full report as JSON")
    p.add_argument("--csv", dest="csv_path", help="write the per-class table as CSV")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the requested files and print the per-anatomy summary."""
    from pathlib import Path

    from SwinX2SLib.errors import InputError, OutputError
    from SwinX2SLib.io import read_label_map
    from SwinX2SLib.metrics import evaluate_images, write_evaluation

    for out in (args.json_path, args.csv_path):
        if out is not None and Path(out).exists() and not args.overwrite:
            raise OutputError(f"{out}: exists; use --overwrite to replace it")
        if out is not None and not Path(out).resolve().parent.is_dir():
            raise OutputError(f"{out}: folder {Path(out).resolve().parent} does not exist")
    try:
        evaluation = evaluate_images(read_label_map(args.pred), read_label_map(args.label))
    except ValueError as exc:  # e.g. label values outside the catalogue
        raise InputError(f"{args.pred} vs {args.label}", str(exc)) from None
    write_evaluation(evaluation, args.json_path, args.csv_path, overwrite=args.overwrite)
    lines = [f"{'scope':8s} {'classes':>7s} {'dice':>7s} {'hd95_mm':>8s} {'loc_mm':>8s} {'id_rate':>7s}"]
    for scope, s in [*evaluation.per_anatomy.items(), ("overall", evaluation.overall)]:
        lines.append(f"{scope:8s} {s.num_classes:7d} {_fmt(s.dice, 7, 4)} {_fmt(s.hd95_mm, 8, 2)} "
                     f"{_fmt(s.localization_error_mm, 8, 2)} {_fmt(s.identification_rate, 7, 3)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}.{digits}f}"
