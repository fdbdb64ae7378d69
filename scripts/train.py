"""Train the handout's 2-3-1 tanh network on 2-D data and watch it learn in TensorBoard.

    python scripts/train.py                                  # moons, 500 samples, full batch SGD
    python scripts/train.py --dataset circles --epochs 3000
    python scripts/train.py --dataset spiral --hidden 16 --optimizer adam --lr 0.02 --epochs 5000
    python scripts/train.py --data my_points.csv --standardize     # x1,x2,label rows
    python scripts/train.py --logdir runs/demo --epochs 1000
    python scripts/train.py --logdir runs/demo --epochs 4000 --resume   # continue it up to 4000
    torchrun --standalone --nproc_per_node=2 scripts/train.py --dataset moons
    tensorboard --logdir runs

A thin command line over torch_tanhnet.training.train(); everything here is callable from Python.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys

SUPPRESS = argparse.SUPPRESS
SIGNALLED: list[int] = []  # Ctrl-C or SIGTERM that came before the package's handler was in place
# Ctrl-C, SIGTERM, a closed terminal (SIGHUP), a CPU-time limit (SIGXCPU): training.signals.SIGNAL_NAMES, named
# here before torch is imported
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGXCPU")
                     if hasattr(signal, name))


def interrupt(sig, frame) -> None:
    """Until torch is imported: stop at once, and remember it (Python drops an exception raised in some
    callbacks during an import; main checks the list once the imports are done). Later ones are absorbed."""
    if SIGNALLED:  # a stop is under way: absorb
        return
    SIGNALLED.append(sig)
    raise KeyboardInterrupt


def unraisable(info) -> None:
    """Python's report of an exception it dropped, except a KeyboardInterrupt: that one is remembered and
    acted on (see interrupt), so its report would be a traceback for nothing."""
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The command line; with suppress_defaults, only flags given explicitly appear in the result."""
    from torch_tanhnet.console import Parser
    from torch_tanhnet.numbers import integer, real, take_negatives
    from torch_tanhnet.training.config import TrainConfig
    from torch_tanhnet.training.data import DEFAULT_NOISE, GENERATORS

    d = TrainConfig()
    p = Parser(prog="train.py", description="Train TanhNet on 2-D data, logging to TensorBoard.",
               one_value="; scripts/sweep.py trains several",
               argument_default=SUPPRESS if suppress_defaults else None)

    def arg(*flags, default, **kw):
        p.add_argument(*flags, **kw, **({} if suppress_defaults else {"default": default}))

    noise = ", ".join(f"{k} {v}" for k, v in DEFAULT_NOISE.items())
    arg("--dataset", default=d.dataset, metavar="NAME",
        help=f"built-in data set: {', '.join(GENERATORS)} (default: {d.dataset})")
    arg("--data", default=d.data, metavar="FILE.csv",
        help="read x1,x2,label rows (0/1 labels, header optional) instead of a built-in data set (default: none)")
    arg("--n-samples", type=integer, default=d.n_samples, metavar="N",
        help=f"samples drawn from the built-in data set (default: {d.n_samples})")
    arg("--noise", type=real, default=d.noise, metavar="STD",
        help=f"noise of the built-in data set (default: {noise})")
    arg("--test-fraction", type=real, default=d.test_fraction, metavar="F",
        help=f"share of the samples held out for testing (default: {d.test_fraction})")
    arg("--standardize", action="store_true", default=d.standardize,
        help="scale features to zero mean and unit variance, fitted on the training part (default: off)")
    arg("--hidden", type=integer, default=d.hidden, metavar="H", help=f"hidden tanh units (default: {d.hidden})")
    arg("--init-scale", type=real, default=d.init_scale, metavar="S",
        help=f"multiply the initial weights U and W by S (default: {d.init_scale:g}, TanhNet's own draw)")
    arg("--optimizer", choices=("sgd", "adam"), default=d.optimizer, help=f"optimizer (default: {d.optimizer})")
    arg("--lr", type=real, default=d.lr, metavar="LR", help=f"learning rate (default: {d.lr})")
    arg("--momentum", type=real, default=d.momentum, metavar="M",
        help=f"SGD momentum, ignored by adam (default: {d.momentum})")
    arg("--weight-decay", type=real, default=d.weight_decay, metavar="WD",
        help=f"L2 weight decay (default: {d.weight_decay})")
    arg("--epochs", type=integer, default=d.epochs, metavar="E",
        help=f"total epochs to reach; a resumed run continues up to it (default: {d.epochs})")
    def batch_size(text: str) -> int | None:  # 'full' as sweep.py takes it (and prints it in a run's settings)
        return None if text == "full" else integer(text)

    batch_size.__name__ = "int"  # argparse's "invalid int value: 'x'" for anything else, as before
    arg("--batch-size", type=batch_size, default=d.batch_size, metavar="B",
        help="samples per step, or 'full' (default: the whole training set, the handout's full-batch ε)")
    arg("--seed", type=integer, default=d.seed, metavar="S",
        help=f"seed of the data, the split, the initialisation and the batch order (default: {d.seed})")
    arg("--dtype", choices=("float32", "float64"), default=d.dtype,
        help=f"precision of the model and the data (default: {d.dtype})")
    arg("--device", choices=("auto", "cpu", "cuda"), default=d.device,
        help=f"where to train; auto picks cuda when present (default: {d.device})")
    arg("--logdir", default=d.logdir, metavar="DIR",
        help="TensorBoard logs and checkpoint.pt go here (default: runs/<MMDD-HHMMSS>-<data set>-<changed settings>)")
    arg("--log-interval", type=integer, default=d.log_interval, metavar="K",
        help=f"steps between scalar logs (default: {d.log_interval})")
    arg("--image-interval", type=integer, default=d.image_interval, metavar="K",
        help=f"steps between pictures and histograms, after steps 0, 10, 20, 50, ... below K "
             f"(default: {d.image_interval})")
    arg("--checkpoint-interval", type=integer, default=d.checkpoint_interval, metavar="E",
        help=f"epochs between checkpoints; one is also written at the end (default: {d.checkpoint_interval})")
    arg("--resume", action="store_true", default=d.resume,
        help="continue the run in --logdir from its checkpoint up to --epochs (default: off)")
    arg("--dry-run", action="store_true", default=d.dry_run,
        help="run 5 steps only, for smoke tests; without --logdir nothing is kept (default: off)")
    arg("--dist-timeout", type=real, default=d.dist_timeout, metavar="S",
        help=f"under torchrun, seconds to wait for the other processes before failing (default: {d.dist_timeout:g})")
    arg("--no-progress", dest="progress", action="store_false", default=d.progress,
        help="no progress bar (default: a bar on a terminal)")
    return take_negatives(p)


