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
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import signal_at_stage
from PIL import Image
from test_inference import model_dir  # noqa: F401  (shared model fixture)

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


def _model_folder(tmp: Path, **card_changes: object) -> Path:
    """A valid model folder (random ``test`` weights, three classes), its ``model.json`` fields then changed."""
    from SwinX2SLib.checkpoints import ModelCard, class_names, save_model_dir
    from SwinX2SLib.network import create_model

    folder = save_model_dir(create_model("test", img_size=(32, 32, 64), num_classes=3),
                            tmp / "model", ModelCard(classes=tuple(class_names(3, "femur"))))
    card = json.loads((folder / "model.json").read_text())
    for key, value in card_changes.items():
        section, _, name = key.partition(".")
        if name:
            card[section][name] = value
        else:
            card[key] = value
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def _xray(tmp: Path, name: str = "ap.png", rows: int = 120, cols: int = 90, seed: int = 0) -> Path:
    """A radiograph-like 8-bit PNG: a bright vertical band and a blob on noise."""
    rng = np.random.default_rng(seed)
    image = rng.random((rows, cols)) * 0.2
    image[:, cols // 2 - cols // 10: cols // 2 + cols // 10] += 0.6
    image[rows // 3 + 20 * seed: rows // 2 + 20 * seed, cols // 5: cols // 3 + 10 * seed] += 0.5 + 0.3 * seed
    Image.fromarray((image / image.max() * 255).astype(np.uint8)).save(tmp / name)
    return tmp / name


def _reconstruct_xrays(tmp: Path, coronal: Path, *extra: str) -> list[str]:
    """``reconstruct`` with a bad AP image and a model folder that does not exist: the input error must come first."""
    return ["reconstruct", "--coronal", str(coronal), "--sagittal", str(_xray(tmp, "lateral.png", seed=1)),
            "-o", str(tmp / "out"), "--model", str(tmp / "model-not-loaded"), *extra]


def _volume(tmp: Path, name: str, array: np.ndarray, spacing: float = 4.0) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((spacing,) * array.ndim)
    sitk.WriteImage(image, str(tmp / name))
    return tmp / name


def _ct_array() -> np.ndarray:
    """A 24³ 'CT' in HU: air around a water cylinder with a bone rod."""
    _, y, x = np.mgrid[:24, :24, :24]
    ct = np.where((y - 12) ** 2 + (x - 12) ** 2 < 81, 0, -1000).astype(np.int16)
    ct[(y - 14) ** 2 + (x - 12) ** 2 < 4] = 1200
    return ct


def _noisy_ct() -> np.ndarray:
    """:func:`_ct_array` with noise: its DRRs do not compress to a few bytes."""
    return (_ct_array() + np.random.default_rng(0).normal(0.0, 100.0, (24, 24, 24))).astype(np.int16)


def _reconstruct_ct(tmp: Path, ct: Path, label: Path | None = None) -> list[str]:
    extra = ["--label", str(label)] if label else []
    return ["reconstruct", "--ct", str(ct), *extra, "-o", str(tmp / "out"), "--model", str(tmp / "model-not-loaded")]


def _cut(path: Path, keep: int) -> Path:
    """``path`` cut to ``keep`` bytes (negative: that many bytes fewer)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def _nifti_header_claiming(tmp: Path, dims: tuple[int, ...]) -> Path:
    """A tiny ``.nii`` whose header describes a huge grid."""
    path = _volume(tmp, "huge.nii", np.ones((2, 2, 2), np.int16))
    data = bytearray(path.read_bytes())
    data[40:56] = np.array([len(dims), *dims, *[1] * (7 - len(dims))], "<i2").tobytes()
    path.write_bytes(bytes(data))
    return path


def _png_claiming(tmp: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    import struct
    import zlib

    path = _xray(tmp, "bomb.png")
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _dicom_series_with_gap(tmp: Path) -> Path:
    """Six 2.5 mm CT slices written as a DICOM series, the fourth left out."""
    folder = tmp / "series"
    folder.mkdir()
    volume = sitk.GetImageFromArray(_ct_array()[:6])
    volume.SetSpacing((4.0, 4.0, 2.5))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(6):
        if k == 3:
            continue
        piece = volume[:, :, k]
        tags = {"0020|0032": "\\".join(map(str, volume.TransformIndexToPhysicalPoint((0, 0, k)))),
                "0020|0013": str(k), "0008|0060": "CT", "0020|000e": "1.2.826.0.1.3680043.2.1125.17",
                "0020|0037": "1\\0\\0\\0\\1\\0"}
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{k}.dcm"))
        writer.Execute(piece)
    return folder


def _folder(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    return tmp / name


def _fifo(tmp: Path, name: str) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(tmp / name)
    return tmp / name


def _symlink(tmp: Path, name: str, target: Path) -> Path:
    (tmp / name).symlink_to(target)
    return tmp / name


def _renamed(path: Path, name: bytes) -> Path:
    """``path`` renamed to a name that is not UTF-8 (written under a plain name: ITK aborts on such names)."""
    return path.rename(path.parent / os.fsdecode(name))


def _replaced(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _existing(tmp: Path, name: str, argv: list[str]) -> list[str]:
    """``argv`` after putting a user file ``out/name`` where the command would write."""
    (tmp / "out").mkdir(exist_ok=True)
    (tmp / "out" / name).write_text("the user's own file")
    return argv


def _gzip_cut(tmp: Path) -> Path:
    """A valid gzip stream of a NIfTI file cut short (ITK reads the missing voxels as zeros)."""
    plain = _volume(tmp, "full.nii", np.random.default_rng(0).random((60, 50)).astype(np.float32))
    (tmp / "cut.nii.gz").write_bytes(gzip.compress(plain.read_bytes()[:-400]))
    plain.unlink()
    return tmp / "cut.nii.gz"


def _shifted_label(tmp: Path) -> Path:
    image = sitk.GetImageFromArray(np.ones((24, 24, 24), np.uint8))
    image.SetSpacing((4.0, 4.0, 4.0))
    image.SetOrigin((1000.0, 0.0, 0.0))
    sitk.WriteImage(image, str(tmp / "label.nii.gz"))
    return tmp / "label.nii.gz"


def _tampered(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    return folder


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
         "relative path that stays inside", names="data_list.json"),
    Case("published data folder", "`data_list.json` entry that is a number",
         lambda t: _published_list(t, {"training": [{"image": [1, "b.nii.gz"], "label": "c.nii.gz"}],
                                       "validation": []}),
         "must be a file name", names="data_list.json"),
    Case("published data folder", "`data_list.json` entry naming `/etc/passwd` (absolute paths are allowed)",
         lambda t: _published_list(t, {"training": [{"image": ["/etc/passwd"] * 2, "label": "/etc/passwd"}],
                                       "validation": []}),
         "cannot be read as an image", names="/etc/passwd"),
    Case("published data folder", "`data_list.json` names a missing file",
         lambda t: _published_list(t, {"training": [{"image": ["a.nii.gz", "b.nii.gz"], "label": "c.nii.gz"}]}),
         "but not a file", names="a.nii.gz"),
    Case("published data folder", "`data_list.json` is a list, not an object",
         lambda t: _published_list(t, [1, 2]), "must be a JSON object of lists", names="data_list.json"),
    # ---- 2. nothing replaced without --overwrite
    Case("training config", "`schedule.export_dir` names an existing model folder", _existing_export_dir,
         "schedule.export_dir already exists", names="shipped_model"),
    Case("reconstruct", "outputs exist, no `--overwrite`",
         lambda t: _existing(t, "summary.json", _reconstruct_xrays(t, _xray(t))), "already exists",
         names="summary.json"),
    Case("drr", "`coronal.png` exists, no `--overwrite` (checked before rendering)",
         lambda t: _existing(t, "coronal.png", ["drr", str(_volume(t, "ct.nii.gz", _ct_array())), "-o", "out"]),
         "already exists", names="coronal.png"),
    Case("phantom", "`truth.json` exists, no `--overwrite`",
         lambda t: _existing(t, "truth.json", ["phantom", "-o", "out", "--shape", "16", "16", "16"]),
         "already exists", names="truth.json"),
    Case("evaluate", "`--json` names a folder (with `--overwrite`)", lambda t: [
        "evaluate", "--pred", str(_volume(t, "a.nii.gz", np.ones((8, 8, 8), np.uint8))),
        "--label", str(_volume(t, "b.nii.gz", np.ones((8, 8, 8), np.uint8))), "--json", str(_folder(t, "report")),
        "--overwrite"], "is a folder", names="report"),
    Case("reconstruct", "`-o` is an existing file",
         lambda t: [*_reconstruct_xrays(t, _xray(t))[:5], "-o", str(_xray(t, "out.png"))],
         "exists and is not a folder", names="out.png"),
    Case("reconstruct", "`-o` is not valid UTF-8 (a C++ abort before)",
         lambda t: [*_reconstruct_xrays(t, _xray(t))[:5], "-o", os.fsdecode(bytes(t / "out") + b"\xff")],
         "not valid UTF-8", names="out"),
    Case("X-ray", "file name not valid UTF-8 (a C++ abort before)", lambda t: _reconstruct_xrays(
        t, _renamed(_xray(t), b"ap\xff.png")), "path is not valid UTF-8", names="ap\\udcff.png"),
    Case("CT", "file name not valid UTF-8 (a C++ abort before)", lambda t: _reconstruct_ct(
        t, _renamed(_volume(t, "ct.nii.gz", _ct_array()), b"ct\xff.nii.gz")), "path is not valid UTF-8",
        names="ct\\udcff.nii.gz"),
    Case("X-ray", "a named pipe (reading would block for ever)",
         lambda t: _reconstruct_xrays(t, _fifo(t, "ap.png")), "is not a regular file"),
    Case("CT", "symlink to `/dev/zero` (endless)",
         lambda t: _reconstruct_ct(t, _symlink(t, "ct.nii", Path("/dev/zero"))), "is not a regular file"),
    Case("training config", "a named pipe", lambda t: ["train", "--config", str(_fifo(t, "config.yaml")), "-o", "run"],
         "is not a regular file"),
    Case("published data folder", "`data_list.json` is a named pipe", lambda t: _train_with(
        t, f"preset: smoke\ndata: {{source: published, root: {_fifo(_folder(t, 'data'), 'data_list.json').parent}}}\n"),
        "is not a regular file", names="data_list.json"),
    Case("model folder", "`model.json` not UTF-8", lambda t: [
        "model", "info", str(_replaced(_model_folder(t) / "model.json", b"{\"a\": \"\xff\"}").parent)],
        "cannot be read as UTF-8", names="model.json"),
    # ---- 4. truncated or inconsistent images
    Case("X-ray", "file does not exist", lambda t: _reconstruct_xrays(t, t / "missing.png"), "does not exist"),
    Case("X-ray", "PNG cut in half", lambda t: _reconstruct_xrays(t, _cut(_xray(t), 2000)), "truncated"),
    Case("X-ray", "constant image", lambda t: _reconstruct_xrays(
        t, _volume(t, "flat.nrrd", np.full((40, 30), 7.0, np.float32))), "constant"),
    Case("X-ray", "2-D NIfTI with a NaN pixel (ITK reads it as 0)", lambda t: _reconstruct_xrays(
        t, _volume(t, "nan.nii", np.where(np.eye(40, 30) > 0, np.nan, 1.0).astype(np.float32))), "NaN"),
    Case("X-ray", "a 3-D volume given as a radiograph", lambda t: _reconstruct_xrays(
        t, _volume(t, "vol.nii.gz", np.ones((8, 8, 8), np.float32))), "3-D volume"),
    Case("X-ray", "a folder given as a radiograph",
         lambda t: _reconstruct_xrays(t, _folder(t, "folder")), "is a folder"),
    Case("X-ray", "uncompressed `.nii` cut short (ITK fills zeros)", lambda t: _reconstruct_xrays(
        t, _cut(_volume(t, "cut.nii", np.random.default_rng(0).random((60, 50)).astype(np.float32)), -400)),
        "is truncated"),
    Case("X-ray", "valid gzip of a cut `.nii`", lambda t: _reconstruct_xrays(t, _gzip_cut(t)), "is truncated"),
    Case("X-ray", "PNG header claiming 100000 x 100000 pixels (decompression bomb)",
         lambda t: _reconstruct_xrays(t, _png_claiming(t, 100_000, 100_000)), "decompression bomb"),
    Case("X-ray", "PNG header claiming 9000 x 9000 pixels (under PIL's own limit)",
         lambda t: _reconstruct_xrays(t, _png_claiming(t, 9000, 9000)), "more than the 64000000"),
    Case("X-ray", "NIfTI header claiming 30000³ voxels",
         lambda t: _reconstruct_xrays(t, _nifti_header_claiming(t, (30000, 30000, 30000))), "more than the"),
    Case("CT", "NIfTI header claiming 30000³ voxels",
         lambda t: _reconstruct_ct(t, _nifti_header_claiming(t, (30000, 30000, 30000))), "more than the"),
    Case("CT", "uncompressed `.nii` cut short",
         lambda t: _reconstruct_ct(t, _cut(_volume(t, "ct.nii", _ct_array()), -1000)), "is truncated"),
    Case("CT", "`.nii.gz` with its gzip stream cut",
         lambda t: _reconstruct_ct(t, _cut(_volume(t, "ct.nii.gz", _ct_array()), 300)), "truncated"),
    Case("CT", "float CT with NaN voxels", lambda t: _reconstruct_ct(
        t, _volume(t, "ct.nii.gz", np.where(_ct_array() > 1000, np.nan, _ct_array()).astype(np.float32))), "NaN"),
    Case("CT", "a 2-D image given as a CT",
         lambda t: _reconstruct_ct(t, _volume(t, "ct.nii.gz", _ct_array()[0])), "expected a 3-D volume"),
    Case("CT", "voxel spacing 0.00001 mm (broken header)",
         lambda t: _reconstruct_ct(t, _volume(t, "ct.nii.gz", _ct_array(), spacing=1e-5)), "implausible"),
    Case("CT", "DICOM series with a missing slice (warning; the drr is written)",
         lambda t: ["drr", str(_dicom_series_with_gap(t)), "-o", str(t / "out"), "--shape", "16", "16", "16"],
         "slice gap of 5 mm between 2.dcm and 4.dcm", status=0, names="series"),
    # ---- 8. silent wrong results
    Case("CT", "all air: no bone (bones were 'found' at confidence 0.9)",
         lambda t: _reconstruct_ct(t, _volume(t, "ct.nii.gz", np.full((24, 24, 24), -1000, np.int16))),
         "shows no bone"),
    Case("label map", "float-valued label map (an image, not labels)", lambda t: _reconstruct_ct(
        t, _volume(t, "ct.nii.gz", _ct_array()), _volume(t, "label.nii.gz", np.full((24, 24, 24), 0.5, np.float32))),
        "non-integer values", names="label.nii.gz"),
    Case("label map", "does not overlap the CT", lambda t: _reconstruct_ct(
        t, _volume(t, "ct.nii.gz", _ct_array()), _shifted_label(t)), "does not overlap", names="label.nii.gz"),
    Case("label map", "`evaluate` with a float prediction", lambda t: [
        "evaluate", "--pred", str(_volume(t, "pred.nii.gz", np.full((8, 8, 8), 1.5, np.float32))),
        "--label", str(_volume(t, "label.nii.gz", np.ones((8, 8, 8), np.uint8)))], "non-integer values"),
    Case("label map", "`measure` with labels above 54", lambda t: [
        "measure", str(_volume(t, "labels.nii.gz", np.full((8, 8, 8), 99, np.uint8))), "-o", str(t / "out")],
        "outside 0-54"),
    Case("training config", "`optim.lr: .inf` (exported a NaN model before)",
         lambda t: _train_with(t, "preset: smoke\noptim: {lr: .inf}\n"), "must be finite"),
    Case("training config", "`--set optim.lr=.nan`",
         lambda t: ["train", "--preset", "smoke", "--set", "optim.lr=.nan", "-o", str(t / "run")], "must be finite",
         names="overrides"),
    Case("X-ray", "pixel spacing 1000 mm in the file", lambda t: _reconstruct_xrays(
        t, _volume(t, "ap.nrrd", np.random.default_rng(0).random((60, 50)).astype(np.float32), spacing=1000.0)),
        "implausible"),
    # ---- 5. inputs checked before anything is written
    Case("reconstruct", "`--label` with radiographs", lambda t: _reconstruct_xrays(
        t, _xray(t), "--label", str(_volume(t, "label.nii.gz", np.ones((8, 8, 8), np.uint8)))),
        "ground truth can only be aligned", names="label.nii.gz"),
    Case("reconstruct", "only `--coronal`", lambda t: [*_reconstruct_xrays(t, _xray(t))[:3], "-o", str(t / "o")],
         "both --coronal", names="ap.png"),
    Case("reconstruct", "`--ct` and `--coronal` together", lambda t: [
        *_reconstruct_ct(t, _volume(t, "ct.nii.gz", _ct_array())), "--coronal", str(_xray(t))],
        "either --ct or --coronal"),
    Case("reconstruct", "published inputs in the wrong order", lambda t: [
        "reconstruct", "--coronal", str(t / "s1_input_sag.nii.gz"), "--sagittal", str(t / "s1_input_cor.nii.gz"),
        "-o", str(t / "out")], "wrong order"),
    # ---- 6. bad numeric flags: argparse's one-line error
    Case("drr", "`--fov 0`", lambda t: ["drr", "ct.nii.gz", "-o", "out", "--fov", "0"], "must be > 0",
         names="--fov"),
    Case("drr", "`--fov nan`", lambda t: ["drr", "ct.nii.gz", "-o", "out", "--fov", "nan"], "must be > 0",
         names="--fov"),
    Case("drr", "`--views 100000` (hours of rendering)",
         lambda t: ["drr", "ct.nii.gz", "-o", "out", "--views", "100000"], "<= 12", names="--views"),
    Case("drr", "`--views 0`", lambda t: ["drr", "ct.nii.gz", "-o", "out", "--views", "0"], ">= 1",
         names="--views"),
    Case("drr", "`--shape 1 1 1`", lambda t: ["drr", "ct.nii.gz", "-o", "out", "--shape", "1", "1", "1"],
         ">= 8", names="--shape"),
    Case("drr", "`--shape 1024 1024 1024` (4 GiB per volume)", lambda t: [
        "drr", str(_volume(t, "ct.nii.gz", _ct_array())), "-o", str(t / "out"), "--shape", "1024", "1024", "1024"],
        "more than the 268435456 accepted", names="--shape"),
    Case("drr", "`--sid` with the parallel geometry", lambda t: [
        "drr", str(_volume(t, "ct.nii.gz", _ct_array())), "-o", str(t / "out"), "--sid", "900"], "only apply",
        names="--sid"),
    Case("drr", "`--sid 2000 --sdd 1000` (source behind the detector)", lambda t: [
        "drr", str(_volume(t, "ct.nii.gz", _ct_array())), "-o", str(t / "out"), "--geometry", "perspective",
        "--sid", "2000", "--sdd", "1000"], "need 0 <", names="--sid"),
    Case("phantom", "`--seed -1`", lambda t: ["phantom", "-o", "out", "--seed", "-1"], ">= 0", names="--seed"),
    Case("phantom", "`--seed 1e3`", lambda t: ["phantom", "-o", "out", "--seed", "1e3"], "expected an integer",
         names="--seed"),
    Case("phantom", "`--spacing 0`", lambda t: ["phantom", "-o", "out", "--spacing", "0"], "must be > 0",
         names="--spacing"),
    Case("phantom", "`--shape 2048 2048 2048`", lambda t: ["phantom", "-o", "out", "--shape", "2048", "8", "8"],
         "<= 1024", names="--shape"),
    Case("reconstruct", "`--pixel-spacing 0`", lambda t: _reconstruct_xrays(t, _xray(t), "--pixel-spacing", "0"),
         "must be > 0", names="--pixel-spacing"),
    Case("demo", "`--seed -5`", lambda t: ["demo", "-o", "out", "--seed", "-5"], ">= 0", names="--seed"),
    # ---- 6./7. model folders: malformed or oversized model.json
    Case("model folder", "`format_version: \"abc\"`",
         lambda t: ["model", "info", str(_model_folder(t, format_version="abc"))], "format_version must be"),
    Case("model folder", "`img_size: [8192, 8192, 8192]` (allocated before any check)",
         lambda t: ["model", "info", str(_model_folder(t, img_size=[8192, 8192, 8192]))], "img_size must be"),
    Case("model folder", "`img_size: \"big\"`",
         lambda t: ["model", "info", str(_model_folder(t, img_size="big"))], "img_size must be"),
    Case("model folder", "`config.feature_size: 100000`",
         lambda t: ["model", "info", str(_model_folder(t, **{"config.feature_size": 100000}))],
         "config.feature_size must be"),
    Case("model folder", "`preprocessing.drr_preset: \"bogus\"`",
         lambda t: ["model", "info", str(_model_folder(t, preprocessing={"drr_preset": "bogus"}))],
         "drr_preset 'bogus' is not one of"),
    Case("model folder", "`preprocessing.reference_quantiles: [0.9, 0.1]` (decreasing)",
         lambda t: ["model", "info", str(_model_folder(t, preprocessing={"reference_quantiles": [0.9, 0.1]}))],
         "reference_quantiles must be a non-decreasing list"),
    Case("model folder", "`num_classes: true`",
         lambda t: ["model", "info", str(_model_folder(t, num_classes=True))], "num_classes must be"),
    Case("model folder", "`model.json` is not JSON", lambda t: [
        "model", "info", str(_replaced(_model_folder(t) / "model.json", b"{").parent)], "not valid JSON"),
    Case("model folder", "weights changed after export (hash mismatch)", lambda t: [
        "model", "info", str(_tampered(_model_folder(t)))], "weights were modified", names="model.safetensors"),
    # ---- 7. small files asking for huge work
    Case("training config", "YAML alias bomb (a few hundred bytes)", lambda t: _train_with(
        t, "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
                                                   for p, n in zip("abcdefgh", "bcdefghi", strict=True))),
        "aliases"),
    Case("training config", "2 MiB file", lambda t: _train_with(t, "#" * (2 << 20)), "a configuration has at most"),
    Case("training config", "not a mapping", lambda t: _train_with(t, "- 1\n- 2\n"), "must be a mapping"),
    Case("training config", "unknown key (typo)", lambda t: _train_with(t, "preset: smoke\noptm: {lr: 1}\n"),
         "unknown configuration keys"),
    Case("training config", "not UTF-8", lambda t: [
        "train", "--config", str(_replaced(t / "config.yaml", b"name: \xff\xfe\n")), "-o", str(t / "run")],
        "cannot read the configuration"),
    Case("run folder", "`--resume` of a folder without a checkpoint",
         lambda t: ["train", "--resume", str(_smoke_run(t))], "nothing to resume", names="run"),
    Case("CT data folder", "`data.root` does not exist", lambda t: _train_with(
        t, f"preset: smoke\ndata: {{source: ct, root: {t / 'no_cts'}}}\n"), "CT data folder does not exist",
        names="no_cts"),
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


# ---------------------------------------------------------------------------------- inputs that need a process
def _cli(argv: list[str], limit_bytes: int | None = None, **popen: object) -> subprocess.CompletedProcess:
    """Run the ``swinx2s`` command line in a fresh process, optionally with files limited to ``limit_bytes``
    (the kernel then refuses longer writes as on a full disk)."""

    def limit_file_size() -> None:
        import resource  # POSIX

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "SwinX2S"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "SwinX2SLib.cli", *argv, "--progress", "none"], env=env,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_file_size if limit_bytes else None, **popen)


@pytest.mark.parametrize("command", ["phantom", "drr"])
def test_full_disk_ends_in_one_line_and_leaves_nothing(command: str, tmp_path: Path) -> None:
    """ITK reports no short write: the file read back before its rename catches the truncated output."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    argv = {"phantom": ["phantom", "--shape", "32", "32", "40"],
            "drr": ["drr", str(_volume(tmp_path, "ct.nii.gz", _noisy_ct())), "--shape", "64", "64", "64"]}[command]
    completed = _cli([*argv, "-o", str(out)], limit_bytes=3000)
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert completed.returncode == 2 and len(errors) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert "disk full?" in errors[0] or "cannot be written" in errors[0]
    assert str(out / "") in errors[0] and ".swinx2s-partial" not in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "the user's own file"


def test_sigterm_while_measuring_leaves_all_outputs_or_none(model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "SwinX2S"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "SwinX2SLib.cli", "reconstruct", "--coronal", str(_xray(tmp_path)),
               "--sagittal", str(_xray(tmp_path, "lateral.png", seed=1)), "-o", str(out), "--model", str(model_dir),
               "--device", "cpu", "--measure", "--progress", "json",
               "--pixel-spacing", "1.0"]  # 120 mm tall views: enough overlap for the radiograph alignment
    status, _ = signal_at_stage(command, "measure", env)
    left = sorted(p.name for p in out.iterdir())
    if status == 143:
        assert left == []
    else:  # the signal came after the last output was in place
        assert status == 0 and {"segmentation.nii.gz", "measurements.json"} <= set(left)
        assert not [name for name in left if name.startswith(".")]


def test_staging_folders_of_killed_runs_are_removed(tmp_path: Path) -> None:
    from SwinX2SLib.io import PARTIAL_PREFIX, prepare_output_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{PARTIAL_PREFIX}{int(dead.stdout)}-0badcafe"
    live = tmp_path / f"{PARTIAL_PREFIX}{os.getppid()}-00c0ffee"  # pytest's parent process is alive
    for stage in (stale, live):
        stage.mkdir()
        (stage / "segmentation.nii.gz").write_bytes(b"half")
    prepare_output_dir(tmp_path)
    assert not stale.exists() and (live / "segmentation.nii.gz").exists()


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from SwinX2SLib.errors import InputError
    from SwinX2SLib.training import trainer as trainer_module
    from SwinX2SLib.training.config import config_from_dict

    calls = []
    real = trainer_module._loss_value

    def diverging(*args: object) -> tuple:
        total, terms = real(*args)
        calls.append(1)
        return (total * float("nan"), terms) if len(calls) == 3 else (total, terms)

    monkeypatch.setattr(trainer_module, "_loss_value", diverging)
    config = config_from_dict({"preset": "smoke", "data": {"cache_dir": str(tmp_path / "cache")},
                               "schedule": {"checkpoint_every_steps": 1, "val_every": 0, "export_best": False},
                               "optim": {"epochs": 1, "steps_per_epoch": 4}})
    run = tmp_path / "run"
    with pytest.raises(InputError, match="the loss became nan at step 3.*last good state"):
        trainer_module.Trainer(config, run).fit()
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["reason"] == "non_finite_loss"


def test_export_dir_written_by_the_run_itself_is_replaced_on_resume(tmp_path: Path) -> None:
    from SwinX2SLib.errors import OutputError
    from SwinX2SLib.training.config import config_from_dict
    from SwinX2SLib.training.trainer import Trainer

    target = tmp_path / "exported"
    target.mkdir()
    config = config_from_dict({"preset": "smoke", "schedule": {"export_dir": str(target)}})
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(OutputError, match="schedule.export_dir already exists"):
        Trainer(config, run)._check_export_dir()
    Trainer(config, run, overwrite=True)._check_export_dir()
    (run / "log.jsonl").write_text(json.dumps({"event": "export", "path": str(target.resolve())}) + "\n")
    Trainer(config, run)._check_export_dir()  # this run's own export


def test_json_outputs_are_strict_json(tmp_path: Path) -> None:
    from SwinX2SLib.io import write_json

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    path = write_json({"dice": float("nan"), "hd95": np.float32("inf"), "ids": np.arange(2), "n": np.int64(3)},
                      tmp_path / "metrics.json")
    assert json.loads(path.read_text(), parse_constant=refuse) == {"dice": None, "hd95": None, "ids": [0, 1], "n": 3}


def test_symlinked_output_is_replaced_not_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --overwrite an output that is a symlink is replaced by the new file; its target is not written."""
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's own file")
    out = tmp_path / "out"
    out.mkdir()
    (out / "truth.json").symlink_to(precious)
    assert main(["phantom", "-o", str(out), "--shape", "16", "16", "16", "--overwrite", "--progress", "none"]) == 0
    assert precious.read_text() == "the user's own file"
    assert not (out / "truth.json").is_symlink() and json.loads((out / "truth.json").read_text())["structures"]
