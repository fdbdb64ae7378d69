"""Data: seeded generators, a user's CSV with line-numbered errors, the seeded split."""

import pytest
import torch

from torch_tanhnet.training.data import GENERATORS, DataError, load_csv, make_dataset, split


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generators_are_seeded_balanced_and_shaped(name):
    X, y = make_dataset(name, 101, seed=3)
    X2, y2 = make_dataset(name, 101, seed=3)
    assert X.shape == (101, 2) and y.shape == (101, 1)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert set(y.unique().tolist()) == {0.0, 1.0} and y.sum().item() == 51
    assert torch.isfinite(X).all()
    assert not torch.equal(make_dataset(name, 101, seed=4)[0], X)


def test_zero_noise_circles_are_separated_by_radius():
    X, y = make_dataset("circles", 400, noise=0.0)
    r = X.norm(dim=1)
    assert (r[y[:, 0] == 1] <= 0.5).all() and (r[y[:, 0] == 0] >= 0.7).all()


def test_zero_noise_xor_labels_follow_the_sign_product():
    X, y = make_dataset("xor", 400, noise=0.0)
    assert torch.equal((X[:, 0] * X[:, 1] > 0).double(), y[:, 0])


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'blobs'; choose from moons, circles, xor, spiral, gauss"):
        make_dataset("blobs", 10)


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_with_and_without_header(tmp_path):
    X, y = load_csv(write(tmp_path, "x1,x2,label\n0.5,1,0\n-2,3e-1,1\n\n"))
    assert X.tolist() == [[0.5, 1.0], [-2.0, 0.3]] and y.tolist() == [[0.0], [1.0]]
    X2, _ = load_csv(write(tmp_path, "0.5,1,0\n-2,3e-1,1\n", "e.csv"))
    assert torch.equal(X, X2)


@pytest.mark.parametrize("text,message", [
    ("", "has no data rows"),
    ("a,b,c\n", "has no data rows"),
    ("1,2,0\n1,2\n", r"d.csv:2: expected 3 columns \(x1, x2, label\), got 2"),
    ("1,2,0\n1,x,1\n", r"d.csv:2: expected numbers, got '1,x,1'"),
    ("1,2,0\n1,2,0\n3,4,2\n", r"d.csv:3: label must be 0 or 1, got 2"),
    ("1,2,0.5\n", r"d.csv:1: label must be 0 or 1, got 0.5"),
    ("1,nan,0\n", r"d.csv:1: features must be finite, got 1, nan"),
    ("inf,1,0\n", r"d.csv:1: features must be finite, got inf, 1"),
])
def test_csv_errors_name_the_problem_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_csv(write(tmp_path, text))


def test_missing_csv(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_csv(tmp_path / "nope.csv")


def test_split_is_seeded_and_disjoint():
    X = torch.arange(20, dtype=torch.float64).view(10, 2)
    y = torch.zeros(10, 1, dtype=torch.float64)
    a, b = split(X, y, 0.3, seed=1), split(X, y, 0.3, seed=1)
    assert torch.equal(a.X_train, b.X_train) and a.X_test.shape == (3, 2) and a.X_train.shape == (7, 2)
    rows = {tuple(r) for r in torch.cat([a.X_train, a.X_test]).tolist()}
    assert len(rows) == 10


def test_standardize_fits_on_train():
    X, y = make_dataset("gauss", 200)
    s = split(X, y, 0.25, seed=0, standardize=True)
    torch.testing.assert_close(s.X_train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(s.X_train.std(0, unbiased=False), torch.ones(2, dtype=torch.float64))
    # undoing the standardisation gives back the original points
    raw = {tuple(round(v, 9) for v in r) for r in X.tolist()}
    back = torch.cat([s.X_train, s.X_test]) * s.std + s.mean
    assert {tuple(round(v, 9) for v in r) for r in back.tolist()} == raw


@pytest.mark.parametrize("n,fraction", [(2, 0.1), (3, 0.9), (1, 0.5)])
def test_too_few_samples_for_the_split(n, fraction):
    X, y = torch.zeros(n, 2, dtype=torch.float64), torch.zeros(n, 1, dtype=torch.float64)
    with pytest.raises(DataError, match="too few samples for the split"):
        split(X, y, fraction, 0)
