"""Training data: published preprocessed cases, CT + label cases rendered to DRRs, and seeded phantoms.

Every source yields :class:`Sample` objects on the model grid (axes of :mod:`SwinX2SLib.conventions`):
``coronal (N, X, Z)`` and ``sagittal (N, Y, Z)`` float32 images in [0, 1] and ``label (X, Y, Z)`` uint8 in the
55-class catalogue.

Sources
-------
* **published** (:class:`PublishedCases`): a folder with ``data_list.json`` holding ``training`` / ``validation`` /
  ``test`` lists of ``{"image": [coronal, sagittal], "label": label}`` (paths relative to the folder), files as in
  the published Swin-X2S data (``*_input_cor.nii.gz``, ``*_input_sag.nii.gz``, ``*_label.nii.gz``). Subset-task
  labels (``femur``, ``pelvic``, ``spine``, ``rib``) are converted to full ids.
* **ct** (:class:`CTCases`): one folder per case with ``ct.nii.gz`` and either ``segmentations/*.nii.gz`` (one
  binary mask per TotalSegmentator v2 structure) or one multi-label file (``label.nii.gz``, ``labels.nii.gz``,
  ``seg.nii.gz`` or ``segmentation.nii.gz``) numbered in one of the conventions of :data:`LABEL_CONVENTIONS`.
  Each case is rendered with the chosen DRR preset once and cached on disk (:class:`SampleCache`).
* **phantom** (:class:`PhantomCases`): procedural phantoms of :mod:`SwinX2SLib.phantom`, one seed per sample; a
  pool of seeds rendered once and cached, or an endless stream (a fresh seed for every sample of every epoch).

:class:`TrainingDataset` wraps a source for a ``torch`` ``DataLoader`` and applies the augmentation with a random
generator seeded by ``(seed, epoch, index)``, so a sample is the same however the data are split over workers
and processes, and a resumed run sees exactly the samples it would have seen.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from SwinX2SLib import catalogue
from SwinX2SLib.errors import InputError

if TYPE_CHECKING:
    import SimpleITK as sitk
    import torch

    from SwinX2SLib.training.config import AugmentConfig, TrainConfig

__all__ = [
    "LABEL_CONVENTIONS",
    "CTCases",
    "PhantomCases",
    "PublishedCases",
    "Sample",
    "SampleCache",
    "TrainingDataset",
    "build_datasets",
    "case_split",
    "convert_labels",
    "labels_from_mask_folder",
    "split_binary_ribs",
]

CACHE_VERSION = 1
LABEL_FILE_NAMES = ("label.nii.gz", "labels.nii.gz", "seg.nii.gz", "segmentation.nii.gz")

# Source label value -> catalogue id, per dataset convention; values not listed become background.
_VERSE = {**{i: i for i in range(1, 26)}, 26: catalogue.by_name("sacrum").id}  # 27 coccyx, 28 T13: not modelled
LABEL_CONVENTIONS: dict[str, dict[int, int] | None] = {
    "catalogue": {c.id: c.id for c in catalogue.CLASSES},
    # TotalSegmentator v2 "total" task ids (multi-label file); None = use catalogue.totalseg_to_full
    "totalsegmentator": None,
    # CTPelvic1K: 1 sacrum, 2 right hip, 3 left hip, 4 lumbar spine (one label for all lumbar vertebrae: dropped)
    "ctpelvic1k": {1: catalogue.by_name("sacrum").id, 2: catalogue.by_name("hip_right").id,
                   3: catalogue.by_name("hip_left").id},
    # CTSpine1K and VerSe'19: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 27 coccyx, 28 T13
    "ctspine1k": _VERSE,
    "verse": _VERSE,
    # RibSeg v2: binary rib mask (any non-zero value); split into 24 ribs by split_binary_ribs
    "ribseg": None,
}


@dataclass(frozen=True)
class Sample:
    """One training sample on the model grid.

    Args:
        coronal: ``(N, X, Z)`` float32 in [0, 1], projection along ``y``.
        sagittal: ``(N, Y, Z)`` float32 in [0, 1], projection along ``x``.
        label: ``(X, Y, Z)`` uint8, catalogue ids.
        spacing_mm: isotropic voxel size of the grid.
        name: where the sample came from (case name or phantom seed).
    """

    coronal: np.ndarray
    sagittal: np.ndarray
    label: np.ndarray
    spacing_mm: float
    name: str


def convert_labels(labels: np.ndarray, convention: str, path: str = "labels") -> np.ndarray:
    """Renumber a label map of a public dataset to catalogue ids.

    Args:
        labels: integer label map (any axis order).
        convention: a key of :data:`LABEL_CONVENTIONS` other than ``ribseg`` (which needs geometry; see
            :func:`split_binary_ribs`).
        path: named in errors.

    Returns:
        uint8 label map of the same shape; values the convention does not model become 0.
    """
    if convention not in LABEL_CONVENTIONS or convention == "ribseg":
        raise InputError(path, f"label convention {convention!r} cannot be converted value by value; choose one of "
                               f"{', '.join(k for k in LABEL_CONVENTIONS if k != 'ribseg')}")
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or not np.issubdtype(labels.dtype, np.integer)):
        raise InputError(path, "label maps must hold non-negative integers")
    mapping = LABEL_CONVENTIONS[convention]
    if mapping is None:
        return catalogue.totalseg_to_full(labels).astype(np.uint8)
    return catalogue.relabel(labels, mapping)


def labels_from_mask_folder(folder: str | Path) -> sitk.Image:
    """Merge a TotalSegmentator ``segmentations/`` folder (one binary ``<name>.nii.gz`` per structure).

    Structures outside the catalogue are ignored; ``vertebrae_S1`` merges into the sacrum as the catalogue says.

    Returns:
        A uint8 label image in catalogue ids on the masks' grid.
    """
    import SimpleITK as sitk

    from SwinX2SLib.io import read_volume

    folder = Path(folder)
    merged: np.ndarray | None = None
    reference = None
    for path in sorted(folder.glob("*.nii.gz")):
        class_id = catalogue.totalseg_name_to_id(path.name[: -len(".nii.gz")])
        if class_id is None:
            continue
        image = read_volume(path)
        mask = sitk.GetArrayViewFromImage(image) > 0
        if merged is None:
            merged, reference = np.zeros(mask.shape, dtype=np.uint8), image
        elif mask.shape != merged.shape:
            raise InputError(path, f"mask size {mask.shape[::-1]} differs from the other masks' {merged.shape[::-1]}")
        merged[mask] = class_id
    if merged is None or reference is None:
        raise InputError(folder, "no TotalSegmentator mask of a catalogue structure (e.g. femur_left.nii.gz) found")
    out = sitk.GetImageFromArray(merged)
    out.CopyInformation(reference)
    return out


def split_binary_ribs(mask: sitk.Image, min_voxels: int = 20) -> sitk.Image:
    """Split a binary rib mask (RibSeg v2) into the 24 catalogue ribs.

    Connected components (26-connectivity) are ribs. A rib's side is that of its centroid relative to the median
    left-right position of all rib voxels (patient left = +x in LPS); on each side the (at most 12) largest
    components are numbered 1..12 from superior to inferior by centroid height. A scan that misses the top ribs is
    numbered from the highest visible rib, a known limit of this rule.

    Args:
        mask: binary (or any non-zero) rib mask with its geometry.
        min_voxels: smaller components are noise and dropped.

    Returns:
        uint8 label image in catalogue ids (``rib_left_k`` / ``rib_right_k``) on the mask's grid.
    """
    from scipy import ndimage

    from SwinX2SLib.connected import components
    from SwinX2SLib.conventions import array_from_sitk, sitk_from_array

    array = array_from_sitk(mask) > 0  # [i, j, k], like the image's own index
    pieces, sizes = components(array)
    out = np.zeros(array.shape, dtype=np.uint8)
    if len(sizes):
        keep = [i + 1 for i in np.flatnonzero(sizes >= min_voxels)]
        centres = ndimage.center_of_mass(array, pieces, keep)
        lps = np.array([mask.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in c))
                        for c in centres]).reshape(-1, 3)
        voxels_lps_x = np.median(lps[:, 0]) if len(keep) else 0.0
        for side, selector in (("left", lps[:, 0] > voxels_lps_x), ("right", lps[:, 0] <= voxels_lps_x)):
            members = [(sizes[keep[i] - 1], lps[i, 2], keep[i]) for i in np.flatnonzero(selector)]
            largest = sorted(members, reverse=True)[:12]
            for rank, (_, _, comp) in enumerate(sorted(largest, key=lambda m: -m[1])):
                out[pieces == comp] = catalogue.by_name(f"rib_{side}_{rank + 1}").id
    image = sitk_from_array(out)
    image.CopyInformation(mask)
    return image


def read_case_labels(case_dir: Path, convention: str) -> sitk.Image:
    """The catalogue label image of a CT case folder (see the module docstring for the layouts)."""
    import SimpleITK as sitk

    from SwinX2SLib.io import read_volume

    masks = case_dir / "segmentations"
    if masks.is_dir():
        return labels_from_mask_folder(masks)
    for name in LABEL_FILE_NAMES:
        path = case_dir / name
        if path.exists():
            image = read_volume(path)
            if convention == "ribseg":
                return split_binary_ribs(image)
            array = convert_labels(sitk.GetArrayFromImage(image).astype(np.int64), convention, str(path))
            out = sitk.GetImageFromArray(array)
            out.CopyInformation(image)
            return out
    raise InputError(case_dir, f"no labels: expected segmentations/ or one of {', '.join(LABEL_FILE_NAMES)}")


class SampleCache:
    """Rendered samples on disk (``.npz``), keyed by everything that determines them; written atomically.

    Args:
        folder: cache folder (created when needed).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps({**key, "v": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:24]
        return self.folder / f"{digest}.npz"

    def get_or_make(self, key: dict[str, Any], make: Callable[[], Sample]) -> Sample:
        """Load the sample for ``key``, or ``make`` it and store it."""
        from SwinX2SLib.io import atomic_write

        path = self.path(key)
        if path.exists():
            try:  # allow_pickle=False (numpy's default): an object array in the file is refused, never unpickled
                with np.load(path, allow_pickle=False) as data:
                    return Sample(data["coronal"], data["sagittal"], data["label"], float(data["spacing_mm"]),
                                  str(data["name"]))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise InputError(path, f"not a readable cached sample ({type(exc).__name__}: {exc}); delete it "
                                       "to render it again") from None
        sample = make()
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, overwrite=True) as tmp, tmp.open("wb") as handle:
            np.savez(handle, coronal=sample.coronal, sagittal=sample.sagittal, label=sample.label,
                     spacing_mm=sample.spacing_mm, name=sample.name)
        return sample


