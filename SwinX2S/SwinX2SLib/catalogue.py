"""The anatomy catalogue: the 55-class scheme of the published TotalSegmentator-All task.

One place holds every class: id, canonical name, display name, anatomy group, side, TotalSegmentator v2 names and
their ids in the ``total`` task, SNOMED CT terminology as Slicer uses it, and a colour. The colour table shipped
with the Slicer module (``SwinX2S/Resources/SwinX2S_ColorTable.csv``) is generated from here by
:func:`write_color_table` and a test checks that file and code agree.

Ids: 0 background, 1-7 vertebrae C1-C7, 8-19 T1-T12, 20-24 L1-L5, 25 L6, 26-37 rib_left_1..12,
38-49 rib_right_1..12, 50 sacrum (TotalSegmentator ``sacrum`` and ``vertebrae_S1``), 51 hip_right, 52 hip_left,
53 femur_left, 54 femur_right.

Subset tasks of the published work renumber the classes (femur: 1 femur_left, 2 femur_right; pelvic: 1 sacrum,
2 hip_right, 3 hip_left; spine: 1-25 as above; rib: 1-12 left, 13-24 right); :func:`subset_to_full` and
:func:`full_to_subset` convert label maps.
"""

from __future__ import annotations

import colorsys
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "ANATOMIES",
    "BACKGROUND",
    "CATALOGUE_VERSION",
    "CLASSES",
    "COLOR_TABLE_COLUMNS",
    "NUM_CLASSES",
    "REGION_CONTEXT",
    "SUBSET_TASKS",
    "TERMINOLOGY_CONTEXT",
    "AnatomyClass",
    "Code",
    "Terminology",
    "by_id",
    "by_name",
    "class_ids",
    "color_table_rows",
    "full_to_subset",
    "relabel",
    "subset_to_full",
    "terminology_context",
    "totalseg_id_to_id",
    "totalseg_name_to_id",
    "totalseg_to_full",
    "write_color_table",
    "write_terminology_context",
]

CATALOGUE_VERSION = "1.0"
BACKGROUND = 0
NUM_CLASSES = 55
ANATOMIES: tuple[str, ...] = ("spine", "rib", "pelvis", "femur")

Anatomy = Literal["spine", "rib", "pelvis", "femur"]
Side = Literal["left", "right", "midline"]

TERMINOLOGY_CONTEXT = "Segmentation category and type - SwinX2S"
"""Name of the terminology context that holds the catalogue's category, types and laterality modifiers
(``SwinX2S/Resources/SwinX2S.term.json``, written by :func:`write_terminology_context`)."""
REGION_CONTEXT = "Anatomic codes - DICOM master list"
"""Slicer's built-in anatomic region context (the region of L6, "Lumbar spine")."""


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM/SNOMED CT triplet)."""

    scheme: str
    value: str
    meaning: str

    def slicer(self) -> str:
        """The ``scheme^value^meaning`` form used in Slicer terminology strings."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


@dataclass(frozen=True)
class Terminology:
    """Slicer segment terminology: category, type, optional laterality modifier and anatomic region."""

    category: Code
    type: Code
    type_modifier: Code | None = None
    region: Code | None = None

    def slicer_string(self) -> str:
        """The ``Segment{i}_Tags`` terminology entry Slicer stores in ``.seg.nrrd`` files."""
        empty = "^^"
        return "~".join(
            [
                TERMINOLOGY_CONTEXT,
                self.category.slicer(),
                self.type.slicer(),
                self.type_modifier.slicer() if self.type_modifier else empty,
                REGION_CONTEXT,
                self.region.slicer() if self.region else empty,
                empty,
            ]
        )


@dataclass(frozen=True)
class AnatomyClass:
    """One foreground class of the catalogue.

    Attributes:
        id: label value in the 55-class scheme (1-54).
        name: canonical name (TotalSegmentator style, e.g. ``"vertebrae_T1"``, ``"rib_left_3"``).
        display_name: name shown to clinicians (e.g. ``"T1 vertebra"``, ``"Left 3rd rib"``).
        anatomy: ``"spine"``, ``"rib"``, ``"pelvis"`` or ``"femur"``.
        side: ``"left"``, ``"right"`` or ``"midline"`` (patient side).
        totalseg_names: TotalSegmentator v2 class names mapped to this class.
        totalseg_ids: their label values in TotalSegmentator's ``total`` task (same order).
        terminology: SNOMED CT coded terminology as Slicer uses it.
        color: RGB colour, integers 0-255.
    """

    id: int
    name: str
    display_name: str
    anatomy: Anatomy
    side: Side
    totalseg_names: tuple[str, ...]
    totalseg_ids: tuple[int, ...]
    terminology: Terminology
    color: tuple[int, int, int]

    def to_dict(self) -> dict:
        """JSON-ready description (used by ``swinx2s catalogue --json``)."""
        term = self.terminology
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "anatomy": self.anatomy,
            "side": self.side,
            "color": list(self.color),
            "totalseg_names": list(self.totalseg_names),
            "totalsegmentator": dict(zip(self.totalseg_names, self.totalseg_ids, strict=True)),
            "terminology": {
                "category": _code_dict(term.category),
                "type": _code_dict(term.type),
                "type_modifier": _code_dict(term.type_modifier),
                "region": _code_dict(term.region),
            },
        }


