"""Time the training step with the fused Function as a C++ autograd op, beside the package's cases.

    python docs/experiments/cpp_autograd_op/measure.py [--n 256] [--rounds 15]

A measurement for README.md (Performance, "Where the small-N time goes"), not part of the
package: it builds ``fused_loss_op.cpp`` with ``torch.utils.cpp_extension.load`` (needs ninja
and a C++ compiler; about 20 s on two cores), checks that the op gives the package's values
and gradients, then times, interleaved in one run (medians, ratios against eager autograd):

- ``eager``, ``fused``, ``floor``, ``jax``: as ``scripts/bench.py`` defines them;
- ``cpp op``: the step as ``TanhNet.loss`` would run it with the op (``Module.zero_grad``,
  the same input checks, the op, ``backward()``);
- ``cpp op, bare``: the least a step through the op can cost (each ``.grad = None``, the op,
  ``backward()``: no module walk, no checks);
- ``backward alone``: ``(x * 2).backward()`` on one zero-dimensional leaf, what PyTorch's
  ``Tensor.backward`` and engine cost with nothing to do.
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
from pathlib import Path

import torch
from torch.utils.cpp_extension import load

from torch_tanhnet.benchmark import jax_step, make_problem, time_cases, torch_steps
from torch_tanhnet.checks import check_features, check_labels
from torch_tanhnet.fast import _threads, fused_kernel_for

HERE = Path(__file__).parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()

    build = Path(tempfile.gettempdir()) / "torch_tanhnet_cpp_op_experiment"
    build.mkdir(exist_ok=True)
    load("tanhnet_experiment", [str(HERE / "fused_loss_op.cpp")], build_directory=str(build),
         extra_cflags=["-O2"], is_python_module=False, verbose=False)
    op = torch.ops.tanhnet_experiment.fused_loss.default

    X, y, seq, net = make_problem(args.n, "cpu")
    lib = fused_kernel_for(X, net.U)
    if lib is None:
        raise SystemExit("the package's C kernels are unavailable here; nothing to compare")
    kernel = ctypes.cast(lib.tn_fused_loss, ctypes.c_void_p).value
    params = [net.U, net.b, net.W, net.c]
    threads = _threads(X.shape[0])

    eps = op(X, *params, y, kernel, threads)
    eps.backward()
    grads = [q.grad.clone() for q in params]
    net.zero_grad(set_to_none=True)
    ref = net.loss(X, y)
    ref.backward()
    assert torch.equal(eps, ref.detach()) and all(torch.equal(g, q.grad) for g, q in zip(grads, params))

    def cpp_op():
        net.zero_grad(set_to_none=True)
        check_features(X, net.in_features)
        check_labels(y, (*X.shape[:-1], 1), X.dtype, X.device)
        U, b, W, c = net._weights()
        op(X, U, b, W, c, y, kernel, threads).backward()

    def cpp_op_bare():
        for q in params:
            q.grad = None
        op(X, *params, y, kernel, threads).backward()

    leaf = torch.zeros((), requires_grad=True)

    def backward_alone():
        (leaf * 2).backward()

    steps = {k: v for k, v in torch_steps(X, y, seq, net).items() if k in ("eager", "fused", "floor")}
    jax, note = jax_step(X, y, seq)
    if jax is not None:
        steps["jax"] = jax
    steps.update({"cpp op": cpp_op, "cpp op, bare": cpp_op_bare, "backward alone": backward_alone})
    medians = time_cases(steps, torch.device("cpu"), args.rounds, 0.02)
    print(f"N = {args.n}, torch {torch.__version__}, {torch.get_num_threads()} threads"
          + ("" if jax is not None else f"; {note}"))
    for name, s in medians.items():
        print(f"  {name:15s} {1e6 * s:8.1f} µs  {medians['eager'] / s:5.2f}x eager")


if __name__ == "__main__":
    main()
