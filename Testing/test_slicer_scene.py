"""The Slicer scene package (``SwinX2SModuleLib``) on Slicer's real core (``slicer-core``: MRML scene, storage nodes
and the segmentations, terminologies, volumes, markups, tables and subject-hierarchy logics, without Qt).

The inputs are real ``swinx2s`` outputs of a small phantom (``phantom``, ``measure``, ``drr`` and ``reconstruct``
with a tiny random-weight model), made once per module and loaded through Slicer's own logics.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("slicer_core", reason="slicer-core has no wheel for this Python")

import slicer
import vtk

from SwinX2SLib import catalogue, slicer_support
from SwinX2SModuleLib import (
    SceneCloseWatcher,
    SceneLogics,
    add_markups,
    drr_request,
    import_labels,
    load_color_table,
    load_drrs,
    load_reconstruction,
    new_run_folder,
    reconstruct_request,
    register_terminology,
    run_folders,
    xray_file,
)

PHANTOM_SHAPE = ("80", "80", "100")


def _events(args: list[str], timeout: float = 900) -> list[slicer_support.Event]:
    """Run ``swinx2s <args> --progress json`` the way the module does; return its events (the last: the result)."""
    completed = subprocess.run(slicer_support.command_line(sys.executable, [*args, "--progress", "json"]),
                               env=slicer_support.subprocess_environment(), capture_output=True, timeout=timeout)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    parser = slicer_support.EventParser()
    events = parser.feed(completed.stdout) + parser.finish()
    assert isinstance(events[-1], slicer_support.ResultEvent), events[-3:]
    return events


def _swinx2s(args: list[str], timeout: float = 900) -> dict:
    """The result payload of ``swinx2s <args> --progress json``."""
    return _events(args, timeout)[-1].payload


def _marked_ct(path: str, out: Path) -> Path:
    """The phantom CT with a dense block on the patient's left, anterior side: the phantom is nearly symmetric, the
    marked CT is not, so a mirrored radiograph no longer matches it."""
    image = sitk.ReadImage(path)
    size = np.array(image.GetSize())
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint((size - 1) / 2.0))
    block = np.array(image.TransformPhysicalPointToIndex(centre + np.array([70.0, -60.0, 40.0])))  # LPS: left, anterior
    array = sitk.GetArrayFromImage(image)  # (z, y, x)
    array[block[2] - 15:block[2] + 15, block[1] - 6:block[1] + 6, block[0] - 6:block[0] + 6] = 1500
    marked = sitk.GetImageFromArray(array)
    marked.CopyInformation(image)
    sitk.WriteImage(marked, str(out))
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Real command outputs: a phantom (CT, labels, truth), its measurements, its DRRs and a CT-mode
    reconstruction with measurements by a tiny random-weight model."""
    import torch

    from SwinX2SLib.checkpoints import ModelCard, save_model_dir
    from SwinX2SLib.network import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("scene")
    phantom = slicer_support.result_files(_swinx2s(["phantom", "-o", str(folder / "phantom"), "--seed", "7",
                                                    "--shape", *PHANTOM_SHAPE]))
    model = save_model_dir(create_model("test", img_size=(32, 32, 64)), folder / "model",
                           ModelCard(description="tiny", preprocessing={"drr_preset": "published"}))
    marked = _marked_ct(phantom["ct.nii.gz"], folder / "marked_ct.nii.gz")
    return {
        "model": str(model),
        "phantom": phantom,
        "marked_ct": str(marked),
        "measure": _swinx2s(["measure", phantom["labels.nii.gz"], "-o", str(folder / "measure")]),
        "drr": _swinx2s(["drr", str(marked), "-o", str(folder / "drr")]),
        "reconstruct": _swinx2s(slicer_support.ReconstructParameters(
            str(folder / "reconstruct"), ct=phantom["ct.nii.gz"], model=str(model), device="cpu",
            measure=True).as_arg_list(progress=False)),
    }


@pytest.fixture()
def logics() -> SceneLogics:
    """A new scene with the module logics, as the Slicer application sets them up."""
    return SceneLogics.standalone()


