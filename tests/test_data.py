"""Data: seeded generators, a user's CSV with line-numbered errors, the seeded split."""

import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torch_tanhnet.training.data import GENERATORS, DataError, check_representable, load_csv, make_dataset, split


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
    ("# my points\n1,2,0\n", r"d.csv:1: '# my points' looks like a comment, and the file holds a header line and "
                               r"rows of x1, x2, label only: remove it$"),
    ("# made by gen.py, seed 3, n=200\nx1,x2,label\n1,2,0\n", r"d.csv:1: '# made by gen.py,seed 3,n=200' looks like a "
                                                           r"comment"),  # three fields: read as a header once
    ("1,2,0\n# a note\n", r"d.csv:2: '# a note' looks like a comment"),
    ("1,2,0\n1,x,1\n", r"d.csv:2: expected numbers, got '1,x,1'"),
    ("1,2,0\n1_000,2,1\n", r"d.csv:2: expected numbers, got '1_000,2,1'"),  # Python's float read 1000
    ("1,2,0\n\uff11,2,1\n", r"d.csv:2: expected numbers, got '\uff11,2,1'"),  # a fullwidth 1, read as 1
    ("1,2,0\n1,2,\u0661\n", r"d.csv:2: expected numbers, got '1,2,\u0661'"),  # an Arabic-Indic 1: a label 1
    ("\uff11,\uff12,\uff11\n1,2,0\n", r"d.csv:1: expected numbers, got '\uff11,\uff12,\uff11'"),  # no header
    ("1_0,2_0,1\n1,2,0\n", r"d.csv:1: expected numbers, got '1_0,2_0,1'"),  # a typo'd first row, not a header
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


# files as users bring them: a byte-order mark, a header or none, and files that are not CSV text at all

ROWS = "0.1,0.2,1\n0.2,0.1,0\n0.3,0.3,1\n"


@pytest.mark.parametrize("header", ["", "x1,x2,label\n", "a,b,c\n", "\n\nx,y,class\n", '"x 1","x 2","label"\n'])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["utf-8", "utf-8-bom"])
def test_every_data_row_is_read_with_or_without_a_header_or_a_byte_order_mark(tmp_path, header, bom):
    p = tmp_path / "d.csv"
    p.write_bytes(bom + (header + ROWS).encode())
    X, y = load_csv(p)
    assert X.tolist() == [[0.1, 0.2], [0.2, 0.1], [0.3, 0.3]] and y.flatten().tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("first", ["0.1,0.2x,1", "0.1,,1", "0.1,0.2,one", "O.1,0.2,1", "0.1;0.2;1", "1,2,0,7"])
def test_a_first_row_with_any_number_in_it_is_data_and_its_fault_names_line_1(tmp_path, first):
    # only a row with no number at all is a header: a typo in one number is an error, not a silent drop
    p = tmp_path / "d.csv"
    p.write_text(first + "\n" + ROWS)
    with pytest.raises(DataError, match=r"d\.csv:1: "):
        load_csv(p)


def hostile_files():
    import gzip

    csv_text = ("x1,x2,label\n" + ROWS).encode()
    return {
        "gzip": gzip.compress(csv_text),
        "utf-16": csv_text.decode().encode("utf-16"),
        "utf-16-le-no-bom": csv_text.decode().encode("utf-16-le"),
        "latin-1": "x1,x2,étiquette\n".encode("latin-1") + ROWS.encode(),
        "invalid-utf-8-midway": ROWS.encode() + b"0.4,\xff\xfe,1\n",
        "nul-bytes": ROWS.encode() + b"0.4,0.5\x00,1\n",
        "binary": bytes(range(256)) * 8,
        "png-header": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "field-over-csv-limit": ROWS.encode() + b"1" * 200_000 + b",2,0\n",
        "one-long-line": b"1," * 100_000 + b"0\n",
    }


@pytest.mark.parametrize("kind", list(hostile_files()))
def test_a_file_that_is_not_a_text_csv_is_a_data_error_naming_it(tmp_path, kind):
    p = tmp_path / "d.csv"
    p.write_bytes(hostile_files()[kind])
    with pytest.raises(DataError, match=r"^" + str(p).replace(".", r"\.") + r"(:\d+)?: "):
        load_csv(p)


