"""Wall time and peak memory of one prediction (two views in, label volume out) of any registered model.

Compares the plain path (``model(coronal, sagittal)`` under ``torch.no_grad``, then ``argmax(p + q)``, as the
published inference computes it) with :func:`SwinX2SLib.network.predict_labels` (channels-last convolutions, the
encoder blocks from 2-D convolutions, the last transposed convolutions folded into their consumers, in-place
slab-wise convolutions with fused norms, one shared head on the sum of both views; see
``SwinX2SLib/network/inference.py``). Each measurement runs in a fresh subprocess, its memory set up as by the
``swinx2s`` command line, so that peak resident memory (RSS, ``getrusage``) belongs to that path alone; on CUDA the
peak of ``torch.cuda.max_memory_allocated`` is reported as well. Random weights: time and memory do not depend
on them, unless ``--model`` names a trained model directory (and ``--inputs`` an ``.npz`` of real images). Paths
``bfloat16`` / ``float16`` run the plain forward pass under ``torch.autocast`` (``predict_labels(autocast_dtype=...)``,
as ``--precision`` does in ``swinx2s reconstruct``); ``--compile`` wraps the model in ``torch.compile`` for them and
for ``naive``. After each variant, one line per further path gives its ratios to the first path measured in this run
and in how many voxels their labels differ.

``--variants`` takes any registry name: Swin-X2S variants and the paper's comparison models (``all`` = every one;
a comparison model has no fast path: ``fast`` runs its plain forward pass, ``naive`` the argmax of its one logits
volume). Each line also gives the model's parameter count, so that Table 3 of ``paper_tables.py`` can carry the cost.

Usage::

    python benchmarks/bench_forward.py                       # Tiny, 128x128x160, 55 classes, CPU
    python benchmarks/bench_forward.py --variants all --paths naive --warmup 0   # every model, one CPU prediction
    python benchmarks/bench_forward.py --device cuda --variants tiny small base large \
        --paths naive fast bfloat16 float16
    python benchmarks/bench_forward.py --device cuda --model SwinX2S/SwinX2SLib/models/default --inputs cases.npz
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SwinX2S"))


AUTOCAST_PATHS = ("bfloat16", "float16")


def measure(args: argparse.Namespace) -> dict:
    """Run the predictions of one path in this process; returns the best wall / CPU time and the peak memory."""
    from SwinX2SLib.memory import give_back_large_blocks, retain_freed_memory, use_huge_pages

    use_huge_pages()  # as the `swinx2s` command line sets memory up (both paths alike), before torch is imported
    give_back_large_blocks()
    if args.retain_freed_memory:
        retain_freed_memory()

    import torch

    from SwinX2SLib.network import create_model, predict_labels, view_logits
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.model:
        from SwinX2SLib.checkpoints import load_model_dir

        model = load_model_dir(args.model, device)[0].eval()
    else:
        model = create_model(args.variant, img_size=args.img_size, num_classes=args.classes).eval().to(device)
    if args.inputs:
        import numpy as np

        with np.load(args.inputs) as images:
            coronal, sagittal = (torch.as_tensor(images[k], device=device) for k in ("coronal", "sagittal"))
    else:
        x, y, z = model.img_size
        coronal = torch.rand(1, model.in_channels, x, z, device=device)
        sagittal = torch.rand(1, model.in_channels, y, z, device=device)
    amp_dtype = getattr(torch, args.path) if args.path in AUTOCAST_PATHS else None
    compiled = args.compile and args.path != "fast"  # the fast path calls the blocks, not the model's forward
    if compiled:
        model = torch.compile(model)
    baseline_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # imports, weights, inputs

    def predict() -> torch.Tensor:
        if args.path == "naive":
            with torch.no_grad():
                p, q = view_logits(model(coronal, sagittal))
                return (p + q).argmax(1)
        return predict_labels(model, coronal, sagittal, autocast_dtype=amp_dtype)

    times = []
    for _ in range(args.warmup + args.repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        labels = predict()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start, time.process_time() - cpu_start))
    result = {
        "path": args.path,
        "variant": args.variant,
        "batch": coronal.shape[0],
        "compile": compiled,
        "seconds": min(t[0] for t in times[args.warmup :]),
        "cpu_seconds": min(t[1] for t in times[args.warmup :]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "baseline_rss_gb": baseline_gb,
        "labels": args.labels_out,
    }
    torch.save(labels.cpu(), args.labels_out)
    if device.type == "cuda":
        result["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["tiny"],
                        help="registry names (Swin-X2S variants, comparison models) or 'all'")
    parser.add_argument("--img-size", nargs=3, type=int, default=[128, 128, 160])
    parser.add_argument("--classes", type=int, default=55)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup", type=int, default=1, help="untimed predictions first")
    parser.add_argument("--repeat", type=int, default=1, help="timed predictions (the best is reported)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (all paths but fast)")
    parser.add_argument("--model", help="a trained model directory instead of random weights (--variants: a label)")
    parser.add_argument("--inputs", help=".npz with 'coronal' [B, N, X, Z] and 'sagittal' [B, N, Y, Z] images "
                        "(default: one random case)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="keep freed memory in the heap (as `swinx2s train` does) instead of giving it back")
    parser.add_argument("--paths", nargs="+", default=["naive", "fast"], choices=("naive", "fast", *AUTOCAST_PATHS),
                        help="the first is the reference of the ratios and label differences")
    parser.add_argument("--path", help=argparse.SUPPRESS)  # internal: measure one path in this process
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--labels-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.path:
        print(json.dumps(measure(args)))
        return
    what = f"model {args.model}" if args.model else f"input {tuple(args.img_size)}, {args.classes} classes"
    print(f"device {args.device}, {args.threads} threads, {what}, inputs {args.inputs or 'random'}")
    print("memory set up as by the `swinx2s` command line; 'baseline' = RSS after imports, weights, inputs")
    import torch

    from SwinX2SLib.network import list_architectures, list_variants

    variants = [*list_variants(), *list_architectures()] if args.variants == ["all"] else args.variants
    tmp = tempfile.mkdtemp(prefix="bench_forward_")
    for variant in variants:
        results = {}
        for path in args.paths:
            labels = str(Path(tmp) / f"{variant}-{path}.pt")
            command = [sys.executable, __file__, "--path", path, "--variant", variant, "--labels-out", labels]
            command += sys.argv[1:]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[path] = json.loads(out.strip().splitlines()[-1])
            r = results[path]
            cuda = f", peak CUDA {r['peak_cuda_gb']:.3f} GB" if "peak_cuda_gb" in r else ""
            name = path + ("+compile" if r["compile"] else "")
            print(
                f"{variant:<25} {name:<16} {r['parameters'] / 1e6:7.2f} M  {r['seconds']:8.3f} s "
                f"(CPU {r['cpu_seconds']:.1f} s)  "
                f"peak RSS {r['peak_rss_gb']:5.2f} GB (baseline {r['baseline_rss_gb']:.2f} GB){cuda}  "
                f"batch {r['batch']}", flush=True
            )
        reference_path, reference = next(iter(results.items()))
        memory = "peak_cuda_gb" if "peak_cuda_gb" in reference else "peak_rss_gb"
        reference_labels = torch.load(reference["labels"]).long()
        for path, r in list(results.items())[1:]:
            differ = int((torch.load(r["labels"]).long() != reference_labels).sum())
            print(
                f"{variant:<25} {path} vs {reference_path}: time x{reference['seconds'] / r['seconds']:.2f}, "
                f"memory ({memory}) x{reference[memory] / r[memory]:.2f}; labels differ in {differ} of "
                f"{reference_labels.numel()} voxels"
            )

    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
