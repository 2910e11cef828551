"""Landmarks and femoral axes (:class:`SwinX2SLib.slicer_support.Markups`) → locked markups nodes."""

from __future__ import annotations

import slicer
import vtk

from SwinX2SLib.slicer_support import Markups

from .runs import RunFolder


def add_markups(folder: RunFolder, markups: Markups) -> list[slicer.vtkMRMLMarkupsNode]:
    """One point list ``"<run> landmarks"`` and one line node per axis, locked, in the run folder.

    Returns:
        The new nodes (the point list first, when there are points).
    """
    nodes = []
    if markups.points:
        points = folder.new_node("vtkMRMLMarkupsFiducialNode", "landmarks")
        for point in markups.points:
            points.AddControlPoint(vtk.vtkVector3d(*point.position_ras), point.label)
        nodes.append(points)
    for line in markups.lines:
        node = folder.new_node("vtkMRMLMarkupsLineNode", line.label)
        node.AddControlPoint(vtk.vtkVector3d(*line.start_ras), line.label)
        node.AddControlPoint(vtk.vtkVector3d(*line.end_ras), "")
        nodes.append(node)
    for node in nodes:
        node.SetLocked(True)
    return nodes