def _all_labels(phantom_labels: str, path: Path) -> Path:
    """The phantom's label map plus a block of every catalogue class it lacks (L6), so all 54 classes appear."""
    image = sitk.ReadImage(phantom_labels)
    array = sitk.GetArrayFromImage(image)
    missing = sorted(set(range(1, catalogue.NUM_CLASSES)) - set(np.unique(array).tolist()))
    for offset, label in enumerate(missing):
        array[:3, :3, 4 * offset:4 * offset + 3] = label
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))
    return path


def _entry(segment: slicer.vtkSegment) -> slicer.vtkSlicerTerminologyEntry:
    entry = slicer.vtkSlicerTerminologyEntry()
    assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
    return entry


def _codes(coded: object) -> tuple[str, str, str] | None:
    value = coded.GetCodeValue() if coded is not None else None
    return None if not value else (coded.GetCodingSchemeDesignator(), value, coded.GetCodeMeaning())


def _triple(code: catalogue.Code | None) -> tuple[str, str, str] | None:
    return None if code is None else (code.scheme, code.value, code.meaning)


def _segments(node: slicer.vtkMRMLSegmentationNode) -> list[slicer.vtkSegment]:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i) for i in range(segmentation.GetNumberOfSegments())]


def test_every_segment_gets_its_catalogue_terminology(outputs: dict, logics: SceneLogics, tmp_path: Path) -> None:
    """All 54 classes: display name, colour and the category, type, modifier and region codes on the segment (the
    plain import tagged every segment as generic "Tissue"), in the SwinX2S terminology context."""
    node = logics.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "bones")
    import_labels(logics, _all_labels(outputs["phantom"]["labels.nii.gz"], tmp_path / "all.nii.gz"), node)
    segments = _segments(node)
    assert len(segments) == len(catalogue.CLASSES) == 54
    by_name = {c.display_name: c for c in catalogue.CLASSES}
    for segment in segments:
        cls = by_name[segment.GetName()]
        entry = _entry(segment)
        term = cls.terminology
        assert entry.GetTerminologyContextName() == catalogue.TERMINOLOGY_CONTEXT
        assert _codes(entry.GetCategoryObject()) == _triple(term.category)
        assert _codes(entry.GetTypeObject()) == _triple(term.type), cls.name
        assert _codes(entry.GetTypeModifierObject()) == _triple(term.type_modifier), cls.name
        assert _codes(entry.GetRegionObject()) == _triple(term.region), cls.name
        np.testing.assert_allclose(segment.GetColor(), np.array(cls.color) / 255, atol=1e-3)
    assert catalogue.by_id(25).terminology.region is not None, "L6 is the one class with a region"


def test_the_terminology_context_is_known_to_slicer(logics: SceneLogics) -> None:
    """Every type code is in the registered context (the 3D Slicer General Anatomy list has none of them), found
    by the segment's display name as Slicer's segment editor does."""
    context = register_terminology(logics)
    assert register_terminology(logics) == context == catalogue.TERMINOLOGY_CONTEXT
    names = vtk.vtkStringArray()
    logics.terminologies.GetLoadedTerminologyNames(names)
    assert [names.GetValue(i) for i in range(names.GetNumberOfValues())].count(context) == 1
    for cls in catalogue.CLASSES:
        entry = slicer.vtkSlicerTerminologyEntry()
        assert logics.terminologies.FindTypeInTerminologyBy3dSlicerLabel(context, cls.display_name, entry), cls.name
        modifier = _codes(entry.GetTypeModifierObject())
        assert (_codes(entry.GetTypeObject()), modifier) == (_triple(cls.terminology.type),
                                                             _triple(cls.terminology.type_modifier))


def test_colour_table_names_are_the_display_names(logics: SceneLogics) -> None:
    """One name everywhere: the colour table (hence imported segments), the tables and ``.seg.nrrd`` say
    "Left femur", not ``femur_left``."""
    table = load_color_table(logics)
    assert load_color_table(logics) is table
    for cls in catalogue.CLASSES:
        assert table.GetColorName(cls.id) == cls.display_name
        assert table.GetTerminologyType(cls.id).GetCodeValue() == cls.terminology.type.value


