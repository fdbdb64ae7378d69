"""The memory checks see the process's own limits (ulimit -v, a cgroup's), not only the machine's free memory:
under `ulimit -v` a sweep passed its check and ended in the allocator's traceback."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from torch_tanhnet.training.setup import limit_headroom

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def fake_proc(tmp_path, cgroup_lines, vm_kib=1000):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("\n".join(cgroup_lines) + "\n")
    (proc / "status").write_text(f"Name:\tpython\nVmSize:\t{vm_kib} kB\n")
    return str(proc)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_cgroups_limit_less_its_use(tmp_path, version):
    root = tmp_path / "cgroup"
    if version == "v2":
        proc = fake_proc(tmp_path, ["0::/user.slice/job"])
        write(root / "user.slice/job/memory.max", str(3 * 2**30))
        write(root / "user.slice/job/memory.current", str(2**30))
    else:
        proc = fake_proc(tmp_path, ["5:cpu,cpuacct:/", "4:memory:/docker/abc"])
        write(root / "memory/docker/abc/memory.limit_in_bytes", str(3 * 2**30))
        write(root / "memory/docker/abc/memory.usage_in_bytes", str(2**30))
    assert limit_headroom(proc, str(root)) == 2 * 2**30


@pytest.mark.parametrize("limit", ["max", str(2**63 - 4096)])
def test_an_unlimited_or_unreadable_cgroup_sets_no_bound(tmp_path, limit):
    root = tmp_path / "cgroup"
    proc = fake_proc(tmp_path, ["0::/a", "4:memory:/b", "3:pids:/c"])
    write(root / "a/memory.max", limit)
    write(root / "a/memory.current", "100")
    # v1's files are missing: skipped
    assert limit_headroom(proc, str(root)) is None
    assert limit_headroom(str(tmp_path / "nowhere"), str(root)) is None


def test_ulimit_v_bounds_what_the_checks_see_and_a_sweep_is_refused_in_one_line(tmp_path):
    """In a process under RLIMIT_AS: the headroom is below the limit, and sweep.py refuses a grid that fits the
    machine's memory but not the limit, before anything is allocated (it was a traceback from the allocator)."""
    code = f"""
import resource, runpy, sys
limit = 3 * 2**30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from torch_tanhnet.training.setup import available_memory, limit_headroom
headroom = limit_headroom()
assert headroom is not None and 0 < headroom < limit, headroom
assert available_memory() <= headroom, (available_memory(), headroom)
sys.argv = ["sweep.py", "--seeds", "40", "--n-samples", "2000000", "--dry-run", "--no-progress", "--logdir", "s"]
runpy.run_path({str(SCRIPTS / "sweep.py")!r}, run_name="__main__")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.startswith("sweep.py: error: the sweep would need about ") and r.stderr.count("\n") == 1, r.stderr
    free = re.search(r"but ([0-9.]+) (GiB|MiB) is free", r.stderr)
    gib = float(free[1]) / (1 if free[2] == "GiB" else 1024) if free else None
    assert gib is not None and gib < 3, r.stderr  # the limit's room, not the machine's
    assert " is free under this process's address-space limit of 3.22 GB (ulimit -v 3145728), of which " in r.stderr
    assert not (tmp_path / "s").exists()


def test_a_parent_cgroups_limit_binds_the_groups_below_it(tmp_path):
    root = tmp_path / "cgroup"
    proc = fake_proc(tmp_path, ["0::/user.slice/job/step"])
    write(root / "user.slice/memory.max", str(2 * 2**30))  # the parent's: tighter
    write(root / "user.slice/memory.current", str(2**29))
    write(root / "user.slice/job/step/memory.max", "max")
    write(root / "user.slice/job/step/memory.current", str(2**20))
    assert limit_headroom(proc, str(root)) == 2 * 2**30 - 2**29


def test_the_benchmarks_skip_jax_where_the_address_space_left_would_abort_it(monkeypatch):
    """bench.py with JAX installed ended in SIGABRT (std::bad_alloc, a thread XLA could not start) under
    `ulimit -v 2000000`: JAX is skipped, saying why, below the room it needs; the limit alone (a cgroup's, which
    reserves no address space) does not skip it."""
    import torch

    from torch_tanhnet.benchmark import jax_case

    monkeypatch.setattr(jax_case, "address_space_headroom", lambda: 2**30)
    jax, jnp, why = jax_case.jax_for(torch.device("cpu"))
    assert jax is None and jnp is None
    assert why == ("jax skipped: 1.0 GiB of address space is left under this process's limit (ulimit -v), and XLA "
                   "aborted the process below about 1.5 GiB")


@pytest.mark.parametrize("name", ["train.py", "sweep.py", "bench.py", "check_gradients.py"])
def test_a_script_that_cannot_load_torch_under_ulimit_v_says_so_in_one_line(tmp_path, name):
    """`ulimit -v` below what importing torch maps (~650 MB with the CPU build): every script ended in a traceback
    through torch's modules (MemoryError, 'failed to map segment', SystemError). 100 MiB fails at torch's first
    library on any build."""
    import resource

    limit = 100 * 2**20

    def under_limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    r = subprocess.run([sys.executable, str(SCRIPTS / name), "--help"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, preexec_fn=under_limit)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(
        f"{name}: error: cannot load torch within this process's address-space limit of 105 MB (ulimit -v 102400): "
    ) and r.stderr.endswith("; raise the limit (torch and TensorBoard map about 700 MB with torch's CPU build, more "
                            "with a CUDA build)\n"), r.stderr


def startup():
    from conftest import load_script

    return load_script("startup")


@pytest.mark.parametrize("error, limit, peak, said", [
    (MemoryError(), None, None, "out of memory while loading torch (MemoryError); free some memory and run it again"),
    (RuntimeError("std::bad_alloc"), None, None, "out of memory while loading torch (RuntimeError: std::bad_alloc)"),
    (SystemError("error return without exception set"), None, None, None),  # no limit, no word of memory: a bug
    (ImportError("x.so: failed to map segment from shared object"), 10**9, 10**8, "within"),  # says so, far or not
    (SystemError("error return without exception set"), 10**9, 10**9 - 2**20, "within"),  # at the limit
    (TypeError("Couldn't build proto file into descriptor pool: out of memory"), 10**9, 10**8, "within"),
    (SystemError("error return without exception set"), 10**9, 10**8, None),  # far from it: not memory
    (ValueError("a bug"), 10**9, 10**8, None),
])
def test_what_is_read_as_memory_at_a_scripts_first_import(error, limit, peak, said):
    start = startup()
    start.address_space_limit = lambda: limit
    start.mapped_peak = lambda: peak
    why = start.memory_failure(error)
    if said is None:
        assert why is None
    elif said == "within":
        first = str(error).splitlines()[0]
        assert why.startswith(f"cannot load torch within this process's address-space limit of 1000 MB (ulimit -v "
                              f"976562): {type(error).__name__}: {first}; raise the limit"), why
    else:
        assert why.startswith(said), why


def test_a_failed_first_import_ends_the_process_with_its_line_and_any_other_is_raised(monkeypatch, capsys):
    """load_output: a failure for memory in any module the script needs (TensorBoard's protobufs failed at
    ulimit -v 645000, after torch had loaded) is one line and exit 1 at once; an error of another kind is raised
    as it came; a module not installed names the install step."""
    start = startup()
    start.address_space_limit = lambda: 10**9
    start.mapped_peak = lambda: 10**9 - 2**20
    ended = []
    start.end = lambda prog, why: ended.append((prog, why)) or sys.exit(1)

    def failing(error):
        def import_module(name):
            raise error
        return import_module

    monkeypatch.setattr(start.importlib, "import_module", failing(TypeError("Couldn't build proto: out of memory")))
    with pytest.raises(SystemExit):
        start.load_output("train.py", "torch_tanhnet.training")
    assert ended == [("train.py", "cannot load torch within this process's address-space limit of 1000 MB (ulimit "
                      "-v 976562): TypeError: Couldn't build proto: out of memory; raise the limit (torch and "
                      "TensorBoard map about 700 MB with torch's CPU build, more with a CUDA build)")]
    start.mapped_peak = lambda: 10**8
    monkeypatch.setattr(start.importlib, "import_module", failing(SystemError("a bug")))
    with pytest.raises(SystemError, match="a bug"):
        start.load_output("train.py", "torch_tanhnet.training")
    monkeypatch.setattr(start.importlib, "import_module", failing(ModuleNotFoundError("No module named 'tensorboard'")))
    with pytest.raises(SystemExit, match="^train.py: error: No module named 'tensorboard': install the project first"):
        start.load_output("train.py", "torch_tanhnet.training")
    monkeypatch.undo()
    from torch_tanhnet.console import Output

    assert start.load_output("sweep.py", "torch_tanhnet.sweep.board") is Output
