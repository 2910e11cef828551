"""``swinx2s reconstruct``: two radiographs (or a CT, or a published input pair) in, a 54-bone segmentation out.

Examples::

    swinx2s reconstruct --coronal ap.dcm --sagittal lateral.dcm -o out/
    swinx2s reconstruct --ct ct.nii.gz --label truth.nii.gz -o out/ --meshes stl
    swinx2s reconstruct --coronal s0308_input_cor.nii.gz --sagittal s0308_input_sag.nii.gz -o out/ --progress json

Outputs (see :func:`SwinX2SLib.inference.write_reconstruction`): ``segmentation.nii.gz``,
``segmentation.seg.nrrd``, ``confidence.nii.gz``, ``summary.json``; with ``--ct`` also ``segmentation_ct.nii.gz``;
with ``--label`` also ``metrics.json`` / ``metrics.csv``; with ``--meshes`` a ``meshes/`` folder.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..options import MESH_FORMATS, PUBLISHED_INPUT
from ..progress import ProgressReporter
from .common import (
    add_device_arguments,
    add_overwrite_argument,
    add_progress_argument,
    bounded,
    reporter_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reconstruct`` command."""
    p = subparsers.add_parser(
        "reconstruct",
        help="reconstruct a 54-bone segmentation from an AP and a lateral radiograph (or a CT)",
        description="Reconstruct the 3-D bone segmentation. Inputs: an AP (--coronal) and a lateral (--sagittal) "
        "radiograph (PNG/JPEG/TIFF, DICOM, 2-D NIfTI/NRRD/MHA), a published preprocessed pair "
        "(*_input_cor.nii.gz, *_input_sag.nii.gz), or a CT (--ct) rendered to DRRs with the model's preset.",
    )
    p.add_argument("--coronal", "--ap", dest="coronal", help="AP (coronal) radiograph")
    p.add_argument("--sagittal", "--lateral", dest="sagittal", help="lateral (sagittal) radiograph")
    p.add_argument("--ct", help="CT volume (NIfTI, NRRD, MHA or DICOM folder) rendered to DRRs")
    p.add_argument("--label", help="ground-truth label map (55-class scheme) to evaluate against (with --ct or a "
                                   "published pair)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    p.add_argument("--model", help="model folder (model.safetensors + model.json); default: the built-in model")
    add_device_arguments(p)
    p.add_argument("--pixel-spacing", type=bounded(float, 0, 10, above=True, unit=" mm"), metavar="MM",
                   help="pixel spacing of both radiographs in the patient's mid-plane, mm (overrides the files)")
    p.add_argument("--magnification", type=bounded(float, 1, 3), metavar="M",
                   help="source-to-detector / source-to-patient distance of both radiographs (overrides the files)")
    p.add_argument("--region", type=float, nargs=2, metavar=("TOP", "BOTTOM"),
                   help="superior-inferior extent to reconstruct: mid-plane mm from the AP image's top edge "
                        "(default: what both views show); carried to the lateral image by the alignment")
    p.add_argument("--si-offset", type=float, metavar="MM",
                   help="position (mm, lateral image, from its top edge) of the AP image's top edge "
                        "(default: estimated from the two images)")
    p.add_argument("--meshes", choices=MESH_FORMATS, help="also write one surface mesh per bone (RAS)")
    p.add_argument("--largest-component", action="store_true",
                   help="keep only the largest connected piece of each bone")
    p.add_argument("--measure", action="store_true",
                   help="also compute clinical measurements (measurements.json/.csv, landmarks.json; with --ct and "
                        "--label also comparison.json)")
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


MEASUREMENT_FILES = ("measurements.json", "measurements.csv", "landmarks.json")


def run(args: argparse.Namespace) -> int:
    """Check the outputs, reconstruct, evaluate when a label is given, write everything, report the result."""
    return _run(args, reporter_from_args(args))


def _run(args: argparse.Namespace, reporter: ProgressReporter) -> int:
    from ..errors import InputError
    from ..inference import OUTPUT_NAMES, Reconstructor, check_outputs_free, planned_outputs, stage_reconstruction
    from ..io import prepare_output_dir, staged_outputs

    kind = _input_kind(args)
    folder = prepare_output_dir(args.output)
    planned = planned_outputs(folder, kind == "ct", args.label is not None, args.meshes)
    if args.measure:
        planned += [folder / name for name in MEASUREMENT_FILES]
        planned += [folder / "comparison.json"] if kind == "ct" and args.label is not None else []
    check_outputs_free(planned, args.overwrite)
    if args.label is not None and kind == "xray":
        raise InputError(args.label, "a ground truth can only be aligned with a CT or a published input pair")
    for flag, value in (("--magnification", args.magnification), ("--region", args.region),
                        ("--si-offset", args.si_offset)):
        if value is not None and kind != "xray":
            raise InputError(flag, "only applies to two radiographs (--coronal/--sagittal)")
    inputs = _read_inputs(args, kind)  # input errors come before the model is loaded
    reporter.update("load", 0.01, "loading the model")
    reconstructor = Reconstructor(args.model, args.device, progress=reporter.update, precision=args.precision,
                                  engine=args.engine)
    result = _reconstruct(reconstructor, args, kind, inputs)
    evaluation = _evaluate(result, args.label, kind) if args.label is not None else None
    reporter.update("write", 0.9, f"writing outputs to {folder}")
    with staged_outputs(folder, [p.name for p in planned], args.overwrite) as stage:
        summary = stage_reconstruction(result, stage, folder, meshes=args.meshes, evaluation=evaluation)
        if args.measure:
            from ..measurements import measure_report

            reporter.update("measure", 0.95, "clinical measurements")
            against = args.label if kind == "ct" else None
            written = measure_report(stage / OUTPUT_NAMES["labels"], stage, against=against, overwrite=True)
            summary["outputs"].update({path.name: str(folder / path.name) for path in written})
    reporter.update("done", 1.0, f"{len(result.segments)} segments")
    payload: dict[str, Any] = {"output_dir": str(folder), "outputs": summary["outputs"],
                               "segments": len(result.segments), "device": result.device,
                               "timings_s": summary["timings_s"]}
    if evaluation is not None:
        payload["metrics"] = summary["metrics"]
    reporter.result(payload)
    if reporter.mode != "json":
        sys.stdout.write(_text_report(summary, folder))
    return 0


def _input_kind(args: argparse.Namespace) -> str:
    from ..errors import InputError

    if args.ct is not None:
        if args.coronal is not None or args.sagittal is not None:
            raise InputError(args.ct, "give either --ct or --coronal/--sagittal, not both")
        return "ct"
    if args.coronal is None or args.sagittal is None:
        raise InputError(args.coronal or args.sagittal or "input", "both --coronal (AP) and --sagittal (lateral) "
                                                                   "images are needed (or --ct)")
    cor, sag = PUBLISHED_INPUT.search(args.coronal), PUBLISHED_INPUT.search(args.sagittal)
    if cor and sag:
        if (cor.group(1), sag.group(1)) != ("cor", "sag"):
            raise InputError(args.coronal, "published inputs given in the wrong order: --coronal takes "
                                           "*_input_cor.nii.gz and --sagittal *_input_sag.nii.gz")
        return "published"
    return "xray"


def _read_inputs(args: argparse.Namespace, kind: str) -> tuple[Any, Any]:
    """Read and check the input images (CT and label, or both radiographs) before anything else is done."""
    from ..conventions import read_published_pair
    from ..io import check_ct_shows_bone, read_label_map, read_volume

    if kind == "ct":
        ct = read_volume(args.ct)
        check_ct_shows_bone(ct, args.ct)
        return ct, read_label_map(args.label, ct) if args.label else None
    if kind == "published":
        read_published_pair(args.coronal, args.sagittal)
        return args.coronal, args.sagittal
    from ..radiograph import read_radiograph

    return tuple(read_radiograph(path, view, args.pixel_spacing, args.magnification)
                 for path, view in ((args.coronal, "coronal"), (args.sagittal, "sagittal")))


def _reconstruct(reconstructor: Any, args: argparse.Namespace, kind: str, inputs: tuple[Any, Any]) -> Any:
    first, second = inputs
    if kind == "ct":
        return reconstructor.reconstruct_ct(first, second, args.largest_component, source={"ct": str(args.ct)})
    if kind == "published":
        return reconstructor.reconstruct_published(first, second, args.largest_component)
    from ..radiograph import Region

    region = Region(*args.region) if args.region is not None else None
    return reconstructor.reconstruct_xrays(first, second, args.pixel_spacing, args.largest_component,
                                           magnification=args.magnification, region=region,
                                           si_offset_mm=args.si_offset)


def _evaluate(result: Any, label_path: str, kind: str) -> Any:
    from ..conventions import read_published_volume
    from ..errors import InputError
    from ..metrics import evaluate

    if kind == "ct":
        label = result.label
    else:
        label, _ = read_published_volume(label_path)
        if label.shape != result.labels.shape:
            raise InputError(label_path, f"shape {label.shape} differs from the model grid {result.labels.shape}")
    return evaluate(result.labels, label, (result.grid.spacing,) * 3)


def _text_report(summary: dict[str, Any], folder: Any) -> str:
    lines = [f"{'id':>3s} {'segment':24s} {'volume_ml':>9s} {'confidence':>10s}"]
    lines += [f"{s['id']:3d} {s['name']:24s} {s['volume_ml']:9.1f} {s['confidence']:10.3f}"
              for s in summary["segments"]]
    if "metrics" in summary:
        overall = summary["metrics"]["overall"]
        lines.append(f"overall Dice {overall['dice']}, HD95 {overall['hd95_mm']} mm, identification rate "
                     f"{overall['identification_rate']}")
    lines.append(f"outputs in {folder}")
    return "\n".join(lines) + "\n"
