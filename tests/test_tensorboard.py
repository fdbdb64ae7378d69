"""What TensorBoard shows of a run, read through TensorBoard's own readers: the tag layout, the
Custom Scalars charts, the parameters as curves or histograms, the pictures' schedule and
captions, the handout's graph, the run names, the advice on badly scaled data."""

import io
import re
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard_reader import custom_scalars_layout

from torch_tanhnet.training import TrainConfig, logger, train
from torch_tanhnet.training.data import DataScaleWarning, scale_advice
from torch_tanhnet.training.logger import parameter_tags
from torch_tanhnet.training.loop import picture_due
from torch_tanhnet.training.setup import default_logdir, run_name


def tiny(logdir, **kw):
    base = {"n_samples": 60, "epochs": 6, "log_interval": 2, "image_interval": 10**6, "logdir": str(logdir),
            "progress": False}
    return TrainConfig(**{**base, **kw})


def events(logdir):
    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    ea.Reload()
    return ea


def picture(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def test_learning_leads_and_housekeeping_comes_last(tmp_path):
    train(tiny(tmp_path / "run"))
    tags = events(tmp_path / "run").Tags()
    # TensorBoard groups tags by their first part and sorts the groups by name; Time Series opens the first two
    groups = sorted({t.split("/")[0] for t in tags["scalars"] + tags["images"] + tags["histograms"]})
    assert groups[:4] == ["accuracy", "loss", "loss_hessian", "maps"]
    assert {"run", "tanh"} == set(groups[-2:])
    assert {"run/world_size", "run/step_ms", "run/lr", "tanh/saturation"} <= set(tags["scalars"])


def test_custom_scalars_put_train_and_test_on_one_chart(tmp_path):
    train(tiny(tmp_path / "run"))
    layout = custom_scalars_layout(tmp_path)
    categories = {c["title"]: {ch["title"]: ch["multiline"]["tag"] for ch in c["chart"]} for c in layout["category"]}
    assert list(categories)[:3] == ["learning", "norms", "landscape"]
    tags = events(tmp_path / "run").Tags()["scalars"]

    def matched(regexes):
        return sorted(t for t in tags if any(re.search(r, t) for r in regexes))

    learning = categories["learning"]
    assert [matched(r) for r in learning.values()] == [["loss/test", "loss/train"], ["accuracy/test", "accuracy/train"]]
    norms = list(categories["norms"].values())
    assert matched(norms[0]) == sorted(f"norm/grad/{n}" for n in ("U", "b", "W", "c", "total"))
    assert matched(norms[1]) == sorted(f"norm/param/{n}" for n in "UbWc")
    landscape = [matched(r) for r in categories["landscape"].values()]  # one chart each: the least's sign readable
    assert landscape == [["loss_hessian/min_eigenvalue"], ["loss_hessian/max_eigenvalue"]]
    per_tensor = [matched(r) for r in categories["parameters"].values()]
    assert [len(m) for m in per_tensor] == [6, 3, 3, 1]  # U, b, W, c of the seed's 2-3-1 network


def test_runs_shown_together_get_each_chart_once(tmp_path):
    """The Custom Scalars tab merges the runs' layouts by chart title: a run with the Hessian at every log beside one
    with it at the picture steps alone (and a third with none) showed the least eigenvalue twice, under two titles.
    Over runs of every kind, each chart's tags appear in one chart."""
    train(tiny(tmp_path / "every-log"))  # 13 parameters: the Hessian at every log
    train(tiny(tmp_path / "picture-steps", hidden=16, n_samples=400))  # N·P² > 10⁶: at the picture steps
    train(tiny(tmp_path / "none", hidden=40))  # 161 parameters: no Hessian
    charts = [(c["title"], ch["title"], tuple(ch["multiline"]["tag"])) for c in custom_scalars_layout(tmp_path)[
        "category"] for ch in c["chart"]]
    regexes = [regex for _, _, regex in charts]
    assert len(regexes) == len(set(regexes)), charts
    assert [title for category, title, _ in charts if category == "landscape"] == [
        "Hessian's least eigenvalue (below 0 where the gradient is ~0: a saddle; few points: read with smoothing 0)",
        "Hessian's greatest eigenvalue (the sharpest curvature)"]


def test_a_small_network_logs_each_parameter_as_a_curve(tmp_path):
    result = train(tiny(tmp_path / "run"))
    ea = events(tmp_path / "run")
    names = parameter_tags(3)
    assert names[:3] == ["param/U/u11", "param/U/u12", "param/U/u21"] and names[-1] == "param/c/c"
    assert set(names) <= set(ea.Tags()["scalars"]) and not ea.Tags()["histograms"]
    assert [e.step for e in ea.Scalars("param/W/w2")] == [0, 2, 4, 6]  # at step 0 and the log steps only
    final = {t: ea.Scalars(t)[-1].value for t in names}
    U = result.model.U.detach()
    assert final["param/U/u21"] == pytest.approx(U[1, 0].item())
    assert final["param/U/u32"] == pytest.approx(U[2, 1].item())
    assert final["param/W/w3"] == pytest.approx(result.model.W[0, 2].item())
    assert final["param/c/c"] == pytest.approx(result.model.c.item())


def test_a_small_network_logs_each_gradient_entry_as_a_curve(tmp_path):
    """ū11 … c̄ of the last step, as the parameters are (a student sees the backward's numbers, not their norms
    alone): from the first log after a step, each tensor's entries agreeing with its norm/grad curve."""
    train(tiny(tmp_path / "run"))
    ea = events(tmp_path / "run")
    names = [t.replace("param/", "param_grad/", 1) for t in parameter_tags(3)]
    assert set(names) <= set(ea.Tags()["scalars"])
    assert [e.step for e in ea.Scalars("param_grad/W/w2")] == [2, 4, 6]  # none at step 0: no step yet
    for tensor in "UbWc":
        entries = [ea.Scalars(t)[-1].value for t in names if t.startswith(f"param_grad/{tensor}/")]
        norm = ea.Scalars(f"norm/grad/{tensor}")[-1].value
        assert sum(v * v for v in entries) ** 0.5 == pytest.approx(norm, rel=1e-5)
    charts = {c["title"]: [ch["title"] for ch in c["chart"]] for c in custom_scalars_layout(tmp_path)["category"]}
    assert charts["gradients"][0] == "U-bar: u-bar_jk = sum_i g-bar_ij x_ik"


def test_a_wide_network_gets_histograms_instead(tmp_path):
    train(tiny(tmp_path / "run", hidden=16, image_interval=3))  # 81 parameters
    tags = events(tmp_path / "run").Tags()
    assert {f"param/{n}" for n in "UbWc"} | {f"param_grad/{n}" for n in "UbWc"} <= set(tags["histograms"])
    assert not any(t.startswith("param/") for t in tags["scalars"])
    assert not any(t.startswith("param_grad/") for t in tags["scalars"])
    assert not {"parameters", "gradients"} & {c["title"] for c in custom_scalars_layout(tmp_path)["category"]}


def test_parameter_names_stay_apart_from_ten_units():
    names = parameter_tags(15)
    assert len(names) == len(set(names)) == 61 and "param/U/u10,1" in names and "param/U/u1,1" in names


@pytest.mark.parametrize("interval, steps", [
    (500, [0, 10, 20, 50, 100, 200, 500, 1000, 1500, 2000]),
    (100, [0, 10, 20, 50, 100, 200, 300]),
    (7, [0, 7, 14, 21]),
])
def test_the_picture_schedule_is_log_like_then_every_interval(interval, steps):
    assert [s for s in range(steps[-1] + 1) if picture_due(s, interval)] == steps


def test_pictures_start_untrained_and_follow_the_schedule(tmp_path):
    train(tiny(tmp_path / "run", epochs=55, log_interval=7, image_interval=50))
    ea = events(tmp_path / "run")
    assert [e.step for e in ea.Images("maps/decision_boundary")] == [0, 10, 20, 50, 55]
    assert [e.step for e in ea.Images("maps/hidden_units")] == [0, 10, 20, 50, 55]


def test_pictures_read_at_card_size(tmp_path):
    train(tiny(tmp_path / "run", epochs=2))
    first = events(tmp_path / "run").Images("maps/decision_boundary")[0]
    img = picture(first)
    assert (first.width, first.height) == (img.shape[1], img.shape[0]) and first.width >= 500
    # the caption: dark type across the top band, its first line at least 20 px high, so that it stays
    # about 12 px high when TensorBoard shrinks the picture to a ~330 px card
    band = img[:80].min(axis=2) < 100
    rows = np.flatnonzero(band.any(axis=1))
    first_line = rows[rows < 40]
    assert first_line.max() - first_line.min() >= 20
    # the colour bar: orange at its top, blue at its bottom, right of the map
    bar = img[90:-70, -120:-80].reshape(-1, 3).astype(int)
    assert any(r > b + 100 for r, _, b in bar[:200]) and any(b > r + 100 for r, _, b in bar[-200:])


def test_the_hidden_units_form_a_readable_grid_at_16_units(tmp_path):
    train(tiny(tmp_path / "run", hidden=16, epochs=1))
    img = picture(events(tmp_path / "run").Images("maps/hidden_units")[0])
    height, width, _ = img.shape
    assert 500 < width < 650 and height > width  # four tiles of 128 px a row, four rows, a colour bar below


def test_the_graph_is_the_handouts(tmp_path):
    train(tiny(tmp_path / "run"))
    graph = events(tmp_path / "run").Graph()
    nodes = {n.name: list(n.input) for n in graph.node}
    assert nodes == {"X": [], "y": [], "U": [], "b": [], "W": [], "c": [], "G": ["X", "U", "b"], "H": ["G"],
                     "z": ["H", "W", "c"], "o": ["z"], "cost": ["z", "y"]}
    shapes = {n.name: [d.size for d in n.attr["_output_shapes"].list.shape[0].dim] for n in graph.node}
    assert shapes["U"] == [3, 2] and shapes["G"] == [-1, 3] and shapes["cost"] == []


def test_the_graphs_scalar_forms_fit_the_networks_sizes():
    # z_i = w_1 h_i1 + w_2 h_i2 + w_3 h_i3 + c was shown for 16 hidden units too
    from torch_tanhnet import TanhNet
    from torch_tanhnet.training.graph import seed_graph

    def equations(net):
        return {n.name: n.attr["equation"].s.decode() for n in seed_graph(net).node}

    handout, wide = equations(TanhNet(2, 3)), equations(TanhNet(5, 16))
    assert handout["z"].endswith("z_i = w_1 h_i1 + w_2 h_i2 + w_3 h_i3 + c")
    assert handout["G"].endswith("g_ij = u_j1 x_i1 + u_j2 x_i2 + b_j")
    assert wide["z"].endswith("z_i = sum_j w_j h_ij + c (j = 1..16)")
    assert wide["G"].endswith("g_ij = sum_k u_jk x_ik + b_j (k = 1..5)")
    assert "epsilon = (1/N) sum_i L(z_i, y_i)" in handout["cost"]


def test_run_names_lead_with_what_differs(tmp_path, monkeypatch):
    from datetime import datetime

    from torch_tanhnet.training import setup

    t = datetime(2026, 11, 30, 0, 3, 0)
    assert run_name(TrainConfig(), t) == "1130-000300-moons"
    assert run_name(TrainConfig(dataset="spiral", hidden=16, optimizer="adam", lr=0.02), t) == \
        "1130-000300-spiral-h16-adam-lr0.02"
    assert run_name(TrainConfig(data="some/pts.csv", standardize=True, seed=3), t) == "1130-000300-pts-std-seed3"
    assert run_name(TrainConfig(epochs=20), t) == "1130-000300-moons-e20"  # was the default's name
    changed = TrainConfig(momentum=0.5, init_scale=2.0, n_samples=300, noise=0.2, test_fraction=0.3, dtype="float64")
    assert run_name(changed, t) == "1130-000300-moons-m0.5-init2-n300-noise0.2-test0.3-float64"  # each was left out
    # what changes nothing is not named (moons' own noise, Adam's unused momentum); a long file name is cut, so that
    # the default folder can be made (past 255 bytes it failed: "File name too long", though no --logdir was given)
    same = TrainConfig(noise=0.1, optimizer="adam", lr=0.02, momentum=0.5)
    assert run_name(same, t) == "1130-000300-moons-adam-lr0.02"
    assert len(run_name(TrainConfig(data="d/" + "p" * 300 + ".csv"), t)) < 60
    monkeypatch.setattr(setup, "run_name", lambda config: "1130-000300-moons")  # three runs in one second
    taken = [setup.claim_logdir(default_logdir(TrainConfig(), root=tmp_path)) for _ in range(3)]
    assert [p.name for p in taken] == ["1130-000300-moons", "1130-000300-moons-2", "1130-000300-moons-3"]
    assert all(p.is_dir() for p in taken)  # each made by its claim


def test_features_far_from_the_networks_scale_are_pointed_out_once(tmp_path):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(80, generator=g), torch.randn(80, generator=g)
    rows = torch.stack([50 + 5 * a, -20 + 5 * b, (a + b > 0).double()], 1)
    csv = tmp_path / "far.csv"
    csv.write_text("".join(f"{x:.4f},{z:.4f},{int(lab)}\n" for x, z, lab in rows.tolist()))
    with pytest.warns(DataScaleWarning, match=r"x1 in \[3\d.*; standardize=True trains on") as caught:
        train(tiny(tmp_path / "far", data=str(csv)))
    assert len([w for w in caught if w.category is DataScaleWarning]) == 1
    assert [w.filename for w in caught if w.category is DataScaleWarning] == [__file__]  # at the train() call
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataScaleWarning)
        train(tiny(tmp_path / "std", data=str(csv), standardize=True))
        train(tiny(tmp_path / "moons"))


