"""Pictures of a 2-D classifier a person reads at a glance, drawn with torch and Pillow.

- :func:`decision_boundary_image`: o = σ(z) over the data's plane, blue (class 0)
  through white (o = ½) to orange (class 1), the boundary o = ½ as a dark line, and
  the training points in their class colours.
- :func:`decision_boundary_card`: that map framed to stand alone at TensorBoard's card
  size: a caption in large type (step, train and test accuracy), the axes' ticks in the
  data's units, and a colour bar for o = σ(z).
- :func:`hidden_units_image`: one tile per hidden unit, h_j = tanh(g_j) over the same
  plane, blue (−1) through white (0) to orange (+1), like the TensorFlow Playground's
  neuron tiles, each titled with the unit's outgoing weight w_j, above a colour bar.

Each returns an (H, W, 3) uint8 numpy array, ready for ``SummaryWriter.add_image(...,
dataformats="HWC")`` or :func:`save_png`. Their text is ASCII: Pillow's built-in font,
the one font every installation has, has no Greek letters or subscripts.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..functional import tanhnet_with_hidden
from ..module import TanhNet
from .data import standardised

Tensor = torch.Tensor

BLUE = np.array([8.0, 119.0, 189.0], dtype=np.float32)  # class 0, o → 0, h → −1
ORANGE = np.array([245.0, 147.0, 34.0], dtype=np.float32)  # class 1, o → 1, h → +1
WHITE = np.array([255.0, 255.0, 255.0], dtype=np.float32)
INK = (40, 40, 40)
GREY = (120, 120, 120)


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` pixels (scalable since Pillow 10.1)."""
    return ImageFont.load_default(size=size)


