"""Make the comparison models' test vectors by running the *published* Swin-X2S code (not this package).

Usage (outside the repository's environment: the published code wants MONAI 1.3.0)::

    git clone https://github.com/liukuan5625/Swin-X2S /tmp/published            # its models/ folder is used
    pip install --target /tmp/monai130 --no-deps monai==1.3.0
    PYTHONPATH=/tmp/monai130:/tmp/published python tools/make_baseline_testvectors.py \
        -o Testing/data/published_baselines

For each model of :data:`VECTORS` it builds the published network with ``models.get_model.get_model`` (the
published configuration at a small size), fills every tensor of its ``state_dict`` with :func:`synthetic_weights`
(deterministic values from the key name: nothing large is stored, UNETR alone has 85 M parameters), prepares the
inputs exactly as the published ``utils/data_utils.py`` does (3-D models: each view repeated with MONAI's
``RepeatChannel`` and permuted; all models: coronal and sagittal concatenated along the channels) and runs one
forward pass in eval mode. It writes ``<name>.json`` (configuration, published key names and shapes) and
``<name>.safetensors`` (``coronal`` ``[1, N, X, Z]``, ``sagittal`` ``[1, N, Y, Z]``, ``logits`` subsampled with
the JSON's ``stride`` along X, Y, Z to keep the files small). ``Testing/test_baselines.py`` rebuilds the weights
with :func:`synthetic_weights`, loads them through :func:`SwinX2SLib.checkpoints.convert_published_state_dict` and
compares.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# name -> (img_size, views per side, classes, output stride); the sizes the published configurations allow
VECTORS: dict[str, tuple[tuple[int, int, int], int, int, int]] = {
    "UNet": ((32, 32, 48), 2, 5, 2),
    "AttentionUnet": ((32, 32, 48), 2, 5, 2),
    "UNETR": ((32, 32, 48), 2, 5, 2),
    "SwinUNETR": ((32, 32, 64), 2, 5, 2),
    "OneDConcat": ((128, 128, 128), 2, 3, 4),  # the published decoder always makes a 128^3 cube
    "TwoDPermuteConcat": ((16, 16, 24), 2, 5, 1),
    "MultiScale2DPermuteConcat": ((128, 128, 32), 1, 3, 4),  # its channel counts fit X = 128; one view only
    "CustomAutoEncoder": ((32, 32, 48), 2, 5, 2),
}


def synthetic_weights(shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Deterministic weights for a state dict: values depend only on each key's name and shape.

    Matrices and kernels ``~ N(0, 1 / fan_in)``, 1-D weights (norm scales) ``1 + 0.1 N(0, 1)``, other vectors
    ``0.1 N(0, 1)``, running variances ``U(0.5, 1.5)``, batch counters ``0``.

    Args:
        shapes: key -> shape.

    Returns:
        key -> float32 array (int64 for ``num_batches_tracked``).
    """
    weights = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            weights[key] = np.zeros(shape, np.int64)
            continue
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        if key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif key.endswith("weight"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            value = 0.1 * rng.standard_normal(shape)
        weights[key] = value.astype(np.float32)
    return weights


def _published_inputs(coronal, sagittal, spatial_dims: int, size_x: int, size_y: int):
    """The published network input from ``[N, X, Z]`` and ``[N, Y, Z]`` images (``utils/data_utils.py``)."""
    import torch
    from monai import transforms

    if spatial_dims == 3:
        coronal = torch.permute(transforms.RepeatChannel(size_y)(coronal.unsqueeze(0)), [1, 2, 0, 3])
        sagittal = torch.permute(transforms.RepeatChannel(size_x)(sagittal.unsqueeze(0)), [1, 0, 2, 3])
    return torch.cat([coronal[None], sagittal[None]], dim=1)


def make_vector(name: str, output: Path) -> None:
    """Write ``name.json`` and ``name.safetensors`` into ``output`` (see the module docstring)."""
    import torch
    from models.get_model import get_model
    from safetensors.torch import save_file

    (size_x, size_y, size_z), views, classes, stride = VECTORS[name]
    args = SimpleNamespace(model_name=name, roi_x=size_x, roi_y=size_y, roi_z=size_z, in_channels=views,
                           out_channels=classes, dropout_rate=0.0, attn_drop_rate=0.0)
    model = get_model(args)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict({k: torch.from_numpy(v) for k, v in synthetic_weights(shapes).items()}, strict=True)
    model.eval()
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    coronal = torch.rand(views, size_x, size_z, generator=generator)
    sagittal = torch.rand(views, size_y, size_z, generator=generator)
    with torch.no_grad():
        logits = model(_published_inputs(coronal, sagittal, args.spatial_dims, size_x, size_y))
    save_file({"coronal": coronal[None].contiguous(), "sagittal": sagittal[None].contiguous(),
               "logits": logits[:, :, ::stride, ::stride, ::stride].contiguous()},
              str(output / f"{name}.safetensors"))
    (output / f"{name}.safetensors").chmod(0o644)  # safetensors creates the file owner-only
    config = {"architecture": name, "img_size": [size_x, size_y, size_z], "in_channels": views,
              "num_classes": classes, "stride": stride, "published_shapes": shapes}
    (output / f"{name}.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(f"{name}: {int(sum(np.prod(s) for s in shapes.values())):,} values, logits {tuple(logits.shape)}, "
          f"max |logit| {float(logits.abs().max()):.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the vectors")
    parser.add_argument("names", nargs="*", default=list(VECTORS), help="models (default: all)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        make_vector(name, args.output)


if __name__ == "__main__":
    main()
