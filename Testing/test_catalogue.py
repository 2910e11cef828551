"""The 55-class anatomy catalogue, subset tasks, TotalSegmentator mapping and the Slicer colour table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

from SwinX2SLib import catalogue


def test_ids_follow_the_published_scheme():
    names = {c.id: c.name for c in catalogue.CLASSES}
    assert sorted(names) == list(range(1, 55))
    assert names[1] == "vertebrae_C1" and names[7] == "vertebrae_C7"
    assert names[8] == "vertebrae_T1" and names[19] == "vertebrae_T12"
    assert names[20] == "vertebrae_L1" and names[24] == "vertebrae_L5" and names[25] == "vertebrae_L6"
    assert names[26] == "rib_left_1" and names[37] == "rib_left_12"
    assert names[38] == "rib_right_1" and names[49] == "rib_right_12"
    assert [names[i] for i in range(50, 55)] == ["sacrum", "hip_right", "hip_left", "femur_left", "femur_right"]
    assert catalogue.NUM_CLASSES == 55
    assert len({c.color for c in catalogue.CLASSES}) == 54, "every class needs its own colour"


def test_groups_and_sides():
    assert catalogue.class_ids("spine") == tuple(range(1, 26))
    assert catalogue.class_ids("rib") == tuple(range(26, 50))
    assert catalogue.class_ids("pelvis") == (50, 51, 52)
    assert catalogue.class_ids("femur") == (53, 54)
    for c in catalogue.CLASSES:
        if "left" in c.name:
            assert c.side == "left" and c.terminology.type_modifier.meaning == "Left"
        elif "right" in c.name:
            assert c.side == "right" and c.terminology.type_modifier.meaning == "Right"
        else:
            assert c.side == "midline" and c.terminology.type_modifier is None
    with pytest.raises(ValueError, match="unknown anatomy"):
        catalogue.class_ids("skull")
    with pytest.raises(KeyError, match="valid ids"):
        catalogue.by_id(55)


def test_totalsegmentator_mapping():
    assert catalogue.totalseg_name_to_id("sacrum") == 50
    assert catalogue.totalseg_name_to_id("vertebrae_S1") == 50
    assert catalogue.totalseg_name_to_id("liver") is None
    expected = {50: 1, 43: 8, 27: 24, 25: 50, 26: 50, 75: 53, 76: 54, 77: 52, 78: 51, 92: 26, 103: 37, 104: 38, 115: 49}
    for total_id, ours in expected.items():
        assert catalogue.totalseg_id_to_id(total_id) == ours
    labels = np.array([[0, 5, 25], [26, 75, 117]], dtype=np.uint8)  # 5 liver, 117 costal cartilages: not modelled
    np.testing.assert_array_equal(catalogue.totalseg_to_full(labels), [[0, 0, 50], [50, 53, 0]])
    # L6 exists in VerSe but not in TotalSegmentator
    assert catalogue.by_name("vertebrae_L6").totalseg_ids == ()


@pytest.mark.parametrize("task", sorted(catalogue.SUBSET_TASKS))
def test_subset_round_trip(task):
    ids = catalogue.SUBSET_TASKS[task]
    subset = np.arange(len(ids) + 1, dtype=np.uint8).reshape(1, -1)
    full = catalogue.subset_to_full(subset, task)
    assert full.tolist() == [[0, *ids]]
    np.testing.assert_array_equal(catalogue.full_to_subset(full, task), subset)


def test_subset_errors_and_other_classes_dropped():
    pelvic = catalogue.subset_to_full(np.array([0, 1, 2, 3]), "pelvic")
    assert pelvic.tolist() == [0, 50, 51, 52]
    assert catalogue.full_to_subset(np.array([53, 50, 1]), "pelvic").tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="label values \\[4\\]"):
        catalogue.subset_to_full(np.array([0, 4]), "pelvic")
    with pytest.raises(ValueError, match="unknown subset task"):
        catalogue.subset_to_full(np.array([0]), "knee")


def _generated_resource(file_name: str, text: str, writer: str) -> Path:
    """The module resource ``file_name``, checked to hold ``text`` (what ``catalogue.<writer>`` writes)."""
    path = REPO_ROOT / "SwinX2S" / "Resources" / file_name
    assert path.read_text(encoding="utf-8") == text, (
        f"{file_name} is stale: regenerate it with python -c \"from SwinX2SLib import catalogue; "
        f"catalogue.{writer}('SwinX2S/Resources/{file_name}')\""
    )
    return path


def test_color_table_file_matches_catalogue():
    path = _generated_resource("SwinX2S_ColorTable.csv", catalogue.color_table_text(), "write_color_table")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 54
    femur_left = next(r for r in rows if r["LabelValue"] == "53")
    assert femur_left["Type_CodeValue"] == "71341001" and femur_left["TypeModifier_CodeMeaning"] == "Left"
    assert tuple(int(femur_left[f"Color_{k}"]) for k in "RGB") == catalogue.by_id(53).color
    assert femur_left["Name"] == "Left femur", "segments get the colour names: the display names, as in .seg.nrrd"


def test_terminology_context_file_matches_catalogue():
    """``SwinX2S.term.json`` is generated from the catalogue and holds every type code and laterality once."""
    path = _generated_resource("SwinX2S.term.json", catalogue.terminology_context_text(), "write_terminology_context")
    context = json.loads(path.read_text(encoding="utf-8"))
    assert context["SegmentationCategoryTypeContextName"] == catalogue.TERMINOLOGY_CONTEXT
    (category,) = context["SegmentationCodes"]["Category"]
    entries = {(t["CodeValue"], m["CodeValue"] if m else None)
               for t in category["Type"] for m in (t.get("Modifier") or [None])}
    expected = {(c.terminology.type.value, c.terminology.type_modifier.value if c.terminology.type_modifier else None)
                for c in catalogue.CLASSES}
    assert entries == expected and len(expected) == 54


def test_cli_catalogue_json_runs_as_a_real_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "SwinX2SLib.cli", "catalogue", "--json"], capture_output=True, text=True, check=True
    )
    classes = json.loads(out.stdout)
    assert len(classes) == 54
    first = classes[0]
    assert {"id", "name", "anatomy", "side", "color", "totalsegmentator"} <= set(first)
    assert first["totalsegmentator"] == {"vertebrae_C1": 50}
    table = subprocess.run(
        [sys.executable, "-m", "SwinX2SLib.cli", "catalogue"], capture_output=True, text=True, check=True
    ).stdout
    assert "femur_left" in table and "rib_right_12" in table
