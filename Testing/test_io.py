"""Reading CTs and X-rays in every supported format, rejecting bad input clearly, writing safely."""

from __future__ import annotations

import gzip

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import slicerio
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from SwinX2SLib import catalogue, io
from SwinX2SLib.conventions import ModelGrid, array_from_sitk, sitk_from_array
from SwinX2SLib.errors import InputError, OutputError


def _ct(size=(20, 16, 12)) -> sitk.Image:
    array = np.random.default_rng(0).normal(0, 100, size).astype(np.int16)
    image = sitk_from_array(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    image.SetOrigin((-10.0, 5.0, 100.0))
    return image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_read_volume_formats(tmp_path, suffix):
    ct = _ct()
    path = io.write_volume(ct, tmp_path / f"ct{suffix}")
    back = io.read_volume(path)
    assert back.GetSize() == ct.GetSize()
    assert back.GetSpacing() == pytest.approx(ct.GetSpacing())
    np.testing.assert_array_equal(array_from_sitk(back), array_from_sitk(ct))


def test_read_volume_dicom_series(tmp_path):
    ct = _ct()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = generate_uid()
    for k in range(ct.GetSize()[2]):
        slice_k = ct[:, :, k]
        for tag, value in (("0020|000e", series_uid), ("0008|0060", "CT"), ("0020|0013", str(k + 1)),
                           ("0020|0032", "\\".join(map(str, ct.TransformIndexToPhysicalPoint((0, 0, k))))),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0028|0030", "0.8\\0.8"), ("0018|0050", "2.5")):
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(slice_k)
    back = io.read_volume(tmp_path)
    assert back.GetSize() == ct.GetSize()
    assert back.GetSpacing()[2] == pytest.approx(2.5, abs=1e-3)
    np.testing.assert_array_equal(array_from_sitk(back), array_from_sitk(ct))


def test_read_volume_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        io.read_volume(tmp_path / "missing.nii.gz")
    good = io.write_volume(_ct(), tmp_path / "ct.nii.gz")
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match="truncated.nii.gz: cannot be read"):
        io.read_volume(truncated)
    flat = io.write_volume(sitk.Image(8, 8, sitk.sitkFloat32), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="expected a 3-D volume, got a 2-D image"):
        io.read_volume(flat)
    nan = sitk_from_array(np.full((4, 4, 4), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN or infinite"):
        io.read_volume(io.write_volume(nan, tmp_path / "nan.nrrd"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM series"):
        io.read_volume(tmp_path / "empty")
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(b"not an image at all"))
    with pytest.raises(InputError, match="garbage.nii.gz"):
        io.read_volume(garbage)


def _radiograph(dtype=np.uint8) -> np.ndarray:
    rows, cols = np.mgrid[0:60, 0:40]
    image = (rows * 3 + cols).astype(np.float64)
    return (image / image.max() * np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize(("suffix", "dtype"), [(".png", np.uint8), (".png", np.uint16), (".tif", np.uint16),
                                                (".jpg", np.uint8)])
def test_read_xray_raster(tmp_path, suffix, dtype):
    pixels = _radiograph(dtype)
    path = tmp_path / f"ap{suffix}"
    Image.fromarray(pixels).save(path)
    with pytest.warns(UserWarning, match="no pixel spacing"):
        xray = io.read_xray(path)
    assert xray.pixels.shape == (60, 40) and xray.pixels.dtype == np.float32
    assert xray.spacing_source == "default" and xray.spacing_mm == (io.DEFAULT_XRAY_SPACING_MM,) * 2
    if suffix != ".jpg":
        np.testing.assert_array_equal(xray.pixels, pixels.astype(np.float32))
    assert io.read_xray(path, pixel_spacing_mm=0.15).spacing_mm == (0.15, 0.15)


def _dicom(path, pixels: np.ndarray, photometric: str, spacing_tag: str | None) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "DX"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if spacing_tag:
        setattr(ds, spacing_tag, [0.143, 0.139])
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_read_xray_dicom(tmp_path):
    pixels = _radiograph(np.uint16)
    _dicom(tmp_path / "dx.dcm", pixels, "MONOCHROME2", "ImagerPixelSpacing")
    xray = io.read_xray(tmp_path / "dx.dcm")
    assert xray.spacing_mm == (0.143, 0.139) and xray.spacing_source == "file"
    np.testing.assert_array_equal(xray.pixels, pixels)
    _dicom(tmp_path / "cr", pixels, "MONOCHROME1", "PixelSpacing")  # no suffix: detected by the DICM preamble
    inverted = io.read_xray(tmp_path / "cr")
    np.testing.assert_array_equal(inverted.pixels, pixels.max() - pixels.astype(np.float32))
    assert pydicom.dcmread(tmp_path / "cr").PhotometricInterpretation == "MONOCHROME1"


def test_read_xray_itk_formats(tmp_path):
    pixels = _radiograph(np.uint16).astype(np.float32)
    flat = sitk.GetImageFromArray(pixels)
    flat.SetSpacing((0.3, 0.25))  # (col, row) in ITK order
    xray = io.read_xray(io.write_volume(flat, tmp_path / "lat.nii.gz"))
    assert xray.spacing_mm == pytest.approx((0.25, 0.3))
    np.testing.assert_array_equal(xray.pixels, pixels)
    single = sitk.JoinSeries(flat)
    assert io.read_xray(io.write_volume(single, tmp_path / "single.nrrd")).pixels.shape == pixels.shape


def test_read_xray_rejects_bad_input(tmp_path):
    volume = io.write_volume(_ct(), tmp_path / "ct.nii.gz")
    with pytest.raises(InputError, match="is a 3-D volume .* not an X-ray"):
        io.read_xray(volume)
    constant = tmp_path / "constant.png"
    Image.fromarray(np.full((20, 20), 7, np.uint8)).save(constant)
    with pytest.raises(InputError, match="constant.png: the image is constant"):
        io.read_xray(constant)
    nan = sitk.GetImageFromArray(np.full((5, 5), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        io.read_xray(io.write_volume(nan, tmp_path / "nan.nrrd"))
    broken = tmp_path / "broken.png"
    good = tmp_path / "good.png"
    Image.fromarray(_radiograph()).save(good)
    broken.write_bytes(good.read_bytes()[:60])
    with pytest.raises(InputError, match="broken.png: cannot be read"):
        io.read_xray(broken)
    with pytest.raises(InputError, match="does not exist"):
        io.read_xray(tmp_path / "nope.png")


def test_atomic_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), io.atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), io.atomic_write(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with io.atomic_write(target) as tmp:
        tmp.write_text("first")
    with pytest.raises(OutputError, match="already exists"), io.atomic_write(target) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "first"
    with io.atomic_write(target, overwrite=True) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "second" and len(list(tmp_path.iterdir())) == 1


def test_prepare_output_dir(tmp_path):
    assert io.prepare_output_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        io.prepare_output_dir(blocker / "sub")
    with pytest.raises(OutputError, match="not a folder"):
        io.prepare_output_dir(blocker)


def test_write_segmentation_seg_nrrd_has_names_colours_terminology(tmp_path):
    grid = ModelGrid.centered((0, 0, 0), 64.0, (16, 16, 20))
    labels = np.zeros(grid.shape, np.uint8)
    labels[2:6, 3:7, 4:9] = 53
    labels[9:13, 3:7, 4:9] = 54
    labels[6:9, 10:14, 12:18] = 20
    path = io.write_segmentation(sitk_from_array(labels, grid), tmp_path / "bones.seg.nrrd")
    seg = slicerio.read_segmentation(str(path))
    by_value = {s["labelValue"]: s for s in seg["segments"]}
    assert sorted(by_value) == [20, 53, 54]
    femur = by_value[53]
    assert femur["name"] == "Left femur"
    assert femur["color"] == pytest.approx([c / 255 for c in catalogue.by_id(53).color], abs=1e-4)
    assert femur["terminology"]["type"][1] == "71341001" and femur["terminology"]["typeModifier"][2] == "Left"
    np.testing.assert_array_equal(np.asarray(seg["voxels"]), labels)
    expected = np.eye(4)
    expected[:3, :3] = grid.direction_lps * grid.spacing
    expected[:3, 3] = grid.origin_lps
    np.testing.assert_allclose(seg["ijkToLPS"], expected, atol=1e-6)
    nifti = io.write_segmentation(sitk_from_array(labels, grid), tmp_path / "bones.nii.gz")
    np.testing.assert_array_equal(array_from_sitk(io.read_volume(nifti)), labels)
    with pytest.raises(OutputError):
        io.write_segmentation(sitk_from_array(labels, grid), tmp_path / "bones.seg.nrrd")

