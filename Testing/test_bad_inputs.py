"""Hostile and broken inputs: every one ends in a one-line error (or warning), never in executed code or lost files.

Each :data:`CASES` entry builds one bad input in a fresh folder, runs the ``swinx2s`` command line on it in-process
and checks: the exit status, one ``error:`` line naming the file or flag and the problem, no traceback, no new or
half-written file anywhere in the folder, no existing file touched, and no marker file from a payload. The same
list is the table in ``docs/bad_inputs.md`` (``SWINX2S_UPDATE_DOCS=1 pytest -k docs_table`` rewrites it).
A few inputs need a real process (a full disk, signals): they are tested below the table and listed with it.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from SwinX2SLib.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "bad_inputs.md"
MARKER = "payload-ran"


class Payload:
    """Pickled, this object creates ``marker`` when unpickled by an unsafe loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


@dataclass(frozen=True)
class Case:
    """One bad input.

    Args:
        reader: which reader or command gets it (the table's first column).
        what: the bad input, in words.
        make: builds the input in the given folder and returns the command line.
        fragment: part of the expected message (the problem, in words).
        status: expected exit status (2 for an input error, 0 when a warning is the expected outcome).
        names: the file or flag the message must name (default: the command line's first path inside the folder).
    """

    reader: str
    what: str
    make: Callable[[Path], list[str]]
    fragment: str
    status: int = 2
    names: str | None = None

    @property
    def outcome(self) -> str:
        kind = "error" if self.status else "warning"
        return f"exit {self.status}, {kind}: …{self.fragment}…"


# ------------------------------------------------------------------------------------------------ input builders
def _smoke_run(tmp: Path) -> Path:
    """A run folder with the smoke configuration (no checkpoint yet)."""
    from SwinX2SLib.training.config import config_from_dict, save_config

    run = tmp / "run"
    (run / "checkpoints").mkdir(parents=True)
    save_config(config_from_dict({"preset": "smoke", "data": {"cache_dir": str(tmp / "cache")}}),
                run / "config.yaml")
    return run


def _pickled_run_checkpoint(tmp: Path) -> Path:
    run = _smoke_run(tmp)
    torch.save({"model": {}, "epoch": 1, "hook": Payload(tmp / MARKER)}, run / "checkpoints" / "last.pt")
    torch.save({"model": {}, "epoch": 1, "hook": Payload(tmp / MARKER)}, run / "checkpoints" / "best.pt")
    return run


def _resume_pickle(tmp: Path) -> list[str]:
    return ["train", "--resume", str(_pickled_run_checkpoint(tmp))]


def _export_pickle(tmp: Path) -> list[str]:
    return ["train", "--export", str(_pickled_run_checkpoint(tmp)), "-o", str(tmp / "exported")]


def _published_pickle(tmp: Path) -> list[str]:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Payload(tmp / MARKER)}, tmp / "published.pt")
    return ["model", "import", str(tmp / "published.pt"), "-o", str(tmp / "imported")]


def _config_file(tmp: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _train_with(tmp: Path, text: str, name: str = "config.yaml") -> list[str]:
    return ["train", "--config", str(_config_file(tmp, text, name)), "-o", str(tmp / "run")]


def _init_from_pickle(tmp: Path) -> list[str]:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Payload(tmp / MARKER)}, tmp / "init.pt")
    return _train_with(tmp, f"preset: smoke\nfinetune: {{init_from: {tmp / 'init.pt'}}}\n")


def _encoder_pickle(tmp: Path) -> list[str]:
    torch.save({"model": {"w": torch.zeros(1)}, "hook": Payload(tmp / MARKER)}, tmp / "swin.pth")
    return _train_with(tmp, f"preset: smoke\nfinetune: {{pretrained_encoder: {tmp / 'swin.pth'}}}\n")


