"""``swinx2s model``: list the network variants, import a published checkpoint, describe a model directory.

Examples::

    swinx2s model list
    swinx2s model import totalall_swinx2sbase_view1.pt --variant base -o models/base-totalall
    swinx2s model import femur.pt --variant base --task femur -o models/base-femur
    swinx2s model info models/base-totalall
"""

from __future__ import annotations

import argparse
import json

from ..options import SUBSET_TASK_NAMES
from .common import add_overwrite_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("model", help="list network variants, import published checkpoints, show model info")
    commands = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    listing = commands.add_parser(
        "list", help="list the registered Swin-X2S variants (with their configuration) and the comparison models"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)

    imp = commands.add_parser(
        "import", help="convert a published Swin-X2S (or comparison-model) checkpoint (.pt) into a model directory"
    )
    imp.add_argument("checkpoint", help="published checkpoint (torch.save dict with 'state_dict'); never executed")
    imp.add_argument("-o", "--output", required=True, help="model directory to create")
    imp.add_argument(
        "--variant",
        help="expected variant (tiny, small, base, large, ...) or comparison model (UNet, OneDConcat, ...: see "
        "`swinx2s model list`); the import fails if the checkpoint differs. "
        "Default: accept whatever architecture the checkpoint holds",
    )
    imp.add_argument(
        "--task",
        choices=SUBSET_TASK_NAMES,
        help="subset task the checkpoint was trained on (default: all 54 bones)",
    )
    imp.add_argument("--license", default="unknown", help="licence of the weights, stored in model.json")
    imp.add_argument("--description", default="", help="one-line description stored in model.json")
    imp.add_argument(
        "--drr-preset",
        default="published",
        help="name of the DRR/preprocessing preset the weights expect (stored in model.json)",
    )
    add_overwrite_argument(imp)
    imp.set_defaults(func=run_import)

    info = commands.add_parser("info", help="describe a model directory (checks its weights and class table)")
    info.add_argument("directory", help="model directory (model.json + model.safetensors)")
    info.add_argument("--json", action="store_true", help="print model.json after the checks")
    info.set_defaults(func=run_info)


def run_list(args: argparse.Namespace) -> int:
    from ..network import get_variant, list_architectures, list_variants

    variants = {name: get_variant(name).to_dict() for name in list_variants() + list_architectures()}
    if args.json:
        print(json.dumps(variants, indent=2))
        return 0
    print(f"{'variant':<8} {'F':>4}  {'depths':<14} {'heads':<14} window  fusion")
    for name in list_variants():
        cfg = variants[name]
        print(
            f"{name:<8} {cfg['feature_size']:>4}  {cfg['depths']!s:<14} {cfg['num_heads']!s:<14} "
            f"{cfg['window_size'][0]}x{cfg['window_size'][1]}     {cfg['fusion_depth']}"
        )
    print(f"comparison models (published configurations): {', '.join(list_architectures())}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from ..checkpoints import ModelCard, class_names, model_from_published, save_model_dir
    from ..errors import ModelError
    from ..network import variant_name

    try:
        model = model_from_published(args.checkpoint, variant=args.variant)
    except ValueError as exc:  # unknown variant name
        raise ModelError(f"{args.checkpoint}: {exc}") from None
    try:
        classes = class_names(model.num_classes, args.task)
    except ValueError as exc:
        raise ModelError(f"{args.checkpoint}: {exc}") from None
    card = ModelCard(
        classes=tuple(classes),
        preprocessing={"drr_preset": args.drr_preset},
        training={"source": f"published {getattr(model, 'architecture', 'Swin-X2S')} checkpoint",
                  "checkpoint": str(args.checkpoint), "task": args.task},
        license=args.license,
        description=args.description,
    )
    folder = save_model_dir(model, args.output, card, overwrite=args.overwrite)
    variant = variant_name(model.config) or f"custom {model.config.to_dict()}"
    shape = f"input {model.img_size}, {model.num_classes} classes"
    print(f"imported {args.checkpoint} (variant {variant}, {shape}) -> {folder}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..checkpoints import load_model_dir

    model, card = load_model_dir(args.directory)
    if args.json:
        print(card.to_json(), end="")
        return 0
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model directory : {args.directory}")
    print(f"variant         : {card.variant or 'custom'} {card.config}")
    print(f"input size      : {tuple(card.img_size)}, {card.in_channels} image(s) per view")
    print(f"classes         : {card.num_classes} (catalogue {card.catalogue_version})")
    print(f"parameters      : {parameters / 1e6:.2f} M")
    print(f"preprocessing   : {card.preprocessing}")
    print(f"training        : {card.training}")
    print(f"metrics         : {card.metrics}")
    print(f"licence         : {card.license}")
    print(f"sha256          : {card.sha256} (verified)")
    return 0
