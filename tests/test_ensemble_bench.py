"""A smoke test of the ensemble bench mode (scripts/bench.py --ensemble): it runs, prints and writes every case."""

import json
import re
import subprocess
import sys
from pathlib import Path

import torch


def test_bench_ensemble_mode_smoke(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
    out = tmp_path / "ensemble.json"
    r = subprocess.run([sys.executable, str(script), "--ensemble", "--models", "1", "3", "--sizes", "16",
                        "--rounds", "1", "--min-time", "0.001", "--single-n", "512", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ensemble ×" in r.stdout and "torch " + torch.__version__ in r.stdout
    data = json.loads(out.read_text())
    assert data["single_n"] == 512 and data["single_samples_per_s"] > 0
    rows = {(row["models"], row["n"], row["case"]): row for row in data["rows"]}
    for K in (1, 3):
        assert {(K, 16, c) for c in ("ensemble", "loss_and_grad", "loop", "torch.func", "batched", "jax")} <= set(rows)
        assert rows[(K, 16, "ensemble")]["speedup"] == 1.0
        for case in ("ensemble", "loss_and_grad", "loop", "torch.func", "batched"):
            row = rows[(K, 16, case)]
            assert row["median_ms"] > 0
            assert abs(row["samples_per_s"] - K * 16 / (row["median_ms"] / 1e3)) <= 1e-6 * row["samples_per_s"]


def test_the_docs_example_runs():
    page = (Path(__file__).resolve().parents[1] / "docs" / "ensemble.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    r = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    solved = int(r.stdout.split(" of 100 seeds solve XOR")[0])
    said = int(re.search(r"it printed `(\d+) of 100 seeds solve XOR`", page)[1])  # what the page says it prints
    assert abs(solved - said) <= 3, (solved, said)  # another machine's rounding may tip a run or two