def curvature_line(result) -> str:
    """The summary's line on the Hessian of the training loss at the last parameters."""
    from torch_tanhnet.training.metrics import MAX_HESSIAN_PARAMETERS

    m = result.metrics
    if "loss_hessian/min_eigenvalue" not in m:
        n = sum(p.numel() for p in result.model.parameters())
        why = (f"{n} parameters > {MAX_HESSIAN_PARAMETERS}" if n > MAX_HESSIAN_PARAMETERS
               else "the run stopped between picture steps, --image-interval")
        return f"Hessian of the training loss: not computed ({why})"
    low, high = m["loss_hessian/min_eigenvalue"], m["loss_hessian/max_eigenvalue"]
    saturation = m.get("tanh/saturation", 0.0)
    scale = max(abs(high), 1.0)
    if max(abs(low), abs(high)) < 1e-6 and saturation >= 0.99:  # --lr 50: weights in the hundreds, read as a minimum
        reading = (f"all ~0 with {saturation:.0%} of the tanh units saturated (|h| > 0.97): flat because the units "
                   "are stuck at ±1, not a minimum (a learning rate too large?)")
    elif low < -1e-4 * scale:
        reading = "a negative one: ε curves down along some direction (a saddle if the gradient is ~0)"
    elif low < -1e-8 * scale:  # a solved circles run's -4e-6 beside 0.95 read as a saddle; along so slight a curve,
        # training at lr 0.5 moves by about lr·|λ|/(1 − 0.9) a step: nothing in a run (docs/experiments/xor.md)
        reading = "the least barely below 0: flat along some direction rather than curving down"
    else:
        reading = "none negative: no direction curves down"
    grad = m.get("norm/grad/total")
    gradient = f"; the gradient's norm {grad:.2g}" if grad is not None and math.isfinite(grad) else ""
    return f"Hessian of the training loss: eigenvalues from {low:.3g} to {high:.3g}; {reading}{gradient}"


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command line ``argv``; the exit code. ``own_process``: this is the script's process, whose
    signal handlers main may set (see training.signals.interrupt)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    given = set(vars(build_parser(suppress_defaults=True).parse_args(argv)))

    from torch_tanhnet.console import counted, figure, through_reference, warnings_as_lines
    from torch_tanhnet.training.checkpoint import CheckpointError, SaveError
    from torch_tanhnet.training.config import ConfigError, TrainConfig
    from torch_tanhnet.training.data import DataError
    from torch_tanhnet.training.setup import OutOfMemory
    from torch_tanhnet.training.wording import printable, script, shell
    from torch_tanhnet.training import TrainingDiverged, train

    from torch_tanhnet.training.distributed import DistributedError, PeerFailed, launched_by_torchrun, train_distributed

    if own_process:
        from torch_tanhnet.training import signals

        if SIGNALLED:  # one came during the imports, and Python dropped its KeyboardInterrupt
            raise KeyboardInterrupt
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                signal.signal(sig, signals.interrupt)  # remembered even if dropped; absorbed after the loop

    config = TrainConfig(**vars(args))
    warnings_as_lines(parser.prog)

    def answer(e: BaseException) -> int | None:
        """Say (and under torchrun record) ``e`` in one line; its exit code, or None for an error not ours."""
        if isinstance(e, (ConfigError, DataError, CheckpointError)):  # a bad value or file in a well-formed command
            return fail(f"{parser.prog}: error: {e.for_command_line()}", 2)  # line (usage: a malformed one)
        if isinstance(e, (TrainingDiverged, DistributedError, OutOfMemory, SaveError)):
            return fail(f"{parser.prog}: error: {e.for_command_line()}", 1, consequence=isinstance(e, PeerFailed))
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C or SIGTERM while the run was being set up, before its loop;
            # under torchrun, often its SIGTERM after another process failed: not the root cause its report names
            return fail(f"{parser.prog}: interrupted before training began; nothing was saved", 130,
                        consequence=True)
        return None

    answered: dict[int, int | None] = {}  # said under torchrun before its process group went (sweep.py does too)
    try:
        if launched_by_torchrun():
            result = train_distributed(config, given, on_error=lambda e: answered.setdefault(id(e), answer(e)))
        else:
            result = train(config, given=given)
    except BaseException as e:
        code = answered[id(e)] if id(e) in answered else answer(e)
        if code is None:
            raise
        return code
    if result is None:  # a process other than rank 0
        return 0
    if result.already_done:
        asked = f"--epochs {args.epochs}" if "epochs" in given else "its --epochs"
        print(f"the run in {printable(str(result.logdir))} is already at epoch {result.epoch} (step "
              f"{result.global_step}); {asked} asks for no more: nothing changed (a larger --epochs continues it)")
        return 0
    m = result.metrics
    if result.interrupted and result.kept:
        print(f"interrupted at step {result.global_step}; checkpoint saved in "
              f"{printable(str(result.logdir))}/checkpoint.pt\n"
              f"continue with: python {script(__file__, 'train.py')} --logdir {shell(result.logdir)} --resume")
    elif result.interrupted:
        print(f"interrupted at step {result.global_step}")
    print(f"step {result.global_step} (epoch {result.epoch}): "
          f"train loss {figure(m.get('loss/train', float('nan')), 4)}, "
          f"accuracy {m.get('accuracy/train', float('nan')):.3f} | "
          f"test loss {figure(m.get('loss/test', float('nan')), 4)}, "
          f"accuracy {m.get('accuracy/test', float('nan')):.3f}")
    print(curvature_line(result))
    print(f"{counted(result.steps_this_run, 'step')} in {result.seconds:.2f} s ({result.steps_per_second:.0f} "
          f"steps/s{through_reference()})")
    if result.kept and config.dry_run and config.resume and result.steps_this_run:  # said: it changed a saved run
        print(f"dry run: its {counted(result.steps_this_run, 'step')} were kept in {printable(str(result.logdir))} "
              f"(a dry run with --logdir is a run: its checkpoint is at step {result.global_step} now)")
    if result.kept:
        # TensorBoard keeps 10 pictures of a tag unless told: past 2000 steps it dropped step 0's, the untrained net
        print(f"view it with: tensorboard --logdir {shell(result.logdir)} --samples_per_plugin images=1000")
    else:
        print("dry run: nothing kept (give --logdir DIR to keep its logs and checkpoint)")
    return 130 if result.interrupted else 0


