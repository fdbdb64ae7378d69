"""Audit the hand-derived backward: every intermediate adjoint of the handout beside autograd's.

    python scripts/check_gradients.py                   # float64, 8 samples
    python scripts/check_gradients.py --scalar          # also the handout's scalar-form loops over i, j, k
    python scripts/check_gradients.py --values --n 2 --seed 3   # every quantity's numbers first, to follow by hand
    python scripts/check_gradients.py --dtype float32 --n 100 --seed 3

Prints one row per quantity (ε̄, z̄, W̄, c̄, H̄, Ḡ, Ū, b̄, X̄): its shape, exact equality,
allclose at the dtype's tolerance and the largest absolute difference; the same for the
forward-mode tangents (Ġ, Ḣ, ż, ε̇) of the hand-written jvp against torch.func.jvp along
random directions; then gradcheck, gradgradcheck and forward-mode gradcheck
(check_forward_ad, batched tangents too) of both Functions. Exit code 0 when everything
agrees, 1 otherwise.

It checks the reference Functions (TanhNetFunction, BCEWithLogitsFunction), the equations
as written; training runs the fused kernels, which the tests hold equal to them.
"""

from __future__ import annotations

import argparse
import os
import sys

PROG = "check_gradients.py"
# what the audit holds at its peak, erring low so that only an audit that cannot fit is refused: measured 590 bytes
# a sample in float64 and 420 in float32 (the data, every adjoint and tangent, autograd's graphs) on the CPU; on
# CUDA the data are drawn in float64 on the CPU first (30 bytes a sample)
BYTES_PER_SAMPLE = 200
HOST_BYTES_PER_SAMPLE_CUDA = 24


def fail(message: str, code: int) -> int:
    from torch_tanhnet.console import say

    say(f"{PROG}: error: {message}")
    return code


def build_parser() -> argparse.ArgumentParser:
    from torch_tanhnet.console import Parser
    from torch_tanhnet.numbers import integer, take_negatives

    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=integer, default=8, metavar="N", help="number of data points (default: 8)")
    p.add_argument("--seed", type=integer, default=0, metavar="S", help="seed of weights, data, labels (default: 0)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the audit (default: float64)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="where to compute; auto picks cuda when present (default: cpu)")
    p.add_argument("--scalar", action="store_true",
                   help="also evaluate the handout's scalar-form equations with loops over i, j, k (default: off)")
    p.add_argument("--values", action="store_true",
                   help="first print every quantity's numbers (inputs, forward, backward), to follow a calculation "
                        "by hand; matrices show their first 10 rows (default: off)")
    return take_negatives(p)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 1 or not 0 <= args.seed < 2**32:
        from torch_tanhnet.checks import short  # a value of 300 digits, cut short

        if args.n < 1:
            return fail(f"argument --n: must be a positive integer, got {short(args.n)}", 2)
        return fail(f"argument --seed: must be an integer in [0, 2**32), got {short(args.seed)}", 2)

    import torch

    from torch_tanhnet.audit import audit, seed_problem, values
    from torch_tanhnet.console import warnings_as_lines
    from torch_tanhnet.training.config import ConfigError
    from torch_tanhnet.training.setup import memory_shortfall, out_of_memory, resolve_device

    warnings_as_lines(PROG)
    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        return fail(e.for_command_line(), 2)
    cuda = device.type == "cuda"
    why = memory_shortfall((HOST_BYTES_PER_SAMPLE_CUDA if cuda else BYTES_PER_SAMPLE) * args.n, device,
                           BYTES_PER_SAMPLE * args.n)
    if why:
        return fail(f"argument --n: {args.n} data points would need {why}; choose fewer", 2)
    try:
        problem = seed_problem(args.n, args.seed, getattr(torch, args.dtype), device)
        report = audit(*problem, scalar=args.scalar)
    except Exception as e:  # out of memory, else raised
        if (short := out_of_memory(e, "try a smaller --n")) is None:
            raise
        return fail(short.for_command_line(), 1)
    print(f"the handout's 2-3-1 network, N = {args.n}, seed {args.seed}, {args.dtype} on {device}\n")
    if args.values:
        print(values(*problem) + "\n")
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I and -P leave scripts/ out
    from startup import load_output  # the package and torch: failures in one line

    Output = load_output(PROG, "torch_tanhnet.audit")

    sys.stdout = Output(sys.stdout, PROG)  # stdout lost (| head, a full disk): the work goes on
    sys.exit(sys.stdout.run(main))
