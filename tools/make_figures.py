#!/usr/bin/env python3
"""Render the figures of the user guide into ``Resources/Screenshots/`` (no Slicer screenshot can be made here).

- ``overview.png``: what the SwinX2S module does, computed by the project itself: a procedural phantom CT, its AP
  and lateral radiographs (DRRs, display orientation) and the 3-D labelled segmentation (the reconstruction of the
  built-in model when it is installed, else the phantom's reference labels; the title says which).
- ``swinx2s_panel.png`` / ``swinx2strain_panel.png``: mock-ups of the two module panels, drawn from their ``.ui``
  files (sections, labels, widgets, buttons) with the parameter defaults of the module files.

Usage::

    python tools/make_figures.py            # all figures
    python tools/make_figures.py --panels   # only the panel mock-ups (fast, no torch)
"""

from __future__ import annotations

import argparse
import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Resources" / "Screenshots"
sys.path.insert(0, str(ROOT / "SwinX2S"))

# ------------------------------------------------------------------------------------------------ panel mock-ups

WIDTH = 460
ROW = 30
PAD = 10
LABEL_WIDTH = 150
COLOURS = {
    "background": (244, 245, 247), "section": (222, 228, 238), "text": (30, 34, 40), "muted": (110, 116, 126),
    "field": (255, 255, 255), "border": (160, 168, 180), "button": (232, 236, 242), "accent": (54, 120, 200),
}  # fmt: skip


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "Arial.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


FONT, BOLD = _font(13), _font(14)


