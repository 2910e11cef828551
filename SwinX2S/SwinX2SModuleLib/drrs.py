"""Rendered radiographs (``swinx2s drr`` results) → volume nodes on their detector planes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import slicer
import vtk

from SwinX2SLib.slicer_support import PlacedImage, read_drr_result

from .logics import SceneLogics
from .runs import RunFolder

VIEW_TITLES = {"coronal": "AP", "sagittal": "lateral"}
"""Node-name title of each view."""


def load_placed_image(logics: SceneLogics, image: PlacedImage, folder: RunFolder, what: str
                      ) -> slicer.vtkMRMLScalarVolumeNode:
    """Load one radiograph as a grey volume whose IJK-to-RAS puts it on its detector plane.

    Raises:
        RuntimeError: the file cannot be read.
    """
    node = logics.volumes.AddArchetypeVolume(image.path, folder.node_name(what), 0)
    if node is None:
        raise RuntimeError(f"{image.path}: could not load the {image.view} radiograph")
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, image.ijk_to_ras[row][column])
    node.SetIJKToRASMatrix(matrix)
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(slicer.vtkMRMLColorLogic.GetColorTableNodeID(slicer.vtkMRMLColorTableNode.Grey))
    display.SetAutoWindowLevel(True)
    return folder.add(node)


def load_drrs(logics: SceneLogics, payload: Mapping[str, Any], folder: RunFolder
              ) -> tuple[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLScalarVolumeNode]:
    """The AP and lateral radiographs of a ``drr`` result, placed in 3-D, in the run folder.

    Args:
        logics: scene and module logics.
        payload: the ``result`` event of ``swinx2s drr --progress json``.
        folder: the run folder; the nodes are named ``"<run> AP DRR"`` and ``"<run> lateral DRR"``.

    Returns:
        ``(ap, lateral)`` volume nodes.

    Raises:
        InputError: a view is missing from the result.
        RuntimeError: a file cannot be read.
    """
    placed = read_drr_result(payload)
    ap, lateral = (load_placed_image(logics, placed[view], folder, f"{VIEW_TITLES[view]} DRR")
                   for view in ("coronal", "sagittal"))
    return ap, lateral
