"""``swinx2s drr``: render the coronal and sagittal DRRs of a CT, as the network sees them.

Example::

    swinx2s drr ct.nii.gz -o drr_out --geometry parallel --views 1 --preset published

writes ``coronal.nii.gz`` and ``sagittal.nii.gz`` (2-D, pixel spacing in mm, display orientation: superior at the
top, AP with the patient's right on the left, lateral with anterior on the left), PNG previews, and
``geometry.json`` (source and detector of every image in LPS mm, and under ``display`` the placement of the
written display-oriented file). With ``--views N`` the extra images of each
N-view group are ``coronal_<angle>deg.nii.gz`` / ``sagittal_<angle>deg.nii.gz``.
"""

from __future__ import annotations

import argparse

from ..options import DRR_GEOMETRIES
from .common import add_overwrite_argument, add_progress_argument, reporter_from_args

_PRESET_NAMES = ("published", "published_minmax", "physical")  # kept in sync with drr.PRESETS by the tests


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``drr`` command."""
    p = subparsers.add_parser(
        "drr",
        help="render coronal and sagittal DRRs (the network's input pair) from a CT",
        description="Resample a CT (HU) onto the model grid and render its coronal (AP) and sagittal (lateral) "
        "digitally reconstructed radiographs, parallel-beam or from a point source.",
    )
    p.add_argument("ct", help="CT volume in HU (NIfTI, NRRD, MHA or a DICOM folder)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if needed)")
    p.add_argument("--geometry", choices=DRR_GEOMETRIES, default="parallel",
                   help="parallel beam (published pipeline, default) or point source")
    p.add_argument("--views", type=int, default=1, metavar="N",
                   help="images per side: N-view groups at 90/N-degree steps about the superior-inferior axis")
    p.add_argument("--preset", choices=_PRESET_NAMES, default="published",
                   help="intensity preset: published network input (default), per-image min-max, or physical")
    p.add_argument("--sid", type=float, default=None, metavar="MM",
                   help="source-to-isocentre distance for --geometry perspective (default 1000 mm)")
    p.add_argument("--sdd", type=float, default=None, metavar="MM",
                   help="source-to-detector distance for --geometry perspective (default 1400 mm)")
    p.add_argument("--shape", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="model grid size; images are X × Z (coronal) and Y × Z (sagittal); default 128 128 160")
    p.add_argument("--fov", type=float, default=None, metavar="MM",
                   help="field-of-view cube side in mm (default: the CT's largest extent)")
    p.add_argument("--device", default="cpu", help="torch device for the projection, e.g. cpu or cuda")
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render and write the images; prints a JSON result with ``--progress json``."""
    import json
    from pathlib import Path

    import numpy as np
    import SimpleITK as sitk
    import torch
    from PIL import Image

    from SwinX2SLib import drr
    from SwinX2SLib.conventions import DEFAULT_GRID_SHAPE, image_to_display
    from SwinX2SLib.errors import InputError
    from SwinX2SLib.io import atomic_write, prepare_output_dir, read_volume, write_volume

    if args.views < 1:
        raise InputError("--views", f"must be at least 1, got {args.views}")
    if args.geometry == "parallel" and (args.sid is not None or args.sdd is not None):
        raise InputError("--sid/--sdd", "only apply to --geometry perspective")
    sid = drr.DEFAULT_SID_MM if args.sid is None else args.sid
    sdd = drr.DEFAULT_SDD_MM if args.sdd is None else args.sdd
    if args.geometry == "perspective" and not 0 < sid < sdd:
        raise InputError("--sid/--sdd", f"need 0 < source-to-isocentre ({sid}) < source-to-detector ({sdd}) mm")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", f"{args.device} requested but no CUDA device is available (use --device cpu)")
    reporter = reporter_from_args(args)
    out_dir = prepare_output_dir(args.output)
    reporter.update("read", 0.0, f"reading {args.ct}")
    ct = read_volume(args.ct)
    reporter.update("render", 0.3, f"{args.geometry} {args.preset} DRRs, {args.views} per side")
    inputs = drr.render_model_inputs(
        ct, args.preset, tuple(args.shape or DEFAULT_GRID_SHAPE), args.views, fov_mm=args.fov,
        geometry=args.geometry, sid_mm=sid, sdd_mm=sdd, device=args.device,
    )
    reporter.update("write", 0.7, f"writing to {out_dir}")
    files, geometry = [], []
    for index, radiograph in enumerate(inputs.radiographs):
        first = index in (0, args.views)
        stem = radiograph.view if first else f"{radiograph.view}_{radiograph.angle_deg:g}deg"
        display = np.ascontiguousarray(image_to_display(radiograph.image, radiograph.view), dtype=np.float32)
        image = sitk.GetImageFromArray(display)
        image.SetSpacing(_display_spacing_xy(radiograph.spacing_mm))
        files.append(str(write_volume(image, out_dir / f"{stem}.nii.gz", overwrite=args.overwrite)))
        png = out_dir / f"{stem}.png"
        with atomic_write(png, overwrite=args.overwrite) as tmp:
            Image.fromarray(np.round(display * 255.0).astype(np.uint8)).save(tmp, format="PNG")
        files.append(str(png))
        geometry.append({"file": f"{stem}.nii.gz", **radiograph.to_dict()})
    summary = {
        "ct": str(Path(args.ct)),
        "preset": args.preset,
        "geometry": args.geometry,
        "views": args.views,
        "grid": inputs.grid.to_dict(),
        "images": geometry,
    }
    geometry_path = out_dir / "geometry.json"
    with atomic_write(geometry_path, overwrite=args.overwrite) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    files.append(str(geometry_path))
    reporter.update("done", 1.0, f"{len(files)} files written")
    reporter.result({"files": files, **summary})
    return 0


def _display_spacing_xy(spacing_mm: tuple[float, float]) -> tuple[float, float]:
    """Model-image pixel spacing ``(first, second)`` → SimpleITK ``(x, y)`` spacing of the display image.

    The display image's rows run along the model image's second axis (z) and its columns along the first, so the
    SimpleITK x spacing (columns) is the first-axis spacing and the y spacing (rows) the second.
    """
    return float(spacing_mm[0]), float(spacing_mm[1])
