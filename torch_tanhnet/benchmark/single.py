"""Time one training step (zero grads, forward, cost, backward) of each path, side by side.

Cases, all float32 on the same data and the same weights:

- ``fused``: ``TanhNet.loss(X, y)`` + backward, the training path (:class:`~torch_tanhnet.kernels.functions.FusedLossFunction`);
- ``composed``: ``bce_with_logits(model(X), y)`` + backward, the two hand-written Functions;
- ``eager``: ``nn.Sequential(Linear(D, H), Tanh(), Linear(H, 1))`` + ``binary_cross_entropy_with_logits``
  under PyTorch autograd: the baseline every ratio is taken against;
- ``compiled``: ``torch.compile`` of the eager loss (forward and backward graphs compiled);
- ``jax``: ``jax.jit(jax.value_and_grad(loss))`` of the same maths, when jax is installed (on
  CUDA, when jax has a GPU backend);
- ``floor``: zero grads + a custom Python Function of U, b, W, c that computes nothing + backward:
  what PyTorch's per-call machinery alone costs, so ``eager / floor`` is the most a path built
  on a Python ``autograd.Function`` can reach at that N on this machine. Not a way to train; a
  yardstick.

The ``fused`` row's note gives the rate at which its step reads X and y, and on CUDA the
same for one launch of its Triton kernel alone (no autograd), against the card's peak.

Repeats are interleaved (case after case, round after round), so that a slow moment of a
shared machine falls on every case alike; each case's figure is its median step time. When a
case's repeats spread by more than :data:`.report.UNRELIABLE` (see :attr:`.report.Result.spread`), the table marks its
figure, and every ratio taken with it, with ``?`` and says so in the note: the machine was busy.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..functional import bce_with_logits
from ..kernels.cpu import available as kernels_available
from ..kernels.dispatch import TritonOrTorchOps, fused_implementation
from ..module import TanhNet
from .jax_case import jax_for, seed_loss
from .memory import peak_extra_cpu, saved_bytes
from .report import Report, Result

CASES = ("fused", "composed", "eager", "compiled", "jax", "floor")


def machine_info(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu": _cpu_name(), "fused_cpu_kernels": kernels_available()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
    try:
        import jax

        info["jax"] = jax.__version__
    except ImportError:
        info["jax"] = None
    return info


def _peak_bandwidth_note(device: torch.device) -> str:
    """The card's peak memory bandwidth, where torch reports its memory clock and bus width."""
    if device.type != "cuda":
        return ""
    props = torch.cuda.get_device_properties(device)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if not (clock_khz and bus_bits):
        return ""
    return f" (card's peak {2 * clock_khz * 1e3 * bus_bits / 8 / 1e9:.0f} GB/s)"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:  # closed: python -X dev reported the file left open (ResourceWarning)
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_problem(n: int, device, seed: int = 0, D: int = 2, H: int = 3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, D, generator=g).to(device)
    y = (torch.rand(n, 1, generator=g) < 0.5).float().to(device)
    torch.manual_seed(seed)
    seq = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 1)).to(device)
    return X, y, seq, TanhNet.from_sequential(seq)


def torch_steps(X, y, seq, net) -> dict[str, Callable[[], object]]:
    def fused():
        net.zero_grad(set_to_none=True)
        net.loss(X, y).backward()

    def composed():
        net.zero_grad(set_to_none=True)
        bce_with_logits(net(X), y).backward()

    def eager():
        seq.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(seq(X), y).backward()

    ones = [torch.ones_like(p) for p in (net.U, net.b, net.W, net.c)]

    def floor():
        net.zero_grad(set_to_none=True)
        _Nothing.apply(ones, net.U, net.b, net.W, net.c).backward()

    compiled_loss = []  # made at its first call: torch.compile imports inductor, which --no-compile never needs (under
    # -W error its import's own DeprecationWarning stopped bench.py --no-compile)

    def compiled():
        if not compiled_loss:
            compiled_loss.append(torch.compile(lambda X, y: F.binary_cross_entropy_with_logits(seq(X), y),
                                               dynamic=False))
        seq.zero_grad(set_to_none=True)
        compiled_loss[0](X, y).backward()

    return {"fused": fused, "composed": composed, "eager": eager, "compiled": compiled, "floor": floor}


def kernel_alone(X, y, net) -> Callable[[], object] | None:
    """On CUDA, one launch of the training path's kernel (no autograd, no zeroing): what the step's
    arithmetic and memory traffic cost alone, for the bandwidth figure. None where no kernel runs."""
    if X.device.type != "cuda":
        return None
    U, b, W, c = (p.detach() for p in (net.U, net.b, net.W, net.c))
    impl = fused_implementation(X, U, b, W, c, y)
    if impl is not TritonOrTorchOps:
        return None
    return lambda: impl.loss_and_gradients(X, U, b, W, c, y, False)


class _Nothing(torch.autograd.Function):
    """ε = _Nothing.apply(ones, U, b, W, c): zero, computed from nothing; its backward hands each parameter
    a fresh gradient in one call (``ones`` scaled by ε̄), as the fused path's does. The autograd floor."""

    @staticmethod
    def forward(ctx, ones, U, b, W, c):
        ctx.ones = ones
        return U.new_zeros(())

    @staticmethod
    def backward(ctx, eps_bar):
        return None, *torch._foreach_mul(ctx.ones, eps_bar)