def fail(line: str, code: int, consequence: bool = False) -> int:
    """Print the error's one line; under torchrun, also leave it for torchrun's closing report (``consequence``:
    this process stopped because another failed, which the report should not name as the cause)."""
    from torch_tanhnet.console import say
    from torch_tanhnet.training.distributed import record_error

    say(line)
    record_error(line, consequence)
    return code


def ignore_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    # until the loop takes over (training.signals), Ctrl-C and SIGTERM end the process at once: one line, exit 130
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) not in (signal.SIG_IGN, None):
            signal.signal(sig, interrupt)
    sys.unraisablehook = unraisable
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I and -P leave scripts/ out
        from startup import load_output  # the package and torch: failures in one line

        Output = load_output("train.py", "torch_tanhnet.training")
        from torch_tanhnet.training.distributed import launched_by_torchrun

        sys.stdout = Output(sys.stdout, "train.py")  # stdout lost (| head, a full disk): the run goes on
        code = sys.stdout.run(lambda: main(own_process=True), torchrun=launched_by_torchrun())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while starting up: imports, the command line
        # one write, as torch_tanhnet.console.say writes (importing it would start importing torch again)
        sys.stderr.write("train.py: interrupted before training began; nothing was saved\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # torch may be half imported, and its teardown would then fail: skip it
    ignore_signals()  # the run is over (or never began): a signal now waits for the exit, even during teardown
    if launched_by_torchrun():
        from torch_tanhnet.training.distributed import end_process

        end_process(code)  # torch's gloo threads can abort a torchrun process's teardown; see end_process
    sys.exit(code)
