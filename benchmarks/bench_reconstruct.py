"""End-to-end ``swinx2s reconstruct`` (files in → files out) versus the bare network prediction of the same model.

The end-to-end time covers the whole command in this process: reading two radiograph files, loading the model
directory (hash check included), preprocessing, the network, view fusion with per-voxel confidence, statistics and
writing the NIfTI, ``.seg.nrrd``, confidence map and JSON summary. Two bare times, with the model loaded and the
inputs prepared: the plain forward ``model(coronal, sagittal)`` + ``argmax(p + q)`` (the published computation) and
the fast :func:`SwinX2SLib.network.predict_labels` (labels only). The reconstruction itself runs
:func:`SwinX2SLib.network.logit_slabs` (the fast path, keeping both views' logits for the confidence maps). All are
the best of ``--repeat`` runs after one warm-up. Target: ratio to the plain forward ≤ 1.15.

Usage::

    python benchmarks/bench_reconstruct.py                          # tiny variant, random weights, CPU
    python benchmarks/bench_reconstruct.py --variant base --device cuda
    python benchmarks/bench_reconstruct.py --model SwinX2S/SwinX2SLib/models/default
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SwinX2S"))


def _radiographs(folder: Path) -> tuple[Path, Path]:
    """A 16-bit AP and lateral PNG pair (1200 x 900 / 1200 x 700 pixels, spacing given on the command line)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for name, cols in (("ap.png", 900), ("lateral.png", 700)):
        image = rng.random((1200, cols)) * 0.2
        image[:, cols // 2 - 60: cols // 2 + 60] += 0.7
        path = folder / name
        Image.fromarray((image / image.max() * 65535).astype(np.uint16)).save(path)
        paths.append(path)
    return paths[0], paths[1]


def _best(function, repeat: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: a random-weight --variant model)")
    parser.add_argument("--variant", default="tiny", help="variant for the random-weight model")
    parser.add_argument("--img-size", nargs=3, type=int, default=[128, 128, 160])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import torch

    from SwinX2SLib.checkpoints import ModelCard, load_model_dir, save_model_dir
    from SwinX2SLib.cli import main as cli_main
    from SwinX2SLib.network import create_model, predict_labels
    from SwinX2SLib.radiograph import prepare_radiograph_pair, read_radiograph

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-reconstruct-"))
    model_dir = Path(args.model) if args.model else work / "model"
    if not args.model:
        torch.manual_seed(0)
        save_model_dir(create_model(args.variant, img_size=args.img_size), model_dir, ModelCard())
    coronal_path, sagittal_path = _radiographs(work)

    model, card = load_model_dir(model_dir, args.device)
    xrays = [read_radiograph(p, view, pixel_spacing_mm=0.3)
             for p, view in ((coronal_path, "coronal"), (sagittal_path, "sagittal"))]
    prepared = prepare_radiograph_pair(xrays[0], xrays[1], tuple(card.img_size))
    cor, sag = prepared.coronal, prepared.sagittal
    device = torch.device(args.device)
    cor_t = torch.from_numpy(cor)[None, None].to(device)
    sag_t = torch.from_numpy(sag)[None, None].to(device)

    def bare_fast() -> None:
        predict_labels(model, cor_t, sag_t)
        if device.type == "cuda":
            torch.cuda.synchronize()

    def bare_plain() -> None:
        with torch.inference_mode():
            p, q = model(cor_t, sag_t)
            (p + q).argmax(1)
        if device.type == "cuda":
            torch.cuda.synchronize()

    runs = iter(range(10**6))

    def end_to_end() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the command's table; timing is what matters here
            status = cli_main(["reconstruct", "--coronal", str(coronal_path), "--sagittal", str(sagittal_path),
                               "--pixel-spacing", "0.3", "-o", str(work / f"out{next(runs)}"), "--model",
                               str(model_dir), "--device", args.device, "--progress", "none"])
        if status != 0:
            raise SystemExit(f"reconstruct failed with status {status}")

    fast_s = _best(bare_fast, args.repeat)
    plain_s = _best(bare_plain, args.repeat)
    e2e_s = _best(end_to_end, args.repeat)
    summary = json.loads((work / "out0" / "summary.json").read_text())
    name = card.variant or "custom"
    print(f"device {args.device}, {args.threads} threads, model {name} {tuple(card.img_size)}")
    print(f"bare network, plain forward + argmax(p + q)   {plain_s:8.2f} s")
    print(f"bare network, fast predict_labels             {fast_s:8.2f} s")
    print(f"end-to-end reconstruct                        {e2e_s:8.2f} s   (stages: {summary['timings_s']})")
    print(f"ratio to plain forward                        {e2e_s / plain_s:8.3f}   (target <= 1.15)")
    print(f"ratio to predict_labels                       {e2e_s / fast_s:8.3f}")


if __name__ == "__main__":
    main()
