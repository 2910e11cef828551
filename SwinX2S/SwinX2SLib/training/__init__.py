"""Training and fine-tuning of Swin-X2S models.

Modules:

* :mod:`.config`: the typed configuration (every hyper-parameter), presets ``paper``, ``finetune``,
  ``default_model``, ``smoke``, YAML/JSON round trip.
* :mod:`.data`: published preprocessed data, CT + label cases (TotalSegmentator, CTPelvic1K, CTSpine1K, VerSe,
  RibSeg conventions) rendered to cached DRRs, seeded phantoms.
* :mod:`.augment`: zoom, rotation, translation, intensity and the 180-degree rotation, consistent across both
  images and the label.
* :mod:`.trainer`: the training loop (AdamW, warm-up + cosine, AMP, clipping, validation, checkpoints, resume,
  early stopping, clean stop), model export.
* :mod:`.logging`: JSON lines, CSV and PNG curves.
* :mod:`.distributed`: DistributedDataParallel under ``torchrun``.

The command line is ``swinx2s train`` (:mod:`SwinX2SLib.cli.train`). Only the configuration is imported here, so
``import SwinX2SLib.training`` stays free of torch::

    from SwinX2SLib.training import load_config
    from SwinX2SLib.training.trainer import Trainer
    result = Trainer(load_config("configs/default_model.yaml"), "runs/default_model").fit()
"""

from .config import PRESETS, TrainConfig, config_from_dict, load_config, save_config

__all__ = ["PRESETS", "TrainConfig", "config_from_dict", "load_config", "save_config"]
