"""Train many runs of the handout's network at once: a grid (or random draws) of train.py's settings times seeds.

    python scripts/sweep.py --dataset xor --hidden 1 2 3 4 --lr 0.1 0.5 1.0 --seeds 100   # 1200 runs
    python scripts/sweep.py --lr 0.1 0.3 1 3 --init-scale 0.5 1 2 --seeds 50 --logdir sweeps/lr-init
    python scripts/sweep.py --random 40 --lr 0.01:3:log --momentum 0:0.95 --hidden 2 3 8 --seeds 20
    python scripts/sweep.py --logdir sweeps/lr-init --resume        # continue an interrupted sweep
    torchrun --standalone --nproc_per_node=2 scripts/sweep.py --hidden 2 3 --seeds 500
    tensorboard --logdir sweeps/lr-init

Every run is the run ``scripts/train.py`` trains with the same settings and ``--seed``; runs of one
width train together as one ensemble. A thin command line over torch_tanhnet.sweep; see docs/sweep.md.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

SUPPRESS = argparse.SUPPRESS
# train.py's settings a sweep can vary: flag -> (metavar, help); each takes one or more values
SETTINGS = {
    "dataset": ("NAME", "built-in data sets"),
    "data": ("FILE.csv", "CSV files (x1,x2,label rows) instead of a built-in data set"),
    "n-samples": ("N", "samples drawn from the data set"),
    "noise": ("STD", "noise of the data set"),
    "test-fraction": ("F", "shares of the samples held out for testing"),
    "hidden": ("H", "hidden tanh units"),
    "init-scale": ("S", "factors on the initial weights U and W"),
    "optimizer": ("{sgd,adam}", "optimizers"),
    "lr": ("LR", "learning rates"),
    "momentum": ("M", "SGD momenta"),
    "weight-decay": ("WD", "L2 weight decays"),
    "epochs": ("E", "epochs"),
    "batch-size": ("B", "samples per step ('full': the whole training set)"),
    "dtype": ("{float32,float64}", "precisions"),
}


def _next(value: str) -> str:
    """The seed after ``value`` as the user wrote it, or S+1 where it is not a whole number."""
    return str(int(value) + 1) if value.isdigit() else "S+1"


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The command line; with suppress_defaults, only flags given explicitly appear in the result."""
    from torch_tanhnet.console import Parser
    from torch_tanhnet.numbers import integer, real, take_negatives
    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.sweep.space import DEFAULTS

    d = SweepConfig()
    p = Parser(
        prog="sweep.py", argument_default=SUPPRESS if suppress_defaults else None,
        description="Train a grid (or random draws) of train.py's settings times seeds, as ensembles; report the "
                    "share solved per setting. Each setting flag takes one or more values; with --random, a number "
                    "setting also takes a range LOW:HIGH (uniform) or LOW:HIGH:log (log-uniform).")

    class NotSeeds(argparse.Action):  # train.py's --seed: "sweep.py --seed 3" trained seeds 0, 1 and 2
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"argument --seed: sweep.py takes --seeds: a count N (seeds 0 to N-1), a list, or A:B; "
                         f"train.py's --seed {values} is --seeds {values}:{_next(values)} here")

    p.add_argument("--seed", action=NotSeeds, default=SUPPRESS, help=SUPPRESS)

    def arg(*flags, default, **kw):
        p.add_argument(*flags, **kw, **({} if suppress_defaults else {"default": default}))

    for name, (metavar, what) in SETTINGS.items():
        default = DEFAULTS[name.replace("-", "_")]
        shown = {"batch-size": "full batch", "noise": "the data set's", "data": "none"}.get(name, default)
        arg(f"--{name}", nargs="+", default=None, metavar=metavar, help=f"{what} (default: train.py's, {shown})")
    arg("--standardize", nargs="*", choices=("on", "off"), default=None,
        help="scale features to zero mean, unit variance: on, off, or both (bare: on; default: off)")
    arg("--seeds", nargs="+", default=None, metavar="N",
        help="N: seeds 0 to N-1; several numbers: those seeds; A:B: seeds A to B-1 (default: 10)")
    arg("--random", type=integer, default=d.random, metavar="N",
        help="draw N settings from the values and ranges instead of the grid (default: the grid)")
    arg("--random-seed", type=integer, default=d.random_seed, metavar="S", help=f"seed of --random's draws "
        f"(default: {d.random_seed})")
    arg("--solved-at", type=real, default=d.solved_at, metavar="A",
        help=f"a run is solved when its final test accuracy reaches A (default: {d.solved_at})")
    arg("--gallery", type=integer, default=d.gallery, metavar="N",
        help=f"solved and failed runs drawn per setting (default: {d.gallery})")
    arg("--sessions", choices=("auto", "runs", "settings"), default=d.sessions,
        help="HParams lists every run (runs) or every setting (settings); auto: every run while TensorBoard would "
             f"show at most 500 runs, beyond which it selects none in its other tabs (default: {d.sessions})")
    arg("--device", choices=("auto", "cpu", "cuda"), default=d.device,
        help=f"where to train; auto picks cuda when present (default: {d.device})")
    arg("--logdir", default=d.logdir, metavar="DIR",
        help="results, TensorBoard logs and the checkpoint go here (default: sweeps/<MMDD-HHMMSS>-<dataset>)")
    arg("--log-interval", type=integer, default=d.log_interval, metavar="K",
        help=f"steps between the metrics of every run: the curves and steps to solve (default: {d.log_interval})")
    arg("--checkpoint-interval", type=integer, default=d.checkpoint_interval, metavar="E",
        help=f"epochs between checkpoints of the sweep; one is also written after each group "
             f"(default: {d.checkpoint_interval})")
    arg("--checkpoint-seconds", type=real, default=d.checkpoint_seconds, metavar="S",
        help=f"but none inside a group sooner than S seconds after the last (default: {d.checkpoint_seconds:g})")
    arg("--resume", action="store_true", default=d.resume,
        help="continue the sweep in --logdir from its checkpoint (default: off)")
    arg("--dry-run", action="store_true", default=d.dry_run,
        help="5 steps of each group, for smoke tests; writes nothing without --logdir (default: off)")
    arg("--dist-timeout", type=real, default=d.dist_timeout, metavar="S",
        help=f"under torchrun, seconds to wait for the other processes (default: {d.dist_timeout:g})")
    arg("--no-progress", dest="progress", action="store_false", default=d.progress,
        help="no progress bar (default: a bar on a terminal)")
    return take_negatives(p)


