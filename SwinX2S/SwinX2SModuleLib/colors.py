"""The SwinX2S colour table and terminology context, loaded once per scene."""

from __future__ import annotations

from pathlib import Path

import slicer

from SwinX2SLib import catalogue

from .logics import SceneLogics

RESOURCES = Path(__file__).resolve().parents[1] / "Resources"
"""The module's ``Resources`` folder (colour table, terminology context, UI, icons)."""
COLOR_TABLE_NAME = "SwinX2S_ColorTable"
COLOR_TABLE_FILE = RESOURCES / f"{COLOR_TABLE_NAME}.csv"
TERMINOLOGY_FILE = RESOURCES / "SwinX2S.term.json"


def register_terminology(logics: SceneLogics) -> str:
    """Load the SwinX2S terminology context into the terminologies logic (once) and return its name.

    Raises:
        RuntimeError: the context file cannot be loaded.
    """
    loaded = logics.terminologies.IsTerminologyContextLoaded(catalogue.TERMINOLOGY_CONTEXT)
    if not loaded and not logics.terminologies.LoadTerminologyFromFile(str(TERMINOLOGY_FILE)):
        raise RuntimeError(f"{TERMINOLOGY_FILE}: could not load the terminology context")
    return catalogue.TERMINOLOGY_CONTEXT


def load_color_table(logics: SceneLogics) -> slicer.vtkMRMLColorTableNode:
    """The SwinX2S colour table node of the scene (loaded from ``SwinX2S_ColorTable.csv`` once).

    The CSV file stores the codes but not the names of the terminology contexts; they are set here from the
    catalogue, so that segments imported through this table carry complete terminology entries.

    Raises:
        RuntimeError: the colour table file cannot be loaded.
    """
    node = logics.scene.GetFirstNodeByName(COLOR_TABLE_NAME)
    if node is not None and node.IsA("vtkMRMLColorTableNode"):
        return node
    node = logics.colors.LoadColorFile(str(COLOR_TABLE_FILE), COLOR_TABLE_NAME)
    if node is None:
        raise RuntimeError(f"{COLOR_TABLE_FILE}: could not load the colour table")
    node.SetName(COLOR_TABLE_NAME)
    for cls in catalogue.CLASSES:
        node.SetTerminologyFromString(cls.id, cls.terminology.slicer_string())
    return node
