"""2-D Swin Transformer encoder shared by the coronal and sagittal views.

Built on MONAI's :class:`monai.networks.nets.swin_unetr.SwinTransformer` (``spatial_dims=2``): 2x2 patch embedding
with LayerNorm, four stages of (shifted-)window attention each ending with a patch merging, relative position bias,
qkv bias, stochastic depth, zero padding where a feature size is not a multiple of the window. Two things are added
to reproduce the published Swin-X2S encoder:

* a learnable LayerNorm on each of the five hidden states (MONAI only offers a parameter-free normalisation);
* the published window rule: a stage whose feature map satisfies ``min(feature) <= min(window)`` uses one window
  covering the whole feature map (window = feature size, possibly non-square) without shift, and its relative
  position bias table is sized for that window. MONAI shrinks each axis separately instead, so those stages get
  their attention modules rebuilt here. The rule depends on the feature size, so the encoder is built for one
  image size (the 128 x 160 images of the paper never trigger it: the smallest feature map is 8 x 10).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.swin_unetr import BasicLayer, SwinTransformer, WindowAttention
from timm.layers import LayerNorm2d
from torch import nn

__all__ = ["SwinEncoder2D"]


class SwinEncoder2D(nn.Module):
    """Hierarchical 2-D Swin encoder returning six hidden states.

    Args:
        img_size: image size ``(H, W)`` the encoder is built for (both multiples of 32).
        in_channels: image channels (X-ray views per side).
        feature_size: embedding dimension F of the first stage.
        depths: number of Swin blocks in each of the four stages.
        num_heads: attention heads in each of the four stages.
        window_size: attention window ``(h, w)``.
        mlp_ratio: MLP hidden size / embedding size.
        drop_rate: dropout after the patch embedding, in the MLPs and after attention projections.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth rate, increased linearly over all blocks up to this value.
        use_checkpoint: gradient checkpointing of every Swin block (saves memory in training).

    Examples::

        >>> enc = SwinEncoder2D((32, 64), in_channels=1, feature_size=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
        >>> [tuple(h.shape) for h in enc.forward_intermediates(torch.zeros(1, 1, 32, 64))]
        [(1, 12, 16, 32), (1, 24, 8, 16), (1, 48, 4, 8), (1, 96, 2, 4), (1, 192, 1, 2)]
    """

    def __init__(
        self,
        img_size: Sequence[int],
        in_channels: int,
        feature_size: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        window_size: Sequence[int] = (7, 7),
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError(f"depths and num_heads need one entry per stage (4); got {depths} and {num_heads}.")
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.swin = SwinTransformer(
            in_chans=in_channels,
            embed_dim=feature_size,
            window_size=tuple(window_size),
            patch_size=(2, 2),
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            norm_layer=nn.LayerNorm,
            patch_norm=True,
            use_checkpoint=use_checkpoint,
            spatial_dims=2,
            downsample="merging",
            use_flash_attention=True,
        )
        channels = [feature_size * 2**i for i in range(5)]
        self.norms = nn.ModuleList([LayerNorm2d(c, eps=1e-5) for c in channels])
        self.feature_info = [
            {"num_chs": c, "reduction": 2 ** (i + 1), "module": f"norms.{i}"} for i, c in enumerate(channels)
        ]
        for stage, layer in enumerate(self.stages):
            feature = (self.img_size[0] // 2 ** (stage + 1), self.img_size[1] // 2 ** (stage + 1))
            if min(feature) <= min(window_size):
                _use_single_window(layer, feature)

    @property
    def stages(self) -> tuple[BasicLayer, BasicLayer, BasicLayer, BasicLayer]:
        """The four MONAI Swin stages (blocks followed by patch merging)."""
        return (self.swin.layers1[0], self.swin.layers2[0], self.swin.layers3[0], self.swin.layers4[0])

    def forward_intermediates(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encode an image into its normalised hidden states.

        Args:
            image: ``[B, in_channels, H, W]``.

        Returns:
            Five channel-first maps: ``[B, F * 2**i, H / 2**(i+1), W / 2**(i+1)]`` for ``i = 0..4`` (the patch
            embedding, then the output of each stage after its patch merging).
        """
        hidden = self.swin(image, normalize=False)
        return [norm(h) for norm, h in zip(self.norms, hidden, strict=True)]

    forward = forward_intermediates


def _use_single_window(layer: BasicLayer, feature: tuple[int, int]) -> None:
    """Give every block of ``layer`` one unshifted window of size ``feature`` with a matching bias table."""
    layer.window_size = feature
    layer.shift_size = (0, 0)
    for block in layer.blocks:
        old = block.attn
        block.window_size = feature
        block.shift_size = (0, 0)
        block.attn = WindowAttention(
            block.dim,
            num_heads=block.num_heads,
            window_size=feature,
            qkv_bias=old.qkv.bias is not None,
            attn_drop=old.attn_drop.p,
            proj_drop=old.proj_drop.p,
            use_flash_attention=old.use_flash_attention,
        )
