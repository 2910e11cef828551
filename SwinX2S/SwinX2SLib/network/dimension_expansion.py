"""Dimension expansion: lift a 2-D view feature map to a 3-D volume feature map (paper section 3.2).

A 1x1x1 Conv3d from one channel to ``length`` channels turns every 2-D feature value ``v`` into ``length`` values
``w_k * v + b_k`` along the axis the view integrated over; it starts as a plain repeat (weights 1, biases 0). The
same weights serve both views; only the position of the new axis differs (``conventions.PROJECTION_AXIS``, the
axis the view integrated over; nothing here decides it):

* coronal features ``[B, C, X, Z]`` gain volume axis Y -> ``[B, C, X, Y, Z]``;
* sagittal features ``[B, C, Y, Z]`` gain volume axis X -> ``[B, C, X, Y, Z]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..conventions import PROJECTION_AXIS, VIEWS

__all__ = ["DimensionExpansion"]


class DimensionExpansion(nn.Module):
    """Expand ``[B, C, H, W]`` view features along the missing volume axis of length ``length``.

    Args:
        length: size of the new axis at this level (the volume's X = Y size divided by the level's reduction).

    Examples::

        >>> expand = DimensionExpansion(4)
        >>> tuple(expand(torch.ones(2, 8, 4, 6), "coronal").shape)
        (2, 8, 4, 4, 6)
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length
        self.conv = nn.Conv3d(1, length, kernel_size=1)
        nn.init.ones_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, features: torch.Tensor, view: str) -> torch.Tensor:
        """Expand one view's features.

        Args:
            features: ``[B, C, X, Z]`` for ``view="coronal"``, ``[B, C, Y, Z]`` for ``view="sagittal"``.
            view: ``"coronal"`` or ``"sagittal"``.

        Returns:
            ``[B, C, X, Y, Z]`` (a permuted view of the convolution output).
        """
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}.")
        expanded = self.conv(features.unsqueeze(1))  # [B, length, C, H, W]
        return expanded.movedim(1, 2 + PROJECTION_AXIS[view])  # the new axis where the view projected
