"""A finished sweep as numbers: one row per run, one summary per setting, results.csv, sweep.json, the table.

A run is *solved* when its final test accuracy reaches ``solved_at``; its *steps to solve* are the
first logged step at which its test accuracy reached it (so they are known to within one
``log_interval``), whether or not it stayed there. Medians and the 10th–90th percentile spread are
over the setting's runs that did not diverge (linear interpolation, as numpy's default); a
diverged run counts as not solved. Each row also says where its run ended: the norm of its
gradient and its Hessian's least and greatest eigenvalue (:data:`.metrics.CURVATURE`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..console import figure
from ..files import write_atomic
from ..training.wording import flag, shell, utf8
from .group import GroupResult
from .metrics import CURVATURE, METRICS
from .plan import Plan
from .space import SWEEPABLE, field_digits, value_text

Tensor = torch.Tensor

FINAL = ("loss/test", "accuracy/test", "loss/train", "accuracy/train")  # results.csv's order of the metrics
QUANTILES = (0.1, 0.5, 0.9)
NUMBERED = re.compile(r"^(\d+):")  # a setting's name numbered where its values print alike (space.unique_names)


@dataclass
class SettingSummary:
    setting: int
    name: str
    runs: int
    solved: int
    diverged: int
    quantiles: dict[str, tuple[float, float, float]]  # metric -> (10th percentile, median, 90th percentile)
    steps_to_solve: float  # median over the solved runs of the first log step at the threshold; NaN: none solved

    @property
    def share(self) -> float:
        return self.solved / self.runs


@dataclass
class Results:
    rows: list[dict]  # one per run, in run order: results.csv
    summaries: list[SettingSummary]  # one per setting, in setting order
    curves: dict[int, tuple[list[int], Tensor]]  # setting -> (log steps, (logs, 3, 4) quantiles, (logs,) solved share)


def steps_to_solve(history: Tensor, log_steps: list[int], solved_at: float) -> Tensor:
    """(K,) int64: the first log step at which test accuracy reached ``solved_at``; 0 where it never did."""
    reached = history[:, :, METRICS.index("accuracy/test")] >= solved_at  # (logs, K)
    first = reached.to(torch.uint8).argmax(0)
    return torch.where(reached.any(0), torch.tensor(log_steps, dtype=torch.int64)[first], 0)


def nan_quantiles(x: Tensor) -> Tensor:
    """(3, ...): QUANTILES of x over its first dimension, ignoring NaN (a column of NaN only gives NaN)."""
    return torch.nanquantile(x, torch.tensor(QUANTILES, dtype=x.dtype), dim=0)


def collect(plan: Plan, groups: dict[int, GroupResult], solved_at: float) -> Results:
    """Rows, summaries and per-setting curves from every group's result."""
    S = len(plan.config.seeds)
    rows: list[dict | None] = [None] * plan.n_runs
    summaries: list[SettingSummary | None] = [None] * len(plan.settings)
    curves = {}
    for g in plan.groups:
        res = groups[g.index]
        final = res.history[-1]  # (K, 4)
        solve = steps_to_solve(res.history, res.log_steps, solved_at)
        final_, solve_, diverged_ = final.tolist(), solve.tolist(), res.diverged_at.tolist()
        ends = [[float("nan")] * len(CURVATURE)] * len(res.runs) if res.curvature is None else res.curvature.tolist()
        position = {run: k for k, run in enumerate(res.runs)}
        for j, s in enumerate(g.settings):
            members = g.runs[j * S:(j + 1) * S]
            ks = [position[r.index] for r in members]
            for run, k in zip(members, ks):
                rows[run.index] = row(plan, run, final_[k], ends[k], solve_[k], diverged_[k], solved_at,
                                      res.log_steps[-1])
            hist = res.history[:, ks]  # (logs, S, 4)
            acc = hist[-1, :, METRICS.index("accuracy/test")]
            solved = int((acc >= solved_at).sum())
            diverged = int((res.diverged_at[ks] > 0).sum())
            q = nan_quantiles(hist[-1])  # (3, 4)
            # over the solved runs, as the column beside it counts them: a run that reached the threshold and lost
            # it again (results.csv: steps_to_solve, solved False) is not one of them
            reached = solve[ks][(solve[ks] > 0) & (acc >= solved_at)].double()
            summaries[s] = SettingSummary(s, plan.names[s], S, solved, diverged,
                                          {m: tuple(q[:, i].tolist()) for i, m in enumerate(METRICS)},
                                          # interpolated, as the other medians (torch's median is the lower)
                                          reached.quantile(0.5).item() if reached.numel() else float("nan"))
            share = (hist[:, :, METRICS.index("accuracy/test")] >= solved_at).double().mean(1)
            curves[s] = (res.log_steps, nan_quantiles(hist.transpose(0, 1)).transpose(0, 1), share)  # (logs, 3, 4)
    return Results(rows, summaries, curves)


