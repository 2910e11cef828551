"""Training loss of Swin-X2S: per-view DiceCE plus the cross-view KL term (paper section 3.4).

As the published ``trainer.py`` computes it, for the coronal logits ``p`` and sagittal logits ``q``::

    total = 1/2 * [ DiceCE(p, y) + KL(softmax q || softmax p) ]  +  1/2 * [ DiceCE(q, y) + KL(softmax p || softmax q) ]

* ``DiceCE`` is MONAI's :class:`~monai.losses.DiceCELoss` with ``to_onehot_y=True, softmax=True`` and its defaults
  (background included, Dice and cross-entropy weighted 1 each, mean over batch and classes / voxels).
* ``KL(softmax b || softmax a)`` is ``torch.nn.KLDivLoss(reduction="mean")(log_softmax(a), softmax(b))``: the
  element-wise ``softmax(b) * (log softmax(b) - log softmax(a))`` averaged over **all** ``B * C * X * Y * Z``
  elements (not ``"batchmean"``), i.e. the per-voxel KL divergence divided by the number of classes C. Neither
  branch is detached, so the KL term trains both views towards each other.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch import nn

__all__ = ["LossTerms", "SwinX2SLoss"]


class LossTerms(NamedTuple):
    """The loss and the two quantities the published trainer logs (each averaged over the two views)."""

    total: torch.Tensor
    supervised: torch.Tensor
    mutual: torch.Tensor


class SwinX2SLoss(nn.Module):
    """DiceCE per view plus cross-view KL divergence, averaged over the two views.

    Args:
        kl_weight: factor on the KL term (1 in the paper / published code).
        **dice_ce_kwargs: extra :class:`monai.losses.DiceCELoss` arguments (``to_onehot_y`` and ``softmax`` are
            fixed to True).

    Examples::

        >>> loss = SwinX2SLoss()
        >>> p, q = torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 2, 2, 2)
        >>> round(float(loss(p, q, torch.zeros(1, 1, 2, 2, 2))), 4)  # ln 3 + (0.5 + 1 + 1) / 3, no KL
        1.9319
    """

    def __init__(self, kl_weight: float = 1.0, **dice_ce_kwargs: Any) -> None:
        super().__init__()
        self.kl_weight = kl_weight
        self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, **dice_ce_kwargs)

    def terms(self, p: torch.Tensor, q: torch.Tensor, label: torch.Tensor) -> LossTerms:
        """Compute the loss and its parts.

        Args:
            p: coronal-branch logits ``[B, C, X, Y, Z]``.
            q: sagittal-branch logits ``[B, C, X, Y, Z]``.
            label: integer labels ``[B, 1, X, Y, Z]`` or ``[B, X, Y, Z]``.

        Returns:
            :class:`LossTerms` (``total`` is differentiable).
        """
        if p.shape != q.shape:
            raise ValueError(f"the two views' logits differ in shape: {tuple(p.shape)} vs {tuple(q.shape)}")
        if label.ndim == p.ndim - 1:
            label = label.unsqueeze(1)
        if label.shape[0] != p.shape[0] or label.shape[2:] != p.shape[2:] or label.shape[1] != 1:
            raise ValueError(f"label {tuple(label.shape)} does not match logits {tuple(p.shape)}")
        supervised = [self.dice_ce(logits, label) for logits in (p, q)]
        mutual = [_kl(p, q), _kl(q, p)]
        total = sum((s + self.kl_weight * m) / 2 for s, m in zip(supervised, mutual, strict=True))
        return LossTerms(total, (supervised[0] + supervised[1]) / 2, (mutual[0] + mutual[1]) / 2)

    def forward(self, p: torch.Tensor, q: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The total loss (scalar); see :meth:`terms`."""
        return self.terms(p, q, label).total


def _kl(logits: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``KLDivLoss(reduction="mean")(log_softmax(logits), softmax(other))`` over the class axis 1.

    Written as a sum divided by the element count, which is what ``reduction="mean"`` computes (PyTorch warns that
    its ``"mean"`` may change meaning), with the target given in log space for accuracy.
    """
    log_input, log_target = F.log_softmax(logits, dim=1), F.log_softmax(other, dim=1)
    return F.kl_div(log_input, log_target, reduction="sum", log_target=True) / logits.numel()