def test_a_folder_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="not a regular file"):
        load_csv(tmp_path)


@given(st.binary(max_size=400))
def test_any_bytes_give_checked_rows_or_a_data_error(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("csv") / "d.csv"
    p.write_bytes(data)
    check_rows_or_data_error(p)


@given(st.text(alphabet="01.,-+e\n\r\"xnaif \t\ufeff\x00é;", max_size=200))
def test_any_csv_like_text_gives_checked_rows_or_a_data_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("csv") / "d.csv"
    p.write_text(text, encoding="utf-8")
    check_rows_or_data_error(p)


def check_rows_or_data_error(p):
    try:
        X, y = load_csv(p)
    except DataError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert X.dtype == y.dtype == torch.float64 and X.shape == (y.shape[0], 2) and y.shape[1] == 1
    assert torch.isfinite(X).all() and set(y.flatten().tolist()) <= {0.0, 1.0}


@given(st.lists(st.tuples(st.floats(allow_nan=False, allow_infinity=False),
                          st.floats(allow_nan=False, allow_infinity=False)), min_size=4, max_size=30),
       st.booleans(), st.sampled_from([torch.float32, torch.float64]))
def test_any_finite_features_are_kept_in_the_dtype_or_refused(points, standardize, dtype):
    # whatever finite float64 features come: the model's inputs are finite in its dtype, or it is a DataError
    X = torch.tensor(points, dtype=torch.float64)
    y = (torch.arange(len(points)) % 2).double().unsqueeze(1)
    try:
        s = split(X, y, 0.25, seed=0, standardize=standardize)
        check_representable(s, dtype)
    except DataError as e:
        assert "feature x" in str(e) and "\n" not in str(e)
        return
    for t in (s.X_train, s.X_test):
        assert t.to(dtype).isfinite().all()
        assert not ((t.to(dtype) == 0).all(0) & (t != 0).any(0)).any()  # no feature lost to underflow


@given(st.integers(-300, 300), st.integers(0, 2**16))
def test_standardised_features_are_the_same_at_any_scale(exponent, seed):
    """--standardize on a feature of 1e-170s: the squares of its deviations vanished (below float64's normal
    numbers), its deviation read 0, and the feature was taken as constant: only centred, the network saw 1e-170s and
    learnt nothing (test accuracy 0.45 where the same data at scale 1 reached 0.95), silently."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = (X[:, :1] > 0).double()
    scaled = X * torch.tensor([10.0 ** exponent, 1.0], dtype=torch.float64)
    a, b = split(X, y, 0.25, seed=0, standardize=True), split(scaled, y, 0.25, seed=0, standardize=True)
    for p, q in ((a.X_train, b.X_train), (a.X_test, b.X_test)):
        torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-12)


def test_features_near_float64s_limit_are_standardised_unless_a_test_value_lies_beyond_it():
    """Their squares overflow (the mean and deviation come from the feature scaled to ±1; an all-zero feature beside
    gave 0/0 there), and x − mean of values of both signs (halves then); refused only where the standardised value
    itself is past float64: a test sample at −1e308 when every training one is 1e308 (a constant: std 1)."""
    X = torch.zeros(20, 3, dtype=torch.float64)
    X[:, 0], X[5, 0], X[:, 1] = 1e308, -1e308, torch.arange(20.0)  # x3 all zero
    y = (torch.arange(20) % 2).double().unsqueeze(1)
    s = split(X, y, 0.25, seed=2, standardize=True)  # the −1e308 row trains
    assert s.X_train.isfinite().all() and s.X_test.isfinite().all() and (s.X_train[:, 2] == 0).all()
    assert s.X_train[:, 0].mean().abs() < 1e-12 and (s.X_train[:, 0].std(unbiased=False) - 1).abs() < 1e-12
    with pytest.raises(DataError, match=r"^feature x1 cannot be standardised: with values up to 1e\+308 "
                                        r"standardising it overflows float64; rescale the data$"):
        split(X, y, 0.25, seed=0, standardize=True)  # it tests


@pytest.mark.parametrize("noise, dtype", [(1e39, "float32"), (1e308, "float64"), (1e308, "float32")])
def test_a_noise_that_puts_a_built_in_sets_points_past_the_dtype_names_the_noise(noise, dtype):
    """--noise 1e308 said "feature x1 has the value -inf ...; rescale the data, or use --standardize or a --dtype of
    float64" to a float64 run on a built-in data set: the noise is what to change."""
    from torch_tanhnet.training.config import ConfigError, TrainConfig
    from torch_tanhnet.training.setup import load_split

    given = re.escape(f"{noise:g}")
    with pytest.raises(ConfigError, match=rf"^noise: {given} puts the xor points out to .*, beyond {dtype}'s range "
                                          r"\(±.*\); choose a smaller noise$"):
        load_split(TrainConfig(dataset="xor", noise=noise, dtype=dtype))
    load_split(TrainConfig(dataset="xor", noise=1e30, dtype="float32"))  # far out, but representable: taken


@pytest.mark.parametrize("header", ["label,x1,x2", "x1,Label,x2", "y,x1,x2", " Target , x , x2", "class,x1,x2",
                                    "x2,x1,label", "X_2,x 1,y", "label,feature 1,feature 2", "y,x,f2"])
def test_a_header_that_names_the_columns_in_another_order_is_refused(tmp_path, header):
    """The reader takes x1, x2, label by place: `label,x1,x2` trained a network to predict x2 from the label and x1,
    and reported accuracy 1.000 on the wrong problem."""
    with pytest.raises(DataError, match=r"h\.csv:1: the header .* names the columns in another order \(.*\); the "
                                        r"columns are read as x1, x2, label in that order"):
        load_csv(write(tmp_path, f"{header}\n0.5,1,0\n-2,0.3,1\n", "h.csv"))


@pytest.mark.parametrize("header", ["x1,x2,label", "a,b,c", "x,y,label", "feature 1,feature 2,class", "lon,lat,y",
                                    "x,y,z", "x,y,value", "X,Y,is_positive", "x,y,etiqueta", "x,y,Klasse", "y,a,b"])
def test_a_header_in_the_readers_order_or_naming_no_order_is_read(tmp_path, header):
    X, y = load_csv(write(tmp_path, f"{header}\n0.5,1,0\n-2,0.3,1\n", "h.csv"))
    assert X.tolist() == [[0.5, 1.0], [-2.0, 0.3]] and y.flatten().tolist() == [0.0, 1.0]


def test_the_scale_warning_shows_a_features_spread():
    """Features of 1e5 ± 3 read "x1 in [1e+05, 1e+05]" at three digits, hiding the spread that --standardize
    would use: as many digits as show it."""
    from torch_tanhnet.training.data import scale_advice

    X = torch.tensor([[1e5 - 3, 0.5], [1e5 + 3, 0.7]], dtype=torch.float64)
    assert "(x1 in [99997, 100003], x2 in [0.5, 0.7];" in str(scale_advice(X))
    X = torch.tensor([[50.0, 0.5], [56.0, 0.7]], dtype=torch.float64)
    assert "(x1 in [50, 56], x2 in [0.5, 0.7];" in str(scale_advice(X))
    X = torch.tensor([[7.0, 0.5], [7.0, 0.7]], dtype=torch.float64)  # one value: as it is
    assert "(x1 in [7, 7]," in str(scale_advice(X))


def test_a_data_file_name_too_long_for_the_system_is_a_data_error(tmp_path):
    """Path.exists raises for a name past the system's limit (ENAMETOOLONG): train.py blamed saving its run's files
    ('cannot save the run's files in ...', exit 1), sweep.py its first checkpoint."""
    with pytest.raises(DataError, match=r"^data file '.*a{300}\.csv' cannot be read \(File name too long\)$"):
        load_csv(tmp_path / ("a" * 300 + ".csv"))
