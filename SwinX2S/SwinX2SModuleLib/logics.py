"""The MRML scene and the Slicer module logics that the SwinX2S modules use, in Slicer or on ``slicer-core``."""

from __future__ import annotations

from dataclasses import dataclass

import slicer

MODULE_LOGICS = {
    "colors": ("Colors", "vtkSlicerColorLogic"),
    "terminologies": ("Terminologies", "vtkSlicerTerminologiesModuleLogic"),
    "volumes": ("Volumes", "vtkSlicerVolumesLogic"),
    "segmentations": ("Segmentations", "vtkSlicerSegmentationsModuleLogic"),
    "markups": ("Markups", "vtkSlicerMarkupsLogic"),  # standalone: registers the markups node classes
    "subject_hierarchy": ("SubjectHierarchy", "vtkSlicerSubjectHierarchyModuleLogic"),
}
"""Field of :class:`SceneLogics` -> (module name, logic class) of every logic the scene package calls."""


@dataclass(frozen=True)
class SceneLogics:
    """A scene and the module logics that act on it.

    In the Slicer application use :meth:`from_application` (``slicer.mrmlScene`` and ``slicer.modules.*.logic()``);
    without it (``slicer-core``, tests, scripts) :meth:`standalone` builds the same logics around a new scene, with an
    application logic through which they find each other (the segmentations logic looks up ``"Terminologies"``).

    Attributes:
        scene: the ``vtkMRMLScene``.
        colors, terminologies, volumes, segmentations, markups, subject_hierarchy: the module logics.
        application: the application logic that holds them.
    """

    scene: slicer.vtkMRMLScene
    colors: slicer.vtkSlicerColorLogic
    terminologies: slicer.vtkSlicerTerminologiesModuleLogic
    volumes: slicer.vtkSlicerVolumesLogic
    segmentations: slicer.vtkSlicerSegmentationsModuleLogic
    markups: slicer.vtkSlicerMarkupsLogic
    subject_hierarchy: slicer.vtkSlicerSubjectHierarchyModuleLogic
    application: slicer.vtkMRMLApplicationLogic

    @classmethod
    def from_application(cls) -> SceneLogics:
        """The running Slicer application's scene and logics."""
        logics = {field: getattr(slicer.modules, module.lower()).logic()
                  for field, (module, _class_name) in MODULE_LOGICS.items()}
        return cls(scene=slicer.mrmlScene, application=slicer.app.applicationLogic(), **logics)

    @classmethod
    def standalone(cls, scene: slicer.vtkMRMLScene | None = None) -> SceneLogics:
        """New logics on ``scene`` (a new scene when None), registered with a new application logic."""
        scene = scene if scene is not None else slicer.vtkMRMLScene()
        application = slicer.vtkSlicerApplicationLogic()
        application.SetMRMLScene(scene)
        logics = {}
        for field, (module, class_name) in MODULE_LOGICS.items():
            logic = getattr(slicer, class_name)()
            logic.SetMRMLApplicationLogic(application)
            logic.SetMRMLScene(scene)
            application.SetModuleLogic(module, logic)
            logics[field] = logic
        return cls(scene=scene, application=application, **logics)


def remove_node(scene: slicer.vtkMRMLScene, node: slicer.vtkMRMLNode) -> None:
    """Remove a node together with its display and storage nodes (``RemoveNode`` alone leaves them behind)."""
    helpers = []
    if node.IsA("vtkMRMLDisplayableNode"):
        helpers += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        helpers += [node.GetNthStorageNode(i) for i in range(node.GetNumberOfStorageNodes())]
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and scene.IsNodePresent(helper):
            scene.RemoveNode(helper)
