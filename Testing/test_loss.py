"""The Swin-X2S loss: per-view DiceCE + cross-view KL, checked by hand on one-voxel tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from SwinX2SLib.loss import SMOOTH, SwinX2SLoss


def _one_voxel(probabilities: tuple[float, float]) -> torch.Tensor:
    """Logits ``[1, 2, 1, 1, 1]`` whose softmax is ``probabilities``."""
    return torch.tensor([math.log(p) for p in probabilities]).view(1, 2, 1, 1, 1)


def _dice_ce_by_hand(probabilities: tuple[float, float], label: int) -> float:
    """Soft Dice loss averaged over both classes (background included) + cross-entropy, for one voxel."""
    dice = []
    for c, prob in enumerate(probabilities):
        truth = float(c == label)
        dice.append(1 - (2 * prob * truth + SMOOTH) / (prob + truth + SMOOTH))
    return sum(dice) / 2 - math.log(probabilities[label])


def _kl_by_hand(target: tuple[float, float], prediction: tuple[float, float]) -> float:
    """KLDivLoss(reduction="mean"): the per-voxel KL(target || prediction) averaged over the 2 class elements."""
    return sum(t * math.log(t / p) for t, p in zip(target, prediction, strict=True)) / 2


def test_loss_matches_the_hand_computation() -> None:
    pp, pq = (0.5, 0.5), (0.75, 0.25)
    terms = SwinX2SLoss().terms(_one_voxel(pp), _one_voxel(pq), torch.zeros(1, 1, 1, 1, 1))
    supervised = (_dice_ce_by_hand(pp, 0), _dice_ce_by_hand(pq, 0))
    mutual = (_kl_by_hand(pq, pp), _kl_by_hand(pp, pq))  # coronal branch pulled towards sagittal and vice versa
    expected = 0.5 * (supervised[0] + mutual[0]) + 0.5 * (supervised[1] + mutual[1])
    # the numbers behind it: DiceCE 0.6667 + ln 2 and 0.5714 + ln 4/3; KL 0.0654 and 0.0719
    assert supervised[0] == pytest.approx(0.666656 + math.log(2), abs=1e-5)
    assert mutual == pytest.approx((0.065406, 0.071921), abs=1e-5)
    assert float(terms.total) == pytest.approx(expected, rel=1e-5)
    assert float(terms.supervised) == pytest.approx(sum(supervised) / 2, rel=1e-5)
    assert float(terms.mutual) == pytest.approx(sum(mutual) / 2, rel=1e-5)


def test_identical_views_have_no_kl_and_weight_zero_drops_it() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 3, 3)
    other = torch.randn(2, 4, 3, 3, 3)
    label = torch.randint(0, 4, (2, 3, 3, 3))  # without channel axis
    loss = SwinX2SLoss()
    same = loss.terms(logits, logits.clone(), label)
    assert float(same.mutual) == pytest.approx(0.0, abs=1e-7)
    monai_dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    assert torch.allclose(same.total, monai_dice_ce(logits, label.unsqueeze(1)))
    no_kl = SwinX2SLoss(kl_weight=0.0)(logits, other, label)
    assert torch.allclose(no_kl, loss.terms(logits, other, label).supervised)
    assert loss(logits, other, label) > no_kl


def test_gradient_reaches_both_views_through_both_terms() -> None:
    torch.manual_seed(0)
    p = torch.randn(1, 3, 2, 2, 2, requires_grad=True)
    q = torch.randn(1, 3, 2, 2, 2, requires_grad=True)
    label = torch.randint(0, 3, (1, 1, 2, 2, 2))
    SwinX2SLoss().terms(p, q, label).mutual.backward()  # the KL term alone: nothing is detached
    assert p.grad.abs().sum() > 0 and q.grad.abs().sum() > 0


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        SwinX2SLoss()(torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 2, 2, 3), torch.zeros(1, 1, 2, 2, 2))
    with pytest.raises(ValueError, match="does not match logits"):
        SwinX2SLoss()(torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 1, 2, 2, 3))


def _composed(p: torch.Tensor, q: torch.Tensor | None, label: torch.Tensor,
              kl_weight: float) -> tuple[torch.Tensor, ...]:
    """The loss as the published trainer composes it: MONAI DiceCELoss per view plus F.kl_div both ways."""
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    if q is None:
        supervised = dice_ce(p, label.unsqueeze(1))
        return supervised, supervised, torch.zeros(())

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # KLDivLoss(reduction="mean")(log_softmax a, softmax b)
        return F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction="sum") / a.numel()

    supervised = (dice_ce(p, label.unsqueeze(1)) + dice_ce(q, label.unsqueeze(1))) / 2
    mutual = (kl(p, q) + kl(q, p)) / 2
    return supervised + kl_weight * mutual, supervised, mutual


@pytest.mark.parametrize("two_views", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_closed_form_loss_and_gradients_equal_the_composed_monai_loss(two_views: bool, dtype: torch.dtype) -> None:
    """Values and gradients of every term, for a batch of 2, 7 classes (one absent from the labels), sharp logits."""
    torch.manual_seed(1)
    p = (4 * torch.randn(2, 7, 6, 5, 4, dtype=dtype)).requires_grad_()
    q = (4 * torch.randn(2, 7, 6, 5, 4, dtype=dtype)).requires_grad_() if two_views else None
    label = torch.randint(0, 6, (2, 6, 5, 4))
    inputs = (p, q) if two_views else (p,)
    tolerance = {"rtol": 1e-10, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 1e-8}
    ours = SwinX2SLoss(kl_weight=0.7).terms(p, q, label)
    reference = _composed(p, q, label, 0.7)
    for term, (mine, theirs) in enumerate(zip(ours, reference, strict=True)):
        if not two_views and term == 2:
            assert float(mine) == 0.0
            continue
        torch.testing.assert_close(mine.double(), theirs.double(), **tolerance)
        mine_grads = torch.autograd.grad(mine, inputs, retain_graph=True)
        their_grads = torch.autograd.grad(theirs, inputs, retain_graph=True)
        for a, b in zip(mine_grads, their_grads, strict=True):
            torch.testing.assert_close(a, b, **tolerance)


def test_labels_outside_the_classes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"label values must lie in \[0, 3\)"):
        SwinX2SLoss()(torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 2, 2, 2), torch.full((1, 1, 2, 2, 2), 3))
