"""``swinx2s drr``: render the coronal and sagittal DRRs of a CT, as the network sees them.

Example::

    swinx2s drr ct.nii.gz -o drr_out --geometry parallel --views 1 --preset published

writes ``coronal.nii.gz`` and ``sagittal.nii.gz`` (2-D, pixel spacing in mm, display orientation: superior at the
top, AP with the patient's right on the left, lateral with anterior on the left), PNG previews, and
``geometry.json`` (source and detector of every image in LPS mm, and under ``display`` the placement of the
written display-oriented file). With ``--views N`` the extra images of each
N-view group are ``coronal_<angle>deg.nii.gz`` / ``sagittal_<angle>deg.nii.gz``.

With ``--realistic`` it writes instead what an X-ray room would store (:mod:`SwinX2SLib.radiograph.simulate`):
``coronal.dcm`` and ``sagittal.dcm``, DICOM DX perspective radiographs at clinical geometry with scatter, heel
effect, noise, vendor processing, collimation and a side marker, plus ``acquisition.json``::

    swinx2s drr ct.nii.gz -o rooms --realistic --ap-position PA --lateral-position RL --si-offset 25
"""

from __future__ import annotations

import argparse

from ..options import DRR_GEOMETRIES, DRR_PRESETS
from .common import (
    GRID_SIZE,
    MAX_VIEWS,
    SEED,
    add_overwrite_argument,
    add_progress_argument,
    bounded,
    check_grid,
    reporter_from_args,
)


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
    p.add_argument("--views", type=bounded(int, 1, MAX_VIEWS), default=1, metavar="N",
                   help="images per side: N-view groups at 90/N-degree steps about the superior-inferior axis")
    p.add_argument("--preset", choices=DRR_PRESETS, default="published",
                   help="intensity preset: published network input (default), per-image min-max, or physical")
    p.add_argument("--sid", type=bounded(float, 0, 1e5, above=True, unit=" mm"), default=None, metavar="MM",
                   help="source-to-isocentre distance for --geometry perspective (default 1000 mm)")
    p.add_argument("--sdd", type=bounded(float, 0, 1e5, above=True, unit=" mm"), default=None, metavar="MM",
                   help="source-to-detector distance for --geometry perspective (default 1400 mm)")
    p.add_argument("--shape", type=GRID_SIZE, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="model grid size; images are X × Z (coronal) and Y × Z (sagittal); default 128 128 160")
    p.add_argument("--fov", type=bounded(float, 0, 5000, above=True, unit=" mm"), default=None, metavar="MM",
                   help="field-of-view cube side in mm (default: the CT's largest extent)")
    p.add_argument("--device", default="cpu", help="torch device for the projection, e.g. cpu or cuda")
    realistic = p.add_argument_group("clinical radiographs (--realistic)")
    realistic.add_argument("--realistic", action="store_true",
                           help="write DICOM DX radiographs as an X-ray room stores them (perspective, scatter, "
                                "noise, vendor processing, collimation, marker); --sid/--sdd set the geometry "
                                "(default 950 / 1150 mm)")
    realistic.add_argument("--ap-position", choices=("AP", "PA"), default="AP", help="frontal view position")
    realistic.add_argument("--lateral-position", choices=("LL", "RL"), default="LL", help="lateral view position")
    realistic.add_argument("--si-offset", type=bounded(float, -1000, 1000, unit=" mm"), default=0.0, metavar="MM",
                           help="the patient moves this far towards the feet between the AP and the lateral")
    realistic.add_argument("--detector-pixel", type=bounded(float, 0.05, 5, unit=" mm"), default=0.5, metavar="MM",
                           help="detector pixel pitch (430 x 430 mm detector)")
    realistic.add_argument("--photometric", choices=("MONOCHROME1", "MONOCHROME2"), default="MONOCHROME2")
    realistic.add_argument("--attenuation", choices=("published", "water"), default="published",
                           help="attenuation: the training DRR's max(HU, 0) (default) or water-referenced HU")
    realistic.add_argument("--seed", type=SEED, default=0, help="seed of the quantum noise")
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render and write the images; prints a JSON result with ``--progress json``."""
    from pathlib import Path

    import numpy as np
    import SimpleITK as sitk
    import torch

    from SwinX2SLib import drr
    from SwinX2SLib.conventions import DEFAULT_GRID_SHAPE, image_to_display
    from SwinX2SLib.errors import InputError
    from SwinX2SLib.io import read_volume, staged_outputs, write_json, write_png, write_volume

    if args.realistic:
        return _run_realistic(args)
    if args.geometry == "parallel" and (args.sid is not None or args.sdd is not None):
        raise InputError("--sid/--sdd", "only apply to --geometry perspective")
    sid = drr.DEFAULT_SID_MM if args.sid is None else args.sid
    sdd = drr.DEFAULT_SDD_MM if args.sdd is None else args.sdd
    if args.geometry == "perspective" and not 0 < sid < sdd:
        raise InputError("--sid/--sdd", f"need 0 < source-to-isocentre ({sid}) < source-to-detector ({sdd}) mm")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", f"{args.device} requested but no CUDA device is available (use --device cpu)")
    reporter = reporter_from_args(args)
    names = [f"{view}.{ext}" for view in ("coronal", "sagittal") for ext in ("nii.gz", "png")] + ["geometry.json"]
    out_dir = Path(args.output)
    with staged_outputs(out_dir, names, args.overwrite) as stage:
        reporter.update("read", 0.0, f"reading {args.ct}")
        ct = read_volume(args.ct)
        reporter.update("render", 0.3, f"{args.geometry} {args.preset} DRRs, {args.views} per side")
        inputs = drr.render_model_inputs(
            ct, args.preset, check_grid(args.shape or DEFAULT_GRID_SHAPE), args.views, fov_mm=args.fov,
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
            write_volume(image, stage / f"{stem}.nii.gz")
            write_png(np.round(display * 255.0).astype(np.uint8), stage / f"{stem}.png")
            files += [str(out_dir / f"{stem}.nii.gz"), str(out_dir / f"{stem}.png")]
            geometry.append({"file": f"{stem}.nii.gz", **radiograph.to_dict()})
        summary = {
            "ct": str(Path(args.ct)),
            "preset": args.preset,
            "geometry": args.geometry,
            "views": args.views,
            "grid": inputs.grid.to_dict(),
            "images": geometry,
        }
        write_json(summary, stage / "geometry.json")
        files.append(str(out_dir / "geometry.json"))
    reporter.update("done", 1.0, f"{len(files)} files written")
    reporter.result({"files": files, **summary})
    return 0


def _run_realistic(args: argparse.Namespace) -> int:
    """``--realistic``: two DICOM DX files and ``acquisition.json``, written all together or not at all."""
    from dataclasses import asdict
    from pathlib import Path

    from SwinX2SLib.conventions import DEFAULT_GRID_SHAPE, ct_to_model_grid
    from SwinX2SLib.errors import InputError
    from SwinX2SLib.io import read_volume, staged_outputs, write_json
    from SwinX2SLib.radiograph.simulate import Acquisition, simulate_radiograph, write_dx

    if args.geometry != "parallel" or args.views != 1 or args.preset != "published":
        raise InputError("--realistic", "takes no --geometry, --views or --preset (it is a perspective radiograph)")
    geometry = {"sod_mm": 950.0 if args.sid is None else args.sid, "sid_mm": 1150.0 if args.sdd is None else args.sdd,
                "pixel_mm": args.detector_pixel, "photometric": args.photometric, "attenuation": args.attenuation}
    try:
        acquisitions = {"coronal": Acquisition(args.ap_position, **geometry),
                        "sagittal": Acquisition(args.lateral_position, si_offset_mm=args.si_offset, **geometry)}
    except ValueError as exc:
        raise InputError("--realistic", str(exc)) from None
    reporter = reporter_from_args(args)
    out_dir = Path(args.output)
    with staged_outputs(out_dir, ["coronal.dcm", "sagittal.dcm", "acquisition.json"], args.overwrite) as stage:
        reporter.update("read", 0.0, f"reading {args.ct}")
        volume, grid = ct_to_model_grid(read_volume(args.ct), check_grid(args.shape or DEFAULT_GRID_SHAPE), args.fov)
        files, summary = [], {"ct": str(args.ct), "grid": grid.to_dict(), "images": []}
        for index, (view, acquisition) in enumerate(acquisitions.items()):
            reporter.update("render", 0.1 + 0.4 * index, f"{acquisition.view_position} radiograph")
            image = simulate_radiograph(volume, grid, acquisition, seed=args.seed + index, device=args.device)
            write_dx(image, stage / f"{view}.dcm")
            files.append(str(out_dir / f"{view}.dcm"))
            summary["images"].append({"file": f"{view}.dcm", "view": view, "isocentre_lps": list(image.isocentre_lps),
                                      **asdict(acquisition)})
        write_json(summary, stage / "acquisition.json")
        files.append(str(out_dir / "acquisition.json"))
    reporter.update("done", 1.0, f"{len(files)} files written")
    reporter.result({"files": files, **summary})
    return 0


def _display_spacing_xy(spacing_mm: tuple[float, float]) -> tuple[float, float]:
    """Model-image pixel spacing ``(first, second)`` → SimpleITK ``(x, y)`` spacing of the display image.

    The display image's rows run along the model image's second axis (z) and its columns along the first, so the
    SimpleITK x spacing (columns) is the first-axis spacing and the y spacing (rows) the second.
    """
    return float(spacing_mm[0]), float(spacing_mm[1])
