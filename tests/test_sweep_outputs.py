"""What a finished sweep leaves: results.csv, sweep.json, the HParams tab, curves per setting, pictures, the table."""

import csv
import json
import statistics

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard_reader import hparams_tab, ticked_by_default

from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.results import FINAL, table
from torch_tanhnet.sweep.runner import sweep
from torch_tanhnet.sweep.space import SWEEPABLE

SEEDS = [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("sweep") / "xor"
    config = SweepConfig(values={"dataset": ["xor"], "n_samples": [120], "epochs": [150], "hidden": [1, 3],
                                 "lr": [0.5, 1.0]}, seeds=SEEDS, logdir=str(logdir), progress=False, gallery=2)
    return sweep(config), logdir


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_results_csv_has_a_row_per_run_with_train_py_names_and_the_tags(finished):
    result, logdir = finished
    rows = read_csv(logdir / "results.csv")
    assert len(rows) == 4 * len(SEEDS)
    columns = {"seed", *FINAL, "solved", "steps_to_solve", "diverged_at", "run", "setting"}
    assert set(SWEEPABLE) | columns <= set(rows[0])
    for got, want in zip(rows, result.results.rows):
        assert int(got["run"]) == want["run"] and int(got["seed"]) == want["seed"]
        assert int(got["hidden"]) == want["hidden"] and float(got["lr"]) == want["lr"]
        assert got["dataset"] == "xor" and got["batch_size"] == "" and got["noise"] == ""  # None: an empty cell
        for tag in FINAL:
            assert float(got[tag]) == want[tag]  # repr of a float reads back exactly
        assert got["solved"] in ("True", "False") and (got["solved"] == "True") == (float(got["accuracy/test"]) >= 0.95)
        assert got["steps_to_solve"] == "" or 10 <= int(got["steps_to_solve"]) <= 150
    assert [int(r["seed"]) for r in rows[:5]] == SEEDS and {r["setting"] for r in rows[:5]} == {"hidden=1,lr=0.5"}


def test_sweep_json_holds_the_sweep_settings(finished):
    result, logdir = finished
    data = json.loads((logdir / "sweep.json").read_text())
    assert data["sweep"]["values"]["hidden"] == [1, 3] and data["sweep"]["seeds"] == SEEDS
    assert data["swept"] == ["hidden", "lr"] and data["runs"] == 20
    assert [s["name"] for s in data["settings"]] == ["hidden=1,lr=0.5", "hidden=1,lr=1", "hidden=3,lr=0.5",
                                                     "hidden=3,lr=1"]
    assert [g["hidden"] for g in data["groups"]] == [1, 3]


def metric(entry, tag):
    return next(m["value"] for m in entry["metricValues"] if m["name"]["tag"] == tag)


def test_hparams_lists_every_run_grouped_by_setting_with_averaged_metrics(finished):
    result, logdir = finished
    experiment, groups = hparams_tab(logdir)
    names = {h["name"] for h in experiment["hparamInfos"]}
    assert {"hidden", "lr", "init_scale", "dataset"} <= names and "seed" not in names
    # the swept ones, then the settings a run is read by, five in all: the tab's unasked columns
    assert ticked_by_default(experiment) == ["dataset", "epochs", "hidden", "lr", "optimizer"]
    metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert metrics[:2] == ["session/solved", "session/steps_to_solve"]  # the tab ticks the first five
    # column names of one or two words: a three-line name pushed steps to solve off a 1600-pixel screen (Chromium)
    assert [m["displayName"] for m in experiment["metricInfos"]][:2] == ["solved (share)", "steps to solve"]
    assert all(len(m["displayName"]) <= 16 for m in experiment["metricInfos"])
    assert experiment["metricInfos"][0]["description"].startswith("1 if the run solved it, else 0")
    assert sorted(g["name"] for g in groups) == sorted(s.name for s in result.results.summaries)
    rows = {(r["setting"], r["seed"]): r for r in result.results.rows}
    for group in groups:
        assert len(group["sessions"]) == len(SEEDS)
        hidden, lr = (float(part.split("=")[1]) for part in group["name"].split(","))
        assert group["hparams"]["hidden"] == hidden and group["hparams"]["lr"] == lr
        mine = [rows[(group["name"], int(s["name"].rsplit("=", 1)[1]))] for s in group["sessions"]]
        for s, row in zip(group["sessions"], mine):
            assert metric(s, "session/accuracy/test") == pytest.approx(row["accuracy/test"], rel=1e-6)
            assert metric(s, "session/solved") == float(row["solved"])
        # TensorBoard's own aggregation of the group: the mean over its runs
        mean_loss = statistics.mean(r["loss/test"] for r in mine)
        assert metric(group, "session/loss/test") == pytest.approx(mean_loss, rel=1e-6)
        assert metric(group, "session/solved") == pytest.approx(statistics.mean(float(r["solved"]) for r in mine))


def events(path):
    ea = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_curves_are_per_setting_median_and_band_across_seeds(finished):
    result, logdir = finished
    for summary in result.results.summaries:
        ea = events(logdir / summary.name)
        tags = set(ea.Tags()["scalars"])
        for m in ("loss/train", "loss/test", "accuracy/train", "accuracy/test"):
            assert {m, f"spread/{m}/p10", f"spread/{m}/p90"} <= tags
        steps = [e.step for e in ea.Scalars("loss/test")]
        assert steps == list(range(10, 151, 10))
        finals = [r["loss/test"] for r in result.results.rows if r["setting"] == summary.name]
        assert ea.Scalars("loss/test")[-1].value == pytest.approx(statistics.median(finals), rel=1e-5)
        low, high = ea.Scalars("spread/loss/test/p10")[-1].value, ea.Scalars("spread/loss/test/p90")[-1].value
        assert low <= statistics.median(finals) <= high
        share = ea.Scalars("solved/share")[-1].value
        assert share == pytest.approx(summary.share)
        assert ea.Tags()["images"] == ["gallery"]
    root = events(logdir)
    assert "answer/solved_share" in root.Tags()["images"]
    assert "custom_scalars__config__" in root.Tags()["tensors"]



def test_tensorboard_opens_on_the_curves_and_shows_the_heat_map_at_the_last_step(finished):
    """Time Series opens the first two groups of tags by name, over every run: accuracy and loss, not the sessions'
    single points (``final/``, which sorted second); the heat map is the share solved at the end (it said step 0)."""
    result, logdir = finished
    folders = {f.parent for f in logdir.rglob("events.out.tfevents.*")}
    groups = sorted({tag.split("/")[0] for f in folders for tag in events(f).Tags()["scalars"]})
    assert groups[:2] == ["accuracy", "loss"], groups
    assert [e.step for e in events(logdir).Images("answer/solved_share")] == [150]


def test_steps_to_solve_is_the_interpolated_median_of_the_runs_that_reached_it(tmp_path):
    """Interpolated as the loss's and accuracy's medians: torch.median, the lower of the two middle values, said 20
    where four runs reached the threshold at steps 60, 50, 20 and 20 (another sweep's), for 35; here four solved
    runs at 20, 20, 30 and 60: 25, not 20."""
    config = SweepConfig(values={"dataset": ["xor"], "n_samples": [120], "epochs": [150], "hidden": [5]},
                         seeds=list(range(7)), logdir=str(tmp_path / "sw"), progress=False, gallery=0)
    result = sweep(config).results
    reached = [r["steps_to_solve"] for r in result.rows if r["solved"]]
    middle = sorted(reached)[(len(reached) - 1) // 2:][:2]
    assert len(reached) % 2 == 0 and middle[0] != middle[1], reached  # where the two medians differ
    assert result.summaries[0].steps_to_solve == pytest.approx(statistics.median(reached))


def test_steps_to_solve_counts_the_solved_runs_alone(tmp_path):
    """Beside "25% (25)" the median was over every run that had ever reached the threshold (83 of them, 58 had lost
    it again): now over the solved runs, as the column beside it. results.csv keeps each run's first step there."""
    config = SweepConfig(values={"dataset": ["xor"], "hidden": [3], "lr": [1.0], "epochs": [600]},
                         seeds=list(range(30)), logdir=str(tmp_path / "sw"), progress=False, gallery=0)
    result = sweep(config).results
    lost = [r for r in result.rows if r["steps_to_solve"] is not None and not r["solved"]]
    solved = [r["steps_to_solve"] for r in result.rows if r["solved"]]
    assert lost and solved  # runs that reached 0.95 and ended below it, beside solved ones
    assert result.summaries[0].solved == len(solved)
    assert result.summaries[0].steps_to_solve == pytest.approx(statistics.median(solved))
    assert statistics.median(solved) != statistics.median(solved + [r["steps_to_solve"] for r in lost])
    # the HParams sessions likewise: a run that lost it has no steps to solve there, so TensorBoard's group mean is
    # over the solved runs, as the table's median (both were over every run that had reached it)
    for r in result.rows:
        tags = events(tmp_path / "sw" / "seeds" / r["setting"] / f"seed={r['seed']}").Tags()["scalars"]
        assert ("session/steps_to_solve" in tags) == r["solved"], r

def test_pictures_and_the_table(finished):
    result, logdir = finished
    names = sorted(p.name for p in (logdir / "pictures").iterdir())
    assert names == ["gallery-hidden=1,lr=0.5.png", "gallery-hidden=1,lr=1.png", "gallery-hidden=3,lr=0.5.png",
                     "gallery-hidden=3,lr=1.png", "solved.png"]
    text = table(result.plan, result.results.summaries)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["hidden", "lr", "runs", "solved"] and len(lines) == 5
    for line, s in zip(lines[1:], result.results.summaries):
        assert f"{100 * s.share:.0f}% ({s.solved})" in line


def test_a_sweep_beyond_tensorboards_500_runs_lists_its_settings_in_hparams(tmp_path):
    # 30 settings × 20 seeds = 600 runs: a session each would make TensorBoard select no run in its other tabs
    config = SweepConfig(values={"lr": [0.1 * (i + 1) for i in range(30)], "epochs": [20], "n_samples": [60]},
                         seeds=list(range(20)), logdir=str(tmp_path / "big"), progress=False, gallery=0)
    result = sweep(config)
    assert not (tmp_path / "big" / "seeds").exists()
    experiment, groups = hparams_tab(tmp_path / "big")
    assert len(groups) == 30 and all(len(g["sessions"]) == 1 for g in groups)
    for group in groups:
        summary = next(s for s in result.results.summaries if s.name == group["name"])
        assert group["sessions"][0]["name"] == summary.name  # the setting's own folder, beside its curves
        assert metric(group, "session/accuracy/test") == pytest.approx(summary.quantiles["accuracy/test"][1], rel=1e-6)
        assert metric(group, "session/solved") == pytest.approx(summary.share)
        assert group["hparams"]["batch_size"] == 48  # full batch: the training set's size


def test_an_accuracy_at_the_threshold_counts_as_solved_in_float32(tmp_path):
    # 19 of 20 test points right is 0.95 exactly; float32 would store 0.94999999 and call the run failed
    config = SweepConfig(values={"dataset": ["gauss"], "n_samples": [100], "noise": [0.6], "epochs": [30]},
                         seeds=list(range(40)), logdir=str(tmp_path / "edge"), progress=False, gallery=0)
    rows = sweep(config).results.rows
    at = [r for r in rows if round(r["accuracy/test"] * 20) == 19]
    assert at, "no run ended at 19 of 20: pick another noise"
    assert all(r["accuracy/test"] == 0.95 and r["solved"] for r in at)


def test_render_draws_a_network_of_the_ensemble_as_the_same_tanhnet():
    # the galleries draw ensemble[k] with training.render; it is the run's own network, so the picture is too
    import torch

    from torch_tanhnet import TanhNet
    from torch_tanhnet.ensemble import TanhNetEnsemble
    from torch_tanhnet.training.data import make_dataset, split
    from torch_tanhnet.training.render import decision_boundary_image

    data = split(*make_dataset("xor", 80, seed=3), 0.2, 3)
    ensemble = TanhNetEnsemble(4, 2, 3, seeds=[0, 1, 2, 3])
    torch.manual_seed(2)
    alone = TanhNet(2, 3)  # run 2 drawn as train.py draws it
    for net in (ensemble[2], alone):
        assert isinstance(net, TanhNet)
    a = decision_boundary_image(ensemble[2], data.X_train, data.y_train, data.mean, data.std, size=64)
    b = decision_boundary_image(alone, data.X_train, data.y_train, data.mean, data.std, size=64)
    assert (a == b).all()


def test_hparams_tells_data_files_of_one_name_apart_and_marks_dataset_as_differing(tmp_path):
    """--data run1/points.csv run2/points.csv: both showed dataset points.csv in the HParams tab (a training run's
    hparams give the file name), and the config marked hidden, not dataset, as what differs."""
    import torch

    g = torch.Generator().manual_seed(0)
    for folder, flip in (("run1", False), ("run2", True)):
        (tmp_path / folder).mkdir()
        X = torch.randn(40, 2, generator=g)
        y = ((X[:, 0] > 0) != flip).int()
        (tmp_path / folder / "points.csv").write_text("".join(f"{a:.4f},{b:.4f},{c}\n" for (a, b), c in
                                                              zip(X.tolist(), y.tolist())))
    files = [str(tmp_path / "run1" / "points.csv"), str(tmp_path / "run2" / "points.csv")]
    config = SweepConfig(values={"data": files, "epochs": [20]}, seeds=[0, 1], logdir=str(tmp_path / "sw"),
                         progress=False, gallery=1)
    sweep(config)
    experiment, groups = hparams_tab(tmp_path / "sw")
    assert "dataset" in {h["name"] for h in experiment["hparamInfos"] if h.get("differs")}
    assert sorted(group["hparams"]["dataset"] for group in groups) == ["run1/points.csv", "run2/points.csv"]


def test_a_gallerys_long_title_fits_its_picture():
    """A setting of five swept values named the gallery past its right edge; its type shrinks, then the picture
    widens. Captions are two lines (seed, then accuracy), large enough to read in TensorBoard's card."""
    from torch_tanhnet.sweep.pictures import font, gallery

    tile = np.full((160, 160, 3), 200, np.uint8)
    title = "hidden=3,lr=0.5,momentum=0.9,weight_decay=0.0001,init_scale=2"
    img = gallery(title, [(tile, "seed 0: test acc 0.96")], [], "solved: 1 of 1", "failed: 0 of 1")
    assert img.shape[1] >= font(18).getlength(title) + 20
    short = gallery("lr=0.5", [(tile, "seed 0: test acc 0.96")] * 3, [], "solved: 3 of 3", "failed: 0 of 3")
    assert short.shape[1] == 10 + 3 * (160 + 10)  # as wide as its tiles


def test_a_picture_cut_short_by_a_full_disk_is_not_left_and_its_error_names_it(full_disk):
    """A sweep that filled its disk left pictures/solved.png cut at 4096 bytes of 9163, and said "cannot write (No
    space left on device)", naming nothing: the write of bytes names no file."""
    from torch_tanhnet.sweep.board import png

    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)  # ~120 kB of PNG
    with pytest.raises(OSError) as info:
        png(noise, full_disk / "solved.png", "answer/solved_share")
    assert info.value.filename == str(full_disk / "solved.png") and "No space left" in str(info.value)
    assert list(full_disk.iterdir()) == []  # neither the cut picture nor its temporary file
