"""A label map file → a segmentation node with the SwinX2S names, colours and terminology."""

from __future__ import annotations

import os

import slicer

from SwinX2SLib import catalogue

from .colors import load_color_table, register_terminology
from .logics import SceneLogics, remove_node


def load_label_volume(logics: SceneLogics, path: str | os.PathLike[str], name: str) -> slicer.vtkMRMLLabelMapVolumeNode:
    """Load a label map file as a label map volume node shown with the SwinX2S colour table.

    Raises:
        RuntimeError: the file cannot be read.
    """
    node = logics.volumes.AddArchetypeVolume(str(path), name, 1)
    if node is None:
        raise RuntimeError(f"{path}: could not load the label map")
    node.GetDisplayNode().SetAndObserveColorNodeID(load_color_table(logics).GetID())
    return node


def import_labels(logics: SceneLogics, labels_path: str | os.PathLike[str],
                  segmentation: slicer.vtkMRMLSegmentationNode,
                  reference: slicer.vtkMRMLScalarVolumeNode | None = None) -> slicer.vtkMRMLSegmentationNode:
    """Replace the segments of ``segmentation`` with one segment per label of ``labels_path``.

    Each segment gets the catalogue's display name, colour and terminology entry (category, type, laterality
    modifier, region) in the SwinX2S terminology context, through Slicer's terminology-aware import
    (``ImportLabelmapToSegmentationNodeWithTerminology``). The temporary label map node is removed again.

    Args:
        logics: scene and module logics.
        labels_path: label map file with catalogue ids (0 = background).
        segmentation: the node that receives the segments (its old segments are removed).
        reference: volume whose geometry becomes the segmentation's reference (default: the label map's).

    Raises:
        RuntimeError: the file cannot be read or imported.
    """
    context = register_terminology(logics)
    labels = load_label_volume(logics, labels_path, logics.scene.GenerateUniqueName("SwinX2S labels"))
    try:
        segmentation.GetSegmentation().RemoveAllSegments()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference or labels)
        if not logics.segmentations.ImportLabelmapToSegmentationNodeWithTerminology(labels, segmentation, context):
            raise RuntimeError(f"{labels_path}: could not import the label map into '{segmentation.GetName()}'")
    finally:
        remove_node(logics.scene, labels)
    _name_contexts(segmentation)
    return segmentation


def _name_contexts(segmentation: slicer.vtkMRMLSegmentationNode) -> None:
    """Name the terminology and region contexts in every segment's entry: colour tables keep only the codes."""
    entry = slicer.vtkSlicerTerminologyEntry()
    segments = segmentation.GetSegmentation()
    for index in range(segments.GetNumberOfSegments()):
        segment = segments.GetNthSegment(index)
        if slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(segment.GetTerminology(), entry):
            entry.SetTerminologyContextName(catalogue.TERMINOLOGY_CONTEXT)
            entry.SetRegionContextName(catalogue.REGION_CONTEXT)
            segment.SetTerminology(slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(entry))