def _defaults(module_file: Path) -> dict[str, str]:
    """Default values of the module's ``@parameterNodeWrapper`` fields, as text."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    constants = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
    defaults = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", "") == "parameterNodeWrapper"
                                                  for d in node.decorator_list):
            for statement in node.body:
                if isinstance(statement, ast.AnnAssign) and statement.value is not None:
                    value = statement.value
                    try:
                        if isinstance(value, ast.Subscript) and getattr(value.value, "id", "") in constants:
                            value = ast.literal_eval(constants[value.value.id])[ast.literal_eval(value.slice)]
                        else:
                            value = ast.literal_eval(value)
                    except ValueError:
                        value = ""
                    defaults[statement.target.id] = str(value)
    return defaults


def _property(widget: ET.Element, name: str) -> str:
    prop = widget.find(f"property[@name='{name}']")
    if prop is None:
        return ""
    return " ".join((element.text or "") for element in prop.iter() if (element.text or "").strip()).strip(" \n")


PLACEHOLDERS = {
    "modelComboBox": "default (built-in)",
    "baseModelComboBox": "default (built-in)",
    "deviceInfoLabel": "CUDA: not available (PyTorch on CPU)",
    "statusLabel": "stage: message of the running command",
    "etaLabel": "Epoch 3, time left: 12 min 30 s",
}
"""What the mock-ups show in widgets the module fills at run time."""


class _Panel:
    """Draws a widget tree top to bottom."""

    def __init__(self, defaults: dict[str, str]) -> None:
        self.defaults = defaults
        self.image = Image.new("RGB", (WIDTH, 2000), COLOURS["background"])
        self.draw = ImageDraw.Draw(self.image)
        self.y = PAD

    def _box(self, x0: int, x1: int, fill: str = "field", radius: int = 3) -> tuple[int, int, int, int]:
        box = (x0, self.y + 4, x1, self.y + ROW - 4)
        self.draw.rounded_rectangle(box, radius=radius, fill=COLOURS[fill], outline=COLOURS["border"])
        return box

    def _text(self, x: int, text: str, colour: str = "text", font: ImageFont.ImageFont = FONT) -> None:
        self.draw.text((x, self.y + ROW // 2), text, fill=COLOURS[colour], font=font, anchor="lm")

    def widget(self, widget: ET.Element, x0: int, x1: int) -> None:
        """One widget in the field column ``x0..x1`` (one row)."""
        kind, name = widget.get("class"), widget.get("name")
        value = self.defaults.get(_property(widget, "SlicerParameterName"), "")
        if kind in ("QComboBox", "qMRMLNodeComboBox"):
            box = self._box(x0, x1)
            placeholder = _property(widget, "noneDisplay") or ("None" if kind == "qMRMLNodeComboBox" else "")
            shown = value or PLACEHOLDERS.get(name, "")
            self._text(x0 + 8, shown or placeholder, "text" if shown else "muted")
            self.draw.polygon([(box[2] - 16, box[1] + 8), (box[2] - 6, box[1] + 8), (box[2] - 11, box[3] - 8)],
                              fill=COLOURS["muted"])
        elif kind in ("QSpinBox", "QDoubleSpinBox", "QLineEdit", "ctkPathLineEdit"):
            self._box(x0, x1 - (28 if kind == "ctkPathLineEdit" else 0))
            special = _property(widget, "specialValueText")
            prop = widget.find("property[@name='suffix']/string")
            suffix = prop.text if prop is not None and prop.text else ""
            shown = special if special and value in ("0", "0.0") else value + suffix
            self._text(x0 + 8, shown or ("(phantoms)" if kind == "ctkPathLineEdit" else ""))
            if kind == "ctkPathLineEdit":
                self.y_button(x1 - 24, x1, "…")
        elif kind == "QCheckBox":
            box = (x0, self.y + 8, x0 + 14, self.y + 22)
            self.draw.rectangle(box, fill=COLOURS["field"], outline=COLOURS["border"])
            if value == "True":
                self.draw.line([(x0 + 3, self.y + 15), (x0 + 6, self.y + 19), (x0 + 12, self.y + 10)],
                               fill=COLOURS["accent"], width=2)
            self._text(x0 + 22, _property(widget, "text"))
        elif kind == "QPushButton":
            self.y_button(x0, x1, _property(widget, "text"), primary=name in ("applyButton", "startButton"))
        elif kind == "QProgressBar":
            box = self._box(x0, x1)
            self.draw.rectangle((box[0] + 1, box[1] + 1, box[0] + (box[2] - box[0]) * 2 // 5, box[3] - 1),
                                fill=COLOURS["accent"])
        elif kind == "QLabel":
            self._text(x0, PLACEHOLDERS.get(name) or _property(widget, "text"), "muted")
        else:
            self._text(x0, f"[{kind}]", "muted")

    def y_button(self, x0: int, x1: int, text: str, primary: bool = False) -> None:
        box = (x0, self.y + 3, x1, self.y + ROW - 3)
        self.draw.rounded_rectangle(box, radius=4, fill=COLOURS["accent"] if primary else COLOURS["button"],
                                    outline=COLOURS["border"])
        self.draw.text(((x0 + x1) // 2, self.y + ROW // 2), text, fill=(255, 255, 255) if primary else
                       COLOURS["text"], font=FONT, anchor="mm")

    def layout(self, layout: ET.Element, x0: int, x1: int) -> None:
        """Draw the items of a Qt layout (form rows, vertical stacks, horizontal rows)."""
        kind = layout.get("class")
        items = layout.findall("item")
        if kind == "QHBoxLayout":
            widgets = [i.find("widget") for i in items if i.find("widget") is not None]
            step = (x1 - x0 + 6) // max(len(widgets), 1)
            for index, widget in enumerate(widgets):
                left = x0 + index * step
                self.widget(widget, left, left + step - 6)
            self.y += ROW
            return
        if kind == "QFormLayout":
            rows: dict[int, dict[str, ET.Element]] = {}
            for item in items:
                rows.setdefault(int(item.get("row")), {})[item.get("column", "0") + item.get("colspan", "1")] = item
            for row in sorted(rows):
                cells = rows[row]
                if "02" in cells:
                    self.item(cells["02"], x0, x1)
                    continue
                if "01" in cells and cells["01"].find("widget") is not None:
                    self._text(x0, _property(cells["01"].find("widget"), "text"))
                if "11" in cells:
                    self.item(cells["11"], x0 + LABEL_WIDTH, x1)
                else:
                    self.y += ROW
            return
        for item in items:
            self.item(item, x0, x1)

    def item(self, item: ET.Element, x0: int, x1: int) -> None:
        widget, layout = item.find("widget"), item.find("layout")
        if layout is not None:
            self.layout(layout, x0, x1)
        elif widget is not None:
            self.container(widget, x0, x1)

    def container(self, widget: ET.Element, x0: int, x1: int) -> None:
        kind = widget.get("class")
        inner = widget.find("layout")
        if kind == "ctkCollapsibleButton":
            self.draw.rectangle((x0, self.y + 2, x1, self.y + ROW - 2), fill=COLOURS["section"])
            self._text(x0 + 8, "▼  " + _property(widget, "text"), font=BOLD)
            self.y += ROW + 4
            self.layout(inner, x0 + 8, x1 - 4)
            self.y += 6
        elif kind == "QGroupBox":
            top = self.y
            self._text(x0 + 6, _property(widget, "title"), "muted")
            self.y += ROW - 6
            self.layout(inner, x0 + 8, x1 - 8)
            self.draw.rectangle((x0, top + ROW // 2, x1, self.y + 2), outline=COLOURS["border"])
            self.y += 8
        else:
            self.widget(widget, x0, x1)
            self.y += ROW

    def render(self, ui_file: Path, title: str) -> Image.Image:
        self.draw.text((PAD, self.y + 8), title, fill=COLOURS["text"], font=_font(17), anchor="lm")
        self.y += 26
        root = ET.parse(ui_file).getroot().find("widget")
        self.layout(root.find("layout"), PAD, WIDTH - PAD)
        return self.image.crop((0, 0, WIDTH, self.y + PAD))


def panel_figures() -> list[Path]:
    written = []
    for module, title in (("SwinX2S", "SwinX2S (Segmentation)"), ("SwinX2STrain", "SwinX2S Train (Segmentation)")):
        image = _Panel(_defaults(ROOT / module / f"{module}.py")).render(
            ROOT / module / "Resources" / "UI" / f"{module}.ui", title)
        written.append(_save(image, OUT / f"{module.lower()}_panel.png"))
    return written


# ------------------------------------------------------------------------------------------------ overview figure


def overview_figure(seed: int = 7) -> Path:
    """Phantom CT -> AP and lateral DRRs -> 3-D labelled segmentation, in one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.measure import marching_cubes

    from SwinX2SLib import catalogue, drr, inference
    from SwinX2SLib.conventions import image_to_display
    from SwinX2SLib.phantom import make_phantom

    phantom = make_phantom(seed=seed)
    ct_image, _labels_image = phantom.to_sitk()
    inputs = drr.render_model_inputs(ct_image, "published")
    labels, source = phantom.labels, "reference labels of the phantom"
    if (inference.DEFAULT_MODEL_DIR / "model.json").is_file():
        result = inference.Reconstructor(None, "cpu").reconstruct_ct(ct_image)
        labels, source = result.labels, "reconstruction by the built-in model"

    fig = plt.figure(figsize=(13, 5.2), dpi=110)
    grid = fig.add_gridspec(1, 4, width_ratios=(1, 1, 1, 1.4))
    ax_ct = fig.add_subplot(grid[0])
    spine_y = int(np.argwhere(np.isin(phantom.labels, catalogue.class_ids("spine")))[:, 1].mean())
    slab = phantom.ct[:, spine_y, :]
    ax_ct.imshow(np.clip(image_to_display(slab, "coronal"), -200, 1200), cmap="gray")
    ax_ct.set_title("CT (coronal slice through the spine)")
    for index, (image, title) in enumerate(((inputs.coronal[0], "AP X-ray (DRR)"),
                                            (inputs.sagittal[0], "lateral X-ray (DRR)"))):
        ax = fig.add_subplot(grid[index + 1])
        ax.imshow(image_to_display(image, "coronal" if index == 0 else "sagittal"), cmap="gray")
        ax.set_title(title)
    for ax in fig.axes:
        ax.set_axis_off()
    ax3d = fig.add_subplot(grid[3], projection="3d")
    step = 2
    occupied = np.argwhere(labels > 0)
    low, high = occupied.min(axis=0), occupied.max(axis=0) + 1
    labels = labels[low[0]:high[0], low[1]:high[1], low[2]:high[2]]
    coarse = labels[::step, ::step, ::step]
    for label in sorted(int(v) for v in np.unique(coarse) if v):
        mask = np.pad(coarse == label, 1)
        if mask.sum() < 8:
            continue
        verts, faces, _, _ = marching_cubes(mask.astype(np.float32), 0.5)
        colour = np.array(catalogue.by_id(label).color) / 255.0
        mesh = Poly3DCollection(verts[faces] * step, facecolors=colour, edgecolor="none", shade=True)
        ax3d.add_collection3d(mesh)
    ax3d.set(xlim=(0, labels.shape[0]), ylim=(0, labels.shape[1]), zlim=(0, labels.shape[2]))
    ax3d.set_box_aspect(labels.shape, zoom=1.25)
    ax3d.view_init(elev=12, azim=-65)
    ax3d.set_axis_off()
    ax3d.set_title("3-D segmentation")
    fig.suptitle(f"SwinX2S: two X-rays in, 54 labelled bones out (phantom seed {seed}; {source})")
    fig.tight_layout()
    canvas = fig.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    plt.close(fig)
    return _save(image, OUT / "overview.png")


def _save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.png")
    image.save(temporary, optimize=True)
    temporary.replace(path)
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", action="store_true", help="only the panel mock-ups")
    args = parser.parse_args(argv)
    panel_figures()
    if not args.panels:
        overview_figure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