def jax_step(X, y, seq):
    """The jitted value-and-grad of the same maths on X's kind of device, or a note saying why not."""
    jax, jnp, why = jax_for(X.device)
    if jax is None:
        return None, why
    loss = seed_loss(jax, jnp)
    params = {"U": seq[0].weight, "b": seq[0].bias, "W": seq[2].weight, "c": seq[2].bias}
    params = {k: jnp.asarray(v.detach().cpu().numpy()) for k, v in params.items()}
    Xj, yj = jnp.asarray(X.cpu().numpy()), jnp.asarray(y.cpu().numpy())
    vg = jax.jit(jax.value_and_grad(loss))

    def step():
        value, grads = vg(params, Xj, yj)
        jax.block_until_ready(grads)
        return value, grads

    return step, ""


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(steps: dict[str, Callable], device, rounds: int, min_seconds: float) -> dict[str, float]:
    """Median seconds per step of each case (see :func:`time_samples`)."""
    return {name: statistics.median(v) for name, v in time_samples(steps, device, rounds, min_seconds).items()}


# Untimed steps before each timing sample: the first steps of a case after another case run slow
# (caches, the allocator, worker threads gone to sleep). Measured on the development machine: the
# ensemble's first five steps at K = 1024, N = 256 right after torch.func's took 0.95–5.3 ms each,
# its steady step 0.65 ms, so a 20 ms sample (about 30 steps) came out at 0.70–0.85 ms, against
# 0.51–0.59 timed alone; after five untimed steps the steady state is what is timed, for every case.
WARM_STEPS = 5


def time_samples(steps: dict[str, Callable], device, rounds: int, min_seconds: float) -> dict[str, list[float]]:
    """Seconds per step of each case in each round, rounds interleaved; each sample loops ≥ min_seconds,
    after WARM_STEPS untimed steps."""
    loops = {}
    for name, step in steps.items():
        for _ in range(3):  # warm up (compilation, caches, lazy builds)
            step()
        _sync(device)
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < min_seconds or k == 0:
            step()
            k += 1
        _sync(device)
        loops[name] = k
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(WARM_STEPS):
                step()
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                step()
            _sync(device)
            samples[name].append((time.perf_counter() - t0) / loops[name])
    return samples


def run(sizes: list[int], device: str = "cpu", rounds: int = 9, min_seconds: float = 0.02,
        with_compile: bool = True, with_jax: bool = True, measure_memory: bool = True,
        log: Callable[[str], None] = lambda s: None) -> Report:
    dev = torch.device(device)
    report = Report(str(dev), machine_info(dev))
    for n in sizes:
        log(f"N = {n} ...")
        X, y, seq, net = make_problem(n, dev)
        steps = torch_steps(X, y, seq, net)
        if not with_compile:
            steps.pop("compiled")
        notes = {}
        if with_jax:
            step, note = jax_step(X, y, seq)
            if step is not None:
                steps["jax"] = step
            else:
                notes["jax"] = note
        samples = time_samples(steps, dev, rounds, min_seconds)
        medians = {name: statistics.median(v) for name, v in samples.items()}
        kernel = kernel_alone(X, y, net)
        kernel_s = time_cases({"kernel": kernel}, dev, rounds, min_seconds)["kernel"] if kernel else None
        saved = {name: saved_bytes(steps[name]) for name in ("fused", "composed", "eager") if name in steps}
        peaks: dict[str, int | None] = {}
        if measure_memory:
            torch_cases = [c for c in ("fused", "composed", "eager") if c in steps]
            if dev.type == "cuda":
                for name in torch_cases:
                    steps[name]()
                    torch.cuda.synchronize(dev)
                    base = torch.cuda.memory_allocated(dev)
                    torch.cuda.reset_peak_memory_stats(dev)
                    steps[name]()
                    torch.cuda.synchronize(dev)
                    peaks[name] = torch.cuda.max_memory_allocated(dev) - base
            else:
                peaks = peak_extra_cpu(n, torch_cases)
        base = medians["eager"]
        for name in CASES:
            if name in medians:
                note = ""
                if name == "fused":  # the least a step must move: read X and y once
                    moved = (X.numel() + y.numel()) * X.element_size()
                    note = f"reads X, y at {moved / medians[name] / 1e9:.2f} GB/s"
                    if kernel_s is not None:
                        note += f"; the kernel alone {1e6 * kernel_s:.1f} µs, {moved / kernel_s / 1e9:.0f} GB/s"
                    note += _peak_bandwidth_note(dev)
                elif name == "floor":
                    note = "no maths: the per-call cost alone, a bound on any Python Function path"
                report.results.append(Result(n, name, 1e3 * medians[name], base / medians[name], saved.get(name),
                                             peaks.get(name), note, [1e3 * t for t in samples[name]]))
            elif name in notes:
                report.results.append(Result(n, name, None, None, note=notes[name]))
    return report