def test_train_py_names_the_setting_as_its_flag_in_the_warning(tmp_path, monkeypatch, capsys):
    """Python's words above (standardize=True), the command line's here (--standardize): one warning, two readers."""
    from conftest import load_script

    monkeypatch.chdir(tmp_path)
    (tmp_path / "far.csv").write_text("".join(f"{50 + i % 7},{i % 5},{i % 2}\n" for i in range(40)))
    with warnings.catch_warnings():  # printed through the script's formatwarning, as Python's own showwarning does
        warnings.simplefilter("always", DataScaleWarning)
        warnings.showwarning = lambda *a: sys.stderr.write(warnings.formatwarning(*a))
        assert load_script("train").main(["--data", "far.csv", "--epochs", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("train.py: warning: the features lie far from the network's scale (x1 in [50, 56]")
    assert err.endswith("; --standardize trains on (x - mean)/std\n") and err.count("\n") == 1, err


def test_labels_of_one_class_are_pointed_out_once_by_a_run_and_by_a_sweep(tmp_path):
    """A file whose labels are all 0 trained to 'accuracy 1.000' without a word (and a sweep of it called every run
    solved): the cost falls by saying 0 everywhere, and no boundary is learned."""
    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.sweep.runner import sweep
    from torch_tanhnet.training.data import DataLabelWarning

    for label in (0, 1):
        csv = tmp_path / f"all{label}.csv"
        csv.write_text("x1,x2,label\n" + "".join(f"{i % 7 / 3},{i % 5 / 2},{label}\n" for i in range(20)))
        with pytest.warns(DataLabelWarning, match=rf"^every label of the training set is {label}: ") as caught:
            train(tiny(tmp_path / f"run{label}", data=str(csv)))
        assert [w.filename for w in caught if w.category is DataLabelWarning] == [__file__]  # at the train() call
        with pytest.warns(DataLabelWarning, match=rf"^every label in '.*all{label}.csv' is {label}: ") as caught:
            sweep(SweepConfig(values={"data": [str(csv)], "epochs": [2]}, seeds=[0], logdir=str(tmp_path / f"s{label}"),
                              progress=False, gallery=0))
        assert [w.filename for w in caught if w.category is DataLabelWarning] == [__file__]
    both = tmp_path / "both.csv"
    both.write_text("".join(f"{i % 7 / 3},{i % 5 / 2},{i % 2}\n" for i in range(20)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataLabelWarning)
        train(tiny(tmp_path / "both", data=str(both)))
        sweep(SweepConfig(values={"data": [str(both)], "epochs": [2]}, seeds=[0], logdir=str(tmp_path / "sboth"),
                          progress=False, gallery=0))

def test_a_split_of_one_label_is_pointed_out_once_per_run_and_per_sweep(tmp_path):
    """A lopsided file (39 labels 1, one 0): the sweep checked the file alone, so the seeds whose training or test
    split held one label trained, and counted as solved at test accuracy 1.000, without a word (re-probe)."""
    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.sweep.runner import sweep
    from torch_tanhnet.training.data import DataLabelWarning

    csv = tmp_path / "lopsided.csv"
    csv.write_text("".join(f"{i / 10},{(i % 7) / 3},{1 if i else 0}\n" for i in range(40)))
    with pytest.warns(DataLabelWarning) as caught:
        sweep(SweepConfig(values={"data": [str(csv)], "epochs": [2]}, seeds=list(range(5)),
                          logdir=str(tmp_path / "s"), progress=False, gallery=0))
    lines = [str(w.message) for w in caught if w.category is DataLabelWarning]
    assert lines == ["of the 5 runs trained in this start, 1 trained on one label only and 4 tested on one label only "
                     "(run 2: seed 2): such a run can reach an accuracy of 1.000, and count as solved, by saying that "
                     "label everywhere; more samples or another test_fraction give each split both labels"], lines
    with pytest.warns(DataLabelWarning, match=r"^every label of the test set is 1: a network that says 1 everywhere "
                                              r"scores 1\.000 on it"):
        train(tiny(tmp_path / "run", data=str(csv), seed=1))

@pytest.mark.parametrize("scale, flagged", [(1.0, False), (2.4, False), (8.0, True), (1e-3, True)])
def test_scale_advice_flags_what_tanh_cannot_use(scale, flagged):
    X = torch.tensor([[-1.0, 0.5], [1.0, -0.5]], dtype=torch.float64) * scale
    assert (scale_advice(X) is not None) == flagged
    if flagged:  # a warning that names the setting as its reader does: its bare text held NUL markers
        advice = scale_advice(X)
        assert isinstance(advice, DataScaleWarning) and "\0" not in str(advice) + advice.for_command_line()
        assert str(advice).endswith("; standardize=True trains on (x - mean)/std")


def test_a_resumed_runs_events_file_sorts_after_the_ones_it_continues(tmp_path):
    # within one second, events files differ by pid and a per-process counter, which sort as text:
    # a resumed run's file must still come after the run's last one, or TensorBoard reads them out of order
    import os
    import socket
    import time

    from torch_tanhnet import TanhNet
    from torch_tanhnet.training.logger import Logger

    # this process's own name and pid, and a counter that sorts after any this process will reach
    last = tmp_path / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.99999999"
    last.write_bytes(b"")
    logger = Logger(tmp_path, True, purge_step=10, model=TanhNet(2, 3))
    logger.close()
    files = sorted(f.name for f in tmp_path.glob("events.out.tfevents.*"))
    assert files[-1] != last.name and files.index(last.name) < files.index(files[-1])


def test_a_run_resumed_on_a_clock_set_back_still_ends_its_curves_with_its_own_steps(tmp_path):
    """The folder's events file named a second later than this clock reads (a run resumed on another machine, a
    clock corrected): the resumed run's file sorted first, and TensorBoard, reading the stopped run's file after it,
    ended the curves with the old steps and purged the resumed ones (hostile campaign). Its file is now renamed to
    sort last, and written there."""
    config = TrainConfig(n_samples=60, epochs=30, log_interval=5, image_interval=10**6, checkpoint_interval=10,
                         logdir=str(tmp_path / "run"), progress=False)
    train(config)
    (old,) = (tmp_path / "run").glob("events.out.tfevents.1*")
    parts = old.name.split(".")
    parts[3] = f"{int(parts[3]) + 86400:010d}"  # opened "tomorrow", as this clock reads
    old.rename(old.with_name(".".join(parts)))
    train(TrainConfig(**{**vars(config), "epochs": 60, "resume": True}))
    files = sorted(f.name for f in (tmp_path / "run").glob("events.out.tfevents.1*"))
    assert len(files) == 2 and files[0] == ".".join(parts)
    ea = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    ea.Reload()
    steps = [e.step for e in ea.Scalars("loss/train")]
    assert steps[-1] == 60 and len(steps) == len(set(steps)) == 13  # 0, 5, ..., 60


def test_a_checkpoint_is_saved_only_once_what_was_logged_up_to_its_step_is_in_the_events_file(tmp_path, monkeypatch):
    # a run killed (SIGKILL) just after a checkpoint resumes past its step: whatever TensorBoard's thread still held
    # of that step (the pictures and histograms, queued just before) was lost for good
    from torch_tanhnet.training import checkpoint

    real, seen = checkpoint.save_atomic, []

    def save_atomic(state, path):
        ea = events(path.parent)
        seen.append((state["global_step"], {t: max(e.step for e in ea.Images(t)) for t in ea.Tags()["images"]},
                     {t: max(e.step for e in ea.Histograms(t)) for t in ea.Tags()["histograms"]},
                     {t: max(e.step for e in ea.Scalars(t)) for t in ea.Tags()["scalars"]}))
        return real(state, path)

    def slow_write(self, data, write=logger._Guarded.write):  # TensorBoard's thread behind, as on a busy machine
        time.sleep(0.01)
        write(self, data)

    monkeypatch.setattr(checkpoint, "save_atomic", save_atomic)
    monkeypatch.setattr(logger._Guarded, "write", slow_write)
    train(tiny(tmp_path / "run", epochs=5, log_interval=1, image_interval=2, checkpoint_interval=2, hidden=16))
    assert [step for step, *_ in seen] == [2, 4, 5]
    for step, images, histograms, scalars in seen:
        assert images and histograms and scalars
        assert set(images.values()) == set(histograms.values()) == {step}, (step, images, histograms)
        assert max(scalars.values()) == step
