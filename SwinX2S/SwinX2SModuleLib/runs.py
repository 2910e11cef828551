"""One subject-hierarchy folder per run: every node a run creates goes into its folder, named after it."""

from __future__ import annotations

from dataclasses import dataclass

import slicer
import vtk

from .logics import SceneLogics

RUN_ATTRIBUTE = "SwinX2S.Run"
"""Subject-hierarchy item attribute that marks a run folder (its value is the run number)."""


@dataclass(frozen=True)
class RunFolder:
    """A run's folder in the subject hierarchy.

    Attributes:
        scene: the scene that holds it.
        item: the folder's subject-hierarchy item id.
        name: the folder name (``"SwinX2S 2"``); the run's nodes are named ``"<name> <what>"``.
    """

    scene: slicer.vtkMRMLScene
    item: int
    name: str

    def node_name(self, what: str) -> str:
        """The name of one of the run's nodes, e.g. ``"SwinX2S 2 segmentation"``."""
        return f"{self.name} {what}"

    def add(self, node: slicer.vtkMRMLNode) -> slicer.vtkMRMLNode:
        """Move ``node`` into the folder and return it."""
        hierarchy = self.scene.GetSubjectHierarchyNode()
        item = hierarchy.GetItemByDataNode(node)
        if item:
            hierarchy.SetItemParent(item, self.item)
        else:  # without the application's subject-hierarchy plugins (slicer-core) nodes get no item of their own
            hierarchy.CreateItem(self.item, node)
        return node

    def new_node(self, class_name: str, what: str) -> slicer.vtkMRMLNode:
        """A new node of ``class_name`` named :meth:`node_name` ``(what)``, in the folder."""
        return self.add(self.scene.AddNewNodeByClass(class_name, self.node_name(what)))

    def nodes(self) -> list[slicer.vtkMRMLNode]:
        """The data nodes in the folder (direct children, in order)."""
        hierarchy = self.scene.GetSubjectHierarchyNode()
        children = vtk.vtkIdList()
        hierarchy.GetItemChildren(self.item, children)
        found = (hierarchy.GetItemDataNode(children.GetId(i)) for i in range(children.GetNumberOfIds()))
        return [node for node in found if node is not None]


def run_folders(logics: SceneLogics, prefix: str = "SwinX2S") -> list[RunFolder]:
    """The run folders of ``prefix`` in the scene, in run order."""
    hierarchy = logics.scene.GetSubjectHierarchyNode()
    items = vtk.vtkIdList()
    hierarchy.GetItemChildren(hierarchy.GetSceneItemID(), items, True)
    runs = []
    for item in (items.GetId(i) for i in range(items.GetNumberOfIds())):
        value = hierarchy.GetItemAttribute(item, RUN_ATTRIBUTE)
        name = hierarchy.GetItemName(item)
        if value and name.rsplit(" ", 1)[0] == prefix:
            runs.append((int(value), RunFolder(logics.scene, item, name)))
    return [folder for _number, folder in sorted(runs, key=lambda run: run[0])]


def new_run_folder(logics: SceneLogics, prefix: str = "SwinX2S") -> RunFolder:
    """A new folder ``"<prefix> <n>"`` at the top of the subject hierarchy, ``n`` one more than the last run's."""
    hierarchy = logics.scene.GetSubjectHierarchyNode()
    existing = run_folders(logics, prefix)
    number = int(hierarchy.GetItemAttribute(existing[-1].item, RUN_ATTRIBUTE)) + 1 if existing else 1
    name = f"{prefix} {number}"
    item = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), name)
    hierarchy.SetItemAttribute(item, RUN_ATTRIBUTE, str(number))
    return RunFolder(logics.scene, item, name)