def _code_dict(code: Code | None) -> dict | None:
    return None if code is None else {"scheme": code.scheme, "value": code.value, "meaning": code.meaning}


_ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")
_LATERALITY = {"left": Code("SCT", "7771000", "Left"), "right": Code("SCT", "24028007", "Right")}

# SNOMED CT codes of the individual vertebrae (as used by Slicer's TotalSegmentator extension).
_VERTEBRA_CODES = {
    "C1": "14806007", "C2": "39976000", "C3": "113205007", "C4": "5329002", "C5": "36978003", "C6": "36054005",
    "C7": "87391001", "T1": "64864005", "T2": "53733008", "T3": "1626008", "T4": "73071006", "T5": "56401006",
    "T6": "45296009", "T7": "62487009", "T8": "11068009", "T9": "82687006", "T10": "7610001", "T11": "12989004",
    "T12": "23215003", "L1": "66794005", "L2": "14293000", "L3": "36470004", "L4": "11994002", "L5": "49668003",
}  # fmt: skip
_RIB_CODES = (
    ("48535007", "First rib"), ("78247007", "Second rib"), ("25888004", "Third rib"), ("25523003", "Fourth rib"),
    ("15339008", "Fifth rib"), ("59558009", "Sixth rib"), ("24915002", "Seventh rib"), ("5953002", "Eighth rib"),
    ("22565002", "Ninth rib"), ("77644006", "Tenth rib"), ("58830002", "Eleventh rib"), ("43993008", "Twelfth rib"),
)  # fmt: skip
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "11th", "12th")

# TotalSegmentator v2 ``total`` task ids.
_TS_VERTEBRA_IDS = {  # vertebrae_C1 = 50 ... vertebrae_L5 = 27, vertebrae_S1 = 26
    **{f"C{i}": 51 - i for i in range(1, 8)},
    **{f"T{i}": 44 - i for i in range(1, 13)},
    **{f"L{i}": 32 - i for i in range(1, 6)},
}
_TS_RIB_LEFT_1, _TS_RIB_RIGHT_1 = 92, 104
_TS_OTHER = {"sacrum": 25, "vertebrae_S1": 26, "femur_left": 75, "femur_right": 76, "hip_left": 77, "hip_right": 78}


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _build() -> tuple[AnatomyClass, ...]:
    classes: list[AnatomyClass] = []
    levels = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 7)]
    for index, level in enumerate(levels):
        class_id = index + 1
        if level == "L6":
            term = Terminology(
                _ANATOMICAL_STRUCTURE,
                Code("SCT", "51282000", "Vertebra"),
                region=Code("SCT", "122496007", "Lumbar spine"),
            )
            ts_names: tuple[str, ...] = ()
        else:
            term = Terminology(_ANATOMICAL_STRUCTURE, Code("SCT", _VERTEBRA_CODES[level], f"{level} vertebra"))
            ts_names = (f"vertebrae_{level}",)
        # Neighbouring vertebrae alternate in brightness so adjacent levels are told apart at a glance.
        color = _hsv(0.02 + 0.6 * index / len(levels), 0.55, 0.95 if index % 2 == 0 else 0.75)
        classes.append(
            AnatomyClass(
                class_id,
                f"vertebrae_{level}",
                f"{level} vertebra",
                "spine",
                "midline",
                ts_names,
                tuple(_TS_VERTEBRA_IDS[level] for _ in ts_names),
                term,
                color,
            )
        )
    for side, first_id, ts_first, hue in (("left", 26, _TS_RIB_LEFT_1, 0.08), ("right", 38, _TS_RIB_RIGHT_1, 0.55)):
        for k in range(12):
            code, meaning = _RIB_CODES[k]
            classes.append(
                AnatomyClass(
                    first_id + k,
                    f"rib_{side}_{k + 1}",
                    f"{side.capitalize()} {_ORDINALS[k]} rib",
                    "rib",
                    side,  # type: ignore[arg-type]
                    (f"rib_{side}_{k + 1}",),
                    (ts_first + k,),
                    Terminology(_ANATOMICAL_STRUCTURE, Code("SCT", code, meaning), _LATERALITY[side]),
                    _hsv(hue + 0.012 * k, 0.65, 0.98 if k % 2 == 0 else 0.78),
                )
            )
    hip = Code("SCT", "29836001", "Hip")
    femur = Code("SCT", "71341001", "Femur")
    others = (
        (50, "sacrum", "Sacrum", "pelvis", "midline", ("sacrum", "vertebrae_S1"),
         Terminology(_ANATOMICAL_STRUCTURE, Code("SCT", "54735007", "Sacrum")), (177, 122, 101)),
        (51, "hip_right", "Right hip bone", "pelvis", "right", ("hip_right",),
         Terminology(_ANATOMICAL_STRUCTURE, hip, _LATERALITY["right"]), (212, 188, 102)),
        (52, "hip_left", "Left hip bone", "pelvis", "left", ("hip_left",),
         Terminology(_ANATOMICAL_STRUCTURE, hip, _LATERALITY["left"]), (226, 202, 134)),
        (53, "femur_left", "Left femur", "femur", "left", ("femur_left",),
         Terminology(_ANATOMICAL_STRUCTURE, femur, _LATERALITY["left"]), (255, 239, 172)),
        (54, "femur_right", "Right femur", "femur", "right", ("femur_right",),
         Terminology(_ANATOMICAL_STRUCTURE, femur, _LATERALITY["right"]), (204, 168, 143)),
    )  # fmt: skip
    for class_id, name, display, anatomy, side, ts_names, term, color in others:
        classes.append(
            AnatomyClass(
                class_id,
                name,
                display,
                anatomy,  # type: ignore[arg-type]
                side,  # type: ignore[arg-type]
                ts_names,
                tuple(_TS_OTHER[n] for n in ts_names),
                term,
                color,
            )
        )
    return tuple(classes)


