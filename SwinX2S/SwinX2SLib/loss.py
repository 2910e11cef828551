"""Training loss of Swin-X2S: per-view DiceCE plus the cross-view KL term (paper section 3.4).

As the published ``trainer.py`` computes it, for the coronal logits ``p`` and sagittal logits ``q``::

    total = 1/2 * [ DiceCE(p, y) + KL(softmax q || softmax p) ]  +  1/2 * [ DiceCE(q, y) + KL(softmax p || softmax q) ]

* ``DiceCE`` is MONAI's :class:`~monai.losses.DiceCELoss` with ``to_onehot_y=True, softmax=True`` and its defaults
  (background included, Dice and cross-entropy weighted 1 each, mean over batch and classes / voxels, smoothing
  ``1e-5`` in numerator and denominator).
* ``KL(softmax b || softmax a)`` is ``torch.nn.KLDivLoss(reduction="mean")(log_softmax(a), softmax(b))``: the
  element-wise ``softmax(b) * (log softmax(b) - log softmax(a))`` averaged over **all** ``B * C * X * Y * Z``
  elements (not ``"batchmean"``), i.e. the per-voxel KL divergence divided by the number of classes C. Neither
  branch is detached, so the KL term trains both views towards each other.

The loss is computed by one autograd function with its gradient written out (:class:`_DiceCEKL`), not by composing
MONAI's loss with ``F.kl_div``: the composed version keeps about twenty ``[B, C, X, Y, Z]`` intermediates for
autograd and took 45 % of a CPU training step of the built-in model (1.2 s of 2.8 s, profiler); the closed form
makes a handful of passes over the logits. ``Testing/test_loss.py`` checks values and gradients against MONAI's
``DiceCELoss`` and ``F.kl_div`` in float64.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

__all__ = ["SMOOTH", "LossTerms", "SwinX2SLoss"]

SMOOTH = 1e-5
"""MONAI ``DiceLoss`` ``smooth_nr`` = ``smooth_dr`` default."""


class LossTerms(NamedTuple):
    """The loss and the two quantities the published trainer logs (each averaged over the two views)."""

    total: torch.Tensor
    supervised: torch.Tensor
    mutual: torch.Tensor


class SwinX2SLoss(nn.Module):
    """DiceCE per view plus cross-view KL divergence, averaged over the two views.

    Args:
        kl_weight: factor on the KL term (1 in the paper / published code).

    Examples::

        >>> loss = SwinX2SLoss()
        >>> p, q = torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 2, 2, 2)
        >>> round(float(loss(p, q, torch.zeros(1, 1, 2, 2, 2))), 4)  # ln 3 + (0.5 + 1 + 1) / 3, no KL
        1.9319
    """

    def __init__(self, kl_weight: float = 1.0) -> None:
        super().__init__()
        self.kl_weight = kl_weight

    def terms(self, p: torch.Tensor, q: torch.Tensor | None, label: torch.Tensor) -> LossTerms:
        """Compute the loss and its parts.

        Args:
            p: coronal-branch logits ``[B, C, X, Y, Z]`` (or the only logits of a single-output model).
            q: sagittal-branch logits ``[B, C, X, Y, Z]``, or None for a model with one output (DiceCE alone).
            label: integer labels ``[B, 1, X, Y, Z]`` or ``[B, X, Y, Z]`` in ``[0, C)``.

        Returns:
            :class:`LossTerms` (all three differentiable; computed in float32 or, for float64 logits, float64).
        """
        if q is not None and p.shape != q.shape:
            raise ValueError(f"the two views' logits differ in shape: {tuple(p.shape)} vs {tuple(q.shape)}")
        if label.ndim == p.ndim - 1:
            label = label.unsqueeze(1)
        if label.shape[0] != p.shape[0] or label.shape[2:] != p.shape[2:] or label.shape[1] != 1:
            raise ValueError(f"label {tuple(label.shape)} does not match logits {tuple(p.shape)}")
        dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
        flat = label.reshape(label.shape[0], -1).long()
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= p.shape[1]):
            raise ValueError(f"label values must lie in [0, {p.shape[1]}); found {int(flat.min())}..{int(flat.max())}")
        views = [x.reshape(x.shape[0], x.shape[1], -1).to(dtype) for x in (p, q) if x is not None]
        supervised, mutual = _DiceCEKL.apply(flat, *views)
        return LossTerms(supervised + self.kl_weight * mutual, supervised, mutual)

    def forward(self, p: torch.Tensor, q: torch.Tensor | None, label: torch.Tensor) -> torch.Tensor:
        """The total loss (scalar); see :meth:`terms`."""
        return self.terms(p, q, label).total


class _View(NamedTuple):
    """What one view's forward pass keeps for its gradient (logits ``[B, C, N]``, labels ``[B, N]``)."""

    prob: torch.Tensor  # softmax [B, C, N]
    at_label: torch.Tensor  # softmax of the true class [B, N]
    alpha: torch.Tensor  # d(Dice)/d(prob) away from the true class, per class [B, C]
    beta: torch.Tensor  # the extra d(Dice)/d(prob) at the true class, per class [B, C]


