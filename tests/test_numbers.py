"""A number is written in ASCII without underscores, on every script's command line as in a CSV file: Python's int
and float read `0_5` as 5 (a slip for 0.5 trained at ten times the rate) and other scripts' digits as digits."""

import pytest
from conftest import load_script

from torch_tanhnet.numbers import integer, real
from torch_tanhnet.sweep.space import INTEGER, NUMBER
from torch_tanhnet.training.config import ConfigError

SLIPS = ["1_0", "0_5", "\u0661", "\uff15", "\u0660.\u0665", "1e1_0"]  # underscores; Arabic-Indic, fullwidth digits


@pytest.mark.parametrize("text", SLIPS)
def test_what_pythons_int_and_float_read_and_a_person_does_not_write_is_no_number(text):
    with pytest.raises(ValueError):
        real(text)
    if "." not in text and "e" not in text:
        with pytest.raises(ValueError):
            integer(text)


def test_numbers_as_written_are_read_as_python_reads_them():
    assert [real(t) for t in ("0.5", "-1e-3", " 2 ", "+.5", "1E3")] == [0.5, -1e-3, 2.0, 0.5, 1000.0]
    assert [integer(t) for t in ("10", "-3", " 7 ", "+4")] == [10, -3, 7, 4]


@pytest.mark.parametrize("script", ["train", "sweep", "check_gradients"])
def test_every_number_flag_of_the_scripts_refuses_them_in_one_line(script, capsys):
    parser = load_script(script).build_parser()
    flags = [a for a in parser._actions if a.type in (integer, real)]
    assert flags, script
    for action in flags:
        for text in ("1_0", "\uff15"):
            with pytest.raises(SystemExit) as e:
                parser.parse_args([action.option_strings[0], text])
            assert e.value.code == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            kind = "int" if action.type is integer else "float"
            assert err == f"{parser.prog}: error: argument {action.option_strings[0]}: invalid {kind} value: {text!r}"


NEGATIVES = ["-1e-3", "-1E3", "-.5e1", "-inf", "-Infinity", "-nan", "-0.5", "-2"]


@pytest.mark.parametrize("script", ["train", "sweep", "check_gradients", "bench"])
def test_a_negative_number_after_any_flag_is_that_flags_value_not_an_unknown_option(script, capsys):
    """argparse took a word after a flag for a value only when it looked like -1 or -.5: `--lr -1e-3` and
    `--lr -inf` said "expected one argument" (`--lr 0.1 -inf` in a sweep: "unrecognized arguments")."""
    parser = load_script(script).build_parser()
    flags = [a for a in parser._actions if a.option_strings and a.nargs != 0 and a.option_strings[0] != "-h"]
    assert len(flags) >= 4, script
    for action in flags:
        flag = action.option_strings[0]
        for text in NEGATIVES:
            argv = [flag, text] if action.nargs != "+" else [flag, "1", text]
            try:
                args = parser.parse_args(argv)
            except SystemExit as e:
                err = capsys.readouterr().err.strip().splitlines()
                assert e.code == 2 and err[-1].startswith(f"{parser.prog}: error: argument {flag}"), (argv, err[-1:])
                assert "expected" not in err[-1] and "unrecognized" not in err[-1], (argv, err[-1])
            else:
                value = getattr(args, action.dest)
                value = value[-1] if isinstance(value, list) else value
                assert value == text or str(value) == str(action.type(text)), (argv, value)


@pytest.mark.parametrize("name", sorted(INTEGER | NUMBER))
def test_every_setting_value_and_range_of_sweep_py_refuses_them(name):
    sweep = load_script("sweep")
    for text in ("1_0", "\uff15", "0.1:1_0"):
        if ":" in text and name not in NUMBER:
            continue
        with pytest.raises(ConfigError, match=f"^argument --{name.replace('_', '-')}: "):
            sweep.parse_value(name, text)


