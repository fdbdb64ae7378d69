"""Pictures of a 2-D classifier a person reads at a glance, drawn with torch and Pillow.

- :func:`decision_boundary_image`: o = σ(z) over the data's plane, blue (class 0)
  through white (o = ½) to orange (class 1), the boundary o = ½ as a dark line, and
  the training points in their class colours.
- :func:`hidden_units_image`: one tile per hidden unit, h_j = tanh(g_j) over the same
  plane, blue (−1) through white (0) to orange (+1), like the TensorFlow Playground's
  neuron tiles, each titled with the unit's outgoing weight w_j.

Both return an (H, W, 3) uint8 numpy array, ready for ``SummaryWriter.add_image(...,
dataformats="HWC")`` or :func:`save_png`.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..module import TanhNet

Tensor = torch.Tensor

BLUE = torch.tensor([8.0, 119.0, 189.0], dtype=torch.float64)  # class 0, o → 0, h → −1
ORANGE = torch.tensor([245.0, 147.0, 34.0], dtype=torch.float64)  # class 1, o → 1, h → +1
WHITE = torch.tensor([255.0, 255.0, 255.0], dtype=torch.float64)
INK = (40, 40, 40)


def plane_extent(X: Tensor, pad: float = 0.15) -> tuple[float, float, float, float]:
    """(x1_min, x1_max, x2_min, x2_max) around the raw points X (N, 2), padded, square."""
    lo, hi = X.min(0).values.double(), X.max(0).values.double()
    centre, half = (lo + hi) / 2, ((hi - lo).max() / 2) * (1 + pad) + 1e-6
    return (centre[0] - half).item(), (centre[0] + half).item(), (centre[1] - half).item(), (centre[1] + half).item()


def plane_grid(extent: tuple[float, float, float, float], size: int) -> Tensor:
    """Pixel centres of a size×size picture of the plane, row-major, x₂ upwards: (size², 2)."""
    x1_min, x1_max, x2_min, x2_max = extent
    step1, step2 = (x1_max - x1_min) / size, (x2_max - x2_min) / size
    x1 = x1_min + step1 * (torch.arange(size, dtype=torch.float64) + 0.5)
    x2 = x2_max - step2 * (torch.arange(size, dtype=torch.float64) + 0.5)
    rows, cols = torch.meshgrid(x2, x1, indexing="ij")
    return torch.stack([cols.reshape(-1), rows.reshape(-1)], 1)


def diverging(v: Tensor) -> Tensor:
    """v in [−1, 1] → RGB float (…, 3): blue at −1, white at 0, orange at +1 (pastel, for backgrounds)."""
    v = v.clamp(-1, 1).unsqueeze(-1)
    pastel = 0.75  # how far towards the full colour the extremes go
    towards = torch.where(v < 0, BLUE, ORANGE)
    return WHITE + pastel * v.abs() * (towards - WHITE)


@torch.no_grad()
def _evaluate(model: TanhNet, points: Tensor, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
    p = model.U
    X = ((points.to(mean.dtype) - mean.cpu()) / std.cpu()).to(device=p.device, dtype=p.dtype)
    z, H = model.forward_with_hidden(X)
    return torch.sigmoid(z).double().cpu().squeeze(1), H.double().cpu()


def _to_pixels(rgb: Tensor, size: int) -> Image.Image:
    arr = rgb.reshape(size, size, 3).round().clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(arr, mode="RGB")


def _boundary_mask(o: Tensor, size: int) -> Tensor:
    """Pixels where o = ½ is crossed between a pixel and its right or lower neighbour."""
    side = (o.reshape(size, size) > 0.5)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, :-1] |= side[:, :-1] != side[:, 1:]
    mask[:-1, :] |= side[:-1, :] != side[1:, :]
    return mask.reshape(-1)


def _to_pixel_coords(X: Tensor, extent, size: int) -> Tensor:
    x1_min, x1_max, x2_min, x2_max = extent
    px = (X[:, 0].double() - x1_min) / (x1_max - x1_min) * size
    py = (x2_max - X[:, 1].double()) / (x2_max - x2_min) * size
    return torch.stack([px, py], 1)


def decision_boundary_image(
    model: TanhNet, X_raw: Tensor, y: Tensor, mean: Tensor, std: Tensor, size: int = 256, caption: str = "",
    max_points: int = 2000,
) -> np.ndarray:
    """o = σ(z) over the plane of the raw points X_raw (N, 2), with those points drawn on it.

    ``mean`` and ``std`` map raw features to the model's inputs ((X − mean)/std). Of a large
    data set, ``max_points`` evenly spaced points are drawn (more would only hide the map).
    """
    extent = plane_extent(X_raw)
    if X_raw.shape[0] > max_points:
        keep = torch.linspace(0, X_raw.shape[0] - 1, max_points).long()
        X_raw, y = X_raw[keep], y[keep]
    o, _ = _evaluate(model, plane_grid(extent, size), mean, std)
    rgb = diverging(2 * o - 1)
    rgb[_boundary_mask(o, size)] = 60.0
    img = _to_pixels(rgb, size)
    draw = ImageDraw.Draw(img)
    radius = 3 if X_raw.shape[0] <= 2000 else 2
    for (px, py), label in zip(_to_pixel_coords(X_raw, extent, size).tolist(), y.reshape(-1).tolist()):
        fill = tuple(int(v) for v in (ORANGE if label > 0.5 else BLUE).tolist())
        draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=fill, outline=(255, 255, 255))
    if caption:
        draw.text((4, 2), caption, fill=INK, font=ImageFont.load_default())
    return np.asarray(img)


def hidden_units_image(
    model: TanhNet, X_raw: Tensor, mean: Tensor, std: Tensor, tile: int = 112, per_row: int = 6
) -> np.ndarray:
    """One tile per hidden unit: h_j = tanh(g_j) over the data's plane, titled with w_j."""
    extent = plane_extent(X_raw)
    _, H = _evaluate(model, plane_grid(extent, tile), mean, std)
    n = H.shape[1]
    cols, rows = min(n, per_row), -(-n // per_row)
    title, gap = 14, 4
    canvas = Image.new("RGB", (cols * (tile + gap) + gap, rows * (tile + title + gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    weights = model.W.detach().double().cpu().reshape(-1).tolist()
    for j in range(n):
        x0 = gap + (j % per_row) * (tile + gap)
        y0 = gap + (j // per_row) * (tile + title + gap)
        draw.text((x0, y0), f"h{j + 1}  w={weights[j]:+.2f}", fill=INK, font=font)
        canvas.paste(_to_pixels(diverging(H[:, j]), tile), (x0, y0 + title))
    return np.asarray(canvas)


def save_png(image: np.ndarray, path) -> None:
    Image.fromarray(image, mode="RGB").save(path, format="PNG", optimize=True)