def _dice_ce(logits: torch.Tensor, label: torch.Tensor, label_counts: torch.Tensor) -> tuple[torch.Tensor, _View,
                                                                                              torch.Tensor]:
    """MONAI DiceCE of one view: value, saved state, and the log-softmax (for the KL term)."""
    batch, classes, _ = logits.shape
    log_prob = torch.log_softmax(logits, dim=1)
    prob = log_prob.exp()
    index = label.unsqueeze(1)
    at_label = prob.gather(1, index).squeeze(1)
    cross_entropy = -log_prob.gather(1, index).mean()
    intersection = torch.zeros(batch, classes, dtype=prob.dtype).scatter_add_(1, label, at_label)
    denominator = prob.sum(dim=2) + label_counts + SMOOTH
    numerator = 2 * intersection + SMOOTH
    dice = (1 - numerator / denominator).mean()
    scale = 1.0 / (batch * classes)
    view = _View(prob, at_label, scale * numerator / denominator**2, -2 * scale / denominator)
    return dice + cross_entropy, view, log_prob


def _dice_ce_grad(view: _View, label: torch.Tensor, scale: float, row_extra: torch.Tensor | float = 0.0,
                  class_extra: tuple[torch.Tensor, float] | None = None) -> torch.Tensor:
    """``scale * d DiceCE / d logits`` ``[B, C, N]`` of one view, plus the KL term's gradient when given.

    With ``g = dLoss/dprob`` (``alpha`` everywhere plus ``beta`` at the true class, and the cross-entropy's
    ``-1 / (B N prob)`` there), the softmax Jacobian gives ``prob * (g - sum_c prob_c g_c)``. A gradient of the form
    ``prob * (row_extra + c * t) - ...`` (the KL term; ``class_extra = (t, c)``) shares the same passes.
    """
    batch, _, voxels = view.prob.shape
    mean_ce = 1.0 / (batch * voxels)
    beta_at_label = view.beta.gather(1, label)
    row = torch.bmm(view.alpha.unsqueeze(1), view.prob).squeeze(1) + view.at_label * beta_at_label
    grad = (scale * view.alpha).unsqueeze(2) + ((mean_ce - row) * scale + row_extra).unsqueeze(1)
    if class_extra is not None:
        grad.add_(class_extra[0], alpha=class_extra[1])
    grad.mul_(view.prob)
    return grad.scatter_add_(1, label.unsqueeze(1), ((view.at_label * beta_at_label - mean_ce) * scale).unsqueeze(1))


class _DiceCEKL(torch.autograd.Function):
    """``(supervised, mutual)`` of one or two views with the closed-form gradient (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, label: torch.Tensor, *views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, classes, _ = views[0].shape
        counts = torch.zeros(batch, classes, dtype=views[0].dtype).scatter_add_(
            1, label, torch.ones_like(label, dtype=views[0].dtype))
        results = [_dice_ce(x, label, counts) for x in views]
        supervised = sum(r[0] for r in results) / len(views)
        mutual = views[0].new_zeros(())
        saved: list[torch.Tensor] = []
        if len(views) == 2:
            # per voxel KL(p||q) = sum_c p (log p - log q), KL(q||p) = -sum_c q (log p - log q); "mean" divides the
            # sum over voxels by B * C * N, and the two directions are averaged
            difference = results[0][2].sub_(results[1][2])
            kl_pq = torch.linalg.vecdot(results[0][1].prob, difference, dim=1)
            kl_qp = -torch.linalg.vecdot(results[1][1].prob, difference, dim=1)
            mutual = (kl_pq.sum() + kl_qp.sum()) / (2 * difference.numel())
            saved = [difference, kl_pq, kl_qp]
        ctx.views = [r[1] for r in results]
        ctx.save_for_backward(label, *saved)
        return supervised, mutual

    @staticmethod
    def backward(ctx: Any, grad_supervised: torch.Tensor, grad_mutual: torch.Tensor) -> tuple[torch.Tensor | None,
                                                                                                 ...]:
        label, *saved = ctx.saved_tensors
        views: list[_View] = ctx.views
        scale = float(grad_supervised) / len(views)
        if not saved:
            return None, _dice_ce_grad(views[0], label, scale)
        # d mutual/dp = [p - q + p (log p - log q - KL(p||q))] / (2 B C N), and symmetrically for q
        difference, kl_pq, kl_qp = saved
        kl_scale = float(grad_mutual) / (2 * difference.numel())
        p, q = views
        grad_p = _dice_ce_grad(p, label, scale, (1 - kl_pq) * kl_scale, (difference, kl_scale))
        grad_p.add_(q.prob, alpha=-kl_scale)
        grad_q = _dice_ce_grad(q, label, scale, (1 - kl_qp) * kl_scale, (difference, -kl_scale))
        grad_q.add_(p.prob, alpha=-kl_scale)
        return None, grad_p, grad_q
