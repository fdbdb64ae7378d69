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
import math
import os
import sys
import tempfile

PROG = "bench.py"
MAX_MIN_TIME = 3600.0  # seconds: a larger --min-time is a typo, and would calibrate for hours per case

# Memory estimates, checked before anything is allocated; they err low, so that only a run that cannot fit is
# refused (measured on the development machine's CPU, float32, peak resident memory of building and stepping):
BYTES_PER_SAMPLE = 100  # one network at N: X, y, and eager's step (measured 139 a sample; 221 with JAX)
GPU_BYTES_PER_SAMPLE = 60  # of it on the GPU, with --device cuda: X, y and the activations
BYTES_PER_NETWORK = 8_000  # --ensemble, each of K networks: its TanhNet, nn.Sequential, optimiser (measured 30 kB)
BYTES_PER_NETWORK_SAMPLE = 60  # --ensemble, each network and sample: activations of the batched cases (81-120)


class Refused(Exception):
    """A value the command line gave that cannot work: one line, exit 2."""


class NotWritten(Exception):
    """--json FILE appeared while the benchmark ran: one line, exit 1."""


def fail(message: str, code: int) -> int:
    from torch_tanhnet.console import say

    say(f"{PROG}: error: {message}")
    return code


def check_values(args) -> None:
    """Each bad value its own line, naming its flag and what came."""
    if args.rounds < 1:
        raise Refused(f"argument --rounds: must be a positive integer, got {args.rounds}")
    if not (math.isfinite(args.min_time) and 0 < args.min_time <= MAX_MIN_TIME):
        raise Refused(f"argument --min-time: must be a number of seconds > 0 and <= {MAX_MIN_TIME:g}, "
                      f"got {args.min_time!r}")
    for flag, values in (("--sizes", args.sizes), ("--models", args.models)):
        bad = [v for v in values or () if v < 1]
        if bad:
            raise Refused(f"argument {flag}: each must be a positive integer, got {bad[0]}")
        twice = [v for i, v in enumerate(values or ()) if v in values[:i]]
        if twice:  # measured twice, printed as two rows of one size
            raise Refused(f"argument {flag}: {twice[0]} is given twice")
    if args.single_n < 1:
        raise Refused(f"argument --single-n: must be a positive integer, got {args.single_n}")


def check_json(path: str) -> None:
    """Refuse a --json FILE that could not be written, or whose writing would replace a file: before benchmarking,
    not after minutes of it. Leaves nothing behind."""
    from torch_tanhnet.console import file_name

    if not path:
        raise Refused("--json needs the name of a new file, got ''")
    if path == "-":  # a shell's name for stdout, where the table goes: it made a file named "-"
        raise Refused("--json needs the name of a new file, got '-' (the table is stdout's; a file named - is ./-)")
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise Refused(f"--json {file_name(path)} is a folder; give the name of a new file")
    if os.path.lexists(path):
        raise Refused(f"--json {file_name(path)} already exists; choose another path")
    folder = os.path.dirname(path) or "."
    if not os.path.exists(folder):
        raise Refused(f"--json {file_name(path)}: the folder {file_name(folder)} does not exist")
    if not os.path.isdir(folder):
        raise Refused(f"--json {file_name(path)}: {file_name(folder)} is not a folder")
    try:  # what write_json will do: a temporary file beside it
        fd, probe = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise Refused(f"cannot write --json {file_name(path)} ({e.strerror or e})") from None


