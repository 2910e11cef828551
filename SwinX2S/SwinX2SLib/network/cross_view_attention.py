"""Cross-view attention at the bottleneck (paper section 3.3, "TransFusion" in the published code).

Both views' bottleneck volumes ``[B, D, x, y, z]`` are embedded by one shared 1x1x1 convolution, flattened to
``x*y*z`` tokens and given one shared learned position embedding. Each layer applies a shared pre-LayerNorm and
then multi-head attention from the coronal tokens (queries) to the sagittal tokens (keys/values) and vice versa,
with the same Q/K/V/output weights (MONAI :class:`~monai.networks.blocks.CrossAttentionBlock`). As in the published
code there is no residual connection and no MLP: the attention outputs replace the tokens. A final LayerNorm
follows, and the tokens are folded back into volumes that replace both bottleneck features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import CrossAttentionBlock
from torch import nn

__all__ = ["CrossViewAttention"]

_EPS = 1e-6


class CrossViewAttentionLayer(nn.Module):
    """Shared pre-LayerNorm + bidirectional cross attention with shared weights.

    Args:
        hidden_size: token size D.
        num_heads: attention heads (D must be divisible by it).
        dropout_rate: dropout on attention weights and on the output projection.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, eps=_EPS)
        self.attention = CrossAttentionBlock(hidden_size, num_heads, dropout_rate=dropout_rate, qkv_bias=True)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([B, T, D], [B, T, D])`` -> ``([B, T, D], [B, T, D])``: each view attends to the other."""
        coronal, sagittal = self.norm(coronal), self.norm(sagittal)
        return self.attention(coronal, context=sagittal), self.attention(sagittal, context=coronal)


class CrossViewAttention(nn.Module):
    """Exchange information between the two views' bottleneck volumes.

    Args:
        hidden_size: channels D of the bottleneck (16 F).
        num_heads: attention heads.
        grid_size: bottleneck volume size ``(x, y, z)`` (the model input size / 32); fixes the position embedding.
        depth: number of cross-attention layers.
        dropout_rate: dropout after adding the position embedding.
        attn_dropout_rate: dropout inside the attention layers.

    Examples::

        >>> cva = CrossViewAttention(hidden_size=16, num_heads=2, grid_size=(1, 1, 2))
        >>> [tuple(t.shape) for t in cva(torch.rand(1, 16, 1, 1, 2), torch.rand(1, 16, 1, 1, 2))]
        [(1, 16, 1, 1, 2), (1, 16, 1, 1, 2)]
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        grid_size: Sequence[int],
        depth: int = 1,
        dropout_rate: float = 0.0,
        attn_dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.grid_size = tuple(int(s) for s in grid_size)
        num_tokens = self.grid_size[0] * self.grid_size[1] * self.grid_size[2]
        self.embedding = nn.Conv3d(hidden_size, hidden_size, kernel_size=1)
        self.position_embedding = nn.Parameter(torch.zeros(1, num_tokens, hidden_size))
        self.dropout = nn.Dropout(dropout_rate)
        self.layers = nn.ModuleList(
            [CrossViewAttentionLayer(hidden_size, num_heads, attn_dropout_rate) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(hidden_size, eps=_EPS)

    def _tokens(self, volume: torch.Tensor) -> torch.Tensor:
        """``[B, D, x, y, z]`` -> ``[B, x*y*z, D]`` with position embedding."""
        if tuple(volume.shape[2:]) != self.grid_size:
            raise ValueError(
                f"bottleneck size {tuple(volume.shape[2:])} does not match the size {self.grid_size} this model was "
                "built for; build the model with the input size you feed it."
            )
        return self.dropout(self.embedding(volume).flatten(2).transpose(1, 2) + self.position_embedding)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend across views.

        Args:
            coronal: coronal-branch bottleneck ``[B, D, x, y, z]``.
            sagittal: sagittal-branch bottleneck ``[B, D, x, y, z]``.

        Returns:
            The replacement bottlenecks ``([B, D, x, y, z], [B, D, x, y, z])``.
        """
        shape = coronal.shape
        a, b = self._tokens(coronal), self._tokens(sagittal)
        for layer in self.layers:
            a, b = layer(a, b)
        return tuple(self.norm(t).transpose(1, 2).reshape(shape) for t in (a, b))