class PublishedCases:
    """Cases of a published preprocessed folder (``data_list.json``).

    Args:
        root: the folder.
        split: ``"training"``, ``"validation"`` or ``"test"``.
        subset_task: the labels are numbered for this subset task (None: full 55-class ids).
        cache: keep decoded cases as uncompressed arrays (None: read the NIfTI files every time).
    """

    def __init__(self, root: str | Path, split: str, subset_task: str | None = None,
                 cache: SampleCache | None = None) -> None:
        self.root = Path(root)
        list_path = self.root / "data_list.json"
        if list_path.exists() and not list_path.is_file():
            raise InputError(list_path, "is not a regular file")
        try:
            data = json.loads(list_path.read_text())
        except OSError as exc:
            raise InputError(list_path, f"cannot read the data list ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise InputError(list_path, f"not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise InputError(list_path, "must be a JSON object of lists, e.g. {\"training\": [...]}")
        if split not in data:
            raise InputError(list_path, f"has no {split!r} list (found: {', '.join(data) or 'nothing'})")
        self.items = []
        for k, item in enumerate(data[split]):
            if not (isinstance(item, dict) and len(item.get("image", ())) == 2 and "label" in item):
                raise InputError(list_path, f"{split}[{k}] must look like {{'image': [cor, sag], 'label': lab}}")
            names = (*item["image"], item["label"])  # absolute paths may point anywhere, by design
            for name in names:
                if not isinstance(name, str) or (not Path(name).is_absolute() and ".." in Path(name).parts):
                    raise InputError(list_path, f"{split}[{k}]: {name!r} must be a file name, or a relative path "
                                                f"that stays inside {self.root}")
            for name in names:
                if not (self.root / name).is_file():
                    raise InputError(self.root / name, f"listed in {list_path} ({split}[{k}]) but not a file")
            self.items.append(item)
        self.split = split
        self.subset_task = subset_task
        self.cache = cache

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int, epoch: int = 0) -> Sample:
        if self.cache is None:
            return self._read(index)
        paths = [self.root / p for p in (*self.items[index]["image"], self.items[index]["label"])]
        key = {"kind": "published", "files": [str(p.resolve()) for p in paths],
               "mtimes": [p.stat().st_mtime_ns for p in paths], "subset": self.subset_task}
        return self.cache.get_or_make(key, lambda: self._read(index))

    def _read(self, index: int) -> Sample:
        from SwinX2SLib.conventions import read_published_pair, read_published_volume

        item = self.items[index]
        cor_path, sag_path = (self.root / p for p in item["image"])
        coronal, sagittal, grid = read_published_pair(cor_path, sag_path)
        label, _ = read_published_volume(self.root / item["label"])
        if label.shape != grid.shape:
            raise InputError(self.root / item["label"], f"label grid {label.shape} differs from inputs {grid.shape}")
        label = label.astype(np.int64)
        label = (catalogue.subset_to_full(label, self.subset_task) if self.subset_task
                 else convert_labels(label, "catalogue", str(self.root / item["label"])))
        return Sample(coronal[None], sagittal[None], label, grid.spacing, Path(item["label"]).name)