CLASSES: tuple[AnatomyClass, ...] = _build()
_BY_ID = {c.id: c for c in CLASSES}
_BY_NAME = {c.name: c for c in CLASSES}
_TS_NAME_TO_ID = {ts: c.id for c in CLASSES for ts in c.totalseg_names}
_TS_ID_TO_ID = {ts: c.id for c in CLASSES for ts in c.totalseg_ids}

SUBSET_TASKS: dict[str, tuple[int, ...]] = {
    "femur": (53, 54),
    "pelvic": (50, 51, 52),
    "spine": tuple(range(1, 26)),
    "rib": tuple(range(26, 50)),
}


def by_id(class_id: int) -> AnatomyClass:
    """The class with label value ``class_id`` (1-54); ``KeyError`` names the bad id."""
    try:
        return _BY_ID[int(class_id)]
    except KeyError:
        raise KeyError(f"no class with id {class_id} in the SwinX2S catalogue (valid ids: 1-54)") from None


def by_name(name: str) -> AnatomyClass:
    """The class with canonical name ``name`` (e.g. ``"femur_left"``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no class named {name!r} in the SwinX2S catalogue") from None


def class_ids(anatomy: str) -> tuple[int, ...]:
    """Ids of one anatomy group (``"spine"``, ``"rib"``, ``"pelvis"``, ``"femur"``), in id order."""
    if anatomy not in ANATOMIES:
        raise ValueError(f"unknown anatomy {anatomy!r}; choose one of {', '.join(ANATOMIES)}")
    return tuple(c.id for c in CLASSES if c.anatomy == anatomy)


def totalseg_name_to_id(name: str) -> int | None:
    """Our id for a TotalSegmentator v2 class name, or ``None`` when the structure is not in the catalogue."""
    return _TS_NAME_TO_ID.get(name)


def totalseg_id_to_id(total_id: int) -> int | None:
    """Our id for a label value of TotalSegmentator's ``total`` task, or ``None``."""
    return _TS_ID_TO_ID.get(int(total_id))


def relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``mapping[v]`` for every value ``v`` of an integer label map, 0 for values ``mapping`` does not name
    (scikit-image's ``map_array``; the one label lookup of the package).

    Args:
        labels: non-negative integer label map, any shape.
        mapping: label value -> new value in ``0..255``.

    Returns:
        uint8 label map of the same shape.
    """
    from skimage.util import map_array

    return map_array(np.asarray(labels), np.fromiter(mapping, np.int64, len(mapping)),
                     np.fromiter(mapping.values(), np.uint8, len(mapping)))


def _apply(labels: np.ndarray, mapping: dict[int, int], what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{what}: label maps must hold non-negative integers")
    unknown = sorted(set(np.unique(labels).tolist()) - set(mapping) - {0})
    if unknown:
        raise ValueError(f"{what}: label values {unknown} are not defined")
    return relabel(labels, mapping)


def subset_to_full(labels: np.ndarray, task: str) -> np.ndarray:
    """Convert a subset-task label map (e.g. pelvic 1-3) to the full 55-class ids (uint8)."""
    ids = _subset(task)
    return _apply(labels, {i + 1: full for i, full in enumerate(ids)}, f"subset task {task!r}")


def full_to_subset(labels: np.ndarray, task: str) -> np.ndarray:
    """Keep the classes of a subset task and renumber them 1..n; every other class becomes background."""
    ids = _subset(task)
    mapping = {c.id: 0 for c in CLASSES}
    mapping.update({full: i + 1 for i, full in enumerate(ids)})
    return _apply(labels, mapping, f"subset task {task!r}")


def totalseg_to_full(labels: np.ndarray) -> np.ndarray:
    """Convert a TotalSegmentator v2 ``total`` label map to our ids; structures we do not model become 0."""
    return relabel(labels, _TS_ID_TO_ID)


def _subset(task: str) -> tuple[int, ...]:
    try:
        return SUBSET_TASKS[task]
    except KeyError:
        raise ValueError(f"unknown subset task {task!r}; choose one of {', '.join(SUBSET_TASKS)}") from None


COLOR_TABLE_COLUMNS = (
    "LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A",
    "Category_CodingScheme", "Category_CodeValue", "Category_CodeMeaning",
    "Type_CodingScheme", "Type_CodeValue", "Type_CodeMeaning",
    "TypeModifier_CodingScheme", "TypeModifier_CodeValue", "TypeModifier_CodeMeaning",
    "Region_CodingScheme", "Region_CodeValue", "Region_CodeMeaning",
    "RegionModifier_CodingScheme", "RegionModifier_CodeValue", "RegionModifier_CodeMeaning",
)  # fmt: skip


def color_table_rows(classes: Iterable[AnatomyClass] = CLASSES) -> list[list[str]]:
    """Rows of the Slicer colour table (CSV format with terminology columns, Slicer >= 5.10).

    The entry names are the display names, so that segments imported from a label map carry the same name as in
    the ``.seg.nrrd`` files and the result tables.
    """

    def triple(code: Code | None) -> list[str]:
        return ["", "", ""] if code is None else [code.scheme, code.value, code.meaning]

    rows = []
    for c in classes:
        t = c.terminology
        rows.append(
            [
                str(c.id),
                c.display_name,
                *(str(v) for v in c.color),
                "255",
                *triple(t.category),
                *triple(t.type),
                *triple(t.type_modifier),
                *triple(t.region),
                *triple(None),
            ]
        )
    return rows


def color_table_text() -> str:
    """The colour table file content (what :func:`write_color_table` writes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLOR_TABLE_COLUMNS)
    writer.writerows(color_table_rows())
    return buffer.getvalue()


def write_color_table(path: str | Path) -> Path:
    """Write the Slicer colour table (``SwinX2S/Resources/SwinX2S_ColorTable.csv`` in the repository)."""
    path = Path(path)
    path.write_text(color_table_text(), encoding="utf-8")
    return path


def _term_code(code: Code) -> dict[str, str]:
    return {"CodingSchemeDesignator": code.scheme, "CodeValue": code.value, "CodeMeaning": code.meaning}


def terminology_context(classes: Iterable[AnatomyClass] = CLASSES) -> dict:
    """The Slicer terminology context (``*.term.json``, dcmqi segment-context schema) of the catalogue.

    One category (anatomical structure); one type per distinct type code, in catalogue order; the laterality
    modifiers of a type are its ``Modifier`` entries. Each entry's ``3dSlicerLabel`` is the display name and its
    ``recommendedDisplayRGBValue`` the catalogue colour, so Slicer finds an entry by segment name.
    """
    types: dict[str, dict] = {}
    for c in classes:
        term = c.terminology
        entry = types.setdefault(term.type.value,
                                 {**_term_code(term.type), "recommendedDisplayRGBValue": list(c.color)})
        if term.type_modifier is None:
            entry.update({"3dSlicerLabel": c.display_name, "3dSlicerIntegerLabel": c.id})
        else:
            entry.setdefault("Modifier", []).append(
                {**_term_code(term.type_modifier), "3dSlicerLabel": c.display_name, "3dSlicerIntegerLabel": c.id,
                 "recommendedDisplayRGBValue": list(c.color)})
    return {
        "SegmentationCategoryTypeContextName": TERMINOLOGY_CONTEXT,
        "@schema": "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/segment-context-schema.json#",
        "SegmentationCodes": {"Category": [{**_term_code(_ANATOMICAL_STRUCTURE), "Type": list(types.values())}]},
    }


def terminology_context_text() -> str:
    """The terminology context file content (what :func:`write_terminology_context` writes)."""
    import json

    return json.dumps(terminology_context(), indent=2) + "\n"


def write_terminology_context(path: str | Path) -> Path:
    """Write the terminology context (``SwinX2S/Resources/SwinX2S.term.json`` in the repository)."""
    path = Path(path)
    path.write_text(terminology_context_text(), encoding="utf-8")
    return path
