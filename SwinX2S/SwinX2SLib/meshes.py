"""Surface meshes of a label map for 3-D printing, planning and viewing.

Per segment: VTK discrete flying edges on the label map, windowed-sinc smoothing, decimation, then a transform from
voxel indices to patient **RAS** coordinates (mm), the space Slicer uses for models. Every file says so: the STL
header and the first OBJ comment read ``SPACE=RAS`` (the marker Slicer reads when loading models), VTP files carry a
``SPACE`` field-data string. Triangles are oriented with outward normals (the grid-to-RAS map mirrors, which would
otherwise turn them inside out).
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import numpy as np

from . import catalogue
from .io import atomic_write
from .options import MESH_FORMATS, MeshFormat

__all__ = ["MESH_FORMATS", "MeshFormat", "label_surface", "write_meshes"]

_SPACE_MARKER = "SPACE=RAS"


def label_surface(labels: np.ndarray, index_to_ras: np.ndarray, label: int, smoothing_iterations: int = 15,
                  decimation: float = 0.5):
    """Smoothed, decimated surface of one label in RAS coordinates.

    Args:
        labels: integer ``(X, Y, Z)`` label map.
        index_to_ras: 4×4 voxel-index → RAS matrix (e.g. :meth:`SwinX2SLib.conventions.ModelGrid.affine_ras`).
        label: the label value to extract.
        smoothing_iterations: windowed-sinc iterations (0 = no smoothing).
        decimation: fraction of triangles to remove, in [0, 1).

    Returns:
        ``vtkPolyData`` with point normals; empty when the label is absent.
    """
    import vtk
    from scipy import ndimage
    from vtk.util import numpy_support

    if not 0.0 <= decimation < 1.0:
        raise ValueError(f"decimation must be in [0, 1), got {decimation}")
    box = ndimage.find_objects((labels == label).astype(np.uint8))
    if not box or box[0] is None:
        return vtk.vtkPolyData()
    # crop to the label, padded by one background voxel so the surface closes; remember the offset
    box = box[0]
    mask = np.zeros(tuple(s.stop - s.start + 2 for s in box), np.uint8)
    mask[1:-1, 1:-1, 1:-1] = labels[box] == label
    offset = np.array([s.start - 1 for s in box], dtype=np.float64)

    image = vtk.vtkImageData()
    image.SetDimensions(*mask.shape)
    image.SetOrigin(*offset)
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(mask.transpose(2, 1, 0)).ravel(), deep=True)
    image.GetPointData().SetScalars(scalars)

    surface = vtk.vtkDiscreteFlyingEdges3D()
    surface.SetInputData(image)
    surface.SetValue(0, 1)
    surface.ComputeNormalsOff()
    pipeline = surface
    if smoothing_iterations > 0:
        smoother = vtk.vtkWindowedSincPolyDataFilter()
        smoother.SetInputConnection(pipeline.GetOutputPort())
        smoother.SetNumberOfIterations(int(smoothing_iterations))
        smoother.SetPassBand(0.01)
        smoother.BoundarySmoothingOff()
        smoother.NonManifoldSmoothingOn()
        smoother.NormalizeCoordinatesOn()
        pipeline = smoother
    if decimation > 0:
        decimate = vtk.vtkQuadricDecimation()
        decimate.SetInputConnection(pipeline.GetOutputPort())
        decimate.SetTargetReduction(float(decimation))
        decimate.VolumePreservationOn()
        pipeline = decimate
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(index_to_ras[r, c]))
    transform = vtk.vtkTransform()
    transform.SetMatrix(matrix)
    to_ras = vtk.vtkTransformFilter()
    to_ras.SetInputConnection(pipeline.GetOutputPort())
    to_ras.SetTransform(transform)
    normals = vtk.vtkPolyDataNormals()
    normals.SetInputConnection(to_ras.GetOutputPort())
    normals.ConsistencyOn()
    normals.AutoOrientNormalsOn()
    normals.SplittingOff()
    normals.Update()
    result = vtk.vtkPolyData()
    result.ShallowCopy(normals.GetOutput())
    return result


def write_meshes(labels: np.ndarray, index_to_ras: np.ndarray, folder: str | PathLike[str], fmt: MeshFormat = "stl",
                 label_ids: Iterable[int] | None = None, overwrite: bool = False, smoothing_iterations: int = 15,
                 decimation: float = 0.5) -> list[Path]:
    """Write one surface file per segment, named ``<catalogue name>.<fmt>``, atomically.

    Args:
        labels: integer ``(X, Y, Z)`` label map (55-class scheme).
        index_to_ras: 4×4 voxel-index → RAS matrix.
        folder: an existing folder.
        fmt: ``"stl"`` (binary), ``"obj"`` or ``"vtp"``.
        label_ids: segments to export (default: all present).
        overwrite: replace existing files.
        smoothing_iterations: see :func:`label_surface`.
        decimation: see :func:`label_surface`.

    Returns:
        The written paths, in label order.
    """
    if fmt not in MESH_FORMATS:
        raise ValueError(f"mesh format must be one of {MESH_FORMATS}, not {fmt!r}")
    ids = sorted(int(v) for v in np.unique(labels) if v != 0) if label_ids is None else list(label_ids)
    written = []
    for label in ids:
        surface = label_surface(labels, index_to_ras, label, smoothing_iterations, decimation)
        if surface.GetNumberOfPoints() == 0:
            continue
        path = Path(folder) / f"{catalogue.by_id(label).name}.{fmt}"
        with atomic_write(path, overwrite=overwrite) as tmp:
            _write_polydata(surface, tmp, fmt, catalogue.by_id(label).display_name)
        written.append(path)
    return written


def _write_polydata(surface, path: Path, fmt: MeshFormat, title: str) -> None:
    import vtk

    if fmt == "stl":
        writer = vtk.vtkSTLWriter()
        writer.SetFileTypeToBinary()
        writer.SetHeader(f"{_SPACE_MARKER} SwinX2S {title}"[:79])
    elif fmt == "obj":
        writer = vtk.vtkOBJWriter()
    else:
        surface = _with_space_field(surface)
        writer = vtk.vtkXMLPolyDataWriter()
        writer.SetDataModeToBinary()
    writer.SetFileName(str(path))
    writer.SetInputData(surface)
    if not writer.Write():
        raise OSError(f"VTK could not write {path}")
    if fmt == "obj":
        body = path.read_text(encoding="utf-8")
        path.write_text(f"# {_SPACE_MARKER}\n# SwinX2S {title}\n{body}", encoding="utf-8")


def _with_space_field(surface):
    import vtk

    copy = vtk.vtkPolyData()
    copy.ShallowCopy(surface)
    space = vtk.vtkStringArray()
    space.SetName("SPACE")
    space.InsertNextValue("RAS")
    copy.GetFieldData().AddArray(space)
    return copy