def _model_dir_pickle(tmp: Path) -> list[str]:
    """A model folder whose weights file is a pickle (with the card's hash updated to match)."""
    import hashlib

    from SwinX2SLib.checkpoints import ModelCard, class_names, save_model_dir
    from SwinX2SLib.network import create_model

    folder = save_model_dir(create_model("test", img_size=(32, 32, 64), num_classes=3),
                            tmp / "model", ModelCard(classes=tuple(class_names(3, "femur"))))
    weights = folder / "model.safetensors"
    torch.save({"w": Payload(tmp / MARKER)}, weights)
    card = json.loads((folder / "model.json").read_text())
    card["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(card))
    return ["model", "info", str(folder)]


def _cache_pickle(tmp: Path) -> list[str]:
    """A sample cache whose entries are ``.npz`` files holding a pickled object array."""
    from SwinX2SLib.training.config import config_from_dict
    from SwinX2SLib.training.data import PhantomCases, SampleCache

    cache = tmp / "cache"
    cache.mkdir()
    config = config_from_dict({"preset": "smoke", "data": {"cache_dir": str(cache)}})
    data, shape = config.data, tuple(config.model.img_size)
    for start, count in ((data.phantom_seed, data.pool_size), (data.val_seed_start, data.val_count)):
        source = PhantomCases(start, count, shape, 1, data.preset, data.phantom_spacing_mm, SampleCache(cache))
        for index in range(count):
            with SampleCache(cache).path(source.key(index)).open("wb") as handle:
                np.savez(handle, coronal=np.array([Payload(tmp / MARKER)], dtype=object))
    return _train_with(tmp, f"preset: smoke\ndata: {{cache_dir: {cache}}}\n")


def _published_list(tmp: Path, entries: object) -> list[str]:
    root = tmp / "data"
    root.mkdir()
    (root / "data_list.json").write_text(json.dumps(entries))
    return _train_with(tmp, f"preset: smoke\ndata: {{source: published, root: {root}}}\n")


def _existing_export_dir(tmp: Path) -> list[str]:
    shipped = tmp / "shipped_model"
    shipped.mkdir()
    (shipped / "model.json").write_text("{}")
    return _train_with(tmp, f"preset: smoke\nschedule: {{export_dir: {shipped}}}\n")


CASES: list[Case] = [
    # ---- 1. no code execution from any file
    Case("run checkpoint (`train --resume`)", "`last.pt` with a pickled payload", _resume_pickle,
         "refused to load", names="last.pt"),
    Case("run checkpoint (`train --export`)", "`best.pt` with a pickled payload", _export_pickle,
         "refused to load", names="best.pt"),
    Case("published checkpoint (`model import`)", "`.pt` with a pickled payload", _published_pickle,
         "refused to load"),
    Case("fine-tuning source (`finetune.init_from`)", "`.pt` with a pickled payload", _init_from_pickle,
         "refused to load", names="init.pt"),
    Case("ImageNet encoder (`finetune.pretrained_encoder`)", "`.pth` with a pickled payload", _encoder_pickle,
         "refused to load", names="swin.pth"),
    Case("model folder (`model info`)", "`model.safetensors` replaced by a pickle (hash updated)",
         _model_dir_pickle, "cannot read weights", names="model.safetensors"),
    Case("training config", "YAML `!!python/object/apply:os.system` tag",
         lambda t: _train_with(t, f"preset: smoke\nname: !!python/object/apply:os.system ['touch {t / MARKER}']\n"),
         "not valid YAML"),
    Case("sample cache (`data.cache_dir`)", "`.npz` entries holding pickled object arrays", _cache_pickle,
         "not a readable cached sample", names=".npz"),
    Case("published data folder", "`data_list.json` entry `../../etc/passwd`",
         lambda t: _published_list(t, {"training": [{"image": ["a.nii.gz", "b.nii.gz"], "label": "../../etc/passwd"}],
                                       "validation": []}),
         "must be a relative path inside", names="data_list.json"),
    Case("published data folder", "`data_list.json` entry with an absolute path",
         lambda t: _published_list(t, {"training": [{"image": ["/etc/passwd", "b.nii.gz"], "label": "c.nii.gz"}],
                                       "validation": []}),
         "must be a relative path inside", names="data_list.json"),
    Case("published data folder", "`data_list.json` is a list, not an object",
         lambda t: _published_list(t, [1, 2]), "must be a JSON object of lists", names="data_list.json"),
    # ---- 2. nothing replaced without --overwrite
    Case("training config", "`schedule.export_dir` names an existing model folder", _existing_export_dir,
         "schedule.export_dir already exists", names="shipped_model"),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _first_path(argv: list[str], tmp: Path) -> str:
    return next(a for a in argv if a.startswith(str(tmp)))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.reader}: {c.what}" for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = case.make(tmp_path)
    capsys.readouterr()
    before = _snapshot(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse rejected a flag (its own one-line "error:" after the usage)
        status = exc.code
    out, err = capsys.readouterr()
    assert status == case.status, err
    assert "Traceback" not in out + err
    if case.status:
        lines = [line for line in err.splitlines() if "error: " in line]
        assert len(lines) == 1, err
        message = lines[0]
    else:
        message = err
    assert case.fragment in message, message
    assert (case.names or _first_path(argv, tmp_path)) in message, message
    assert not (tmp_path / MARKER).exists(), "a payload ran"
    if case.status:
        assert _snapshot(tmp_path) == before, "an output was written or an existing file was touched"


def _render_table() -> str:
    rows = ["| # | reader / command | bad input | outcome |", "|---|---|---|---|"]
    for number, case in enumerate(CASES, start=1):
        rows.append(f"| {number} | {case.reader} | {case.what} | {case.outcome} |")
    return "\n".join(rows) + "\n"


BEGIN, END = "<!-- table: generated by Testing/test_bad_inputs.py -->\n", "<!-- end of table -->\n"


def test_docs_table_lists_every_case() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    expected = head + BEGIN + _render_table() + END + tail
    if os.environ.get("SWINX2S_UPDATE_DOCS"):
        DOC.write_text(expected, encoding="utf-8")
        text = expected
    assert text == expected, "docs/bad_inputs.md is out of date: SWINX2S_UPDATE_DOCS=1 pytest -k docs_table"
    assert len(CASES) >= 50
