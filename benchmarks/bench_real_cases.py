"""How a model does on the real CT-derived cases published with the paper (``../shared/data/official_samples``).

Each case's CT (stored rescaled; mapped back to HU by :func:`SwinX2SLib.conventions.read_published_ct_hu`) is
rendered to the model's DRR pair and reconstructed exactly as ``swinx2s reconstruct --ct CT --label LABEL`` does
(:meth:`SwinX2SLib.inference.Reconstructor.reconstruct_ct`), and scored on the model grid against the published
label. The cases are labelled for part of the skeleton only (``CTPelvic1K_0243``: sacrum and hips; ``CTSpine1K_0646``:
vertebrae; ``TotalSegAll_s0308``: all four anatomies), so predictions of unlabelled structures are not counted as
false positives: only the classes of the case's task are scored. For the built-in model this is a sim-to-real
figure (trained on phantoms only); phantoms are not patients.

Usage::

    python benchmarks/bench_real_cases.py                       # the built-in model
    python benchmarks/bench_real_cases.py --model models/base   # any model directory
    python benchmarks/bench_real_cases.py --json real_cases.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from SwinX2SLib import catalogue
from SwinX2SLib.conventions import read_published_ct_hu, read_published_volume, sitk_from_array
from SwinX2SLib.inference import Reconstructor
from SwinX2SLib.metrics import evaluate

REPO_ROOT = Path(__file__).resolve().parents[1]
CASES = {  # case folder -> (label file below it, subset task of its numbering, the classes it labels)
    "TotalSegAll_s0308": ("Totalsegmentator_all/s0308_label.nii.gz", None, None),
    "CTPelvic1K_0243": ("swinx2sbase/1.3.6.1.4.1.9328.50.4.0243_label.nii.gz", "pelvic",
                        {catalogue.by_name(n).id for n in ("sacrum", "hip_right", "hip_left")}),
    "CTSpine1K_0646": ("swinx2sbase/1.3.6.1.4.1.9328.50.4.0646_label.nii.gz", "spine", set(range(1, 26))),
}


def shared_samples() -> Path:
    """``$SWINX2S_SHARED/data/official_samples`` or ``../shared/data/official_samples``."""
    root = Path(os.environ.get("SWINX2S_SHARED", REPO_ROOT.parent / "shared"))
    return root / "data" / "official_samples"


def score_case(reconstructor: Reconstructor, case_dir: Path) -> dict:
    """Reconstruct one published case from its CT and score the classes its label covers."""
    label_name, subset, scored = CASES[case_dir.name]
    hu, grid = read_published_ct_hu(case_dir / "ct.nii.gz")
    label, _ = read_published_volume(case_dir / label_name)
    label = catalogue.subset_to_full(label.astype(np.int64), subset) if subset else label
    result = reconstructor.reconstruct_ct(sitk_from_array(hu, grid), sitk_from_array(label.astype(np.uint8), grid))
    pred, truth = result.labels.copy(), np.asarray(result.label)
    if scored is not None:
        pred[~np.isin(pred, list(scored))] = 0
    metrics = evaluate(pred, truth, (result.grid.spacing,) * 3)
    row = {"case": case_dir.name, "dice": metrics.overall.dice, "hd95_mm": metrics.overall.hd95_mm,
           "identification_rate": metrics.overall.identification_rate,
           "localization_error_mm": metrics.overall.localization_error_mm}
    row.update({f"dice_{a}": metrics.per_anatomy[a].dice for a in catalogue.ANATOMIES})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the built-in model)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    samples = shared_samples()
    if not samples.is_dir():
        raise SystemExit(f"{samples} not found: set SWINX2S_SHARED to the reference data folder")
    reconstructor = Reconstructor(args.model, device="cpu")
    rows = [score_case(reconstructor, samples / name) for name in CASES]
    keys = ["dice", "dice_femur", "dice_pelvis", "dice_spine", "dice_rib", "identification_rate"]
    print(f"model {reconstructor.model_dir} ({'x'.join(map(str, reconstructor.img_size))})")
    print(f"{'case':20s} " + " ".join(f"{k:>19s}" for k in keys))
    for row in rows:
        print(f"{row['case']:20s} " + " ".join(f"{'-' if row[k] is None else f'{row[k]:.3f}':>19s}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
