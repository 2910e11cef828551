"""A ``reconstruct`` result → segmentation, tables and markups in a new run folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import slicer

from SwinX2SLib.slicer_support import (
    landmark_markups,
    measurement_table,
    read_measure_result,
    read_reconstruction_result,
    segment_table,
)

from .logics import SceneLogics
from .markups import add_markups
from .runs import RunFolder, new_run_folder
from .segmentation import import_labels
from .tables import add_table


@dataclass(frozen=True)
class LoadedReconstruction:
    """What :func:`load_reconstruction` put into the scene.

    Attributes:
        folder: the run folder that holds everything below.
        segmentation: the segmentation node.
        segment_table: per-segment volumes and confidences.
        measurement_table: the clinical measurements (None when not requested).
        markups: landmark point list and femoral axis lines (empty when not requested).
    """

    folder: RunFolder
    segmentation: slicer.vtkMRMLSegmentationNode
    segment_table: slicer.vtkMRMLTableNode
    measurement_table: slicer.vtkMRMLTableNode | None = None
    markups: tuple[slicer.vtkMRMLMarkupsNode, ...] = ()


def load_reconstruction(logics: SceneLogics, payload: Mapping[str, Any], *,
                        segmentation: slicer.vtkMRMLSegmentationNode | None = None,
                        reference: slicer.vtkMRMLScalarVolumeNode | None = None,
                        measurements: bool = False, surfaces: bool = False) -> LoadedReconstruction:
    """Load the result of ``swinx2s reconstruct --progress json`` into a new run folder.

    Args:
        logics: scene and module logics.
        payload: the ``result`` event.
        segmentation: an existing segmentation node whose segments are replaced (the caller asked the user);
            None = a new node ``"<run> segmentation"``. Either way it moves into the run folder.
        reference: the volume whose geometry the segmentation takes (the CT in "From CT" mode); None = the label
            map's.
        measurements: also load the clinical measurements (the command ran with ``--measure``).
        surfaces: build the closed-surface representation (for the 3-D view).

    Raises:
        InputError: the result names no summary, label map or measurement files, or one cannot be read.
        RuntimeError: Slicer cannot read a file.
    """
    result = read_reconstruction_result(payload)
    measure_files = read_measure_result(payload) if measurements else None
    folder = new_run_folder(logics)
    if segmentation is None:
        segmentation = folder.new_node("vtkMRMLSegmentationNode", "segmentation")
        segmentation.CreateDefaultDisplayNodes()
    else:
        folder.add(segmentation)
    import_labels(logics, result.labels_path, segmentation, reference)
    if surfaces:
        segmentation.CreateClosedSurfaceRepresentation()
    segments = add_table(folder, "segments", segment_table(result))
    if measure_files is None:
        return LoadedReconstruction(folder, segmentation, segments)
    measurements_path, landmarks_path = measure_files
    table = add_table(folder, "measurements", measurement_table(measurements_path))
    markups = add_markups(folder, landmark_markups(landmarks_path, measurements_path))
    return LoadedReconstruction(folder, segmentation, segments, table, tuple(markups))