def _class_counts(scene: slicer.vtkMRMLScene) -> collections.Counter:
    return collections.Counter(scene.GetNthNode(i).GetClassName() for i in range(scene.GetNumberOfNodes()))


def test_two_runs_stay_apart_in_their_own_folders(outputs: dict, logics: SceneLogics) -> None:
    """Each run gets a subject-hierarchy folder with its own segmentation, tables and landmarks; a second run
    neither overwrites the first run's nodes nor leaves temporary nodes behind."""
    first = load_reconstruction(logics, outputs["reconstruct"], measurements=True)
    after_first = _class_counts(logics.scene)
    first_rows = first.segment_table.GetNumberOfRows()
    second = load_reconstruction(logics, outputs["reconstruct"], measurements=True)
    assert [f.name for f in run_folders(logics)] == ["SwinX2S 1", "SwinX2S 2"]
    assert second.segmentation is not first.segmentation
    assert second.segment_table is not first.segment_table and first.segment_table.GetNumberOfRows() == first_rows
    for run in (first, second):
        nodes = run.folder.nodes()
        expected = [run.segmentation, run.segment_table, run.measurement_table, *run.markups]
        assert [n.GetID() for n in nodes] == [n.GetID() for n in expected]
        assert all(n.GetName().startswith(run.folder.name + " ") for n in nodes)
    added = _class_counts(logics.scene) - after_first
    assert "vtkMRMLLabelMapVolumeNode" not in _class_counts(logics.scene)
    assert "vtkMRMLVolumeArchetypeStorageNode" not in _class_counts(logics.scene)
    assert added["vtkMRMLSegmentationNode"] == 1 and added["vtkMRMLMarkupsFiducialNode"] == 1
    summary = json.loads(Path(slicer_support.result_files(outputs["reconstruct"])["summary.json"]).read_text())
    assert first_rows == len(summary["segments"])
    labels_path = slicer_support.read_reconstruction_result(outputs["reconstruct"]).labels_path
    assert Path(labels_path).name == "segmentation_ct.nii.gz"
    labels = sitk.GetArrayFromImage(sitk.ReadImage(labels_path))
    assert [s.GetName() for s in _segments(first.segmentation)] == [
        catalogue.by_id(int(v)).display_name for v in np.unique(labels) if v]


def test_a_chosen_segmentation_is_replaced_and_joins_the_run(outputs: dict, logics: SceneLogics) -> None:
    chosen = logics.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my bones")
    chosen.GetSegmentation().AddEmptySegment("old")
    run = load_reconstruction(logics, outputs["reconstruct"], segmentation=chosen)
    assert run.segmentation is chosen and "old" not in [s.GetName() for s in _segments(chosen)]
    assert run.folder.nodes()[0] is chosen and run.measurement_table is None and run.markups == ()


def _segment_contains(logics: SceneLogics, node: slicer.vtkMRMLSegmentationNode, name: str,
                      reference: slicer.vtkMRMLVolumeNode, ras: np.ndarray) -> bool:
    """Whether the segment's voxel at the RAS position ``ras`` is set (exported on the reference's grid)."""
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(node.GetSegmentation().GetSegmentIdBySegmentName(name))
    labelmap = logics.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "mask")
    assert logics.segmentations.ExportSegmentsToLabelmapNode(node, ids, labelmap, reference)
    mask = slicer.util.arrayFromVolume(labelmap)  # (K, J, I)
    ras_to_ijk = vtk.vtkMatrix4x4()
    labelmap.GetRASToIJKMatrix(ras_to_ijk)
    ijk = np.rint(np.array(ras_to_ijk.MultiplyPoint((*ras, 1.0))[:3])).astype(int)
    return bool(mask[ijk[2], ijk[1], ijk[0]])


