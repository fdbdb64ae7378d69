"""What a finished sweep leaves for TensorBoard and for people: curves per setting, HParams, pictures.

The sweep's log dir::

    sweep.json  results.csv  checkpoint.pt
    pictures/solved.png, pictures/gallery-<setting>.png    the heat map and the galleries, as PNG
    (events)                    the HParams config, the custom-scalars layout, the heat map
    <setting>/ (events)         per setting: the median of each metric over its seeds, its 10th and
                                90th percentiles (spread/<tag>/p10, …/p90), the share solved, the gallery
    seeds/<setting>/seed=<s>/   per run: its HParams session (group <setting>) and final metrics

<setting> in a path is the setting's name as a file name (``plan.folders``: the name where it is one
already, else made safe and unique, :func:`.space.folder_names`); the HParams group is the name itself.

Curves are per setting, not per run: TensorBoard slows down past a few hundred runs of curves,
and a band across seeds is what a sweep asks. The HParams tab lists every run; runs that differ
only in seed share a group named after the setting, whose metrics TensorBoard averages (2.21's tab
has no other aggregation; the table's are medians). A sweep that would give TensorBoard more than
500 runs, beyond which it selects none in its other tabs, writes one session per setting instead,
in the setting's own folder, with its medians and share solved (``sessions``: auto, runs,
settings). Every events file has a fixed name and is replaced whole, so a sweep whose writing
was interrupted writes them again on ``--resume`` without doubling anything.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard.summary import custom_scalars

from ..files import replacing, write_atomic
from ..training import hparams
from ..training.data import unstandardised
from ..training.render import decision_boundary_image
from ..training.setup import load_split
from ..training.wording import printable
from .config import TENSORBOARD_RUNS
from .group import GroupResult
from .metrics import METRICS
from .pictures import gallery, heat_map
from .plan import Plan
from .results import Results
from .space import SHORT, field_digits, value_text

RUN_LIST = 40  # Scalars, Custom Scalars and Images select no run by default past this many (their run list's limit)
SETTINGS_ONLY = "%5E%28%3F%21seeds%2F%29"  # ^(?!seeds/) in a URL: every run but the per-run sessions
EVENTS = "events.out.tfevents.0000000001.sweep"  # sorts after the hparams files, before a SummaryWriter's
BAND = ("p10", "median", "p90")
# the solved column's description, by per-run sessions; its name is short: a name of three lines took the width of
# two columns and pushed steps to solve off a 1600-pixel screen, and overlapped its neighbours' in the other views
SOLVED = {True: "1 if the run solved it, else 0; a setting's row: the mean, its share solved",
          False: "the share of its seeds that solved it"}
FINAL_METRICS = (  # the HParams tab's columns after session/solved (named by SOLVED): each run's final values (tags
    # in its session folder); the tab ticks the first five, so what a sweep asks comes first (steps to solve, sixth,
    # was never shown unasked)
    hp.Metric("session/steps_to_solve", display_name="steps to solve"),
    hp.Metric("session/accuracy/test", display_name="test accuracy", dataset_type=hp.Metric.VALIDATION),
    hp.Metric("session/loss/test", display_name="test loss", dataset_type=hp.Metric.VALIDATION),
    hp.Metric("session/accuracy/train", display_name="train accuracy", dataset_type=hp.Metric.TRAINING),
    hp.Metric("session/loss/train", display_name="train loss", dataset_type=hp.Metric.TRAINING),
)
TICKED = 5  # hparams the tab shows unasked: those marked as differing first
FILL = ("hidden", "dataset", "optimizer", "epochs", "lr")  # after the swept ones, while there is room


def write_events(folder: Path, summaries: list[tuple[int, Summary]]) -> None:
    """The folder's sweep events file, (step, summary) pairs, written beside it and renamed onto it."""
    folder.mkdir(parents=True, exist_ok=True)
    with replacing(folder / EVENTS, prefix=".sweep.", sync=False) as f:  # no "tfevents" in the temporary's name: unread
        writer = RecordWriter(f)
        now = time.time()
        writer.write(Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        for step, summary in summaries:
            writer.write(Event(wall_time=now, step=step, summary=summary).SerializeToString())


def band_tag(metric: str, which: str) -> str:
    """Where a percentile curve goes: ``spread/loss/test/p10``, a group of its own after the medians'."""
    return metric if which == "median" else f"spread/{metric}/{which}"


def curve_summaries(log_steps: list[int], q: torch.Tensor, share: torch.Tensor) -> list[tuple[int, Summary]]:
    """One event per log step: each metric's median under its train.py tag, the band under
    :func:`band_tag`'s, and ``solved/share``. q (logs, 3, 4) are the quantiles of metrics.METRICS, share (logs,)."""
    out = []
    q_, share_ = q.tolist(), share.tolist()
    for i, step in enumerate(log_steps):
        values = [Summary.Value(tag=band_tag(m, which), simple_value=q_[i][b][j])
                  for j, m in enumerate(METRICS) for b, which in enumerate(BAND)]
        values.append(Summary.Value(tag="solved/share", simple_value=share_[i]))
        out.append((step, Summary(value=values)))
    return out


def layout() -> Summary:
    """The Custom Scalars tab: one chart per metric, every setting's median with its 10–90 % band."""
    charts = {m: ["Margin", [band_tag(m, w) for w in ("median", "p10", "p90")]] for m in METRICS}
    return custom_scalars({"sweep: median over seeds, band from the 10th to the 90th percentile": {
        **charts, "share solved": ["Multiline", ["solved/share"]]}})


def hparam_values(config, batch_size: int, labels: dict[str, str] | None = None) -> dict:
    v = hparams.values(config, batch_size)  # batch_size: what full batch means for these runs
    v.pop("seed", None)  # a group's runs differ in seed; the session's name says it
    if labels and config.data in labels:
        v["dataset"] = labels[config.data]  # data files of one name told apart (data_labels)
    return v


def data_labels(paths: list[str]) -> dict[str, str]:
    """Each data file's name in the HParams tab: its file name (as a training run's hparams give it), or, where two
    of a sweep's files share one (run1/points.csv, run2/points.csv), as many of the last parts of each path as
    tell them all apart."""
    parts = {p: Path(p).parts or (p,) for p in paths}
    for k in range(1, max(map(len, parts.values()), default=1) + 1):
        labels = {p: printable("/".join(q[-k:])) for p, q in parts.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {p: printable(p) for p in paths}


def framed(event: Event) -> bytes:
    """An event as one record of an events file (length, CRCs and all)."""
    buf = io.BytesIO()
    RecordWriter(buf).write(event.SerializeToString())
    return buf.getvalue()


def per_run_sessions(plan: Plan) -> bool:
    """Whether HParams gets a session per run: asked, or (auto) while TensorBoard's run count stays within the
    number it selects by default (every run, every setting's curves, and the root)."""
    mode = plan.config.sessions
    return mode == "runs" or (mode == "auto" and plan.n_runs + len(plan.settings) + 1 <= TENSORBOARD_RUNS)


def selection_hint(plan: Plan) -> str | None:
    """How to see the curves and pictures where TensorBoard shows none at first: its Scalars, Custom Scalars and
    Images select no run by default past ``RUN_LIST`` runs (Time Series and HParams show them all); None below that.

    TensorBoard 2.21 selects the runs a filter leaves when they are ``RUN_LIST`` or fewer (drawing their
    checkboxes unticked), and 'toggle all runs' then unselects them: so with the sessions filtered out the line
    gives a link that opens the tab filtered (``regexInput``), and 'toggle all runs' only where the filter still
    leaves more than ``RUN_LIST`` (or there are no sessions to filter out)."""
    per_run = per_run_sessions(plan)
    shown = len(plan.settings) + 1  # the settings' curves and the root's heat map
    runs = (plan.n_runs if per_run else 0) + shown  # with every run's session
    if runs <= RUN_LIST:
        return None
    head = f"TensorBoard holds {runs} runs, more than its Scalars, Custom Scalars and Images tabs select ({RUN_LIST}):"
    if per_run and shown <= RUN_LIST:
        return (f"{head} open them with the settings' runs alone selected, "
                f"http://localhost:6006/#custom_scalars&regexInput={SETTINGS_ONLY}, "
                f"http://localhost:6006/#images&regexInput={SETTINGS_ONLY} and "
                f"http://localhost:6006/#scalars&regexInput={SETTINGS_ONLY} (6006: TensorBoard's own port)")
    sessions = "write ^(?!seeds/) in their runs filter, then " if per_run else ""
    return f"{head} {sessions}press 'toggle all runs' there"


def session_start(config, batch_size: int, group: str, now: float, labels: dict[str, str] | None = None) -> bytes:
    """The first records of a session's file, as :func:`training.hparams.write_session` writes them (summary_v2
    takes the group as the trial id)."""
    return framed(Event(wall_time=now, file_version="brain.Event:2")) + framed(Event(
        wall_time=now, step=0, summary=hp.hparams_pb(hparam_values(config, batch_size, labels), trial_id=group,
                                                     start_time_secs=now)))


def final_metrics(step: int, now: float, values: dict[str, float | None]) -> bytes:
    """The session's metrics, ``session/<name>`` at ``step``; a missing or NaN value (a diverged run's) is left blank.

    Named to sort after ``loss``: TensorBoard's Time Series opens the first two groups of tags by name, and a group
    of these single points (``final/``, as they were named) opened second, its cards empty-looking, the loss shut."""
    summary = Summary(value=[Summary.Value(tag=f"session/{k}", simple_value=v) for k, v in values.items()
                             if v is not None and not math.isnan(v)])
    return framed(Event(wall_time=now, step=step, summary=summary))


def write_hparams(plan: Plan, results: Results, logdir: Path) -> None:
    """The config once (the swept settings ticked), then a session per run grouped by setting, or one per setting.

    A session is :func:`training.hparams.write_session`'s file (its name, its events), written here
    without its atomic replace and fsync: a sweep writes a thousand of them, fresh, and writes them all
    again if stopped before it finished (5 ms a session with, 0.2 ms without, on the development
    machine). The start of a setting's sessions is the same bytes for each of its seeds, made once.
    """
    declared = [h for h in hparams.HPARAMS if h.name != "seed"]
    swept = {"dataset" if name == "data" else name for name in plan.swept}  # --data's hparam is dataset
    # the swept settings, then what a student reads a run by while there is room (three constant columns, batch
    # size, dataset and dtype by name, were ticked after two swept ones)
    fill = [name for name in FILL if name not in swept][:max(0, TICKED - len(swept))]
    solved = hp.Metric("session/solved", display_name="solved (share)", description=SOLVED[per_run_sessions(plan)])
    hparams.write_config(logdir, differs=swept | set(fill), hparams=declared, metrics=(solved, *FINAL_METRICS))
    labels = data_labels(sorted({s["data"] for s in plan.settings if s.get("data")})) if "data" in plan.swept else {}
    now = time.time()
    batch = {r.index: g.batch_size for g in plan.groups for r in g.runs}
    if not per_run_sessions(plan):
        for s in results.summaries:
            run = plan.runs[s.setting * len(plan.config.seeds)]
            medians = {m: s.quantiles[m][1] for m in ("accuracy/test", "loss/test", "accuracy/train", "loss/train")}
            steps = plan.total_steps(next(g for g in plan.groups if s.setting in g.settings))
            final = {**medians, "solved": s.share, "steps_to_solve": s.steps_to_solve}
            write_atomic(logdir / plan.folders[s.setting] / hparams.SESSION_FILE,
                         session_start(run.config, batch[run.index], s.name, now, labels)
                         + final_metrics(steps, now, final), sync=False)
        return
    start: dict[int, bytes] = {}
    for row in results.rows:
        run = plan.runs[row["run"]]
        name = plan.names[run.setting]
        if run.setting not in start:
            start[run.setting] = session_start(run.config, batch[run.index], name, now, labels)
        values = {m: row[m] for m in ("accuracy/test", "loss/test", "accuracy/train", "loss/train")}
        # a run that reached the threshold and lost it has no steps to solve here: the group's mean is then over the
        # solved runs, as the table's median (results.csv keeps its first step)
        values.update(solved=float(row["solved"]), steps_to_solve=row["steps_to_solve"] if row["solved"] else None)
        folder = logdir / "seeds" / plan.folders[run.setting] / f"seed={run.seed}"
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / hparams.SESSION_FILE, start[run.setting] + final_metrics(row["steps"], now, values),
                     sync=False)


def heat_map_picture(plan: Plan, results: Results) -> np.ndarray:
    """The solved share over the two swept settings with the most values (a row: one; a cell: none)."""
    by_count = sorted(plan.swept, key=lambda f: -len({repr(s[f]) for s in plan.settings}))
    axes = by_count[:2]
    values = [sorted({repr(s[f]): s[f] for s in plan.settings}.values(), key=_sort_key) for f in axes]
    rows, cols = (values + [[None], [None]])[:2]
    solved, runs = np.zeros((len(rows), len(cols))), np.zeros((len(rows), len(cols)))
    for summary in results.summaries:
        s = plan.settings[summary.setting]
        i = rows.index(s[axes[0]]) if len(axes) > 0 else 0
        j = cols.index(s[axes[1]]) if len(axes) > 1 else 0
        solved[i, j] += summary.solved
        runs[i, j] += summary.runs
    with np.errstate(invalid="ignore"):
        share = np.where(runs > 0, solved / np.maximum(runs, 1), np.nan)
    names = [SHORT.get(f, f) for f in axes] + ["", ""]
    pooled = [f for f in plan.swept if f not in axes]
    title = f"share solved (test accuracy >= {plan.config.solved_at:g})" + (
        f", pooled over {', '.join(pooled)}" if pooled else "")
    digits = [field_digits(plan.settings, f) for f in axes] + [4, 4]  # the names' digits: 0.123456, 0.123457
    return heat_map(share, runs, axis_labels(rows, digits[0]) if axes else ["all"],
                    axis_labels(cols, digits[1]) if len(axes) > 1 else [""], names[0], names[1], title)


def axis_labels(values: list, digits: int) -> list[str]:
    """The heat map's labels of an axis's values; numbered where they print alike even at six digits (random
    draws: 0.1235 [1], 0.1235 [2]), as the table numbers such settings."""
    texts = [value_text(v, digits) for v in values]
    if len(set(texts)) == len(texts):
        return texts
    return [f"{t} [{i + 1}]" for i, t in enumerate(texts)]


def _sort_key(v):
    return (v is None, v if isinstance(v, (int, float)) else str(v))


def gallery_picture(plan: Plan, results: Results, group: GroupResult, model, setting: int) -> np.ndarray:
    """Up to ``gallery`` solved and failed runs of a setting (lowest seeds first), each on its own data."""
    S, n = len(plan.config.seeds), plan.config.gallery
    position = {run: k for k, run in enumerate(group.runs)}
    rows = results.rows[setting * S:(setting + 1) * S]
    solved = [r for r in rows if r["solved"]][:n]
    failed = [r for r in rows if not r["solved"]][:n]

    def tile(row):
        config = plan.runs[row["run"]].config
        data = load_split(config, plan.files.get(config.data))  # the data file as the sweep read it
        X_raw = unstandardised(data.X_train, data.mean, data.std)
        net = model[position[row["run"]]]
        acc = row["accuracy/test"]
        caption = f"seed {row['seed']}: " + ("diverged" if row["diverged_at"] else f"test acc {acc:.2f}")
        return decision_boundary_image(net, X_raw, data.y_train, data.mean, data.std, size=160), caption

    summary = results.summaries[setting]
    return gallery(plan.names[setting], [tile(r) for r in solved], [tile(r) for r in failed],
                   f"solved: {summary.solved} of {summary.runs}",
                   f"failed: {summary.runs - summary.solved} of {summary.runs}")


def png(picture: np.ndarray, path: Path, tag: str) -> Summary:
    """Save ``picture`` as a PNG file and return it as TensorBoard's image summary (encoded once, for both)."""
    buf = io.BytesIO()
    Image.fromarray(picture, mode="RGB").save(buf, format="PNG", compress_level=1)
    write_atomic(path, buf.getvalue(), sync=False)  # a disk that fills mid-picture leaves no cut PNG (and names it)
    h, w = picture.shape[:2]
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(height=h, width=w, colorspace=3,
                                                                        encoded_image_string=buf.getvalue()))])


def write_board(plan: Plan, results: Results, groups: dict[int, GroupResult], logdir: Path) -> None:
    pictures = logdir / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    # the tag sorts before "gallery": TensorBoard's Images tab shows the answer first, above every setting's gallery
    heat = png(heat_map_picture(plan, results), pictures / "solved.png", "answer/solved_share")
    last = max(plan.total_steps(g) for g in plan.groups)  # the share solved at the end: not step 0's untrained nets
    write_events(logdir, [(0, layout()), (last, heat)])
    for g in plan.groups:
        res = groups[g.index]
        model = res.model() if plan.config.gallery > 0 else None
        for s in g.settings:
            events = curve_summaries(*results.curves[s])
            if model is not None:
                picture = gallery_picture(plan, results, res, model, s)
                events.append((res.log_steps[-1], png(picture, pictures / f"gallery-{plan.folders[s]}.png",
                                                      "gallery")))
            write_events(logdir / plan.folders[s], events)
    write_hparams(plan, results, logdir)