def parse_value(name: str, text: str):
    """One value of a setting flag, as train.py's type, or a Range ``LOW:HIGH[:log]`` of a number setting."""
    from torch_tanhnet.numbers import OutOfRange, integer, real
    from torch_tanhnet.sweep.space import INTEGER, NUMBER, Range
    from torch_tanhnet.training.config import ConfigError

    flag = "--" + name.replace("_", "-")
    if name in NUMBER and ":" in text:
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                raise ValueError
            return Range(real(parts[0]), real(parts[1]), len(parts) == 3)
        except OutOfRange as e:  # an end past a float: say so, not that the range is malformed
            raise ConfigError(f"argument {flag}: a range's ends {e}") from None
        except ValueError:
            raise ConfigError(f"argument {flag}: a range is LOW:HIGH or LOW:HIGH:log, got {text!r}") from None
    if name == "batch_size" and text == "full":
        return None
    if name == "noise" and text == "default":
        return None
    try:
        if name in INTEGER:
            return integer(text)
        if name in NUMBER:
            return real(text)
    except OutOfRange as e:
        raise ConfigError(f"argument {flag}: {e}") from None
    except ValueError:
        kind = "an integer" if name in INTEGER else "a number"
        raise ConfigError(f"argument {flag}: expected {kind}, got {text!r}") from None
    return text


