"""Result tables (:class:`SwinX2SLib.slicer_support.Table`) → table nodes."""

from __future__ import annotations

import slicer
import vtk

from SwinX2SLib.slicer_support import Table

from .runs import RunFolder


def add_table(folder: RunFolder, what: str, table: Table) -> slicer.vtkMRMLTableNode:
    """A new table node ``"<run> <what>"`` in the run folder, filled with ``table``.

    Number columns are ``vtkDoubleArray`` (empty cells are NaN), the others ``vtkStringArray``; the units become
    the columns' unit labels.
    """
    node = folder.new_node("vtkMRMLTableNode", what)
    for title, kind in zip(table.columns, table.kinds, strict=True):
        column = vtk.vtkDoubleArray() if kind == "number" else vtk.vtkStringArray()
        column.SetName(title)
        node.AddColumn(column)
    for row in table.rows:
        index = node.AddEmptyRow()
        for column, (value, kind) in enumerate(zip(row, table.kinds, strict=True)):
            text = ("nan" if kind == "number" else "") if value is None else str(value)
            node.SetCellText(index, column, text)
    for title, unit in zip(table.columns, table.units, strict=True):
        if unit:
            node.SetColumnUnitLabel(title, unit)
    return node