def row(plan: Plan, run, final: list[float], ends: list[float], solve: int, diverged: int, solved_at: float,
        steps: int) -> dict:
    """One line of results.csv: the run's settings under train.py's names, its final metrics and where it ended
    (``ends``: :data:`CURVATURE`) under the tags'."""
    c = run.config
    out = {"run": run.index, "setting": plan.names[run.setting]}
    out.update({name: getattr(c, name) for name in SWEEPABLE})
    if c.data is not None:  # the built-in data sets' settings mean nothing for a file: empty cells, not moons, 500
        out.update(dataset=None, n_samples=None, noise=None)
    out["seed"] = run.seed
    values = dict(zip(METRICS, final))
    out.update({m: values[m] for m in FINAL})
    out.update(zip(CURVATURE, ends))
    out["solved"] = bool(values["accuracy/test"] >= solved_at)
    out["steps_to_solve"] = solve or None
    out["diverged_at"] = diverged or None
    out["steps"] = steps
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    """results.csv: a header, then one row per run; a missing value (None, NaN) is an empty cell."""
    def cell(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return repr(v) if isinstance(v, float) else v

    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(list(rows[0]))
    for r in rows:
        w.writerow([cell(v) for v in r.values()])
    # whole or not at all: written in place, a failure left the header alone; a --data name that is not UTF-8
    # (which once failed it just so) written as \xe9
    write_atomic(path, utf8(text.getvalue()).encode())


def write_json(plan: Plan, path: Path, extra: dict | None = None) -> None:
    """sweep.json: the sweep's settings as given, the expanded settings by name (and the name of their files and
    folders), the groups."""
    data = {
        "sweep": plan.config.as_dict(),
        "swept": plan.swept,
        "runs": plan.n_runs,
        "settings": [{"name": n, "folder": f, **s} for n, f, s in zip(plan.names, plan.folders, plan.settings)],
        "groups": [{"hidden": g.hidden, "optimizer": g.optimizer, "dtype": g.dtype, "steps": plan.total_steps(g),
                    "runs": len(g.runs), "settings": [plan.names[s] for s in g.settings]} for g in plan.groups],
        **(extra or {}),
    }
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())  # no temporary file left on failure


def train_command(row: dict, script: str = "scripts/train.py") -> str:
    """The train.py command line that trains this run alone (settings left at train.py's default are omitted);
    ``script``: train.py as the working folder names it. Values are quoted for a shell (a --data path with a space)."""
    from .space import DEFAULTS

    parts = [f"python {script}"]
    for name in SWEEPABLE:
        v = row[name]
        if v == DEFAULTS[name] or v is None or name == "momentum" and row.get("optimizer") != "sgd":
            continue  # (train.py refuses a momentum given with Adam, which reads none)
        if isinstance(v, bool):
            parts.append(flag(name))
        else:
            parts.append(f"{flag(name)} {v!r}" if isinstance(v, float) else f"{flag(name)} {shell(v)}")
    parts.append(f"--seed {row['seed']}")
    return " ".join(parts)


def table(plan: Plan, summaries: list[SettingSummary]) -> str:
    """The final table: one line per setting."""
    fields = plan.swept
    digits = {f: field_digits(plan.settings, f) for f in fields}  # 0.123456 and 0.123457 both read 0.1235
    numbered = any(NUMBERED.match(s.name) for s in summaries)  # values alike even so: the names' numbers
    head = [*(["#"] if numbered else []), *(flag(f)[2:] for f in fields), "runs", "solved",
            "test loss: median [10%, 90%]", "test accuracy: median [10%, 90%]", "steps to solve"]
    fields_at = int(numbered) + len(fields)  # the columns left of the numbers
    any_diverged = any(s.diverged for s in summaries)
    if any_diverged:
        head.append("diverged")
    lines = []
    for s in summaries:
        lo, med, hi = s.quantiles["loss/test"]
        alo, amed, ahi = s.quantiles["accuracy/test"]
        number = [NUMBERED.match(s.name).group(1)] if numbered else []
        cells = [*number, *(value_text(plan.settings[s.setting][f], digits[f]) for f in fields), str(s.runs),
                 f"{100 * s.share:.0f}% ({s.solved})", f"{figure(med, 3)} [{figure(lo, 3)}, {figure(hi, 3)}]",
                 f"{amed:.3f} [{alo:.3f}, {ahi:.3f}]",
                 "-" if math.isnan(s.steps_to_solve) else f"{s.steps_to_solve:.0f}"]
        if any_diverged:
            cells.append(str(s.diverged))
        lines.append(cells)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]

    def fmt(r: list[str]) -> str:  # the settings to the left, the numbers to the right
        return "  ".join(c.rjust(w) if i >= fields_at else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join(fmt(r).rstrip() for r in [head, *lines])