def test_femoral_head_centres_lie_inside_their_femurs(outputs: dict, logics: SceneLogics) -> None:
    """Landmarks of ``swinx2s measure`` land in the femur segment of their own side (RAS throughout), not the
    mirrored one."""
    phantom = outputs["phantom"]
    reference = logics.volumes.AddArchetypeVolume(phantom["labels.nii.gz"], "reference", 1)
    node = logics.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "truth")
    import_labels(logics, phantom["labels.nii.gz"], node)
    measurements, landmarks = slicer_support.read_measure_result(outputs["measure"])
    nodes = add_markups(new_run_folder(logics), slicer_support.landmark_markups(landmarks, measurements))
    points = nodes[0]
    assert points.GetLocked() and all(n.GetLocked() for n in nodes)
    for side, other in (("left", "right"), ("right", "left")):
        index = points.GetControlPointIndexByLabel(f"femoral_head_{side}")
        position = np.array(points.GetNthControlPointPositionWorld(index))
        assert _segment_contains(logics, node, f"{side.capitalize()} femur", reference, position)
        assert not _segment_contains(logics, node, f"{other.capitalize()} femur", reference, position)
    lines = {n.GetName().split(" ", 2)[-1]: n for n in nodes[1:]}
    assert set(lines) == {f"femoral_{axis}_axis_{side}" for axis in ("neck", "shaft") for side in ("left", "right")}


def _line_integrals(ct: slicer.vtkMRMLScalarVolumeNode, image: slicer.vtkMRMLScalarVolumeNode) -> np.ndarray:
    """For each pixel of ``image``, ``max(HU, 0)`` of the CT (what the DRR preset integrates) summed along the
    image's K axis (the beam) through the pixel's position, read from the CT node itself (nearest voxel)."""
    attenuation = np.clip(slicer.util.arrayFromVolume(ct).astype(float), 0, None)  # max(HU, 0), (K, J, I)
    ijk_to_ras, ras_to_ijk = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    image.GetIJKToRASMatrix(ijk_to_ras)
    ct.GetRASToIJKMatrix(ras_to_ijk)
    to_ct = slicer.util.arrayFromVTKMatrix(ras_to_ijk) @ slicer.util.arrayFromVTKMatrix(ijk_to_ras)
    beam = to_ct[:3, 2] / np.linalg.norm(to_ct[:3, 2])
    axis = int(np.argmax(np.abs(beam)))  # the CT array axis the beam runs along (parallel geometry)
    assert abs(beam[axis]) > 0.99
    projection = attenuation.sum(axis=2 - axis)
    rows, cols = slicer.util.arrayFromVolume(image).shape[1:]
    j, i = np.mgrid[0:rows, 0:cols]
    ct_index = np.rint(np.einsum("ab,bij->aij", to_ct[:3], np.stack([i, j, np.zeros_like(i), np.ones_like(i)])))
    kept = [a for a in range(3) if a != axis]  # CT ijk axes in the projection plane; the array is (k, j, i)
    first, second = (np.clip(ct_index[a].astype(int), 0, attenuation.shape[2 - a] - 1) for a in kept)
    return projection[second, first]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (the DRR preset windows the line integrals: monotonic, saturating)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a.ravel(), b.ravel())[0])


def test_drrs_are_placed_where_the_ct_projects(outputs: dict, logics: SceneLogics) -> None:
    """The AP and lateral DRR volumes sit so that each pixel shows the CT's line integral through it along the
    beam (high correlation); a left-right (AP) or front-back (lateral) mirrored placement scores lower."""
    ct = logics.volumes.AddArchetypeVolume(outputs["marked_ct"], "ct", 0)
    folder = new_run_folder(logics, "SwinX2S DRRs")
    ap, lateral = load_drrs(logics, outputs["drr"], folder)
    assert [n.GetName() for n in folder.nodes()] == ["SwinX2S DRRs 1 AP DRR", "SwinX2S DRRs 1 lateral DRR"]
    for node in (ap, lateral):
        pixels = slicer.util.arrayFromVolume(node)[0].astype(float)
        placed = _correlation(pixels, _line_integrals(ct, node))
        mirrored = _correlation(pixels[:, ::-1], _line_integrals(ct, node))
        assert placed > 0.95, f"{node.GetName()}: correlation {placed:.3f}"
        assert mirrored < placed - 0.05, f"{node.GetName()}: mirrored {mirrored:.3f} vs placed {placed:.3f}"