class CTCases:
    """CT + label cases rendered to DRRs with a preset, cached.

    Args:
        root: folder with one sub-folder per case (``ct.nii.gz`` + labels).
        convention: label convention (:data:`LABEL_CONVENTIONS`).
        preset: DRR preset.
        shape: model grid ``(X, Y, Z)``.
        views: images per direction ``N``.
        cache: where renderings are kept.
        names: restrict to these case folder names (a split); default all.
    """

    def __init__(self, root: str | Path, convention: str, preset: str, shape: Sequence[int], views: int,
                 cache: SampleCache, names: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(self.root, "CT data folder does not exist")
        found = sorted(p.name for p in self.root.iterdir() if (p / "ct.nii.gz").exists())
        if not found:
            raise InputError(self.root, "no case folders with a ct.nii.gz inside")
        self.names = list(names) if names is not None else found
        self.convention, self.preset, self.shape = convention, preset, tuple(shape)
        self.views, self.cache = views, cache

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int, epoch: int = 0) -> Sample:
        case = self.root / self.names[index]
        ct_path = case / "ct.nii.gz"
        key = {"kind": "ct", "path": str(ct_path.resolve()), "mtime": ct_path.stat().st_mtime_ns,
               "convention": self.convention, "preset": self.preset, "shape": self.shape, "views": self.views}
        return self.cache.get_or_make(key, lambda: self._render(case))

    def _render(self, case: Path) -> Sample:
        from SwinX2SLib.drr import render_model_inputs
        from SwinX2SLib.io import read_volume

        ct = read_volume(case / "ct.nii.gz")
        label = read_case_labels(case, self.convention)
        inputs = render_model_inputs(ct, self.preset, self.shape, self.views, label=label)
        return Sample(np.asarray(inputs.coronal, np.float32), np.asarray(inputs.sagittal, np.float32),
                      np.asarray(inputs.label, np.uint8), inputs.grid.spacing, case.name)


