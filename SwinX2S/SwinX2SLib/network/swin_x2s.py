"""The Swin-X2S network: two X-ray views in, two 3-D logit volumes out (Liu et al., "Swin-X2S").

Data flow for each view (all weights shared by the two views)::

    image [B, N, H, Z] --SwinEncoder2D--> 5 hidden states [B, F*2**i, H/2**(i+1), Z/2**(i+1)]
    raw image + hidden states --DimensionExpansion--> 6 volumes [B, C_l, X/2**l, Y/2**l, Z/2**l], l = 0..5
    each volume --residual_block--> skip features (channels F, F, 2F, 4F, 8F, 16F)
    bottlenecks of both views --CrossViewAttention--> replaced bottlenecks
    bottleneck + skips --5 up_blocks--> [B, F, X, Y, Z] --output_block--> logits [B, classes, X, Y, Z]

Coronal images (``[B, N, X, Z]``, projected along Y) gain axis Y; sagittal images (``[B, N, Y, Z]``, projected
along X) gain axis X (see ``docs/architecture.md``). The prediction is ``argmax(p + q)`` over classes; use
:func:`SwinX2SLib.network.predict_labels` for a memory-lean inference path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..conventions import VIEWS
from .biplanar import check_view_shapes
from .blocks import output_block, residual_block, up_block
from .cross_view_attention import CrossViewAttention
from .dimension_expansion import DimensionExpansion
from .registry import VariantConfig
from .swin_encoder import SwinEncoder2D

__all__ = ["SwinX2S", "check_img_size"]

_LEVELS = 6
_REDUCTION = 2 ** (_LEVELS - 1)


class SwinX2S(nn.Module):
    """Swin-X2S: shared 2-D Swin encoder, dimension expansion, 3-D residual U-Net decoder, cross-view attention.

    Args:
        img_size: volume size ``(X, Y, Z)``; X = Y, all multiples of 32. The coronal input is ``(X, Z)``, the
            sagittal input ``(Y, Z)``.
        in_channels: X-ray images per view (N).
        num_classes: output classes (55 for the full catalogue, background included).
        feature_size: embedding dimension F of the Swin encoder.
        depths: Swin blocks per stage (4 stages).
        num_heads: attention heads per stage; the cross-view attention uses the last value.
        window_size: Swin attention window.
        fusion_depth: number of cross-view attention layers.
        drop_rate: dropout rate (Swin MLPs/projections, cross-view token dropout).
        attn_drop_rate: attention-weight dropout rate (Swin and cross-view attention).
        drop_path_rate: stochastic depth rate of the Swin encoder (the published training used 0.2).
        use_checkpoint: gradient checkpointing inside the Swin encoder.

    Attributes:
        config: the architecture as a :class:`~SwinX2SLib.network.VariantConfig` (what model directories store).
        img_size, in_channels, num_classes: as given.

    Examples::

        >>> net = SwinX2S((32, 32, 64), num_classes=5, feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
        >>> p, q = net(torch.rand(1, 1, 32, 64), torch.rand(1, 1, 32, 64))
        >>> tuple(p.shape), tuple(q.shape)
        ((1, 5, 32, 32, 64), (1, 5, 32, 32, 64))
    """

    def __init__(
        self,
        img_size: Sequence[int] = (128, 128, 160),
        in_channels: int = 1,
        num_classes: int = 55,
        feature_size: int = 48,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: Sequence[int] = (7, 7),
        fusion_depth: int = 1,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.img_size = check_img_size(img_size)
        self.config = VariantConfig(feature_size, tuple(depths), tuple(num_heads), tuple(window_size), fusion_depth)
        self.in_channels = in_channels
        self.num_classes = num_classes
        size_x, size_y, size_z = self.img_size
        f = feature_size
        self.encoder = SwinEncoder2D(
            (size_x, size_z),
            in_channels=in_channels,
            feature_size=f,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            use_checkpoint=use_checkpoint,
        )
        self.dimension_expansion = nn.ModuleList([DimensionExpansion(size_x // 2**level) for level in range(_LEVELS)])
        level_channels = [in_channels, *(f * 2**i for i in range(_LEVELS - 1))]
        skip_channels = [f, *level_channels[1:]]
        self.encoder_blocks = nn.ModuleList(
            [residual_block(c_in, c_out) for c_in, c_out in zip(level_channels, skip_channels, strict=True)]
        )
        self.cross_view_attention = CrossViewAttention(
            hidden_size=skip_channels[-1],
            num_heads=num_heads[-1],
            grid_size=(size_x // _REDUCTION, size_y // _REDUCTION, size_z // _REDUCTION),
            depth=fusion_depth,
            dropout_rate=drop_rate,
            attn_dropout_rate=attn_drop_rate,
        )
        self.decoder_blocks = nn.ModuleList(
            [up_block(skip_channels[level], skip_channels[level - 1]) for level in range(_LEVELS - 1, 0, -1)]
        )
        self.head = output_block(f, num_classes)

    def forward(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct from two views.

        Args:
            coronal: coronal (AP) images ``[B, N, X, Z]``, float in [0, 1].
            sagittal: sagittal (lateral) images ``[B, N, Y, Z]``, float in [0, 1].

        Returns:
            ``(p, q)``: logits ``[B, num_classes, X, Y, Z]`` of the coronal and of the sagittal branch.
        """
        halves = self.decode_deep(self.encode(coronal, sagittal)).chunk(2)
        # the full-resolution stage runs one view at a time: only one view's full-size skip is alive at once
        p, q = (
            self.head(self.decoder_blocks[-1](half, self.full_resolution_skip(image, view)))
            for half, image, view in zip(halves, (coronal, sagittal), VIEWS, strict=True)
        )
        return p, q

    def encode(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> list[torch.Tensor]:
        """Encode both views down to the cross-attended bottleneck.

        The two views go through the shared weights as one batch (coronal first): the same arithmetic as two
        passes, with larger and faster convolutions.

        Returns:
            The skip volumes of levels 1..5, ``[2B, F * 2**(l-1), X / 2**l, Y / 2**l, Z / 2**l]`` (coronal batch
            then sagittal batch; level 5 is the cross-attended bottleneck). Level 0 comes from
            :meth:`full_resolution_skip`.
        """
        self.check_views(coronal, sagittal)
        hidden = self.encoder(torch.cat((coronal, sagittal)))
        features = [
            block(self._expand(expand, h))
            for h, expand, block in zip(hidden, self.dimension_expansion[1:], self.encoder_blocks[1:], strict=True)
        ]
        features[-1] = torch.cat(self.cross_view_attention(*features[-1].chunk(2)))
        return features

    def decode_deep(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Up-blocks from the bottleneck to level 1; consumes ``features`` (from :meth:`encode`).

        Returns:
            ``[2B, F, X / 2, Y / 2, Z / 2]`` (coronal batch, then sagittal), input of the last up-block together
            with :meth:`full_resolution_skip`.
        """
        x = features.pop()
        for block in self.decoder_blocks[:-1]:
            x = block(x, features.pop())
        return x

    def full_resolution_skip(self, image: torch.Tensor, view: str) -> torch.Tensor:
        """Level-0 skip of one view: the expanded raw image through the first residual block, ``[B, F, X, Y, Z]``."""
        return self.encoder_blocks[0](self.dimension_expansion[0](image, view))

    @staticmethod
    def _expand(expand: DimensionExpansion, stacked: torch.Tensor) -> torch.Tensor:
        """Dimension expansion of a coronal-then-sagittal batch ``[2B, C, H, W]`` -> ``[2B, C, X, Y, Z]``."""
        coronal, sagittal = stacked.chunk(2)
        return torch.cat((expand(coronal, "coronal"), expand(sagittal, "sagittal")))

    def check_views(self, coronal: torch.Tensor, sagittal: torch.Tensor) -> None:
        """Raise ValueError unless the views are ``[B, N, X, Z]`` and ``[B, N, Y, Z]`` for this model's size."""
        check_view_shapes(self.img_size, self.in_channels, coronal, sagittal)


def check_img_size(img_size: Sequence[int]) -> tuple[int, int, int]:
    """Validate a model volume size ``(X, Y, Z)``: positive multiples of 32, X = Y, not all three equal to 32."""
    size = tuple(int(s) for s in img_size)
    if len(size) != 3:
        raise ValueError(f"img_size must be (X, Y, Z), got {img_size}.")
    wrong = [f"{axis}={s}" for axis, s in zip("XYZ", size, strict=True) if s <= 0 or s % _REDUCTION]
    if wrong:
        raise ValueError(f"img_size {size}: {', '.join(wrong)} must be a positive multiple of {_REDUCTION}.")
    if size[0] != size[1]:
        raise ValueError(f"img_size {size}: X and Y must be equal (both views share the dimension expansion).")
    if size[0] * size[1] * size[2] == _REDUCTION**3:
        raise ValueError(
            f"img_size {size}: at least one axis must exceed 32 (instance norm needs a bottleneck > 1 voxel)."
        )
    return size
