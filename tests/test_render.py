"""The pictures: the right size, the classes in their colours, one tile per hidden unit."""

import numpy as np
import torch

from torch_tanhnet import TanhNet
from torch_tanhnet.training.render import (
    MOST_UNITS,
    decision_boundary_image,
    hidden_units_image,
    plane_extent,
    plane_grid,
    save_png,
    shown_units,
)


def vertical_boundary_net():
    """z = 10·tanh(x₁): class 1 to the right of x₁ = 0, class 0 to the left."""
    net = TanhNet(2, 1, dtype=torch.float64)
    with torch.no_grad():
        net.U.copy_(torch.tensor([[1.0, 0.0]]))
        net.b.zero_()
        net.W.fill_(10.0)
        net.c.zero_()
    return net


def test_decision_boundary_colours_each_side_and_draws_the_line():
    net = vertical_boundary_net()
    X = torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    img = decision_boundary_image(net, X, y, torch.zeros(2), torch.ones(2), size=64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    left, right = img[32, 5].astype(int), img[32, 58].astype(int)
    assert left[2] > left[0]  # blue side: class 0
    assert right[0] > right[2]  # orange side: class 1
    assert (img[20:44, 30:34].sum(-1) < 300).any()  # the dark line at x₁ = 0 down the middle


def test_a_diverged_network_is_a_grey_map_without_numpys_warning():
    """NaN weights (a sweep's diverged run in its gallery): NumPy's "invalid value encountered in cast" reached the
    user as a sweep.py warning, and the tile came out black."""
    import warnings

    net = vertical_boundary_net()
    with torch.no_grad():
        net.W.fill_(float("nan"))
    X = torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = decision_boundary_image(net, X, y, torch.zeros(2), torch.ones(2), size=64)
    assert (img[32, 5] == 215).all() and (img[58, 58] == 215).all()


def test_large_data_sets_draw_a_sample_of_points():
    net = vertical_boundary_net()
    X = torch.randn(100_000, 2, dtype=torch.float64)
    y = (X[:, :1] > 0).double()
    img = decision_boundary_image(net, X, y, torch.zeros(2), torch.ones(2), size=64, max_points=50)
    assert img.shape == (64, 64, 3)


def test_one_tile_per_hidden_unit(tmp_path):
    torch.manual_seed(0)
    X = torch.randn(50, 2)
    small = hidden_units_image(TanhNet(2, 3), X, torch.zeros(2), torch.ones(2), tile=40, per_row=6)
    wide = hidden_units_image(TanhNet(2, 6), X, torch.zeros(2), torch.ones(2), tile=40, per_row=6)
    tall = hidden_units_image(TanhNet(2, 7), X, torch.zeros(2), torch.ones(2), tile=40, per_row=6)
    assert wide.shape[1] > small.shape[1] and tall.shape[0] > wide.shape[0] and tall.shape[1] == wide.shape[1]
    save_png(tall, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_extent_is_square_and_contains_the_points():
    X = torch.tensor([[0.0, 0.0], [4.0, 1.0]])
    x1a, x1b, x2a, x2b = plane_extent(X)
    assert x1a < 0 and x1b > 4 and x2a < 0 and x2b > 1
    assert abs((x1b - x1a) - (x2b - x2a)) < 1e-9


def test_points_near_float64s_limit_are_drawn():
    """A float64 run takes features up to ±1.8e308, and --standardize now takes them too: the pictures' plane,
    grid, ticks and point positions subtracted two such numbers (inf) and train.py ended in an OverflowError."""
    import warnings

    from torch_tanhnet.training.render import decision_boundary_card

    net = vertical_boundary_net()
    for X in (torch.tensor([[-1e308, 0.0], [1e308, 1.0], [5e307, 0.5]], dtype=torch.float64),
              torch.tensor([[1.7e308, 1.7e308], [1.6e308, 1.5e308]], dtype=torch.float64),
              torch.tensor([[-1.7e308, 0.0], [1.7e308, 0.0]], dtype=torch.float64),
              torch.tensor([[1e17, -1.0], [1e17, 2.0], [1e17, 3.0]], dtype=torch.float64)):  # a constant 1e17
        y = torch.tensor([[0.0], [1.0], [1.0]], dtype=torch.float64)[: X.shape[0]]
        x1_min, x1_max, x2_min, x2_max = extent = plane_extent(X)
        assert all(np.isfinite(extent)) and x1_min <= X[:, 0].min() and X[:, 0].max() <= x1_max
        assert x1_min < x1_max and x2_min < x2_max  # the 1e17 column's plane was 0 wide: log10(0) in the ticks
        assert plane_grid(extent, 16).isfinite().all()  # min + (max − min)·f overflowed: grey tiles
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            card = decision_boundary_card(net, X, y, torch.zeros(2), torch.ones(2), "t", "s", size=64)
            tiles = hidden_units_image(net, X, torch.zeros(2), torch.ones(2), tile=32)
        assert card.dtype == tiles.dtype == np.uint8


def test_tick_labels_tell_neighbours_apart():
    from torch_tanhnet.training.render import tick_labels

    assert tick_labels([-2.0, -1.0, 0.0, 1.0, 2.0]) == ["-2", "-1", "0", "1", "2"]
    assert tick_labels([0.5, 1.0, 1.5]) == ["0.5", "1", "1.5"]
    labels = tick_labels([1234567.0, 1234568.0, 1234569.0])  # %g: 1.23457e+06 three times
    assert labels == ["1234567", "1234568", "1234569"]
    assert len(set(tick_labels([1e17 - 1e5, 1e17, 1e17 + 1e5]))) == 3


def test_a_wide_networks_picture_shows_the_units_of_largest_weight_at_a_bounded_size():
    """--hidden 10000: a dry run drew one tile per unit, 12690 × 10616 pixels, and ran past a minute and 9 GB before
    its first step. Past MOST_UNITS, the units of largest |w_j| (NaN first), in order, said under the colour bar."""
    w = torch.zeros(200, dtype=torch.float64)
    big = torch.randperm(200, generator=torch.Generator().manual_seed(0))[:MOST_UNITS]
    w[big] = torch.linspace(1, 2, MOST_UNITS, dtype=torch.float64) * torch.where(big % 2 == 0, 1.0, -1.0)
    w[big[0]] = float("nan")
    assert shown_units(w) == sorted(big.tolist()) and shown_units(w[:5]) == [0, 1, 2, 3, 4]
    X = torch.randn(30, 2, generator=torch.Generator().manual_seed(1))
    wide = hidden_units_image(TanhNet(2, 1000), X, torch.zeros(2), torch.ones(2), tile=32)
    full = hidden_units_image(TanhNet(2, MOST_UNITS), X, torch.zeros(2), torch.ones(2), tile=32)
    assert wide.shape[1] == full.shape[1] and full.shape[0] < wide.shape[0] <= full.shape[0] + 32  # + its note
    # only the units shown are evaluated (10⁴ units: an H of 4096 × 10⁴ at each picture), each in its own column
    from torch_tanhnet.training.render import _evaluate, plane_grid

    net, points = TanhNet(2, 200).double(), plane_grid((-2.0, 2.0, -1.0, 3.0), 16)
    units = shown_units(net.W.detach().reshape(-1))
    assert torch.equal(torch.from_numpy(_evaluate(net, points, torch.zeros(2), torch.ones(2), units)[1]),
                       torch.from_numpy(_evaluate(net, points, torch.zeros(2), torch.ones(2))[1][:, units]))