class PhantomCases:
    """Seeded phantoms rendered to DRRs.

    Args:
        seed_start: first seed.
        count: number of distinct seeds (the length of an epoch in ``endless`` mode too).
        shape: model grid ``(X, Y, Z)``.
        views: images per direction ``N``.
        preset: DRR preset.
        spacing_mm: phantom voxel size (None: the phantom's default).
        cache: where renderings are kept (None: render every time).
        endless: sample ``i`` of epoch ``e`` is seed ``seed_start + e * count + i`` (never repeats) instead of
            ``seed_start + i``.
    """

    def __init__(self, seed_start: int, count: int, shape: Sequence[int], views: int, preset: str,
                 spacing_mm: float | None = None, cache: SampleCache | None = None, endless: bool = False) -> None:
        self.seed_start, self.count, self.shape, self.views = seed_start, count, tuple(shape), views
        self.preset, self.spacing_mm, self.cache, self.endless = preset, spacing_mm, cache, endless

    def __len__(self) -> int:
        return self.count

    def seed(self, index: int, epoch: int = 0) -> int:
        return self.seed_start + (epoch * self.count if self.endless else 0) + index

    def key(self, index: int, epoch: int = 0) -> dict[str, Any]:
        """What determines the sample (its :class:`SampleCache` key)."""
        return {"kind": "phantom", "seed": self.seed(index, epoch), "shape": self.shape, "views": self.views,
                "preset": self.preset, "spacing": self.spacing_mm}

    def load(self, index: int, epoch: int = 0) -> Sample:
        seed = self.seed(index, epoch)
        if self.cache is None:
            return render_phantom(seed, self.shape, self.views, self.preset, self.spacing_mm)
        return self.cache.get_or_make(
            self.key(index, epoch), lambda: render_phantom(seed, self.shape, self.views, self.preset, self.spacing_mm))