def fraction(t, lo, hi):
    """(t − lo)/(hi − lo), for floats or tensors, with each halved first: the difference of two features near
    float64's limit (±1.8e308, which a float64 run takes) overflows to inf."""
    return (t / 2 - lo / 2) / (hi / 2 - lo / 2)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round values inside [lo, hi], 1, 2 or 5 times a power of ten apart, about ``target`` of them."""
    raw = (hi / 2 - lo / 2) / (max(target - 1, 1) / 2)  # (hi − lo)/(target − 1), halved against overflow
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [round(k * step, 12) for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def tick_labels(ticks: list[float]) -> list[str]:
    """The ticks as ``%g`` writes them, with as many more digits as it takes to tell neighbours apart (ticks 1 apart
    near 1.2e6 all read 1.23457e+06 at six digits)."""
    digits = 6
    if len(ticks) > 1:
        step = min(abs(b - a) for a, b in zip(ticks, ticks[1:]))
        largest = max(abs(t) for t in ticks)
        if step > 0 and largest > 0:
            digits = max(6, min(17, math.ceil(math.log10(largest / step)) + 2))
    return [f"{t:.{digits}g}" for t in ticks]


def plane_extent(X: Tensor, pad: float = 0.15) -> tuple[float, float, float, float]:
    """(x1_min, x1_max, x2_min, x2_max) around the raw points X (N, 2), padded, square; but each side at least 2^-40
    of its centre either way (a constant feature at 1e17 beside one of a few units), and clipped to float64's
    range."""
    x = X.detach().cpu().double().numpy()
    lo, hi = x.min(0), x.max(0)
    centre, half = lo / 2 + hi / 2, float((hi / 2 - lo / 2).max()) * (1 + pad) + 1e-6  # halves: no overflow
    # at least 2^-40 of the centre each way: a constant feature at 1e17 beside one spanning a few units had its
    # plane 0 wide (the padding below one ulp), and the ticks took log10(0)
    halves = np.maximum(half, np.abs(centre) * 2.0**-40)
    big = float(np.finfo(np.float64).max)  # the padding of points near float64's limit stops at it
    return tuple(float(np.clip(v, -big, big)) for v in (centre[0] - halves[0], centre[0] + halves[0],
                                                         centre[1] - halves[1], centre[1] + halves[1]))


def plane_grid(extent: tuple[float, float, float, float], size: int) -> Tensor:
    """Pixel centres of a size×size picture of the plane, row-major, x₂ upwards: (size², 2)."""
    x1_min, x1_max, x2_min, x2_max = extent
    # each centre as a weighted mean of the ends, whose terms cannot overflow (min + (max − min)·f can, for features
    # near float64's limit)
    f = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    x1 = x1_min * (1 - f) + x1_max * f
    x2 = x2_max * (1 - f) + x2_min * f
    rows, cols = torch.meshgrid(x2, x1, indexing="ij")
    return torch.stack([cols.reshape(-1), rows.reshape(-1)], 1)


def diverging(v: np.ndarray) -> np.ndarray:
    """v in [−1, 1] → RGB float (…, 3): blue at −1, white at 0, orange at +1 (pastel, for backgrounds)."""
    v = np.clip(np.asarray(v, dtype=np.float32), -1, 1)[..., None]
    pastel = 0.6  # how far towards the full colour the extremes go (the points keep theirs, to stand out)
    return WHITE + pastel * np.abs(v) * (np.where(v < 0, BLUE, ORANGE) - WHITE)


@torch.no_grad()
def _evaluate(model: TanhNet, points: Tensor, mean: Tensor, std: Tensor,
              units: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """z (P,) and H (P, H) of the model at raw points (P, 2), as float32 numpy arrays; with ``units``, H of those
    hidden units alone (P, len(units)), and z of a network of them alone (10⁴ units, of which a picture shows 16,
    made an H of 4096 × 10⁴ at every picture)."""
    p = model.U
    X = standardised(points.to(mean.dtype), mean.cpu(), std.cpu()).to(device=p.device, dtype=p.dtype)
    if units is None:
        z, H = model.forward_with_hidden(X)
    else:
        j = torch.tensor(units, dtype=torch.long, device=p.device)
        z, H = tanhnet_with_hidden(X, model.U[j], model.b[j], model.W[:, j], model.c)
    # z is drawn as σ(z) and its sign: beyond ±1e4 nothing changes, and a float64 z beyond float32's range
    # (weights near 1e300) would become inf, and inf − inf in the resampling NaN pixels
    return z.clamp(-1e4, 1e4).float().cpu().reshape(-1).numpy(), H.float().cpu().numpy()


def _field(values: np.ndarray, n: int, size: int) -> np.ndarray:
    """A smooth field sampled on an n×n grid of pixel centres, bilinearly resampled to size×size.

    The pictures evaluate the network on a coarse grid (a third of the pixels' side) and let
    Pillow fill in between: z and h are smooth, and the work stays small enough to keep drawing
    out of the training loop's way.
    """
    grid = np.ascontiguousarray(values.reshape(n, n), dtype=np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BILINEAR))


def _to_pixels(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _boundary_mask(side: np.ndarray) -> np.ndarray:
    """Pixels where the boolean picture ``side`` (o > ½) changes to its right or lower neighbour."""
    mask = np.zeros(side.shape, dtype=bool)
    mask[:, :-1] |= side[:, :-1] != side[:, 1:]
    mask[:-1, :] |= side[:-1, :] != side[1:, :]
    return mask


def _to_pixel_coords(X: Tensor, extent, size: int) -> Tensor:
    x1_min, x1_max, x2_min, x2_max = extent
    px = fraction(X[:, 0].double(), x1_min, x1_max) * size
    py = (1 - fraction(X[:, 1].double(), x2_min, x2_max)) * size  # x₂ upwards
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
    n = max(16, size // 3)
    z = _field(_evaluate(model, plane_grid(extent, n), mean, std)[0], n, size)
    o = 1 / (1 + np.exp(-np.clip(z, -60, 60)))  # o = σ(z)
    rgb = diverging(2 * o - 1)
    rgb[_boundary_mask(z > 0)] = 60.0  # o = ½ where z = 0
    rgb[~np.isfinite(z)] = 215.0  # no o where z is NaN (a diverged network): grey, not NumPy's "invalid value in cast"
    img = _to_pixels(rgb)
    draw = ImageDraw.Draw(img)
    radius = 3 if X_raw.shape[0] <= 2000 else 2
    for (px, py), label in zip(_to_pixel_coords(X_raw, extent, size).tolist(), y.reshape(-1).tolist()):
        fill = tuple(int(v) for v in (ORANGE if label > 0.5 else BLUE))
        draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=fill, outline=(255, 255, 255))
    if caption:
        draw.text((4, 2), caption, fill=INK, font=font(max(11, size // 20)))
    return np.asarray(img)


def colour_bar(height: int, width: int, lo: float, hi: float) -> Image.Image:
    """A vertical bar of :func:`diverging` colours: ``hi`` at the top, ``lo`` at the bottom (values in [−1, 1])."""
    v = np.broadcast_to(np.linspace(hi, lo, height, dtype=np.float32)[:, None], (height, width))
    return _to_pixels(diverging(v))


def draw_ticks(draw: ImageDraw.ImageDraw, extent: tuple[float, float, float, float], left: int, top: int, size: int,
               small: ImageFont.ImageFont) -> None:
    """x1's ticks under the size×size plane whose top left corner is (left, top), x2's to its left, in the data's
    units; an x1 label that would overlap the one before it is left out (1.00000000000005e+17 is wide)."""
    x1_min, x1_max, x2_min, x2_max = extent
    end = -math.inf  # the right edge of the last x1 label drawn
    for t, label in zip(ticks := nice_ticks(x1_min, x1_max), tick_labels(ticks)):
        px = left + fraction(t, x1_min, x1_max) * size
        draw.line((px, top + size, px, top + size + 6), fill=GREY)
        half = small.getlength(label) / 2
        if px - half > end + 12:
            draw.text((px, top + size + 8), label, fill=INK, font=small, anchor="mt")
            end = px + half
    for t, label in zip(ticks := nice_ticks(x2_min, x2_max), tick_labels(ticks)):
        py = top + (1 - fraction(t, x2_min, x2_max)) * size
        draw.line((left - 6, py, left, py), fill=GREY)
        draw.text((left - 9, py), label, fill=INK, font=small, anchor="rm")


def decision_boundary_card(
    model: TanhNet, X_raw: Tensor, y: Tensor, mean: Tensor, std: Tensor, title: str = "", subtitle: str = "",
    size: int = 384, max_points: int = 2000,
) -> np.ndarray:
    """:func:`decision_boundary_image` framed: ``title`` and ``subtitle`` above it in large type, x1 and x2
    ticks in the data's units, and a colour bar for o = sigmoid(z) with the boundary o = 0.5 marked."""
    small = font(20)
    extent = plane_extent(X_raw)
    # room on the left for the widest x2 label (-2e+38 lost its minus sign in 70 pixels) and the axis' name
    x2_labels = tick_labels(nice_ticks(extent[2], extent[3]))
    left = max(70, 42 + math.ceil(max((small.getlength(t) for t in x2_labels), default=0)))
    top, right, bottom = 80, 124, 60
    canvas = Image.new("RGB", (left + size + right, top + size + bottom), (255, 255, 255))
    canvas.paste(Image.fromarray(decision_boundary_image(model, X_raw, y, mean, std, size, max_points=max_points)),
                 (left, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((left, 6), title, fill=INK, font=font(30))
    draw.text((left, 44), subtitle, fill=INK, font=font(22))
    draw.rectangle((left - 1, top - 1, left + size, top + size), outline=GREY)
    draw_ticks(draw, extent, left, top, size, small)
    draw.text((left + size / 2, top + size + 34), "x1", fill=INK, font=small, anchor="mt")
    draw.text((10, top + size / 2), "x2", fill=INK, font=small, anchor="lm")
    # the colour bar: o from 1 (orange, class 1) at the top to 0 (blue, class 0) at the bottom
    bar_x, bar_w = left + size + 22, 20
    canvas.paste(colour_bar(size, bar_w, -1.0, 1.0), (bar_x, top))
    draw.rectangle((bar_x - 1, top - 1, bar_x + bar_w, top + size), outline=GREY)
    draw.line((bar_x, top + size / 2, bar_x + bar_w - 1, top + size / 2), fill=(60, 60, 60), width=2)  # o = 0.5
    for o, label in ((1.0, "1"), (0.5, "0.5"), (0.0, "0")):
        py = top + (1 - o) * (size - 1)
        draw.line((bar_x + bar_w, py, bar_x + bar_w + 5, py), fill=GREY)
        draw.text((bar_x + bar_w + 8, py), label, fill=INK, font=small, anchor="lm")
    draw.text((bar_x + bar_w / 2, top - 8), "o", fill=INK, font=font(20), anchor="ms")
    draw.text((bar_x + bar_w / 2, top + size + 8), "class 0", fill=INK, font=small, anchor="mt")
    draw.text((bar_x + bar_w / 2, top - 30), "class 1", fill=INK, font=small, anchor="ms")
    return np.asarray(canvas)


# a hidden-unit picture shows at most this many units (4 x 4): TensorBoard shows a picture in a card ~300 pixels
# wide, where 4 x 4 tiles keep their titles readable and 8 x 8 did not (seen in Chromium, TensorBoard 2.21)
MOST_UNITS = 16


def shown_units(weights: torch.Tensor) -> list[int]:
    """The hidden units a picture shows, in order: all, or of more than :data:`MOST_UNITS` those of largest |w_j|
    (a NaN's first). 10⁴ units drew a picture of 12690 × 10616 pixels: minutes and gigabytes, each picture."""
    if weights.numel() <= MOST_UNITS:
        return list(range(weights.numel()))
    return sorted(weights.abs().nan_to_num(math.inf).topk(MOST_UNITS).indices.tolist())


def hidden_units_image(
    model: TanhNet, X_raw: Tensor, mean: Tensor, std: Tensor, tile: int = 128, per_row: int | None = None
) -> np.ndarray:
    """One tile per hidden unit: h_j = tanh(g_j) over the data's plane, titled with w_j, above a colour bar; of a
    network wider than :data:`MOST_UNITS`, the units of largest |w_j| (those that move z most), said under the bar.

    ``per_row`` None: all in a row up to four units, else a near-square grid (4 x 4 at 16 units),
    so that the titles stay readable when TensorBoard shrinks the picture to its card.
    """
    extent = plane_extent(X_raw)
    coarse = max(16, tile // 2)
    weights = model.W.detach().double().cpu().reshape(-1)
    units = shown_units(weights)
    _, H = _evaluate(model, plane_grid(extent, coarse), mean, std, units)  # column i: unit units[i]
    n = len(units)
    per_row = per_row or (n if n <= 4 else math.ceil(math.sqrt(n)))
    cols, rows = min(n, per_row), -(-n // per_row)
    text = font(max(11, round(tile * 0.16)))
    title, gap, legend = round(tile * 0.22), max(4, tile // 16), round(tile * 0.42)
    total = weights.numel()
    note = title if n < total else 0  # the line that says which units are shown
    width = max(cols * (tile + gap) + gap, 3 * tile // 2 + 2 * gap)
    canvas = Image.new("RGB", (width, rows * (tile + title + gap) + gap + legend + note), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    weights = weights.tolist()
    for i, j in enumerate(units):
        x0 = gap + (i % per_row) * (tile + gap)
        y0 = gap + (i // per_row) * (tile + title + gap)
        label = f"h{j + 1}  w={weights[j]:+.3g}"
        size = text.size
        while draw.textlength(label, font=font(size)) > tile and size > 9:  # a large weight: smaller type
            size -= 1
        draw.text((x0, y0), label, fill=INK, font=font(size))
        h = _field(H[:, i], coarse, tile)
        rgb = diverging(h)
        rgb[~np.isfinite(h)] = 215.0  # no h where g is NaN (inputs whose products overflow, a diverged network)
        canvas.paste(_to_pixels(rgb), (x0, y0 + title))
    # the colour bar, lying down: h = -1 (blue) on the left to +1 (orange) on the right
    y0, bar_h, bar_w = canvas.height - legend - note + gap, max(6, legend // 4), tile
    bar = colour_bar(bar_w, bar_h, -1.0, 1.0).transpose(Image.Transpose.ROTATE_270)  # +1 to the right
    x0 = (width - bar_w) // 2
    canvas.paste(bar, (x0, y0))
    draw.text((x0 - 6, y0 + bar_h / 2), "h = -1", fill=INK, font=text, anchor="rm")
    draw.text((x0 + bar_w + 6, y0 + bar_h / 2), "+1", fill=INK, font=text, anchor="lm")
    draw.text((width / 2, y0 + bar_h + 3), "h = tanh(g)", fill=GREY, font=text, anchor="ma")
    if note:
        draw.text((width / 2, canvas.height - note), f"{n} of the {total} units: those of largest |w|",
                  fill=GREY, font=text, anchor="ma")
    return np.asarray(canvas)


def save_png(image: np.ndarray, path) -> None:
    Image.fromarray(image, mode="RGB").save(path, format="PNG", optimize=True)
