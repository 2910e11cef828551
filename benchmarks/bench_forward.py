"""Wall time and peak memory of one prediction (two views in, label volume out) of any registered model, engine by
engine.

Paths (``--paths``; the first is the reference of the ratios and label differences):

* ``plain``: ``model(coronal, sagittal)`` in inference mode, then ``argmax(p + q)`` (``predict_labels(...,
  engine="plain")``, as the published inference computes it);
* ``fast``: the hand-written engine (``predict_labels(..., engine="fast")``: channels-last convolutions, the encoder
  blocks from 2-D convolutions, the last transposed convolutions folded into their consumers, in-place slab-wise
  convolutions with fused norms, one shared head on the sum of both views; ``SwinX2SLib/network/inference.py``);
* ``compile``: the plain model through ``torch.compile`` (inductor; compiling happens in the untimed warm-up);
* ``onnx``: the plain model exported with ``torch.onnx.export`` (in a separate process, untimed) and run by ONNX
  Runtime's CPU provider with ``--threads`` threads (``pip install .[bench]``);
* ``bfloat16`` / ``float16``: the plain forward pass under ``torch.autocast`` (``predict_labels(autocast_dtype=...)``,
  as ``--precision`` does on CUDA; the command line refuses it on the CPU, the benchmark does not);
  ``compile-bfloat16``: the compiled model under bfloat16 autocast.

Each measurement runs in a fresh subprocess, its memory set up as by the ``swinx2s`` program
(:func:`SwinX2SLib.memory.tune_process`), so that peak resident memory (RSS, ``getrusage``) belongs to that path
alone; on CUDA the peak of ``torch.cuda.max_memory_allocated`` is reported as well. Random weights: time and memory
do not depend on them, unless ``--model`` names a trained model directory (and ``--inputs`` an ``.npz`` of real
images). After each variant, one line per further path gives its ratios to the first path measured in this run and
in how many voxels their labels differ.

``--variants`` takes any registry name: Swin-X2S variants and the paper's comparison models (``all`` = every one; a
comparison model has no fast path: ``fast`` runs its plain forward pass). Each line also gives the model's parameter
count, so that Table 3 of ``paper_tables.py`` can carry the cost.

Usage::

    python benchmarks/bench_forward.py --variants all --paths plain --warmup 0   # every model, one CPU prediction
    python benchmarks/bench_forward.py                       # Tiny, 128x128x160, 55 classes, CPU, plain and fast
    python benchmarks/bench_forward.py --paths plain fast compile onnx bfloat16 compile-bfloat16
    python benchmarks/bench_forward.py --model SwinX2S/SwinX2SLib/models/default --paths plain fast onnx  # seconds
    python benchmarks/bench_forward.py --device cuda --variants tiny small base large \
        --paths plain fast bfloat16 float16
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


PATHS = ("plain", "fast", "compile", "onnx", "bfloat16", "float16", "compile-bfloat16")


def _model_and_inputs(args: argparse.Namespace, device: object) -> tuple:
    """The model (random weights from seed 0, or ``--model``) and its inputs (random from seed 1, or ``--inputs``):
    the same in every subprocess."""
    import torch

    from SwinX2SLib.network import create_model

    torch.manual_seed(0)
    if args.model:
        from SwinX2SLib.checkpoints import load_model_dir

        model = load_model_dir(args.model, device)[0].eval()
    else:
        model = create_model(args.variant, img_size=args.img_size, num_classes=args.classes).eval().to(device)
    if args.inputs:
        import numpy as np

        with np.load(args.inputs) as images:
            return model, *(torch.as_tensor(images[k], device=device) for k in ("coronal", "sagittal"))
    torch.manual_seed(1)
    x, y, z = model.img_size
    return model, torch.rand(1, model.in_channels, x, z, device=device), torch.rand(1, model.in_channels, y, z,
                                                                                  device=device)


def export_onnx(args: argparse.Namespace) -> None:
    """Write the plain model as ONNX to ``args.export_onnx`` (run in its own process: exporting takes memory)."""
    import torch

    model, coronal, sagittal = _model_and_inputs(args, torch.device("cpu"))
    torch.onnx.export(model, (coronal, sagittal), args.export_onnx, input_names=["coronal", "sagittal"],
                      output_names=["p", "q"])


def _onnx_predictor(args: argparse.Namespace, coronal: object, sagittal: object) -> object:
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(args.onnx_file, options, providers=["CPUExecutionProvider"])
    feeds = {"coronal": coronal.numpy(), "sagittal": sagittal.numpy()}

    def predict() -> torch.Tensor:
        p, q = session.run(None, feeds)
        return torch.from_numpy(p).add_(torch.from_numpy(q)).argmax(1)

    return predict


def measure(args: argparse.Namespace) -> dict:
    """Run the predictions of one path in this process; returns the best wall / CPU time and the peak memory."""
    from SwinX2SLib.memory import tune_process

    tune_process("train" if args.retain_freed_memory else "predict")  # as `swinx2s` does, before torch's import

    import torch

    from SwinX2SLib.network import predict_labels

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, coronal, sagittal = _model_and_inputs(args, device)
    amp_dtype = getattr(torch, args.path.removeprefix("compile-")) if "float16" in args.path else None
    if args.path.startswith("compile"):
        model = torch.compile(model)
    if args.path == "onnx":
        del model  # ONNX Runtime holds its own copy of the weights
        predict = _onnx_predictor(args, coronal, sagittal)
    else:
        engine = "fast" if args.path == "fast" else "plain"

        def predict() -> torch.Tensor:
            return predict_labels(model, coronal, sagittal, autocast_dtype=amp_dtype, engine=engine)

    baseline_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # imports, weights, inputs
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
        "parameters": sum(p.numel() for p in model.parameters()) if args.path != "onnx" else None,
        "seconds": min(t[0] for t in times[args.warmup :]),
        "first_seconds": times[0][0],
        "cpu_seconds": min(t[1] for t in times[args.warmup :]),
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
    parser.add_argument("--model", help="a trained model directory instead of random weights (--variants: a label)")
    parser.add_argument("--inputs", help=".npz with 'coronal' [B, N, X, Z] and 'sagittal' [B, N, Y, Z] images "
                        "(default: one random case)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="keep freed memory in the heap (as `swinx2s train` does) instead of giving it back")
    parser.add_argument("--paths", nargs="+", default=["plain", "fast"], choices=PATHS,
                        help="the first is the reference of the ratios and label differences")
    parser.add_argument("--path", help=argparse.SUPPRESS)  # internal: measure one path in this process
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--labels-out", help=argparse.SUPPRESS)
    parser.add_argument("--onnx-file", help=argparse.SUPPRESS)
    parser.add_argument("--export-onnx", help=argparse.SUPPRESS)  # internal: write the ONNX file in this process
    args = parser.parse_args()
    if args.export_onnx:
        export_onnx(args)
        return
    if args.path:
        print(json.dumps(measure(args)))
        return
    what = f"model {args.model}" if args.model else f"input {tuple(args.img_size)}, {args.classes} classes"
    print(f"device {args.device}, {args.threads} threads, {what}, inputs {args.inputs or 'random'}")
    print("memory set up as by the `swinx2s` command line; 'baseline' = RSS after imports, weights, inputs")
    import torch

    tmp = tempfile.mkdtemp(prefix="bench_forward_")
    from SwinX2SLib.network import list_architectures, list_variants

    variants = [*list_variants(), *list_architectures()] if args.variants == ["all"] else args.variants
    for variant in variants:
        results = {}
        for path in args.paths:
            labels, onnx_file = (str(Path(tmp) / f"{variant}-{path}.{ext}") for ext in ("pt", "onnx"))
            command = [sys.executable, __file__, *sys.argv[1:], "--variant", variant, "--onnx-file", onnx_file]
            if path == "onnx":
                subprocess.run([*command, "--export-onnx", onnx_file], check=True, capture_output=True)
            done = subprocess.run([*command, "--path", path, "--labels-out", labels], capture_output=True, text=True)
            if done.returncode != 0:  # report it and go on with the other paths
                print(f"{variant:<25} {path:<16} failed: {done.stderr.strip().splitlines()[-1]}", flush=True)
                continue
            results[path] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[path]
            cuda = f", peak CUDA {r['peak_cuda_gb']:.3f} GB" if "peak_cuda_gb" in r else ""
            size = f"{r['parameters'] / 1e6:7.2f} M  " if r.get("parameters") else ""
            print(
                f"{variant:<25} {path:<16} {size}{r['seconds']:8.3f} s (CPU {r['cpu_seconds']:.1f} s, first "
                f"{r['first_seconds']:.1f} s)  peak RSS {r['peak_rss_gb']:5.2f} GB (baseline "
                f"{r['baseline_rss_gb']:.2f} GB){cuda}  batch {r['batch']}", flush=True
            )
        if not results:
            continue
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
