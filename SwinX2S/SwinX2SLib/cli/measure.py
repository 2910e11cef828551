"""``swinx2s measure``: clinical measurements of a 55-class label map, optionally against a reference.

Example::

    swinx2s measure case_pred.nii.gz --against case_label.nii.gz -o measurements/

writes ``measurements.json``, ``measurements.csv``, ``landmarks.json`` (name + RAS point, for Slicer markups) and,
with ``--against``, ``comparison.json``. The label map may have any spacing and direction (a model-grid
reconstruction or a full-resolution CT segmentation); its own header gives the patient coordinates.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``measure`` command."""
    from .common import add_overwrite_argument, add_progress_argument

    p = subparsers.add_parser(
        "measure",
        help="femur, pelvis, vertebra and rib measurements (mm, degrees, RAS) of a label map",
        description="Femoral head/neck/shaft, pelvic landmarks and anterior pelvic plane, vertebral body/canal/"
        "spinous process and rib centrelines of a 55-class label map (see SwinX2SLib.measurements).",
    )
    p.add_argument("labels", help="label map in the 55-class scheme (NIfTI, NRRD, .seg.nrrd)")
    p.add_argument("--against", metavar="REFERENCE", help="reference label map to compare with (errors per parameter)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument(
        "--published",
        action="store_true",
        help="the inputs are published Swin-X2S model-grid NIfTIs (their header is wrong in anterior/posterior)",
    )
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure, compare when asked, write the report and print where it went."""
    from ..io import prepare_output_dir
    from ..measurements import measure_report
    from .common import reporter_from_args

    reporter = reporter_from_args(args)
    folder = prepare_output_dir(args.output)
    written = measure_report(
        args.labels, folder, against=args.against, overwrite=args.overwrite, reporter=reporter, published=args.published
    )
    reporter.result({"outputs": [str(p) for p in written]})
    if reporter.mode != "json":
        print("\n".join(str(p) for p in written))
    return 0