def test_sweep_py_seeds_and_bench_py_refuse_them(capsys):
    for seeds in (["1_0"], ["0:1_0"], ["\uff13"], ["1", "2_0"]):
        with pytest.raises(ConfigError, match="^argument --seeds: expected N, A:B or several integers, got "):
            load_script("sweep").parse_seeds(seeds)
    with pytest.raises(SystemExit) as e:
        load_script("bench").main(["--sizes", "2_56"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().endswith("error: argument --sizes: invalid int value: '2_56'")


HUGE = 10**400  # past a float: memory estimates, math.isfinite and TensorBoard's float() overflowed on it


@pytest.mark.parametrize("text, digits", [(str(HUGE), 401), ("-" + str(HUGE), 401),
                                          ("1" * 5000, 5000)])  # past int()'s own limit of 4300 digits
def test_an_integer_past_a_float_is_refused_naming_its_size_not_its_digits(text, digits):
    from torch_tanhnet.numbers import OutOfRange

    with pytest.raises(OutOfRange, match=rf"^must be within ±2\*\*63, got an integer of {digits} digits$"):
        integer(text)
    assert integer(str(2**64)) == 2**64  # the setting's own check refuses it, naming its own range


@pytest.mark.parametrize("script, argv", [("train", ["--hidden"]), ("check_gradients", ["--n"]),
                                          ("bench", ["--sizes"]), ("bench", ["--ensemble", "--models"])])
def test_the_scripts_refuse_an_integer_past_an_int64_in_one_line(script, argv, capsys):
    module = load_script(script)
    with pytest.raises(SystemExit) as e:
        (module.main if script == "bench" else lambda a: module.build_parser().parse_args(a))([*argv, str(HUGE)])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f"error: argument {argv[-1]}: must be within ±2**63, got an integer of 401 digits")
    with pytest.raises(ConfigError, match=r"^argument --epochs: must be within ±2\*\*63, got an integer of 401 "):
        load_script("sweep").parse_value("epochs", str(HUGE))


@pytest.mark.parametrize("name", ["lr", "hidden", "epochs", "noise", "n_samples", "batch_size", "seed"])
def test_a_setting_past_an_int64_from_python_is_one_config_error(name):
    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.sweep.space import Range
    from torch_tanhnet.training import TrainConfig

    for value in (HUGE, -HUGE):
        with pytest.raises(ConfigError, match=r"^seed: must be an integer in \[0, 2\*\*32\)" if name == "seed" else
                           rf"^{name}: must be within ±2\*\*63, got an integer of 401 digits$"):
            TrainConfig(**{name: value}).validate()
        if name == "seed":  # a sweep's seeds: the range of a run's seed, the value cut short
            with pytest.raises(ConfigError, match=r"^seeds: each seed must be an integer in \[0, 2\*\*32\), got "
                                                  r"-?10+\.\.\.$"):
                SweepConfig(seeds=[value]).validate()
            continue
        with pytest.raises(ConfigError, match=rf"^{name}: must be within ±2\*\*63"):
            SweepConfig(values={name: [value]}).validate()
    with pytest.raises(ConfigError, match=r"^lr: a range's ends must be within ±2\*\*63, got an integer of 401 "):
        SweepConfig(values={"lr": [Range(1e-3, HUGE)]}, random=2).validate()


def test_the_same_class_elsewhere_dist_timeout_sweep_settings_and_long_values(capsys):
    """From a review: --dist-timeout 1e14 overflowed timedelta under torchrun (a traceback: now at most 1e9 s where
    torch takes it, the setting itself any positive number); the sweep's own integer
    settings had no int64 bound; a random seed, check_gradients.py's seed and bench.py's N of 300 digits were
    printed whole; bench.py blamed --models and --sizes where --sizes alone could not fit."""
    from datetime import timedelta

    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.training import TrainConfig, distributed

    for config in (TrainConfig(dist_timeout=1e14), SweepConfig(dist_timeout=1e14)):
        config.validate()  # "never": taken (a cap refused sweeps saved with one), and bounded where torch takes it
    asked = []
    real_init = distributed.dist.init_process_group
    distributed.dist.init_process_group = lambda backend, timeout: asked.append(timeout)
    try:
        distributed.init_process_group("gloo", 0, 1, 1e14)
    finally:
        distributed.dist.init_process_group = real_init
    assert asked == [timedelta(seconds=1e9)]
    with pytest.raises(ConfigError, match=r"^gallery: must be within ±2\*\*63, got an integer of 20 digits$"):
        SweepConfig(gallery=2**64).validate()
    with pytest.raises(ConfigError, match=r"^random_seed: .*, got 10+\.\.\.$"):
        SweepConfig(random_seed=10**200).validate()
    assert load_script("check_gradients").main(["--seed", str(10**200)]) == 2
    assert capsys.readouterr().err.strip().endswith("got 1000000000000000000000000000000000000...")
    assert load_script("bench").main(["--ensemble", "--models", "1", "--sizes", str(10**200)]) == 2
    assert "error: argument --sizes: 1 networks at N = 1000000000000000000000000000000000000... would need" in \
        capsys.readouterr().err


def test_a_finite_number_past_a_float_is_named_as_written_not_as_inf(capsys):
    """--lr 1e400 (or 400 digits) said "must be a positive number, got inf": float() made an infinity the user did
    not write. In a CSV file it is still a number, which the features' finite check names."""
    from torch_tanhnet.numbers import OutOfRange

    for text in ("1e400", "-1e400", "1" + "0" * 400):
        with pytest.raises(OutOfRange, match=r"^must be within a float's range \(±1\.8e308\), got -?1"):
            real(text)
    assert real("inf") == float("inf") and real("-Infinity") == float("-inf")
    with pytest.raises(SystemExit):
        load_script("train").build_parser().parse_args(["--lr", "1e400"])
    assert capsys.readouterr().err.strip().endswith("argument --lr: must be within a float's range (±1.8e308), "
                                                    "got 1e400")
    with pytest.raises(ConfigError, match=r"^argument --lr: must be within a float's range"):
        load_script("sweep").parse_value("lr", "1e400")


def test_a_fraction_past_a_float_and_a_nul_in_a_name_are_one_config_error():
    """From Python (re-probe): Fraction(10**400) overflowed float() in the settings' conversion (OverflowError), and
    a NUL in logdir or data reached open() ("embedded null byte", naming no setting)."""
    from fractions import Fraction

    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.sweep.space import Range
    from torch_tanhnet.training import TrainConfig

    huge = r"must be within a float's range \(±1\.8e308\), got a number too large for a float$"
    for name in ("lr", "init_scale", "noise"):
        with pytest.raises(ConfigError, match=rf"^{name}: {huge}"):
            TrainConfig(**{name: Fraction(HUGE, 3)}).validate()
    with pytest.raises(ConfigError, match=rf"^lr: {huge}"):
        SweepConfig(values={"lr": [Fraction(HUGE)]}).validate()
    with pytest.raises(ConfigError, match=rf"^lr: a range's ends {huge}"):
        SweepConfig(values={"lr": [Range(Fraction(1, 10), Fraction(HUGE))]}, random=2).validate()
    with pytest.raises(ConfigError, match=rf"^solved_at: {huge}"):
        SweepConfig(solved_at=Fraction(HUGE)).validate()
    with pytest.raises(ConfigError, match=r"^hidden: must be an integer, got Fraction\(3, 1\)$"):
        TrainConfig(hidden=Fraction(3)).validate()  # a Fraction that fits is still of the wrong kind
    assert TrainConfig(lr=Fraction(1, 4)).validate() is None
    nul = r"holds a NUL character, which no file or folder name can: "
    for config, name in ((TrainConfig(logdir="a\0b"), "logdir"), (TrainConfig(data="d\0.csv"), "data"),
                         (SweepConfig(logdir="s\0x"), "logdir"), (SweepConfig(values={"data": ["d\0"]}), "data")):
        with pytest.raises(ConfigError, match=rf"^{name}: {nul}"):
            config.validate()


def test_a_number_below_a_float_and_a_negative_zero_are_named_as_written(capsys):
    """--lr 1e-400 said "must be a positive number, got 0.0"; a file of -0 labels warned "every label ... is -0";
    --noise -0 named a run's folder "...-noise-0" and saved -0.0 (re-probe)."""
    import math

    import torch

    from torch_tanhnet.numbers import OutOfRange
    from torch_tanhnet.training import TrainConfig
    from torch_tanhnet.training.data import label_advice

    with pytest.raises(OutOfRange, match=r"^must be 0 or at least a float's smallest \(5e-324\), got 1e-400, "):
        real("1e-400")
    assert real("0e-5") == 0.0 and real("-0.0") == 0.0 and real("5e-324") > 0
    assert real("0e-99999999999999999999") == 0.0  # a zero whose exponent Decimal refused (InvalidOperation)
    with pytest.raises(OutOfRange, match="rounds to 0"):
        real("1e-99999999999999999999")
    with pytest.raises(ConfigError, match=r"^argument --lr: must be 0 or at least a float's smallest"):
        load_script("sweep").parse_value("lr", "1e-400")
    assert str(label_advice(torch.full((5, 1), -0.0), "of the training set")).startswith(
        "every label of the training set is 0: the network can only learn to say 0 everywhere")
    config = TrainConfig(noise=-0.0, weight_decay=-0.0)
    config.validate()
    assert math.copysign(1, config.noise) == 1 and math.copysign(1, config.weight_decay) == 1


def test_a_range_whose_end_is_past_a_float_says_so():
    """sweep.py --lr 1e-400:0.1 said "a range is LOW:HIGH or LOW:HIGH:log" (review)."""
    for text, why in (("1e-400:0.1", "must be 0 or at least a float's smallest"), ("0.1:1e400", "must be within")):
        with pytest.raises(ConfigError, match=rf"^argument --lr: a range's ends {why}"):
            load_script("sweep").parse_value("lr", text)


def test_a_setting_of_the_wrong_kind_is_named_cut_short():
    """TrainConfig(seed=Fraction(10**400)) gave a line of 445 characters (review)."""
    from fractions import Fraction

    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.training import TrainConfig

    for config, name in ((TrainConfig(seed=Fraction(HUGE)), "seed"), (SweepConfig(random_seed=Fraction(HUGE)),
                                                                       "random_seed")):
        with pytest.raises(ConfigError, match=rf"^{name}: must be an integer, got Fraction\(1000+\.\.\.$"):
            config.validate()


def test_take_negatives_refuses_a_parser_with_an_option_a_negative_number_would_shadow():
    import argparse

    from torch_tanhnet.numbers import take_negatives

    parser = argparse.ArgumentParser()
    parser.add_argument("-1", dest="one", action="store_true")
    with pytest.raises(ValueError, match=r"options \['-1'\] read as negative numbers"):
        take_negatives(parser)


@pytest.mark.parametrize("field, value, dtype", [("lr", 1e-320, "float32"), ("lr", 1e-40, "float32"),
                                                 ("init_scale", 1e-300, "float32"), ("lr", 1e-310, "float64"),
                                                 ("init_scale", 5e-324, "float64")])
def test_a_rate_or_scale_that_is_zero_in_the_runs_dtype_is_refused(field, value, dtype):
    """--lr 1e-320 trained 50 steps and left the weights bit for bit as drawn; --init-scale 1e-300 made them all ±0, a
    saddle no step leaves: exit 0, silently. Below the dtype's smallest normal number they are refused (1e-30 is
    taken, in either dtype)."""
    from torch_tanhnet.training import TrainConfig

    with pytest.raises(ConfigError, match=rf"^{field}: {value:g} is below {dtype}'s smallest normal number \("):
        TrainConfig(**{field: value, "dtype": dtype}).validate()
    TrainConfig(**{field: 1e-30, "dtype": dtype}).validate()
