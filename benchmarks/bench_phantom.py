"""Benchmark of the procedural phantom (issue 4): build time of the default 128 × 128 × 160 phantom and of a
512 × 512 × 400 phantom at 1 mm.

Targets: 128 × 128 × 160 in < 1 s, 512 × 512 × 400 at full resolution in < 10 s, on 2 CPU cores.

Run::

    python benchmarks/bench_phantom.py [--threads 2] [--repeats 3] [--seeds 0 1 2]

Prints one line per case (median wall time over seeds × repeats after one warm-up, min and max, CPU time, the
machine's load average when it started) and a JSON summary. The phantom is pure numpy/scipy: ``--threads`` caps
the BLAS/OpenMP threads (the work itself is single-threaded numpy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

CASES = (
    {"name": "default 128x128x160", "shape": (128, 128, 160), "spacing_mm": None, "target_s": 1.0},
    {"name": "full resolution 512x512x400 @ 1 mm", "shape": (512, 512, 400), "spacing_mm": 1.0, "target_s": 10.0},
)


def _time_case(case: dict, seeds: list[int], repeats: int) -> dict:
    from SwinX2SLib.phantom import make_phantom

    make_phantom(seed=seeds[0], shape=case["shape"], spacing_mm=case["spacing_mm"])  # warm-up (imports, caches)
    walls, cpus = [], []
    for seed in seeds:
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            phantom = make_phantom(seed=seed, shape=case["shape"], spacing_mm=case["spacing_mm"])
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            del phantom
    median = statistics.median(walls)
    return {
        "case": case["name"],
        "median_s": round(median, 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "target_s": case["target_s"],
        "meets_target": median < case["target_s"],
        "runs": len(walls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="thread cap for BLAS/OpenMP (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per seed (default 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="phantom seeds (default 0 1 2)")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    load = os.getloadavg()[0]
    results = []
    for case in CASES:
        r = _time_case(case, args.seeds, args.repeats)
        r["load_average_1min"] = round(load, 2)
        results.append(r)
        status = "OK" if r["meets_target"] else "SLOWER THAN TARGET"
        print(
            f"{r['case']}: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f}; "
            f"cpu {r['cpu_s']:.3f} s; {r['runs']} runs) target < {r['target_s']} s: {status}",
            flush=True,
        )
    print(f"load average (1 min) at start: {load:.2f} on {os.cpu_count()} cores")
    print(json.dumps({"benchmark": "phantom", "results": results}, indent=1))


if __name__ == "__main__":
    main()
