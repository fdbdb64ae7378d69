"""Benchmark one training step of TanhNet's paths against PyTorch autograd, measured in the same run.

    python scripts/bench.py                      # N = 256, 10^4, 10^6 on the CPU (and 10^7 on CUDA)
    python scripts/bench.py --sizes 256 100000 --rounds 15
    python scripts/bench.py --device cuda
    python scripts/bench.py --json bench.json    # also a machine-readable copy
    pip install -e ".[bench]"                    # adds JAX, for the jax column
    python scripts/bench.py --ensemble           # K = 1, 64, 1024 networks at N = 256, 10^4: one step for all
    python scripts/bench.py --ensemble --models 256 --sizes 400

Prints the machine, the library versions, and a table of median step times with the ratio
to eager autograd (> 1 is faster), the bytes each path saves for backward, and the peak
extra memory of a step. With --ensemble, one whole training step (forward, cost, backward, SGD
update) of K networks at once, the ensemble against a loop of TanhNets, torch.func ensembling,
batched eager autograd and JAX (torch_tanhnet/benchmark/ensemble.py). Timings come from
interleaved repeats; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help="numbers of samples (default: 256 10000 1000000, and 10000000 on cuda)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    p.add_argument("--rounds", type=int, default=9, metavar="R", help="interleaved timing rounds (default: 9)")
    p.add_argument("--min-time", type=float, default=0.02, metavar="S",
                   help="seconds each timing sample lasts at least (default: 0.02)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile case (default: run it)")
    p.add_argument("--no-jax", action="store_true", help="skip the JAX case (default: run it when installed)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement (default: measure)")
    p.add_argument("--ensemble", action="store_true",
                   help="time K networks trained at once instead of one (default: one network)")
    p.add_argument("--models", type=int, nargs="+", metavar="K",
                   help="with --ensemble: numbers of networks (default: 1 64 1024)")
    p.add_argument("--single-n", type=int, default=1_000_000, metavar="N",
                   help="with --ensemble: samples of the single-network step whose rate is compared (default: 1000000)")
    p.add_argument("--no-loop", action="store_true", help="with --ensemble: skip the Python loop (default: run it)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE (default: none)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.min_time <= 0 or (args.sizes and min(args.sizes) < 1):
        p.error("--rounds and --sizes must be positive integers and --min-time a positive number")
    if (args.models or args.no_loop) and not args.ensemble:
        p.error("--models and --no-loop go with --ensemble")
    if (args.models and min(args.models) < 1) or args.single_n < 1:
        p.error("--models and --single-n must be positive integers")

    from torch_tanhnet.benchmark import run
    from torch_tanhnet.training.config import ConfigError
    from torch_tanhnet.training.setup import resolve_device

    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        p.error(str(e))
    if args.ensemble:
        return ensemble_main(args, device)
    sizes = args.sizes or ([256, 10_000, 1_000_000] + ([10_000_000] if device.type == "cuda" else []))
    report = run(sizes, str(device), args.rounds, args.min_time, with_compile=not args.no_compile,
                 with_jax=not args.no_jax, measure_memory=not args.no_memory,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    m = report.machine
    print(f"device {report.device}; {m['cpu']}, {m['threads']} threads; python {m['python']}, torch {m['torch']}, "
          f"jax {m['jax'] or 'not installed'}; fused CPU kernels: {'yes' if m['fused_cpu_kernels'] else 'no'}"
          + (f"; GPU {m['gpu']}" if "gpu" in m else ""))
    print("one training step (zero grads, forward, cost, backward), float32; ratio = eager median / case median\n")
    print(report.table())
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json() + "\n")
    return 0


def ensemble_main(args, device) -> int:
    from torch_tanhnet.benchmark.ensemble import run as run_ensemble

    report = run_ensemble(args.models or [1, 64, 1024], args.sizes or [256, 10_000], str(device), args.rounds,
                          args.min_time, single_n=args.single_n, with_jax=not args.no_jax,
                          with_loop=not args.no_loop, log=lambda s: print(s, file=sys.stderr, flush=True))
    m = report.machine
    print(f"device {report.device}; {m['cpu']}, {m['threads']} threads; python {m['python']}, torch {m['torch']}, "
          f"jax {m['jax'] or 'not installed'}; fused CPU kernels: {'yes' if m['fused_cpu_kernels'] else 'no'}"
          + (f"; GPU {m['gpu']}" if "gpu" in m else ""))
    print(f"one training step of K networks (forward, cost, backward, SGD update), float32, shared data; "
          f"ensemble × = case median / ensemble median; vs single = samples/s against one network's fused step "
          f"at N = {report.single_n} ({report.single_samples_per_s:.3g} samples/s)\n")
    print(report.table())
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