def test_closing_the_scene_during_a_run_cancels_it(outputs: dict, logics: SceneLogics, tmp_path: Path) -> None:
    """File > Close Scene while ``reconstruct`` runs: the process tree is ended, and nothing is loaded."""
    code = "import time; print('ready', flush=True); time.sleep(120)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        calls = []

        def cancel() -> None:
            calls.append(True)
            slicer_support.terminate_processes(slicer_support.process_tree(process.pid))

        watcher = SceneCloseWatcher(logics.scene, on_close=cancel)
        logics.scene.Clear(0)
        logics.scene.Clear(0)
        assert watcher.closed and calls == [True]
        assert process.wait(timeout=10) != 0
        watcher.stop()
        assert run_folders(logics) == []
    finally:
        process.kill()
        process.wait()


def test_a_png_xray_keeps_its_unknown_pixel_spacing(logics: SceneLogics, tmp_path: Path) -> None:
    """An X-ray read from a PNG shows 1 mm pixels in Slicer; with the spacing left at "from the images" the module
    passes the PNG itself, so the command line warns (as for the file given directly) instead of trusting 1 mm."""
    from PIL import Image

    from SwinX2SLib.errors import InputError
    from SwinX2SLib.io import DEFAULT_XRAY_SPACING_MM, read_xray

    png = tmp_path / "ap.png"
    Image.fromarray((np.random.default_rng(0).random((60, 40)) * 65535).astype(np.uint16)).save(png)
    # slicer-core has no PNG reader: read the pixels as Slicer's PNG reader does, then point the storage at the PNG
    sitk.WriteImage(sitk.ReadImage(str(png)), str(tmp_path / "read.nrrd"))
    node = logics.volumes.AddArchetypeVolume(str(tmp_path / "read.nrrd"), "ap", 0)
    node.GetStorageNode().SetFileName(str(png))
    assert node.GetSpacing() == (1.0, 1.0, 1.0)

    path, source = xray_file(node, tmp_path, "ap")
    assert (path, source) == (str(png), "unknown")
    with pytest.warns(UserWarning, match="no pixel spacing"):
        assert read_xray(path).spacing_mm == (DEFAULT_XRAY_SPACING_MM,) * 2
    args = slicer_support.ReconstructParameters("out", coronal=path, sagittal=path).as_arg_list()
    assert "--pixel-spacing" not in args

    path, source = xray_file(node, tmp_path, "ap", entered_spacing_mm=0.25)
    assert source == "entered" and read_xray(path, 0.25).spacing_mm == (0.25, 0.25)
    node.SetSpacing(0.3, 0.3, 1.0)
    with pytest.raises(InputError, match="enter the pixel spacing"):
        xray_file(node, tmp_path, "ap")
    node.GetStorageNode().SetFileName(str(tmp_path / "read.nrrd"))
    path, source = xray_file(node, tmp_path, "ap")
    assert source == "file" and read_xray(path).spacing_mm == pytest.approx((0.3, 0.3))
    dicom = logics.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "dicom")
    dicom.SetAttribute("DICOM.instanceUIDs", "1.2.3")
    from SwinX2SModuleLib import spacing_source

    assert spacing_source(dicom) == "dicom"


_GUI_SESSION = """
import json, sys
from SwinX2SLib import slicer_support
import SwinX2SModuleLib as lib
payloads = json.loads(sys.argv[1])
logics = lib.SceneLogics.standalone()
lib.load_reconstruction(logics, payloads["reconstruct"], measurements=True)
lib.load_drrs(logics, payloads["drr"], lib.new_run_folder(logics, "SwinX2S DRRs"))
slicer_support.list_models(None)
print(json.dumps(sorted(m for m in ("torch", "scipy", "skimage", "monai", "timm") if m in sys.modules)))
"""


