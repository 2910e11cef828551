"""The option lists and rules shared by the ``swinx2s`` command line and the Slicer modules.

Each list is written here once: the command line's ``argparse`` choices, the library's checks and the modules'
parameter nodes and command building (:mod:`SwinX2SLib.slicer_support`) all refer to it. This module imports
nothing heavy (the Slicer GUI process imports it).
"""

from __future__ import annotations

import re
from typing import Literal

from .catalogue import SUBSET_TASKS

Device = Literal["auto", "cuda", "cpu"]
DEVICES: tuple[Device, ...] = ("auto", "cuda", "cpu")
"""``--device``: where the network runs (auto: CUDA when available)."""

MeshFormat = Literal["stl", "obj", "vtp"]
MESH_FORMATS: tuple[MeshFormat, ...] = ("stl", "obj", "vtp")
"""``reconstruct --meshes``: surface file formats."""

Geometry = Literal["parallel", "perspective"]
DRR_GEOMETRIES: tuple[Geometry, ...] = ("parallel", "perspective")
"""``drr --geometry``: parallel beam (published pipeline) or point source."""

DRR_PRESETS: tuple[str, ...] = ("published", "published_minmax", "physical")
"""``drr --preset`` and a model card's ``preprocessing.drr_preset``: the names of :data:`SwinX2SLib.drr.PRESETS`
(kept equal by ``Testing/test_drr.py``; listed here so that reading a model card imports neither SimpleITK nor
torch)."""

MODEL_VARIANTS: tuple[str, ...] = ("tiny", "small", "base", "large")
"""``model import --variant``: network variants of the published checkpoints."""

SUBSET_TASK_NAMES: tuple[str, ...] = tuple(SUBSET_TASKS)
"""``model import --task``: subset tasks of the published work (:data:`SwinX2SLib.catalogue.SUBSET_TASKS`)."""

TRAIN_PRESETS: tuple[str, ...] = ("finetune", "paper")
"""Training presets offered by the SwinX2STrain module (see :data:`SwinX2SLib.training.config.PRESETS`)."""

PROGRESS_MODES: tuple[str, ...] = ("bar", "json", "none")
"""``--progress``: a bar on the terminal, JSON lines on stdout (what the Slicer modules read), or nothing."""

PUBLISHED_INPUT = re.compile(r"_input_(cor|sag)\.nii(\.gz)?$")
"""File names of a published preprocessed input pair (``*_input_cor.nii.gz``, ``*_input_sag.nii.gz``)."""


def label_can_be_aligned(ct: str, coronal: str, sagittal: str) -> bool:
    """Whether a reference label map can be compared with the reconstruction of these inputs: only on a CT's grid
    or on a published input pair's model grid, never for plain radiographs (``reconstruct --label``)."""
    return bool(ct) or bool(PUBLISHED_INPUT.search(coronal or "") and PUBLISHED_INPUT.search(sagittal or ""))
