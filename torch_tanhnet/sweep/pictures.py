"""The sweep's pictures: the solved share as a heat map, and each setting's gallery of decision boundaries.

- :func:`heat_map`: one cell per pair of values of two swept settings, shaded by the share of
  runs solved and labelled with it (settings that differ in a third field are pooled).
- :func:`gallery`: a setting's solved runs beside its failed ones, each run's decision boundary
  drawn by :func:`~torch_tanhnet.training.render.decision_boundary_image` on the run's own
  training points, so a student sees what failing looks like.

Both return an (H, W, 3) uint8 numpy array, as :mod:`~torch_tanhnet.training.render` does.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

INK = (40, 40, 40)
LOW, HIGH = np.array([247.0, 247.0, 247.0]), np.array([35.0, 139.0, 69.0])  # 0 % solved, 100 % solved


def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def heat_map(share: np.ndarray, counts: np.ndarray, rows: list[str], cols: list[str], row_name: str, col_name: str,
             title: str = "") -> np.ndarray:
    """``share`` (R, C) in [0, 1] (NaN: no runs) over ``rows`` × ``cols`` values; each cell shows its share and
    its number of runs (``counts`` (R, C))."""
    cell_w, cell_h = 96, 54
    big, small = font(20), font(14)
    left = 24 + max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(r, font=big) for r in rows + [row_name])
    left, top = int(left) + 12, 84
    R, C = share.shape
    title = title or "share of runs solved"
    width = max(left + C * cell_w + 16, int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=big)) + 24)
    img = Image.new("RGB", (width, top + R * cell_h + 16), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((8, 6), title, fill=INK, font=big)
    draw.text((left + C * cell_w / 2, 38), col_name, fill=INK, font=small, anchor="mt")
    draw.text((8, top - 20), row_name, fill=INK, font=small)
    for j, c in enumerate(cols):
        draw.text((left + (j + 0.5) * cell_w, top - 6), c, fill=INK, font=big, anchor="ms")
    for i, r in enumerate(rows):
        y0 = top + i * cell_h
        draw.text((left - 10, y0 + cell_h / 2), r, fill=INK, font=big, anchor="rm")
        for j in range(C):
            x0 = left + j * cell_w
            s = share[i, j]
            fill = (255, 255, 255) if np.isnan(s) else tuple(int(v) for v in (LOW + s * (HIGH - LOW)).round())
            draw.rectangle((x0, y0, x0 + cell_w - 2, y0 + cell_h - 2), fill=fill)
            if not np.isnan(s):
                ink = (255, 255, 255) if s > 0.55 else INK
                draw.text((x0 + cell_w / 2, y0 + cell_h / 2 - 2), f"{100 * s:.0f}%", fill=ink, font=big, anchor="mm")
                draw.text((x0 + cell_w / 2, y0 + cell_h - 6), f"of {int(counts[i, j])}", fill=ink, font=font(11),
                          anchor="md")
    return np.asarray(img)


def gallery(title: str, solved: list[tuple[np.ndarray, str]], failed: list[tuple[np.ndarray, str]],
            solved_label: str, failed_label: str) -> np.ndarray:
    """Two rows of pictures, each with a caption under it: ``solved``, then ``failed`` (an empty row is its label).
    The type is large for the picture (captions on two lines, ``seed 0`` over ``test acc 0.65``): TensorBoard shows
    it shrunk to its card (520 pixels to 350 for three tiles), where 14-pixel captions could not be read, and
    19-pixel ones hardly (0.87 read as 0.67)."""
    tiles = [t for t, _ in solved + failed]
    size = tiles[0].shape[0] if tiles else 160
    gap, head, label, cap = 10, 56, 40, 64
    cols = max(len(solved), len(failed), 1)
    width = gap + cols * (size + gap)
    height = head + sum(label + (size + cap if row else 0) for row in (solved, failed)) + gap
    # a long setting name in smaller type, down to 18 pixels, then a wider picture: it was cut off at the right
    title_size = 32
    while font(title_size).getlength(title) > max(width, 360) - 2 * gap and title_size > 18:
        title_size -= 1
    width = max(width, 360, math.ceil(font(title_size).getlength(title)) + 2 * gap)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((gap, 8), title, fill=INK, font=font(title_size))
    y = head
    for label_text, row in ((solved_label, solved), (failed_label, failed)):
        draw.text((gap, y + 4), label_text, fill=INK, font=font(27))
        for j, (tile, caption) in enumerate(row):
            x = gap + j * (size + gap)
            img.paste(Image.fromarray(tile), (x, y + label))
            draw.multiline_text((x + size / 2, y + label + size + 4), caption.replace(": ", "\n", 1), fill=INK,
                                font=font(26), anchor="ma", align="center", spacing=2)
        y += label + (size + cap if row else 0)
    return np.asarray(img)
