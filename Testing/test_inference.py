"""Tests of SwinX2SLib.inference, .confidence and .meshes (small random-weight models; no Dice is asserted)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SwinX2SLib import catalogue
from SwinX2SLib.checkpoints import ModelCard, save_model_dir
from SwinX2SLib.confidence import fuse_views, keep_largest_component, segment_confidence
from SwinX2SLib.conventions import ModelGrid, array_from_sitk
from SwinX2SLib.errors import InputError, ModelError, OutputError
from SwinX2SLib.inference import (
    DEFAULT_MODEL_DIR,
    OUTPUT_NAMES,
    Reconstructor,
    write_reconstruction,
)
from SwinX2SLib.network import create_model
from SwinX2SLib.precision import resolve_precision

IMG_SIZE = (32, 32, 64)
# random weights label most of the grid as bone, which the reconstructor rightly warns about
pytestmark = pytest.mark.filterwarnings("ignore:implausible reconstruction:UserWarning")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random-weight ``test`` variant for a 32 x 32 x 64 grid."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    card = ModelCard(preprocessing={"drr_preset": "published_minmax", "geometry": "parallel"})
    save_model_dir(create_model("test", img_size=IMG_SIZE), folder, card)
    return folder


@pytest.fixture(scope="module")
def reconstructor(model_dir):
    torch.set_num_threads(1)
    return Reconstructor(model_dir, device="cpu")


def _pair_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((1, IMG_SIZE[0], IMG_SIZE[2]), dtype=np.float32),
            rng.random((1, IMG_SIZE[1], IMG_SIZE[2]), dtype=np.float32))


# ------------------------------------------------------------------------------------------------ confidence
def test_fuse_views_matches_direct_computation():
    torch.manual_seed(1)
    p, q = torch.randn(5, 6, 4, 3), torch.randn(5, 6, 4, 3)
    fused = fuse_views(p, q)
    pp, qq = p.softmax(0).double(), q.softmax(0).double()
    m = (pp + qq) / 2
    js = 0.5 * (pp * (pp / m).log2()).sum(0) + 0.5 * (qq * (qq / m).log2()).sum(0)
    np.testing.assert_array_equal(fused.labels, (p + q).argmax(0).numpy())
    np.testing.assert_allclose(fused.js_divergence, js.numpy(), atol=1e-5)
    np.testing.assert_allclose(fused.max_probability, m.amax(0).numpy(), atol=1e-6)
    same = fuse_views(p, p)
    assert np.abs(same.js_divergence).max() < 1e-5
    one_hot = torch.full((2, 1, 1, 1), -50.0)
    one_hot[0] = 50.0
    assert fuse_views(one_hot, one_hot.flip(0)).js_divergence.item() == pytest.approx(1.0, abs=1e-5)


def test_segment_confidence_and_largest_component():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[1:4, 1:4, 1:4] = 7  # 27 voxels
    labels[7:9, 7:9, 7:9] = 7  # 8 voxels, separate piece
    labels[5, 5, 5] = 9
    js = np.zeros(labels.shape, np.float32)
    js[labels == 9] = 0.25
    maxp = np.full(labels.shape, 0.5, np.float32)
    conf = segment_confidence(labels, js, maxp)
    assert set(conf) == {7, 9}
    assert conf[7].agreement == pytest.approx(1.0) and conf[9].agreement == pytest.approx(0.75)
    assert conf[9].mean_max_probability == pytest.approx(0.5)
    kept = keep_largest_component(labels)
    assert np.sum(kept == 7) == 27 and np.sum(kept == 9) == 1
    assert kept[8, 8, 8] == 0


# ------------------------------------------------------------------------------------------------ reconstructor
def test_reconstruct_labels_are_fused_network_output(reconstructor):
    cor, sag = _pair_inputs()
    grid = ModelGrid(IMG_SIZE, 4.0, (1.0, 2.0, 3.0))
    result = reconstructor.reconstruct(cor, sag, grid, {"kind": "test"})
    with torch.no_grad():
        p, q = reconstructor.model(torch.from_numpy(cor)[None], torch.from_numpy(sag)[None])
    np.testing.assert_array_equal(result.labels, (p + q)[0].argmax(0).numpy())
    assert result.labels.shape == IMG_SIZE and result.grid == grid
    counts = np.bincount(result.labels.ravel(), minlength=catalogue.NUM_CLASSES)
    assert [s.id for s in result.segments] == [int(c) for c in np.nonzero(counts)[0] if c]
    for s in result.segments:
        assert s.name == catalogue.by_id(s.id).name
        assert s.voxels == counts[s.id]
        assert s.volume_ml == pytest.approx(counts[s.id] * 64.0 / 1000.0, abs=1e-3)
        assert 0.0 <= s.confidence <= 1.0 and 0.0 < s.mean_max_probability <= 1.0
    assert result.summary()["grid"]["affine_ras"] == grid.affine_ras().tolist()


def test_reconstruct_rejects_wrong_input_shape(reconstructor):
    cor, sag = _pair_inputs()
    with pytest.raises(InputError, match="shape"):
        reconstructor.reconstruct(cor[:, :16], sag, ModelGrid(IMG_SIZE, 4.0))
    bad = cor.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        reconstructor.reconstruct(bad, sag, ModelGrid(IMG_SIZE, 4.0))


def test_cuda_out_of_memory_retries_on_cpu(reconstructor, monkeypatch):
    cor, sag = _pair_inputs()
    original = reconstructor._forward
    calls = []

    def flaky(a, b):
        calls.append(reconstructor.device.type)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(a, b)

    monkeypatch.setattr(reconstructor, "_forward", flaky)
    monkeypatch.setattr(reconstructor, "device", torch.device("cuda"))
    monkeypatch.setattr(reconstructor.model, "to", lambda device: reconstructor.model)
    with pytest.warns(UserWarning, match="out of memory.*CPU"):
        result = reconstructor.reconstruct(cor, sag, ModelGrid(IMG_SIZE, 4.0))
    assert calls == ["cuda", "cpu"] and result.device == "cpu"


def test_disagreeing_views_warn(reconstructor, monkeypatch):
    """Views that are swapped or from different patients make the two branches disagree: the user is told."""
    from SwinX2SLib.confidence import FusedPrediction

    labels = np.zeros(IMG_SIZE, np.uint8)
    labels[8:20, 8:20, 10:50] = 20
    disagreeing = FusedPrediction(labels, np.full(IMG_SIZE, 0.8, np.float32), np.full(IMG_SIZE, 0.3, np.float32))
    monkeypatch.setattr(reconstructor, "_forward", lambda a, b: disagreeing)
    with pytest.warns(UserWarning, match="disagree strongly.*AP image"):
        result = reconstructor.reconstruct(*_pair_inputs(), ModelGrid(IMG_SIZE, 4.0))
    assert result.segments[0].confidence == pytest.approx(0.2, abs=1e-4)
    everything = FusedPrediction(np.full(IMG_SIZE, 20, np.uint8), np.zeros(IMG_SIZE, np.float32),
                                 np.ones(IMG_SIZE, np.float32))
    monkeypatch.setattr(reconstructor, "_forward", lambda a, b: everything)
    with pytest.warns(UserWarning, match="implausible reconstruction: 100%"):
        reconstructor.reconstruct(*_pair_inputs(), ModelGrid(IMG_SIZE, 4.0))


def test_missing_tampered_and_foreign_models(model_dir, tmp_path):
    with pytest.raises(ModelError, match="swinx2s train"):
        Reconstructor(tmp_path / "nothing", device="cpu")
    if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        with pytest.raises(ModelError, match="default model has not been trained"):
            Reconstructor(None, device="cpu")
    tampered = tmp_path / "tampered"
    shutil.copytree(model_dir, tampered)
    data = bytearray((tampered / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tampered / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="modified"):
        Reconstructor(tampered, device="cpu")
    foreign = tmp_path / "foreign"  # a 7-class model is not a catalogue model
    shutil.copytree(model_dir, foreign)
    card = json.loads((foreign / "model.json").read_text())
    card["num_classes"], card["classes"] = 7, card["classes"][:7]
    (foreign / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="class table"):
        Reconstructor(foreign, device="cpu")


def test_subset_model_labels_map_to_catalogue_ids(tmp_path):
    from SwinX2SLib.checkpoints import class_names

    folder = tmp_path / "femur_model"
    card = ModelCard(classes=tuple(class_names(3, "femur")))
    save_model_dir(create_model("test", img_size=IMG_SIZE, num_classes=3), folder, card)
    result = Reconstructor(folder, device="cpu").reconstruct(*_pair_inputs(), ModelGrid(IMG_SIZE, 4.0))
    assert set(np.unique(result.labels)) <= {0, 53, 54}
    assert {s.name for s in result.segments} <= {"femur_left", "femur_right"}


def test_reconstruct_ct_also_resamples_onto_the_ct_grid(reconstructor, tmp_path):
    ct_array = np.full((40, 36, 50), -1000.0, np.float32)  # [x, y, z]
    ct_array[14:26, 12:24, 5:45] = 800.0
    ct = sitk.GetImageFromArray(ct_array.transpose(2, 1, 0))
    ct.SetSpacing((2.0, 2.5, 3.0))
    ct.SetOrigin((-40.0, 30.0, 100.0))
    label = sitk.Cast(ct > 0, sitk.sitkUInt8) * 53
    result = reconstructor.reconstruct_ct(ct, label)
    assert result.label is not None and np.sum(result.label == 53) > 0
    written = write_reconstruction(result, tmp_path / "out")
    on_ct = sitk.ReadImage(written["outputs"][OUTPUT_NAMES["labels_ct"]])
    assert on_ct.GetSize() == ct.GetSize()
    np.testing.assert_allclose(on_ct.GetSpacing(), ct.GetSpacing())
    np.testing.assert_allclose(on_ct.GetOrigin(), ct.GetOrigin())
    assert written["source"]["kind"] == "ct"


# ------------------------------------------------------------------------------------------------ outputs
def test_write_reconstruction_files_geometry_and_overwrite(reconstructor, tmp_path):
    import nibabel as nib
    import slicerio

    grid = ModelGrid(IMG_SIZE, 4.0, (10.0, -20.0, 30.0))
    result = reconstructor.reconstruct(*_pair_inputs(), grid, {"kind": "test"})
    blocks = np.zeros(IMG_SIZE, np.uint8)  # compact bones keep the mesh step quick (random weights give noise)
    blocks[2:12, 4:20, 8:40] = result.segments[0].id
    blocks[16:28, 4:20, 30:60] = result.segments[-1].id
    result = replace(result, labels=blocks)
    folder = tmp_path / "out"
    summary = write_reconstruction(result, folder, meshes="stl")
    names = {p.name for p in folder.iterdir()}
    assert names == {"segmentation.nii.gz", "segmentation.seg.nrrd", "confidence.nii.gz", "summary.json", "meshes"}
    nifti = nib.load(folder / "segmentation.nii.gz")
    np.testing.assert_allclose(nifti.affine, grid.affine_ras(), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(nifti.dataobj), result.labels)
    seg = slicerio.read_segmentation(str(folder / "segmentation.seg.nrrd"))
    first = result.segments[0]
    segment = next(s for s in seg["segments"] if s["labelValue"] == first.id)
    assert segment["name"] == catalogue.by_id(first.id).display_name
    on_disk = json.loads((folder / "summary.json").read_text())
    assert on_disk["segments"][0] == {"id": first.id, "name": first.name, "voxels": first.voxels,
                                      "volume_ml": first.volume_ml, "confidence": first.confidence,
                                      "mean_max_probability": first.mean_max_probability}
    assert set(on_disk["outputs"]) >= {"segmentation.nii.gz", "summary.json"} and on_disk == summary
    stls = sorted(p.stem for p in (folder / "meshes").iterdir())
    assert stls == sorted({result.segments[0].name, result.segments[-1].name})
    agreement = array_from_sitk(sitk.ReadImage(str(folder / "confidence.nii.gz")))
    np.testing.assert_allclose(agreement, result.agreement)
    before = (folder / "summary.json").stat().st_mtime_ns
    with pytest.raises(OutputError, match="overwrite"):
        write_reconstruction(result, folder)
    assert (folder / "summary.json").stat().st_mtime_ns == before
    write_reconstruction(result, folder, overwrite=True)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_interrupted_write_leaves_no_outputs(reconstructor, tmp_path, monkeypatch):
    import SwinX2SLib.meshes

    result = reconstructor.reconstruct(*_pair_inputs(), ModelGrid(IMG_SIZE, 4.0))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SwinX2SLib.meshes, "write_meshes", interrupted)
    folder = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        write_reconstruction(result, folder, meshes="obj")
    assert list(folder.iterdir()) == []


def test_output_folder_not_writable(reconstructor, tmp_path):
    result = reconstructor.reconstruct(*_pair_inputs(), ModelGrid(IMG_SIZE, 4.0))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError):
        write_reconstruction(result, blocker / "out")


def test_meshes_are_in_ras_with_outward_normals(tmp_path):
    import vtk
    from vtk.util import numpy_support

    from SwinX2SLib.meshes import label_surface, write_meshes

    grid = ModelGrid((40, 40, 48), 2.0, (10.0, 20.0, 30.0))
    index = np.indices(grid.shape).transpose(1, 2, 3, 0)
    centre = np.array([25, 15, 20])
    labels = np.zeros(grid.shape, np.uint8)
    labels[np.linalg.norm(index - centre, axis=-1) <= 8] = 53
    surface = label_surface(labels, grid.affine_ras(), 53)
    points = numpy_support.vtk_to_numpy(surface.GetPoints().GetData())
    normals = numpy_support.vtk_to_numpy(surface.GetPointData().GetNormals())
    centre_ras = grid.index_to_ras(centre)
    np.testing.assert_allclose(points.mean(0), centre_ras, atol=0.5)
    assert np.linalg.norm(points - centre_ras, axis=1).mean() == pytest.approx(16.0, abs=1.0)
    assert np.all(np.sum(normals * (points - centre_ras), axis=1) > 0)
    paths = write_meshes(labels, grid.affine_ras(), tmp_path, "stl")
    assert [p.name for p in paths] == ["femur_left.stl"]
    assert paths[0].read_bytes()[:9] == b"SPACE=RAS"
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(paths[0]))
    reader.Update()
    assert reader.GetOutput().GetNumberOfCells() == surface.GetNumberOfCells()
    obj = write_meshes(labels, grid.affine_ras(), tmp_path, "obj")[0]
    assert obj.read_text().startswith("# SPACE=RAS")



@pytest.mark.slow
def test_reconstruct_published_s0308_end_to_end(shared_dir, tmp_path):
    """The published preprocessed pair through a full-size (random-weight) model: geometry of the outputs."""
    import nibabel as nib

    from SwinX2SLib.conventions import read_published_volume

    folder = tmp_path / "model"
    save_model_dir(create_model("test"), folder, ModelCard())
    case = shared_dir / "data/official_samples/TotalSegAll_s0308/Totalsegmentator_all"
    result = Reconstructor(folder, device="cpu").reconstruct_published(case / "s0308_input_cor.nii.gz",
                                                                        case / "s0308_input_sag.nii.gz")
    _, grid = read_published_volume(case / "s0308_label.nii.gz")
    assert result.grid == grid and result.labels.shape == (128, 128, 160)
    write_reconstruction(result, tmp_path / "out")
    np.testing.assert_allclose(nib.load(tmp_path / "out" / "segmentation.nii.gz").affine, grid.affine_ras(), atol=1e-4)


def test_precision_choices_resolve_per_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # no device is touched: only its type matters
    assert resolve_precision("auto", cpu) is None and resolve_precision("float32", cuda) is None
    assert resolve_precision("auto", cuda) is torch.float16
    assert resolve_precision("bfloat16", cuda) is torch.bfloat16
    with pytest.raises(InputError, match="float16 is for CUDA devices"):
        resolve_precision("float16", cpu)
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16, float16"):
        resolve_precision("tf32", cuda)
