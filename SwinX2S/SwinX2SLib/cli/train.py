"""``swinx2s train``: train or fine-tune a model, resume a run, or export a run's checkpoint as a model directory.

Examples::

    swinx2s train --config configs/default_model.yaml -o runs/default        # new run
    swinx2s train --preset finetune --set finetune.init_from=models/base --set data.root=my_cts -o runs/ft
    swinx2s train --resume runs/default                                         # continue after a stop
    swinx2s train --export runs/default -o my_model --holdout                  # model dir + held-out metrics
    torchrun --nproc_per_node=4 -m SwinX2SLib.cli train --config CFG -o RUN     # distributed

A run stops cleanly (final checkpoint, exit status 0) when the file ``RUN_DIR/STOP`` appears or on SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex

from .common import add_overwrite_argument, add_progress_argument, reporter_from_args

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..training.config import PRESETS  # torch-free

    p = subparsers.add_parser("train", help="train / fine-tune a model, resume a run, or export a checkpoint",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="CFG", help="YAML/JSON training configuration")
    source.add_argument("--preset", choices=tuple(PRESETS),
                        help="start from a built-in configuration preset")
    source.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    source.add_argument("--export", metavar="RUN_DIR", help="write a model directory from RUN_DIR's checkpoint")
    p.add_argument("-o", "--output", metavar="DIR", help="run folder (training) or model directory (--export)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a configuration value, e.g. --set optim.lr=1e-4 (repeatable)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="checkpoint to export")
    p.add_argument("--holdout", action="store_true",
                   help="with --export: evaluate on the configuration's held-out cases and put it on the model card")
    add_overwrite_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run, memory="train")  # a training step re-allocates the same volumes: keep them in the heap


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    reporter = reporter_from_args(args)
    command = _command_line(args)
    if args.export:
        if not args.output:
            raise InputError("--export", "give the model directory to write with -o")
        from ..training.trainer import export_from_run

        path, metrics = export_from_run(args.export, args.output, checkpoint=args.checkpoint, holdout=args.holdout,
                                        overwrite=args.overwrite, reporter=reporter)
        reporter.result({"model_dir": str(path), "metrics": metrics})
        return 0

    from ..training.config import apply_overrides, config_from_dict, load_config, override_mapping
    from ..training.trainer import Trainer

    if args.resume:
        if args.overrides:
            raise InputError("--set", "a resumed run keeps its configuration; start a new run to change it")
        trainer = Trainer(None, args.resume, resume=True, reporter=reporter, command=command,
                          overwrite=args.overwrite)
    else:
        if not args.output:
            raise InputError("--output", "give the run folder with -o RUN_DIR")
        if args.config:
            config = apply_overrides(load_config(args.config), args.overrides)
        else:
            config = config_from_dict(override_mapping({"preset": args.preset}, args.overrides),
                                      "overrides" if args.overrides else "--preset")
        trainer = Trainer(config, args.output, reporter=reporter, command=command, overwrite=args.overwrite)
    result = trainer.fit()
    reporter.result({
        "run_dir": str(result.run_dir), "epoch": result.epoch, "step": result.step,
        "stop_reason": result.stop_reason, "best_metric": result.best_metric, "best_epoch": result.best_epoch,
        "validation": result.last_validation,
    })
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The training command as a user would type it (recorded in the run's log and on the model card)."""
    parts = ["swinx2s", "train"]
    for flag, value in (("--config", args.config), ("--preset", args.preset), ("--resume", args.resume)):
        if value:
            parts += [flag, str(value)]
    for override in args.overrides:
        parts += ["--set", override]
    if args.output:
        parts += ["-o", str(args.output)]
    return shlex.join(parts)