def write_json(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file in the same folder, then moved into place),
    and never over a file: one that appeared while the benchmark ran is kept, and so is the temporary file."""
    from torch_tanhnet.console import file_name
    from torch_tanhnet.files import new_file

    folder = os.path.dirname(path) or "."
    fd, tmp = new_file(folder, f".{os.path.basename(path)}.")  # a new file's permissions, not mkstemp's 0600
    keep = False
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails rather than replace a file
            taken = False
        except FileExistsError:
            taken = True
        except OSError:  # a file system without hard links
            taken = os.path.lexists(path)
            if not taken:
                os.replace(tmp, path)
        if taken:
            keep = True
            raise NotWritten(f"--json {file_name(path)} appeared while the benchmark ran and is left as it was; "
                             f"the results are in {file_name(tmp)}")
    finally:
        if not keep:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def check_memory(args, device, sizes: list[int]) -> None:
    """Refuse sizes whose data and steps could not fit, before anything is allocated (``--sizes 10**12``)."""
    from torch_tanhnet.checks import short
    from torch_tanhnet.training.setup import memory_shortfall

    gpu = device.type == "cuda"
    if args.ensemble:
        K, n = max(args.models), max(sizes)
        activations = BYTES_PER_NETWORK_SAMPLE * K * n  # on the GPU with --device cuda
        why = memory_shortfall(BYTES_PER_NETWORK * K + (0 if gpu else activations), device, activations)
        if why:  # K networks times what one needs at N: the flag that alone cannot fit, else both
            def fits(k: int, m: int) -> bool:
                need = BYTES_PER_NETWORK_SAMPLE * k * m
                return memory_shortfall(BYTES_PER_NETWORK * k + (0 if gpu else need), device, need) is None

            flags, fewer = (("argument --models", "networks") if not fits(K, 1) else
                            ("argument --sizes", "samples") if not fits(1, n) else
                            ("arguments --models and --sizes", "networks or samples"))
            raise Refused(f"{flags}: {short(K)} networks at N = {short(n)} would need {why}; choose fewer {fewer}")
        checks = [("--single-n", args.single_n)]
    else:
        checks = [("--sizes", max(sizes))]
    for flag, n in checks:
        why = memory_shortfall((24 if gpu else BYTES_PER_SAMPLE) * n, device, GPU_BYTES_PER_SAMPLE * n)
        if why:
            raise Refused(f"argument {flag}: N = {short(n)} would need {why}; choose fewer samples")


def build_parser() -> argparse.ArgumentParser:
    from torch_tanhnet.console import Parser
    from torch_tanhnet.numbers import integer, real, take_negatives

    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=integer, nargs="+", metavar="N",
                   help="numbers of samples (default: 256 10000 1000000, and 10000000 on cuda; with --ensemble: "
                        "256 10000)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    p.add_argument("--rounds", type=integer, default=9, metavar="R", help="interleaved timing rounds (default: 9)")
    p.add_argument("--min-time", type=real, default=0.02, metavar="S",
                   help="seconds each timing sample lasts at least (default: 0.02)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile case (default: run it)")
    p.add_argument("--no-jax", action="store_true", help="skip the JAX case (default: run it when installed)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement (default: measure)")
    p.add_argument("--ensemble", action="store_true",
                   help="time K networks trained at once instead of one (default: one network)")
    p.add_argument("--models", type=integer, nargs="+", metavar="K",
                   help="with --ensemble: numbers of networks (default: 1 64 1024)")
    p.add_argument("--single-n", type=integer, default=None, metavar="N",
                   help="with --ensemble: samples of the single-network step whose rate is compared (default: 1000000)")
    p.add_argument("--no-loop", action="store_true", help="with --ensemble: skip the Python loop (default: run it)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE, which must not exist yet (default: none)")
    return take_negatives(p)


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if (args.models or args.no_loop or args.single_n is not None) and not args.ensemble:
        p.error("--models, --single-n and --no-loop go with --ensemble")
    args.single_n = 1_000_000 if args.single_n is None else args.single_n
    try:
        check_values(args)
        if args.json is not None:
            check_json(args.json)
    except Refused as e:
        return fail(str(e), 2)

    from torch_tanhnet.console import warnings_as_lines
    from torch_tanhnet.training.config import ConfigError
    from torch_tanhnet.training.setup import out_of_memory, resolve_device

    warnings_as_lines(PROG)
    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        return fail(e.for_command_line(), 2)
    if args.ensemble:
        args.models = args.models or [1, 64, 1024]
        sizes = args.sizes or [256, 10_000]
    else:
        sizes = args.sizes or ([256, 10_000, 1_000_000] + ([10_000_000] if device.type == "cuda" else []))
    try:
        check_memory(args, device, sizes)
        report = (run_ensemble if args.ensemble else run_single)(args, device, sizes)
        if args.json is not None:
            write_json(args.json, report.to_json() + "\n")
    except Refused as e:
        return fail(str(e), 2)
    except NotWritten as e:
        return fail(str(e), 1)
    except OSError as e:  # writing --json failed after all (disk full, folder removed): the table is printed
        from torch_tanhnet.console import file_name

        return fail(f"cannot write --json {file_name(args.json)} ({e.strerror or e}); the results are only in the "
                    "table above", 1)
    except Exception as e:  # out of memory, else raised
        if (short := out_of_memory(e, "try smaller --sizes" + (" or --models" if args.ensemble else ""))) is None:
            raise
        return fail(short.for_command_line(), 1)
    return 0


def run_single(args, device, sizes):
    from torch_tanhnet.benchmark import run
    from torch_tanhnet.console import say

    report = run(sizes, str(device), args.rounds, args.min_time, with_compile=not args.no_compile,
                 with_jax=not args.no_jax, measure_memory=not args.no_memory,
                 log=say)
    m = report.machine
    print(f"device {report.device}; {m['cpu']}, {m['threads']} threads; python {m['python']}, torch {m['torch']}, "
          f"jax {m['jax'] or 'not installed'}; fused CPU kernels: {'yes' if m['fused_cpu_kernels'] else 'no'}"
          + (f"; GPU {m['gpu']}" if "gpu" in m else ""))
    print("one training step (zero grads, forward, cost, backward), float32; ratio = eager median / case median\n")
    print(report.table(), flush=True)
    return report


def run_ensemble(args, device, sizes):
    from torch_tanhnet.benchmark.ensemble import run as run_ensemble
    from torch_tanhnet.console import say

    report = run_ensemble(args.models, sizes, str(device), args.rounds, args.min_time, single_n=args.single_n,
                          with_jax=not args.no_jax, with_loop=not args.no_loop,
                          log=say)
    m = report.machine
    print(f"device {report.device}; {m['cpu']}, {m['threads']} threads; python {m['python']}, torch {m['torch']}, "
          f"jax {m['jax'] or 'not installed'}; fused CPU kernels: {'yes' if m['fused_cpu_kernels'] else 'no'}"
          + (f"; GPU {m['gpu']}" if "gpu" in m else ""))
    print(f"one training step of K networks (forward, cost, backward, SGD update), float32, shared data; "
          f"ensemble × = case median / ensemble median; vs single = samples/s against one network's fused step "
          f"at N = {report.single_n} ({report.single_samples_per_s:.3g} samples/s)\n")
    print(report.table(), flush=True)
    return report


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I and -P leave scripts/ out
    from startup import load_output  # the package and torch: failures in one line

    Output = load_output(PROG, "torch_tanhnet.benchmark")

    sys.stdout = Output(sys.stdout, PROG)  # stdout lost (| head, a full disk): the work goes on
    sys.exit(sys.stdout.run(main))
