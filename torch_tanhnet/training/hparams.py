"""TensorBoard's HParams tab for training runs, written through TensorBoard's own hparams API.

TensorBoard's HParams tab reads two things from a log dir: one *experiment config* (which
hparams and metrics exist, with their domains and display names) and one *session* per run
(the run's hparam values and its group; its metrics are the last values of the run's
scalars under the metric tags). This module writes both with
``tensorboard.plugins.hparams.summary_v2`` (no TensorFlow needed), not with
``SummaryWriter.add_hparams``, which cannot set a group, adds a run per call and duplicates
the metrics as ``hparam/*`` scalars.

A single training run writes both into its own folder (``train()`` does it)::

    hparams.write_config(logdir)
    hparams.write_session(logdir, hparams.values(config), hparams.group_name(config))

A sweep of your own writes the config once into its parent folder, and one session per run into
the run's sub-folder, with the final metrics when the run has no scalars of its own
(``scripts/sweep.py`` writes its sessions itself, with the same plugin data: ``sweep/board.py``)::

    hparams.write_config(parent, differs={"hidden", "lr"})   # the swept settings, ticked by default
    for name, config, final in runs:                          # final: {"loss/test": 0.11, ...}
        hparams.write_session(parent / name, hparams.values(config), hparams.group_name(config),
                              metrics=final, step=steps)

Runs whose settings differ only in ``seed`` share a group (:func:`group_name`); the HParams
table shows a group as one row, its metrics averaged over its runs (TensorBoard 2.21 offers no other
aggregation).

Each of the two is one small events file with a fixed name (:data:`CONFIG_FILE`,
:data:`SESSION_FILE`) replaced atomically when written again: TensorBoard keeps the first
session it reads for a run, so a resumed run (new ``epochs``) must replace its session
rather than add a second one. The names sort before every events file a ``SummaryWriter``
names, so TensorBoard, which reads a run's files in name order, reads them first and never
sees them change behind the file it is following. A TensorBoard already running when a run
is resumed keeps showing the old session until restarted.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.record_writer import RecordWriter

from ..files import replacing
from .config import DTYPES, OPTIMIZERS, TrainConfig
from .data import DEFAULT_NOISE
from .wording import printable

__all__ = ["CONFIG_FILE", "HPARAMS", "LEADING", "METRICS", "SESSION_FILE", "group_name", "values", "write_config",
           "write_session"]

# "tfevents" in the name makes TensorBoard read them; "0000000000" where a SummaryWriter puts the time sorts them first
CONFIG_FILE = "events.out.tfevents.0000000000.hparams-config"
SESSION_FILE = "events.out.tfevents.0000000000.hparams-session"


class AnyValue(hp.Domain):
    """Every value of one type (str or float): no list, no bounds; the HParams tab filters it by regexp or interval."""

    def __init__(self, dtype: type) -> None:
        if dtype not in (str, float):
            raise ValueError(f"AnyValue takes str or float, got {dtype!r}")
        self._dtype = dtype

    @property
    def dtype(self) -> type:
        return self._dtype

    def sample_uniform(self, rng=None):
        raise TypeError("AnyValue has no distribution to sample from")

    def update_hparam_info(self, hparam_info: api_pb2.HParamInfo) -> None:
        hparam_info.type = api_pb2.DATA_TYPE_STRING if self._dtype is str else api_pb2.DATA_TYPE_FLOAT64

    def __repr__(self) -> str:
        return f"AnyValue({self._dtype.__name__})"


# the settings that define a run, under train.py's names; logging, checkpoint and device settings are left out
HPARAMS: tuple[hp.HParam, ...] = (
    hp.HParam("dataset", AnyValue(str), description="built-in data set, or the CSV file's name (`--data`)"),
    hp.HParam("hidden", AnyValue(float), description="hidden tanh units (the handout has 3)"),
    hp.HParam("init_scale", AnyValue(float), description="factor on TanhNet's initial U and W"),
    hp.HParam("optimizer", hp.Discrete(list(OPTIMIZERS))),
    hp.HParam("lr", AnyValue(float), description="learning rate"),
    hp.HParam("epochs", AnyValue(float), description="epochs trained (a resumed run: its new total)"),
    hp.HParam("batch_size", AnyValue(float), description="samples per step (the whole training set: full batch)"),
    hp.HParam("momentum", AnyValue(float), description="SGD momentum (blank for adam)"),
    hp.HParam("weight_decay", AnyValue(float)),
    hp.HParam("seed", AnyValue(float), description="seeds the data, split, initialisation and batch order"),
    hp.HParam("n_samples", AnyValue(float), description="samples drawn from the built-in data set"),
    hp.HParam("noise", AnyValue(float), description="the built-in data set's noise"),
    hp.HParam("test_fraction", AnyValue(float)),
    hp.HParam("standardize", hp.Discrete([False, True])),
    hp.HParam("dtype", hp.Discrete(list(DTYPES))),
)

# TensorBoard ticks five hparams by default, those marked as differing first; these are what a student varies
LEADING = frozenset({"dataset", "hidden", "optimizer", "lr", "epochs"})

# the tab shows the metrics in this order; each is the last value of the run's scalar under that tag
METRICS: tuple[hp.Metric, ...] = (
    hp.Metric("accuracy/test", display_name="test accuracy", dataset_type=hp.Metric.VALIDATION),
    hp.Metric("accuracy/train", display_name="train accuracy", dataset_type=hp.Metric.TRAINING),
    hp.Metric("loss/test", display_name="test loss", dataset_type=hp.Metric.VALIDATION),
    hp.Metric("loss/train", display_name="train loss", dataset_type=hp.Metric.TRAINING),
)


def values(config: TrainConfig, batch_size: int | None = None) -> dict[str, bool | float | str]:
    """The hparam values of a run with these settings, keyed as :data:`HPARAMS`.

    ``batch_size``: the batch size the run used, for a ``config.batch_size`` of None (full
    batch), which only the data tell. Settings that do not apply are left out (the tab shows
    them blank): ``n_samples`` and ``noise`` for a CSV file, ``momentum`` for adam.
    """
    v: dict[str, bool | float | str] = {k: getattr(config, k) for k in (
        "hidden", "init_scale", "optimizer", "lr", "epochs", "weight_decay", "seed", "test_fraction", "standardize",
        "dtype")}
    if config.data is not None:
        v["dataset"] = printable(Path(config.data).name)  # not UTF-8: TensorBoard's writer refused it; a newline
    else:
        v["dataset"] = config.dataset
        v["n_samples"] = config.n_samples
        v["noise"] = DEFAULT_NOISE[config.dataset] if config.noise is None else config.noise
    if config.optimizer == "sgd":
        v["momentum"] = config.momentum
    if (config.batch_size or batch_size) is not None:
        v["batch_size"] = config.batch_size or batch_size
    return v


def group_name(settings: TrainConfig | dict, ignore: Iterable[str] = ("seed",)) -> str:
    """The session group of a run: its data set and a hash of its hparam values without ``ignore``,
    e.g. ``moons-1590969f57b5`` (runs differing only in seed share a group, and the HParams tab
    shows the group as one row, its "Trial ID", with its runs' metrics averaged)."""
    v = values(settings) if isinstance(settings, TrainConfig) else dict(settings)
    kept = {k: x for k, x in v.items() if k not in set(ignore)}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    return f"{kept['dataset']}-{digest}" if "dataset" in kept else digest


def write_config(logdir: str | Path, differs: Iterable[str] = LEADING, hparams: Iterable[hp.HParam] = HPARAMS,
                 metrics: Iterable[hp.Metric] = METRICS) -> Path:
    """Write the experiment config into ``logdir`` (replacing an earlier one); returns the file.

    ``differs`` names the hparams whose values differ between the runs: the HParams tab lists
    them first and ticks the first five (by name) of them. TensorBoard reads one config per
    ``--logdir`` it opens (any run's), so write the same one into every run it will show
    together, or one into the parent folder of all of them.
    """
    summary = hp.hparams_config_pb(list(hparams), list(metrics), time_created_secs=time.time())
    value = summary.value[0]
    experiment = metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    differs = set(differs)
    for info in experiment.hparam_infos:
        info.differs = info.name in differs
    value.metadata.CopyFrom(metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=experiment)))
    return _write_events(Path(logdir) / CONFIG_FILE, [Event(wall_time=time.time(), step=0, summary=summary)])