def parse_seeds(texts: list[str] | None) -> list[int]:
    """``N``: 0..N-1; ``A:B``: A..B-1; several integers: those (checked by SweepConfig.validate)."""
    from torch_tanhnet.numbers import integer
    from torch_tanhnet.sweep.config import MAX_RUNS  # a seed is one run at least
    from torch_tanhnet.training.config import ConfigError

    if texts is None:
        return list(range(10))
    try:
        if len(texts) == 1 and ":" in texts[0]:
            a, b = (integer(t) for t in texts[0].split(":"))
            first, count = a, b - a
        else:
            numbers = [integer(t) for t in texts]
            if len(numbers) > 1:
                return numbers
            first, count = 0, numbers[0]
    except ValueError:
        raise ConfigError(f"argument --seeds: expected N, A:B or several integers, got {' '.join(texts)!r}") from None
    if count < 1 and len(texts) == 1 and ":" in texts[0]:
        raise ConfigError(f"argument --seeds: A:B takes the seeds A to B-1, so B must exceed A, got {texts[0]!r}")
    if count < 1:
        raise ConfigError(f"argument --seeds: must be at least 1, got {count}")
    if count > MAX_RUNS:  # before the list is built: a billion seeds would fill the memory before any other check
        raise ConfigError(f"argument --seeds: at most {MAX_RUNS:,} seeds, got {count:,}")
    return list(range(first, first + count))


def make_config(args: argparse.Namespace):
    from torch_tanhnet.sweep.config import SweepConfig

    values = {}
    for name in SETTINGS:
        texts = getattr(args, name.replace("-", "_"))
        if texts is not None:
            values[name.replace("-", "_")] = [parse_value(name.replace("-", "_"), t) for t in texts]
    if args.standardize is not None:
        values["standardize"] = [v == "on" for v in args.standardize] or [True]
    return SweepConfig(values=values, seeds=parse_seeds(args.seeds), random=args.random,
                       random_seed=args.random_seed, solved_at=args.solved_at, device=args.device, logdir=args.logdir,
                       log_interval=args.log_interval, checkpoint_interval=args.checkpoint_interval,
                       checkpoint_seconds=args.checkpoint_seconds, resume=args.resume, dry_run=args.dry_run,
                       dist_timeout=args.dist_timeout, progress=args.progress, gallery=args.gallery,
                       sessions=args.sessions)


def given_settings(argv: list[str]) -> set[str]:
    """The SweepConfig fields the user set explicitly ("values" for any setting flag)."""
    given = set(vars(build_parser(suppress_defaults=True).parse_args(argv)))
    fields = {"values"} if given & ({n.replace("-", "_") for n in SETTINGS} | {"standardize"}) else set()
    return fields | {g for g in given if g not in {n.replace("-", "_") for n in SETTINGS} | {"standardize"}}


def describe(plan, seconds: float) -> str:
    from torch_tanhnet.console import counted
    from torch_tanhnet.training.wording import printable

    c = plan.config
    if not plan.swept:  # one setting, however it was reached ("random draws over )" said nothing)
        what = "one setting"
    else:
        what = f"{'random draws' if c.random else 'grid'} over {', '.join(plan.swept)}"
    seeds = c.seeds
    if len(seeds) == 1:
        seed_text = f"1 seed, {seeds[0]}"
    elif seeds == list(range(seeds[0], seeds[-1] + 1)):
        seed_text = f"{len(seeds)} seeds {seeds[0]}..{seeds[-1]}"
    else:
        seed_text = f"{len(seeds)} seeds"
    lines = [f"sweep: {counted(plan.n_runs, 'run')} = {counted(len(plan.settings), 'setting')} ({what}) × "
             f"{seed_text}, in {counted(len(plan.groups), 'group')}:"]
    lines += [f"  {g.describe()}" for g in plan.groups]
    if c.dry_run:  # the groups' lines give the sweep's steps: say what this run trains of them
        lines.append(f"dry run: {dry_run_steps(plan)}, a smoke test (nothing is kept without --logdir); "
                     f"logs: {printable(c.logdir)}")
        return "\n".join(lines)
    estimate = f"{seconds:.0f} s" if seconds >= 1 else "under a second"
    lines.append(f"estimated training time: {estimate} (from a few timed steps of each group); "
                 f"logs: {printable(c.logdir)}")
    return "\n".join(lines)


