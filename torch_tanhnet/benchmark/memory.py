"""Memory a training step costs: what autograd saves for backward, and the step's peak above its start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Callable

import torch


def saved_bytes(step: Callable[[], object]) -> int:
    """Bytes of the distinct tensors autograd saves for backward during one step's forward."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.numel():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())



def peak_extra_cpu(n: int, cases: list[str]) -> dict[str, int | None]:
    """Peak resident memory of one step above the resident memory before it, per case, in a fresh process.

    Linux only: resets the peak (VmHWM) through /proc/self/clear_refs, with glibc told to
    return every block over 64 KiB to the system when freed, so that the peak is the step's own.
    """
    if not os.path.exists("/proc/self/clear_refs"):
        return {c: None for c in cases}
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    code = f"from torch_tanhnet.benchmark.memory import _peak_child; _peak_child({n}, {cases!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0:
        return {c: None for c in cases}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _status_kb(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _peak_child(n: int, cases: list[str]) -> None:
    from .single import make_problem, torch_steps

    X, y, seq, net = make_problem(n, "cpu")
    steps = {k: v for k, v in torch_steps(X, y, seq, net).items() if k in cases}
    out = {}
    for name, step in steps.items():
        step()
        step()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
        step()
        out[name] = max(0, _status_kb("VmHWM") - before) * 1024
    print(json.dumps(out))
