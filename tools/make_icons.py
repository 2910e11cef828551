#!/usr/bin/env python3
"""Draw the extension and module icons (128 x 128 RGBA PNG).

- ``Resources/Icons/SwinX2S.png`` (extension icon, Extensions Manager) and
  ``SwinX2S/Resources/Icons/SwinX2S.png`` (module icon): an AP and a lateral X-ray panel and, in front of them,
  the reconstructed 3-D spine with its vertebrae coloured level by level.
- ``SwinX2STrain/Resources/Icons/SwinX2STrain.png``: the spine over a falling loss curve.

Everything is drawn with Pillow at 4x and downsampled, so the icons are anti-aliased and reproducible.

Usage::

    python tools/make_icons.py
"""

from __future__ import annotations

import colorsys
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
SIZE = 128
SCALE = 4
_S = SIZE * SCALE

BACKGROUND = (22, 34, 52, 255)
PANEL = (8, 10, 14, 255)
PANEL_EDGE = (120, 150, 190, 255)


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGBA", (_S, _S), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, _S - 1, _S - 1), radius=22 * SCALE, fill=BACKGROUND)
    return image, draw


def _xray_panel(image: Image.Image, box: tuple[int, int, int, int], lateral: bool) -> None:
    """A radiograph: dark panel, blurred bright spine column (and pelvis on the AP view)."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    panel = Image.new("L", (width, height), 10)
    draw = ImageDraw.Draw(panel)
    centre = width * (0.62 if lateral else 0.5)
    for level in range(9):
        top = height * (0.08 + level * 0.085)
        half = width * (0.10 + 0.012 * level)
        draw.rounded_rectangle((centre - half, top, centre + half, top + height * 0.06), radius=6, fill=200)
    if lateral:
        draw.ellipse((width * 0.18, height * 0.72, width * 0.62, height * 0.98), fill=120)
    else:
        draw.ellipse((width * 0.08, height * 0.78, width * 0.46, height * 1.05), fill=150)
        draw.ellipse((width * 0.54, height * 0.78, width * 0.92, height * 1.05), fill=150)
    panel = panel.filter(ImageFilter.GaussianBlur(3 * SCALE / 2))
    rgba = Image.merge("RGBA", (panel, panel, panel.point(lambda v: min(255, v + 12)), Image.new("L", panel.size, 255)))
    image.paste(rgba, (x0, y0))
    ImageDraw.Draw(image).rectangle(box, outline=PANEL_EDGE, width=2 * SCALE)


def _spine(draw: ImageDraw.ImageDraw, centre_x: float, top: float, bottom: float, width: float) -> None:
    """A 3-D looking spine: shaded vertebral bodies coloured from cervical (red) to lumbar (blue)."""
    levels = 11
    step = (bottom - top) / levels
    for level in range(levels):
        hue = 0.02 + 0.62 * level / (levels - 1)
        red, green, blue = (round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.75, 0.95))
        dark = (red // 2, green // 2, blue // 2, 255)
        half = width * (0.30 + 0.45 * level / (levels - 1))
        offset = width * 0.18 * ((level - levels / 2) / levels) ** 2 * 4
        y = top + level * step
        x = centre_x + offset
        body = (x - half, y, x + half, y + step * 0.78)
        draw.rounded_rectangle(body, radius=step * 0.3, fill=dark)
        draw.rounded_rectangle((body[0], body[1], body[2] - half * 0.35, body[3] - step * 0.18), radius=step * 0.3,
                               fill=(red, green, blue, 255))
        draw.polygon([(x + half * 0.6, y + step * 0.2), (x + half * 1.45, y + step * 0.55),
                      (x + half * 0.6, y + step * 0.65)], fill=dark)


def spine_icon() -> Image.Image:
    """The SwinX2S icon: two X-ray panels and the reconstructed spine."""
    image, draw = _canvas()
    _xray_panel(image, (8 * SCALE, 10 * SCALE, 56 * SCALE, 76 * SCALE), lateral=False)
    _xray_panel(image, (24 * SCALE, 26 * SCALE, 72 * SCALE, 92 * SCALE), lateral=True)
    draw = ImageDraw.Draw(image)
    draw.polygon([(70 * SCALE, 58 * SCALE), (84 * SCALE, 66 * SCALE), (70 * SCALE, 74 * SCALE)],
                 fill=(250, 200, 60, 255))
    _spine(draw, centre_x=103 * SCALE, top=14 * SCALE, bottom=116 * SCALE, width=20 * SCALE)
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def train_icon() -> Image.Image:
    """The SwinX2STrain icon: the spine over a falling loss curve."""
    image, draw = _canvas()
    axis = (205, 215, 230, 255)
    draw.line([(14 * SCALE, 12 * SCALE), (14 * SCALE, 114 * SCALE), (116 * SCALE, 114 * SCALE)], fill=axis,
              width=3 * SCALE)
    points = [((16 + 96 * t / 40) * SCALE, (108 - 86 * (1 - 2.718 ** (-t / 7)) + 1.5 * ((t * 7) % 3 - 1)) * SCALE)
              for t in range(41)]
    draw.line([(x, 120 * SCALE - y + 10 * SCALE) for x, y in points], fill=(250, 200, 60, 255), width=4 * SCALE,
              joint="curve")
    _spine(draw, centre_x=76 * SCALE, top=14 * SCALE, bottom=104 * SCALE, width=18 * SCALE)
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main() -> int:
    icons = {
        ROOT / "Resources" / "Icons" / "SwinX2S.png": spine_icon,
        ROOT / "SwinX2S" / "Resources" / "Icons" / "SwinX2S.png": spine_icon,
        ROOT / "SwinX2STrain" / "Resources" / "Icons" / "SwinX2STrain.png": train_icon,
    }
    for path, draw_icon in icons.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.stem + ".tmp.png")
        draw_icon().save(temporary, optimize=True)
        temporary.replace(path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
