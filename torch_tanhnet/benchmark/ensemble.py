"""Time one whole training step of K networks at once (forward, cost, backward, SGD update), side by side.

Cases, all float32, K networks of 2-3-1 on one shared (N, 2) batch, plain SGD (lr 0.1):

- ``ensemble``: :class:`~torch_tanhnet.TanhNetEnsemble` ``.loss(X, y).sum().backward()`` and an
  :class:`~torch_tanhnet.ensemble.EnsembleSGD` step: the fused pass and a few foreach calls;
- ``loss_and_grad``: the same step with ``.loss_and_grad(X, y)`` in place of ``.loss(X, y).sum().backward()``
  (the same numbers, without the autograd engine);
- ``loop``: a Python loop over K ``TanhNet``s, each ``loss`` + backward + its own ``torch.optim.SGD`` step;
- ``torch.func``: ``stack_module_state`` of K ``nn.Sequential(Linear, Tanh, Linear)`` +
  ``vmap(functional_call)``, ``binary_cross_entropy_with_logits``, eager autograd, ``torch.optim.SGD``
  on the stacked tensors: PyTorch's documented ensembling idiom;
- ``batched``: the same maths written with ``baddbmm`` on stacked leaf tensors, eager autograd,
  ``torch.optim.SGD``;
- ``jax``: ``jax.jit(jax.vmap(value_and_grad + SGD update))``, when jax is installed.

Each row gives the median step time, how many times the ensemble's step is faster than the case's
(``ensemble ×``), the time per network-step, samples per second (K·N per step) and that rate
against the single-network fused step's at ``single_n`` samples (one ``TanhNet.loss`` + backward +
SGD step, measured in the same run): the rate the per-call cost no longer hides. Repeats are
interleaved as in :mod:`.single`; nothing is asserted.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..ensemble import EnsembleSGD, TanhNetEnsemble
from ..module import TanhNet
from .jax_case import jax_for, seed_loss
from .single import machine_info, time_cases

CASES = ("ensemble", "loss_and_grad", "loop", "torch.func", "batched", "jax")
LR = 0.1


@dataclass
class Row:
    models: int
    n: int
    case: str
    median_ms: float | None  # None: the case did not run (see note)
    speedup: float | None = None  # this case's median / the ensemble's: how many times faster the ensemble is
    us_per_network: float | None = None  # median / K, in µs
    samples_per_s: float | None = None  # K·N / median
    vs_single: float | None = None  # samples_per_s / the single-network fused step's rate
    note: str = ""


@dataclass
class EnsembleReport:
    device: str
    machine: dict
    single_n: int
    single_samples_per_s: float
    rows: list[Row] = field(default_factory=list)

    def table(self) -> str:
        head = (f"{'K':>6} {'N':>7}  {'case':<13} {'median ms':>10} {'ensemble ×':>10} {'µs/net':>9} "
                f"{'samples/s':>10} {'vs single':>9}  note")
        lines = [head, "-" * len(head)]
        fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
        for r in self.rows:
            lines.append(f"{r.models:>6} {r.n:>7}  {r.case:<13} {fmt(r.median_ms, '.3f'):>10} "
                         f"{fmt(r.speedup, '.2f'):>10} {fmt(r.us_per_network, '.2f'):>9} "
                         f"{fmt(r.samples_per_s, '.3g'):>10} {fmt(r.vs_single, '.2f'):>9}  {r.note}".rstrip())
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"device": self.device, "machine": self.machine, "single_n": self.single_n,
                           "single_samples_per_s": self.single_samples_per_s,
                           "rows": [asdict(r) for r in self.rows]}, indent=2)


def make_data(n: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g).to(device)
    y = (torch.rand(n, 1, generator=g) < 0.5).float().to(device)
    return X, y


def ensemble_step(models: int, X, y, autograd: bool = True) -> Callable[[], object]:
    ens = TanhNetEnsemble(models, device=X.device, seeds=list(range(models)))
    opt = EnsembleSGD(ens.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        if autograd:
            ens.loss(X, y).sum().backward()
        else:
            ens.loss_and_grad(X, y)
        opt.step()

    return step


def loop_step(models: int, X, y) -> Callable[[], object]:
    nets = [TanhNet(device=X.device) for _ in range(models)]
    opts = [torch.optim.SGD(n.parameters(), lr=LR) for n in nets]

    def step():
        for net, opt in zip(nets, opts):
            opt.zero_grad(set_to_none=True)
            net.loss(X, y).backward()
            opt.step()

    return step


def func_step(models: int, X, y) -> Callable[[], object]:
    seqs = [nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).to(X.device) for _ in range(models)]
    params, buffers = stack_module_state(seqs)
    base = copy.deepcopy(seqs[0]).to("meta")
    leaves = [p.requires_grad_(True) for p in params.values()]
    opt = torch.optim.SGD(leaves, lr=LR)
    forward = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))
    yk = y.expand(models, -1, -1)

    def step():
        opt.zero_grad(set_to_none=True)
        z = forward(params, buffers, X)  # (K, N, 1)
        F.binary_cross_entropy_with_logits(z, yk, reduction="none").mean(dim=(1, 2)).sum().backward()
        opt.step()

    return step


def batched_step(models: int, X, y) -> Callable[[], object]:
    g = torch.Generator().manual_seed(0)
    shapes = ((models, 3, 2), (models, 3), (models, 1, 3), (models, 1))
    U, b, W, c = (torch.randn(s, generator=g).mul_(0.5).to(X.device).requires_grad_(True) for s in shapes)
    opt = torch.optim.SGD([U, b, W, c], lr=LR)
    Xk, yk = X.expand(models, -1, -1), y.expand(models, -1, -1)

    def step():
        opt.zero_grad(set_to_none=True)
        H = torch.tanh(torch.baddbmm(b.unsqueeze(1), Xk, U.mT))
        z = torch.baddbmm(c.unsqueeze(1), H, W.mT)
        F.binary_cross_entropy_with_logits(z, yk, reduction="none").mean(dim=(1, 2)).sum().backward()
        opt.step()

    return step


def jax_step(models: int, X, y):
    """The jitted, vmapped value-and-grad + SGD update of K networks, or a note saying why not."""
    jax, jnp, why = jax_for(X.device)
    if jax is None:
        return None, why
    loss = seed_loss(jax, jnp)

    def sgd(p, X, y):
        value, grads = jax.value_and_grad(loss)(p, X, y)
        return jax.tree_util.tree_map(lambda a, g: a - LR * g, p, grads), value

    update = jax.jit(jax.vmap(sgd, in_axes=(0, None, None)))
    key = jax.random.PRNGKey(0)
    shapes = {"U": (models, 3, 2), "b": (models, 3), "W": (models, 1, 3), "c": (models, 1)}
    state = {"p": {k: 0.5 * jax.random.normal(jax.random.fold_in(key, i), s)
                   for i, (k, s) in enumerate(shapes.items())}}
    Xj, yj = jnp.asarray(X.cpu().numpy()), jnp.asarray(y.cpu().numpy())

    def step():
        state["p"], value = update(state["p"], Xj, yj)
        jax.block_until_ready(state["p"])

    return step, ""


def single_step(n: int, device) -> Callable[[], object]:
    """One network's fused training step at N = n: the rate the ensemble's per-sample cost is compared with."""
    X, y = make_data(n, device, seed=1)
    net = TanhNet(device=device)
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        net.loss(X, y).backward()
        opt.step()

    return step


def run(models: list[int], sizes: list[int], device: str = "cpu", rounds: int = 9, min_seconds: float = 0.02,
        single_n: int = 1_000_000, with_jax: bool = True, with_loop: bool = True,
        log: Callable[[str], None] = lambda s: None) -> EnsembleReport:
    dev = torch.device(device)
    log(f"single network, N = {single_n} ...")
    single_s = time_cases({"single": single_step(single_n, dev)}, dev, rounds, min_seconds)["single"]
    report = EnsembleReport(str(dev), machine_info(dev), single_n, single_n / single_s)
    for n in sizes:
        X, y = make_data(n, dev)
        for K in models:
            log(f"K = {K}, N = {n} ...")
            steps = {"ensemble": ensemble_step(K, X, y), "loss_and_grad": ensemble_step(K, X, y, autograd=False)}
            if with_loop:
                steps["loop"] = loop_step(K, X, y)
            steps["torch.func"] = func_step(K, X, y)
            steps["batched"] = batched_step(K, X, y)
            notes = {} if with_loop else {"loop": "skipped (--no-loop)"}
            if with_jax:
                step, note = jax_step(K, X, y)
                if step is not None:
                    steps["jax"] = step
                else:
                    notes["jax"] = note
            medians = time_cases(steps, dev, rounds, min_seconds)
            for case in CASES:
                if case in medians:
                    t = medians[case]
                    rate = K * n / t
                    report.rows.append(Row(K, n, case, 1e3 * t, t / medians["ensemble"], 1e6 * t / K, rate,
                                           rate / report.single_samples_per_s))
                elif case in notes:
                    report.rows.append(Row(K, n, case, None, note=notes[case]))
    return report