def write_session(logdir: str | Path, hparam_values: dict, group: str = "", metrics: dict[str, float] | None = None,
                  step: int = 0) -> Path:
    """Write one run's session into ``logdir`` (the run's folder), replacing an earlier one; returns the file.

    ``group``: the session group (:func:`group_name`); "" puts the run in a group of its own.
    ``metrics``: final values to write as scalars under the metric tags at ``step``, for a run
    whose folder holds no scalars of its own (a training run's own ``loss/test`` etc. serve).
    """
    now = time.time()
    # summary_v2 takes the group as the trial id ("" stays "": TensorBoard then groups the run alone)
    events = [Event(wall_time=now, step=0, summary=hp.hparams_pb(hparam_values, trial_id=group, start_time_secs=now))]
    if metrics:
        events.append(Event(wall_time=now, step=step, summary=Summary(value=[
            Summary.Value(tag=tag, simple_value=float(x)) for tag, x in metrics.items()])))
    return _write_events(Path(logdir) / SESSION_FILE, events)


def _write_events(path: Path, events: list[Event]) -> Path:
    """An events file at ``path`` holding ``events``, written beside it and renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, prefix=".hparams.") as f:  # no "tfevents" in the temporary name: TensorBoard skips it
        writer = RecordWriter(f)
        for event in [Event(wall_time=time.time(), file_version="brain.Event:2"), *events]:
            writer.write(event.SerializeToString())
    return path