def render_phantom(seed: int, shape: Sequence[int], views: int, preset: str,
                   spacing_mm: float | None = None) -> Sample:
    """Make phantom ``seed`` on a ``shape`` grid and render its DRR pair with ``preset``."""
    from SwinX2SLib.drr import render_from_model_grid
    from SwinX2SLib.phantom import make_phantom

    kwargs = {} if spacing_mm is None else {"spacing_mm": spacing_mm}
    phantom = make_phantom(seed, shape=tuple(shape), **kwargs)
    images = render_from_model_grid(phantom.ct, phantom.grid, preset, views)
    return Sample(np.asarray(images.coronal, np.float32), np.asarray(images.sagittal, np.float32),
                  np.asarray(phantom.labels, np.uint8), float(phantom.grid.spacing), f"phantom-{seed}")


class TrainingDataset:
    """A ``torch`` map-style dataset over a source, resized to the model grid and augmented.

    Items are dicts ``{"coronal": (N, X, Z), "sagittal": (N, Y, Z), "label": (X, Y, Z) int64, "index": int}``.

    Args:
        source: a :class:`PublishedCases`, :class:`CTCases` or :class:`PhantomCases`.
        shape: model grid ``(X, Y, Z)``; samples on another grid are resized (images bilinear, label nearest).
        augment: augmentation settings (None: none, for validation).
        seed: augmentation seed.
    """

    def __init__(self, source: Any, shape: Sequence[int], augment: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        self.source, self.shape, self.augment, self.seed = source, tuple(shape), augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (augmentation draws and the endless phantom seeds depend on it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        from SwinX2SLib.training.augment import augment_sample, sample_params

        sample = self.source.load(index, self.epoch)
        coronal, sagittal, label = _resized(sample, self.shape)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            params = sample_params(rng, self.augment, self.shape)
            coronal, sagittal, label = augment_sample(coronal, sagittal, label, params)
        return {"coronal": coronal.float(), "sagittal": sagittal.float(), "label": label.long(),
                "index": torch.tensor(index)}


def _resized(sample: Sample, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch
    import torch.nn.functional as F

    coronal = torch.from_numpy(np.ascontiguousarray(sample.coronal, dtype=np.float32))
    sagittal = torch.from_numpy(np.ascontiguousarray(sample.sagittal, dtype=np.float32))
    label = torch.from_numpy(np.ascontiguousarray(sample.label).astype(np.int64))
    if tuple(label.shape) != shape:
        x, y, z = shape
        coronal = F.interpolate(coronal[None], size=(x, z), mode="bilinear", align_corners=False)[0]
        sagittal = F.interpolate(sagittal[None], size=(y, z), mode="bilinear", align_corners=False)[0]
        label = F.interpolate(label[None, None].float(), size=shape, mode="nearest")[0, 0].long()
    return coronal, sagittal, label


def case_split(root: str | Path, names: Sequence[str]) -> dict[str, list[str]] | None:
    """The ``train`` / ``val`` / ``test`` case lists of a CT folder's ``meta.csv``, as TotalSegmentator ships it.

    TotalSegmentator's ``meta.csv`` is ``;``-separated with an ``image_id`` and a ``split`` column (``train``,
    ``val``, ``test``); ``,`` works too. Only case folders present in ``names`` are listed.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` (sorted), or None without a ``meta.csv``.

    Raises:
        InputError: the file lacks those columns, or leaves no training case.
    """
    import csv

    path = Path(root) / "meta.csv"
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the case list ({exc})") from None
    rows = list(csv.DictReader(text.splitlines(), delimiter=";" if ";" in text.partition("\n")[0] else ","))
    if not rows or not {"image_id", "split"} <= set(rows[0]):
        raise InputError(path, "expected 'image_id' and 'split' columns (TotalSegmentator's meta.csv)")
    present = set(names)
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for row in rows:
        if row["image_id"] in present and row["split"] in split:
            split[row["split"]].append(row["image_id"])
    if not split["train"]:
        raise InputError(path, "no case of this folder is in the 'train' split")
    return {key: sorted(value) for key, value in split.items()}


def build_datasets(config: TrainConfig, cache_dir: str | Path) -> tuple[TrainingDataset, TrainingDataset | None]:
    """The training and validation datasets a configuration describes.

    Returns:
        ``(train, validation)``; validation is None when the source has no validation cases.
    """
    data, model = config.data, config.model
    shape, views = tuple(model.img_size), model.in_channels
    cache = SampleCache(data.cache_dir or cache_dir)
    if data.source == "phantom":
        endless = data.pool_size == 0
        count = data.pool_size or (config.optim.steps_per_epoch or 100) * config.optim.batch_size
        train_src = PhantomCases(data.phantom_seed, count, shape, views, data.preset, data.phantom_spacing_mm,
                                 None if endless else cache, endless=endless)
        val_src = PhantomCases(data.val_seed_start, data.val_count, shape, views, data.preset,
                               data.phantom_spacing_mm, cache)
    elif data.source == "published":
        train_src = PublishedCases(data.root, "training", data.subset_task, cache)
        val_src = PublishedCases(data.root, "validation", data.subset_task, cache)
    else:
        every = CTCases(data.root, data.label_convention, data.preset, shape, views, cache)
        split = case_split(data.root, every.names)
        if split is None:
            order = np.random.default_rng(config.schedule.seed).permutation(len(every))
            n_val = round(len(every) * data.val_fraction) if len(every) > 1 else 0
            val_names = [every.names[i] for i in sorted(order[:n_val])]
            train_names = [n for n in every.names if n not in set(val_names)]
        else:
            train_names, val_names = split["train"], split["val"]
        train_src = CTCases(data.root, data.label_convention, data.preset, shape, views, cache, train_names)
        val_src = CTCases(data.root, data.label_convention, data.preset, shape, views, cache, val_names)
    train = TrainingDataset(train_src, shape, config.augment, config.schedule.seed)
    validation = TrainingDataset(val_src, shape) if len(val_src) else None
    return train, validation
