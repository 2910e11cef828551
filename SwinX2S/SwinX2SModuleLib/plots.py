"""The live training chart (loss per step, validation Dice) of the SwinX2STrain module."""

from __future__ import annotations

import slicer
import vtk

from SwinX2SLib.slicer_support import TrainingCurves


def _named_node(scene: slicer.vtkMRMLScene, class_name: str, name: str) -> tuple[slicer.vtkMRMLNode, bool]:
    """The node ``name`` of ``class_name`` in the scene, created when missing; and whether it was created."""
    node = scene.GetFirstNode(name, class_name)
    if node is not None:
        return node, False
    return scene.AddNewNodeByClass(class_name, name), True


def training_chart(scene: slicer.vtkMRMLScene, name: str, curves: TrainingCurves, *,
                   title: str = "", x_title: str = "step", y_title: str = "loss / Dice") -> slicer.vtkMRMLPlotChartNode:
    """Create or update the chart ``"<name> training"`` of a run: one table and scatter series each for the loss
    per step and the validation Dice per epoch (plotted at its step).

    Called on every refresh of a running training: the nodes of a run are found by name and updated, never added
    again.

    Args:
        scene: the scene.
        name: the run name.
        curves: what the run's log holds so far.
        title, x_title, y_title: chart and axis titles (default title: ``"Training of <name>"``).

    Returns:
        The chart node.
    """
    chart, created = _named_node(scene, "vtkMRMLPlotChartNode", f"{name} training")
    if created:
        chart.SetTitle(title or f"Training of {name}")
        chart.SetXAxisTitle(x_title)
        chart.SetYAxisTitle(y_title)
    series = {"loss": (curves.steps, curves.step_losses), "validation Dice": (curves.val_steps, curves.val_dice)}
    for label, (xs, ys) in series.items():
        table, _created = _named_node(scene, "vtkMRMLTableNode", f"{name} {label}")
        table.RemoveAllColumns()
        for column_title, values in (("step", xs), (label, ys)):
            array = vtk.vtkDoubleArray()
            array.SetName(column_title)
            for value in values:
                array.InsertNextValue(float(value))
            table.AddColumn(array)
        table.Modified()
        plot, created = _named_node(scene, "vtkMRMLPlotSeriesNode", f"{name} {label} series")
        if created:
            plot.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
            chart.AddAndObservePlotSeriesNodeID(plot.GetID())
        plot.SetAndObserveTableNodeID(table.GetID())
        plot.SetXColumnName("step")
        plot.SetYColumnName(label)
    return chart
