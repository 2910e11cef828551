"""``swinx2s demo``: the whole job on built-in data, no input files needed.

phantom → DRRs (model card's preset) → reconstruction with the bundled default model → clinical measurements
(when :mod:`SwinX2SLib.measurements` is available) → metrics against the phantom's truth → ``overview.png`` and
``report.json`` / ``report.md`` beside the usual reconstruction outputs.

Without a trained default model (``SwinX2SLib/models/default``) the demo stops with a plain message instead of
showing the output of an untrained network.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from .common import SEED, add_device_arguments, add_overwrite_argument, add_progress_argument, reporter_from_args

REPORT_FILES = ("overview.png", "report.json", "report.md")
DEMO_SEED = 5_000_000
"""The demo's default phantom: above the training pools (from 0), validation (900000...) and held-out (1000000...)
seeds of the built-in recipe, so the demo scores a phantom the model has never seen."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = subparsers.add_parser(
        "demo",
        help="phantom -> DRRs -> reconstruction -> measurements and metrics -> overview PNG and report",
        description="Run the whole pipeline on a procedural phantom with the built-in default model.",
    )
    p.add_argument("-o", "--output", default="swinx2s-demo", help="output folder (default: ./swinx2s-demo)")
    p.add_argument("--model", help="model folder (default: the built-in default model)")
    p.add_argument("--seed", type=SEED, default=DEMO_SEED,
                   help=f"phantom seed (default {DEMO_SEED}: outside every seed range the built-in model trained, "
                        "selected or was scored on)")
    add_device_arguments(p)
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and report where its outputs are."""
    return _run(args, reporter_from_args(args))


def _run(args: argparse.Namespace, reporter: Any) -> int:
    from ..drr import render_from_model_grid
    from ..errors import ModelError
    from ..inference import DEFAULT_MODEL_DIR, Reconstructor, check_outputs_free, planned_outputs, stage_reconstruction
    from ..io import prepare_output_dir, staged_outputs
    from ..metrics import evaluate
    from ..phantom import make_phantom

    start = time.perf_counter()
    model_dir = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    if not (model_dir / "model.safetensors").is_file():
        raise ModelError(f"no trained default model is present ({model_dir} has no model.safetensors), so the demo "
                         "stops here rather than show the output of an untrained network. Train one with "
                         "`swinx2s train` or pass --model DIR")
    folder = prepare_output_dir(args.output)
    targets = [*planned_outputs(folder, with_metrics=True), *(folder / name for name in REPORT_FILES)]
    check_outputs_free(targets, args.overwrite)

    reporter.update("load", 0.02, "loading the model")
    reconstructor = Reconstructor(model_dir, args.device, progress=reporter.update, precision=args.precision,
                                  engine=args.engine)
    quality = model_quality_note(reconstructor.card)
    if quality:
        reporter.warn(quality)
    seen = seed_seen_in_training(reconstructor.card, args.seed)
    if seen:
        reporter.warn(seen)
    stages = {"load": time.perf_counter() - start}
    reporter.update("phantom", 0.05, f"building phantom (seed {args.seed})")
    phantom = make_phantom(seed=args.seed, shape=reconstructor.img_size)
    stages["phantom"] = time.perf_counter() - start - sum(stages.values())
    preset = reconstructor.preprocessing.get("drr_preset", "published")
    reporter.update("drr", 0.08, f"rendering DRRs ({preset})")
    inputs = render_from_model_grid(phantom.ct, phantom.grid, preset, reconstructor.in_channels,
                                    geometry=reconstructor.preprocessing.get("geometry", "parallel"))
    stages["drr"] = time.perf_counter() - start - sum(stages.values())
    result = reconstructor.reconstruct(inputs.coronal, inputs.sagittal, phantom.grid,
                                       {"kind": "phantom", "seed": args.seed, "drr_preset": preset})
    stages["reconstruct"] = time.perf_counter() - start - sum(stages.values())
    reporter.update("evaluate", 0.88, "metrics against the phantom truth")
    evaluation = evaluate(result.labels, phantom.labels, (phantom.grid.spacing,) * 3)
    stages["evaluate"] = time.perf_counter() - start - sum(stages.values())
    reporter.update("measure", 0.9, "clinical measurements")
    measurements = _measure(result.labels, phantom.labels, phantom.grid)
    stages["measure"] = time.perf_counter() - start - sum(stages.values())
    reporter.update("write", 0.93, f"writing outputs to {folder}")
    report = {"seed": args.seed, "model": result.model, "device": result.device, "model_quality_note": quality,
              "metrics": {k: v for k, v in evaluation.to_dict().items() if k != "per_class"},
              "measurements": measurements, "phantom_truth": phantom.truth}
    with staged_outputs(folder, [p.name for p in targets], args.overwrite) as stage:  # all outputs or none
        summary = stage_reconstruction(result, stage, folder, evaluation=evaluation,
                                       extra_summary={"demo": {"seed": args.seed}})
        stages["write"] = time.perf_counter() - start - sum(stages.values())
        report["timings_s"] = {**{k: round(v, 3) for k, v in stages.items()},
                               "network": summary["timings_s"]["predict"],
                               "total": round(time.perf_counter() - start, 3)}
        _write_report(stage, report, result, phantom.labels, evaluation)
    reporter.update("done", 1.0, f"demo finished in {report['timings_s']['total']:.1f} s")
    outputs = {**summary["outputs"], **{name: str(folder / name) for name in REPORT_FILES}}
    reporter.result({"output_dir": str(folder), "outputs": outputs, "metrics": report["metrics"],
                     "timings_s": report["timings_s"]})
    if reporter.mode != "json":
        sys.stdout.write(_markdown(report) + f"\noutputs in {folder}\n")
    return 0


MIN_USEFUL_HOLDOUT_DICE = 0.5
"""Below this held-out mean Dice (model card) the demo says plainly that the model is not trained enough."""


def model_quality_note(card: Any) -> str:
    """A plain statement when the model card shows the model is not (or not known to be) usefully trained."""
    holdout = ((getattr(card, "metrics", None) or {}).get("holdout") or {})
    dice = holdout.get("dice")
    if dice is None:
        return "the model card reports no held-out metrics: the quality of this model is unknown"
    if dice < MIN_USEFUL_HOLDOUT_DICE:
        return (f"this model is NOT trained enough to be useful: held-out mean Dice {dice:.3f} on "
                f"{holdout.get('cases', '?')} phantoms (model card); the output only demonstrates the pipeline")
    return ""


def seed_seen_in_training(card: Any, seed: int) -> str:
    """A warning when phantom ``seed`` was a training or validation phantom of the model (from its card), else "".

    A phantom the model trained on (or was selected on) scores better than new anatomy would, so the demo says so.
    """
    data = (((getattr(card, "training", None) or {}).get("config") or {}).get("data") or {})
    if data.get("source") != "phantom":
        return ""
    ranges = {"validation": (data.get("val_seed_start"), data.get("val_count"))}
    if data.get("pool_size"):
        ranges["training"] = (data.get("phantom_seed"), data.get("pool_size"))
    for role, (start, count) in ranges.items():
        if start is not None and count and start <= seed < start + count:
            return (f"phantom seed {seed} is one of the model's {role} phantoms (seeds {start}..{start + count - 1}): "
                    "its score flatters the model; use another --seed to see unseen anatomy")
    return ""


def _measure(pred, truth, grid) -> dict[str, Any]:
    """Measurements of prediction and truth and their differences, or a note when they are not available."""
    try:
        from ..measurements import compare, label_volume, measure_volume
    except ImportError as exc:
        return {"status": "not_available", "reason": str(exc)}
    pred_volume, truth_volume = label_volume(pred, grid), label_volume(truth, grid)
    try:
        pred_m, truth_m = measure_volume(pred_volume), measure_volume(truth_volume)
        errors = compare(pred_volume, truth_volume, pred_m, truth_m)
    except (ValueError, IndexError, ArithmeticError) as exc:  # the demo goes on; the report says what failed
        warnings.warn(f"clinical measurements failed ({type(exc).__name__}: {exc})", UserWarning, stacklevel=2)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    return {"prediction": pred_m, "truth": truth_m, "errors": errors}


def _write_report(folder: Path, report: dict[str, Any], result: Any, truth, evaluation: Any) -> None:
    """Write the overview figure and the report (JSON, Markdown) into the (staging) folder."""
    from ..io import atomic_write, write_json

    with atomic_write(folder / "overview.png") as tmp:
        _overview(result, truth, evaluation, tmp)
    write_json(report, folder / "report.json")
    with atomic_write(folder / "report.md") as tmp:
        tmp.write_text(_markdown(report) + "\n", encoding="utf-8")


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# SwinX2S demo (phantom seed {report['seed']})", "",
             f"Model: `{report['model']['dir']}` on {report['device']}; total {report['timings_s']['total']:.1f} s.",
             *(["", f"**Note: {report['model_quality_note']}.**"] if report.get("model_quality_note") else []),
             "", "| scope | classes | Dice | HD95 (mm) | localisation error (mm) | identification rate |",
             "|---|---|---|---|---|---|"]
    metrics = report["metrics"]
    for scope, s in [*metrics["per_anatomy"].items(), ("overall", metrics["overall"])]:
        cells = [_cell(s[k]) for k in ("dice", "hd95_mm", "localization_error_mm", "identification_rate")]
        lines.append(f"| {scope} | {s['num_classes']} | " + " | ".join(cells) + " |")
    if "status" in report["measurements"]:
        lines += ["", f"Clinical measurements: {report['measurements']['status']} "
                      f"({report['measurements']['reason']})."]
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _overview(result: Any, truth, evaluation: Any, path: Path) -> None:
    """Inputs (display orientation) and front views of truth and prediction in catalogue colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..catalogue import CLASSES, NUM_CLASSES
    from ..conventions import PROJECTION_AXIS, image_to_display

    colours = np.zeros((NUM_CLASSES, 3), np.uint8)
    for c in CLASSES:
        colours[c.id] = c.color

    def front(labels, view):
        axis = PROJECTION_AXIS[view]
        first = np.expand_dims(np.argmax(labels > 0, axis=axis), axis)
        return colours[image_to_display(np.take_along_axis(labels, first, axis).squeeze(axis), view)]

    fig, axes = plt.subplots(2, 3, figsize=(10, 8), dpi=100)
    for row, view, image in ((0, "coronal", result.coronal[0]), (1, "sagittal", result.sagittal[0])):
        axes[row, 0].imshow(image_to_display(image, view), cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title(f"{view} DRR input")
        axes[row, 1].imshow(front(truth, view))
        axes[row, 1].set_title("phantom truth")
        axes[row, 2].imshow(front(result.labels, view))
        axes[row, 2].set_title("reconstruction")
    for ax in axes.ravel():
        ax.set_axis_off()
    overall = evaluation.overall
    fig.suptitle(f"SwinX2S demo: Dice {_cell(overall.dice)}, HD95 {_cell(overall.hd95_mm)} mm, "
                 f"identification {_cell(overall.identification_rate)}")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