def as_written(saved: dict, config, given: set[str]) -> list[str]:
    """What a finished sweep's files hold where this --resume asked otherwise: they were written when it finished
    (a sweep still training takes the new values for them). The table printed above is this start's."""
    lines = []
    if saved.get("solved_at") != config.solved_at:
        lines.append(f"(results.csv, the pictures and TensorBoard, written when the sweep finished, count a run "
                     f"solved at ≥ {saved.get('solved_at'):g}; the table above counts at ≥ {config.solved_at:g})")
    kept = [f"--{name}" for name in ("gallery", "sessions") if name in given and saved.get(name) != getattr(config,
                                                                                                         name)]
    if kept:
        verb = "applies" if len(kept) == 1 else "apply"
        lines.append(f"({' and '.join(kept)} {verb} when a sweep finishes; this one had: its pictures and HParams "
                     "are as they were written)")
    return lines


def dry_run_steps(plan) -> str:
    """What a dry run of ``plan`` trains, in words."""
    return f"at most {max(plan.total_steps(g) for g in plan.groups)} steps of each group"


STARTUP_SIGNALS: list[int] = []  # a signal during the imports (train.py's handler, set in __main__ below)


UNREAD = "its folder could not be read to say more"  # after an error, reading it failed too


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command line ``argv``; the exit code. ``own_process``: this is the script's process, whose signal
    handlers main may set (as train.py's main does)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)

    from torch_tanhnet.console import say, warnings_as_lines
    from torch_tanhnet.files import reason
    from torch_tanhnet.sweep.distributed import DistributedError, launched_by_torchrun, torchrun_world
    from torch_tanhnet.training.checkpoint import CheckpointError
    from torch_tanhnet.training.config import ConfigError
    from torch_tanhnet.training.data import DataError
    from torch_tanhnet.training.distributed import PeerFailed, record_error
    from torch_tanhnet.training.world import World
    from torch_tanhnet.training.writer_lock import FolderMoved

    warnings_as_lines(parser.prog)
    if own_process:
        import signal

        from torch_tanhnet.training import signals

        if STARTUP_SIGNALS:  # one came during the imports, and Python may have dropped its KeyboardInterrupt
            raise KeyboardInterrupt
        for sig in signals.SIGNALS:
            if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                signal.signal(sig, signals.interrupt)  # remembered even if dropped: the sweep's loop stops on it

    def fail(message: str, code: int, consequence: bool = False) -> int:
        line = f"{parser.prog}: error: {message}"
        say(line)
        record_error(line, consequence)  # under torchrun: its closing report ends with this line, as train.py's
        return code

    config = None

    def checkpointed() -> Path | None:
        """The sweep's folder where it holds a checkpoint (an error after the first save), else None."""
        from torch_tanhnet.sweep.state import holds_sweep

        folder = getattr(config, "logdir", None)
        return Path(folder) if folder and holds_sweep(Path(folder)) else None

    try:
        config = make_config(args)
        given = given_settings(argv)
        if launched_by_torchrun():
            with torchrun_world(config.device, config.dist_timeout) as (world, device, gather):
                try:
                    return report(config, given, world, device, gather)
                except (ConfigError, DataError, CheckpointError) as e:  # said and recorded before the process group
                    # goes: the others then fail on it, and torchrun's report names this one (it named a consequence
                    # once, when the other process recorded first)
                    return fail(e.for_command_line(), 2)
        return report(config, given, World(), None, None)
    except (ConfigError, DataError, CheckpointError) as e:  # in the command line's words (training.wording)
        return fail(e.for_command_line(), 2)
    except DistributedError as e:
        return fail(e.for_command_line(), 1, consequence=isinstance(e, PeerFailed))
    except FolderMoved as e:  # renamed while the sweep ran: it stopped rather than make the old name again
        return fail(f"the sweep's folder {e.for_command_line()}", 1)
    except OSError as e:  # the disk filled up, the folder was removed or made read-only while the sweep ran
        folder = getattr(config, "logdir", None)  # a write that names no file (TensorBoard's events): in the folder
        where = f" {e.filename!s}" if e.filename else f" in {folder}" if folder else ""
        full = e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # room is what lacked (not a name)
        when = "there is room" if full else "it can be written"
        why = reason(e)  # its strerror; too many open files: the limit
        write = "open" if e.errno == errno.EMFILE else "write"  # too many open files: a read (a module) as well
        try:
            folder = checkpointed()
        except OSError:  # reading its folder failed too (ENOMEM: memory short under ulimit -v)
            return fail(f"cannot {write}{where} ({why}); whatever it had checkpointed is kept ({UNREAD})", 1)
        if folder is None:  # failed before its first checkpoint: its folder was removed
            return fail(f"cannot {write}{where} ({why}) before the sweep's first checkpoint, so nothing "
                        f"was kept: start it again once {when}", 1)
        return fail(f"cannot {write}{where} ({why}); what was checkpointed before is kept: continue "
                    f"with --resume once {when}", 1)
    except Exception as e:  # an allocation failed (the estimate before training was short of it), else raised
        from torch_tanhnet.training.checkpoint import sweep_hint
        from torch_tanhnet.training.setup import out_of_memory
        from torch_tanhnet.training.wording import setting

        short = out_of_memory(e, f"use fewer {setting('seeds')} or settings at once, or a smaller "
                                 f"{setting('n_samples')} or {setting('hidden')}")
        if short is None:
            raise
        try:
            folder = checkpointed()
            kept = f"what was checkpointed before is kept: {sweep_hint(folder)}" if folder else "nothing was kept"
        except OSError:  # reading its folder failed too (ENOMEM: memory short still): say what is known
            kept = f"whatever it had checkpointed is kept ({UNREAD})"
        return fail(f"{short.for_command_line()}; {kept}", 1)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside training (which saves and stops by itself)
        from torch_tanhnet.training.checkpoint import sweep_hint
        from torch_tanhnet.training.wording import printable

        folder = checkpointed()
        if folder:  # while the results were being written, or under torchrun another
            # process had saved its share: continue, where every process did (sweep_hint says which)
            return fail(f"interrupted; the sweep's checkpoints in {printable(str(folder))} are kept: "
                        f"{sweep_hint(folder)}",
                        130, consequence=True)  # under torchrun, often its SIGTERM after another process failed
        line = f"{parser.prog}: interrupted before the sweep began; nothing was trained"
        say(line)
        record_error(line, consequence=True)
        return 130


def resume_command(logdir, size: int) -> str:
    """The command that continues the interrupted sweep in ``logdir``, checkpointed by ``size`` processes: under
    torchrun with as many (a sweep's checkpoint holds one share per process), on this machine's nodes' layout."""
    from torch_tanhnet.training.wording import script, shell

    tail = f"{script(__file__, 'sweep.py')} --logdir {shell(logdir)} --resume"
    if size == 1:
        return f"python {tail}"
    local = os.environ.get("LOCAL_WORLD_SIZE", "")
    if local.isdigit() and 0 < int(local) < size and size % int(local) == 0:  # several machines: the same layout
        return f"torchrun --nnodes={size // int(local)} --nproc_per_node={local} <your rendezvous options> {tail}"
    return f"torchrun --standalone --nproc_per_node={size} {tail}"


def report(config, given, world, device, gather) -> int:
    """Plan, print the plan (rank 0), sweep, print the table; the exit code."""
    from torch_tanhnet.console import through_reference
    from torch_tanhnet.sweep.board import selection_hint
    from torch_tanhnet.sweep.plan import estimate_seconds
    from torch_tanhnet.sweep.results import table, train_command, write_csv, write_json
    from torch_tanhnet.sweep.runner import prepare, sweep
    from torch_tanhnet.training import signals
    from torch_tanhnet.training.wording import printable, script, shell

    signals.late.requested = False  # of this sweep (an earlier one's in this process says nothing of it)
    prepared = prepare(config, world, given, device)
    plan, logdir, found = prepared
    config.logdir = str(logdir)  # for main's Ctrl-C message (prepare leaves its caller's config as it was)
    if world.is_main and not found["complete"]:
        print(describe(plan, estimate_seconds(plan) / world.size), flush=True)
    result = sweep(plan.config, world, given, device, gather, prepared)
    if result is None:
        return 0
    if result.interrupted:
        if world.is_main and not logdir.exists():  # a dry run's temporary folder, removed: it keeps nothing
            print("interrupted; a dry run keeps nothing without --logdir")
        elif world.is_main:
            print(f"interrupted; checkpoint saved in {printable(str(logdir))}\ncontinue with: "
                  f"{resume_command(logdir, world.size)}")
        return 130
    if not world.is_main:  # a finished sweep resumed: every process holds its results, rank 0 alone prints them
        return 0
    if result.already_complete:
        dry = f" (a dry run's: {dry_run_steps(plan)})" if plan.config.dry_run else ""
        print(f"the sweep in {printable(str(logdir))} is complete; its results{dry}:")
    print(table(plan, result.results.summaries))
    first = result.results.rows[0]
    # the checkpoint adds up every start's training time (a complete sweep resumed trained nothing now)
    starts = (" (when it ran)" if result.already_complete else
              " (this start and the earlier ones)" if plan.config.resume else "")
    # two lines: an 80-column terminal
    print(f"{plan.n_runs} runs trained in {result.seconds:.1f} s{starts}{through_reference()}")
    print(f"solved: final test accuracy ≥ {plan.config.solved_at:g}; steps to solve: the solved runs' median first "
          "logged step at it")
    if logdir.exists():  # a dry run without --logdir leaves nothing
        csv_path, pictures = logdir / "results.csv", logdir / "pictures"
        again = ""
        if result.already_complete and not csv_path.exists():  # removed since it finished: the checkpoint has it all
            write_csv(result.results.rows, csv_path)
            again = " (written again: it was not there)"
        if result.already_complete and not (logdir / "sweep.json").exists():  # so is the plan
            write_json(plan, logdir / "sweep.json")
            print(f"sweep.json: {printable(str(logdir / 'sweep.json'))} (written again: it was not there)")
        gone = "" if pictures.exists() else " (not there: removed since the sweep wrote them)"
        print(f"results: {printable(str(csv_path))}{again}, pictures: {printable(str(pictures))}{gone}")
        if result.already_complete:
            for line in as_written(found["config"], plan.config, given):
                print(line)
        if not plan.config.dry_run:  # a dry run's runs trained 5 steps, not what train.py's command would
            print(f"any run alone, e.g. run 0: {train_command(first, script(__file__, 'train.py'))}")
        print(f"view it with: tensorboard --logdir {shell(logdir)}")
        if (hint := selection_hint(plan)) is not None:
            print(hint)
    if signals.late.requested:  # absorbed while the results were written, which takes a second or more
        print("a stop came while the results were being written; they were finished first")
    return 0


if __name__ == "__main__":
    import signal

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I and -P leave scripts/ out
    import train as train_script  # train.py's start-up signal handling imports no torch

    # until main installs the package's handler, Ctrl-C and SIGTERM end the process at once, and are remembered
    # where Python drops the KeyboardInterrupt (during an import): main checks the list once the imports are done
    STARTUP_SIGNALS = train_script.SIGNALLED
    for sig in train_script.STOP_SIGNALS:
        if signal.getsignal(sig) not in (signal.SIG_IGN, None):
            signal.signal(sig, train_script.interrupt)
    sys.unraisablehook = train_script.unraisable
    try:
        from startup import load_output  # the package and torch: failures in one line

        Output = load_output("sweep.py", "torch_tanhnet.training", "torch_tanhnet.sweep.runner",
                             "torch_tanhnet.sweep.board")
        from torch_tanhnet.training.distributed import launched_by_torchrun

        sys.stdout = Output(sys.stdout, "sweep.py")  # stdout lost (| head, a full disk): the sweep goes on
        code = sys.stdout.run(lambda: main(own_process=True), torchrun=launched_by_torchrun())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while starting up (the imports), before main's own handling
        sys.stderr.write("sweep.py: interrupted before the sweep began; nothing was trained\n")  # one write, as say
        sys.stderr.flush()
        os._exit(130)  # torch may be half imported, and its teardown would then fail: skip it
    train_script.ignore_signals()  # the sweep is over: a signal now waits for the exit, even during teardown
    from torch_tanhnet.training.distributed import end_process

    if launched_by_torchrun():  # torch's gloo threads can abort a torchrun process's teardown; see end_process
        end_process(code)
    sys.exit(code)