def test_the_gui_process_never_imports_torch_scipy_or_skimage(outputs: dict) -> None:
    """Loading results, tables, markups and DRRs and listing the models, as the modules do in Slicer's own
    process, imports none of the heavy libraries (the measurement table used to pull in SciPy and scikit-image)."""
    payloads = json.dumps({"reconstruct": outputs["reconstruct"], "drr": outputs["drr"]})
    completed = subprocess.run([sys.executable, "-c", _GUI_SESSION, payloads], capture_output=True, text=True,
                               env=slicer_support.subprocess_environment(), timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


_RELOAD = """
import json
import SwinX2SModuleLib
from SwinX2SLib import slicer_support
before = (SwinX2SModuleLib.segmentation.import_labels, slicer_support.results.segment_table)
names = SwinX2SModuleLib.reload_package(slicer_support) + SwinX2SModuleLib.reload_package(SwinX2SModuleLib)
after = (SwinX2SModuleLib.segmentation.import_labels, slicer_support.results.segment_table)
print(json.dumps({"names": names, "renewed": [a is not b for a, b in zip(before, after)],
                  "exported": SwinX2SModuleLib.import_labels is after[0]}))
"""


def test_reload_reimports_the_submodules() -> None:
    """Reload & Test picks up edits anywhere in the support packages, not only in their ``__init__``."""
    completed = subprocess.run([sys.executable, "-c", _RELOAD], capture_output=True, text=True,
                               env=slicer_support.subprocess_environment(), timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert {"SwinX2SLib.slicer_support.results", "SwinX2SModuleLib.segmentation"} <= set(report["names"])
    assert report["names"].index("SwinX2SModuleLib.segmentation") < report["names"].index("SwinX2SModuleLib")
    assert report["renewed"] == [True, True] and report["exported"]


def test_the_training_chart_is_updated_not_duplicated(logics: SceneLogics) -> None:
    """Every refresh of a running training updates the run's chart, tables and series in place."""
    from SwinX2SModuleLib import training_chart

    early = slicer_support.TrainingCurves(steps=(1, 2), step_losses=(0.9, 0.8))
    later = slicer_support.TrainingCurves(steps=(1, 2, 3), step_losses=(0.9, 0.8, 0.7), val_steps=(3,),
                                          val_dice=(0.4,))
    chart = training_chart(logics.scene, "run", early)
    counts = _class_counts(logics.scene)
    assert training_chart(logics.scene, "run", later) is chart and _class_counts(logics.scene) == counts
    assert chart.GetNumberOfPlotSeriesNodes() == 2 and chart.GetTitle() == "Training of run"
    loss = logics.scene.GetFirstNode("run loss", "vtkMRMLTableNode")
    np.testing.assert_allclose(slicer.util.arrayFromTableColumn(loss, "loss"), [0.9, 0.8, 0.7])
    dice = logics.scene.GetFirstNode("run validation Dice", "vtkMRMLTableNode")
    assert dice.GetNumberOfRows() == 1


def test_the_module_flow_from_a_ct_to_a_reconstruction(outputs: dict, logics: SceneLogics, tmp_path: Path) -> None:
    """Generate DRRs, then Reconstruct from them, as the module does it on the scene: the CT node is written and
    rendered, the DRR volumes are placed, written again as the X-ray inputs (their spacing known, no warning) and
    reconstructed; the result comes back into a run folder."""
    ct = logics.volumes.AddArchetypeVolume(outputs["phantom"]["ct.nii.gz"], "ct", 0)
    drr = _swinx2s(drr_request(tmp_path / "drr", ct).as_arg_list(progress=False))
    ap, lateral = load_drrs(logics, drr, new_run_folder(logics, "SwinX2S DRRs"))
    request = reconstruct_request(tmp_path / "rec", ap=ap, lateral=lateral, model=outputs["model"], device="cpu")
    assert Path(request.coronal).suffix == ".nrrd" and "--pixel-spacing" not in request.as_arg_list()
    assert sitk.ReadImage(request.coronal).GetSpacing()[:2] == pytest.approx(ap.GetSpacing()[:2])
    events = _events(request.as_arg_list(progress=False))
    assert not [e for e in events if isinstance(e, slicer_support.WarningEvent) and "spacing" in e.message]
    run = load_reconstruction(logics, events[-1].payload)
    summary = json.loads(Path(slicer_support.result_files(events[-1].payload)["summary.json"]).read_text())
    assert [s.GetName() for s in _segments(run.segmentation)] == [
        catalogue.by_id(int(s["id"])).display_name for s in summary["segments"]]
    assert [f.name for f in run_folders(logics)] == ["SwinX2S 1"]
    assert [f.name for f in run_folders(logics, "SwinX2S DRRs")] == ["SwinX2S DRRs 1"]
