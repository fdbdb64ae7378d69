"""A smoke test of the ensemble bench mode (scripts/bench.py --ensemble): it runs, prints and writes every case."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import torch
from conftest import SCRIPTS, load_script


def test_bench_ensemble_mode_smoke(tmp_path, capsys):
    out = tmp_path / "ensemble.json"
    argv = ["--ensemble", "--models", "1", "3", "--sizes", "16", "--rounds", "1", "--min-time", "0.001",
            "--single-n", "512", "--json", str(out)]
    if importlib.util.find_spec("jax") is None:  # in this process: its JAX row says it is not installed
        code, printed = load_script("bench").main(argv), capsys.readouterr().out
    else:  # JAX, once imported, would stay in this process and warn at the later tests' forks
        r = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), *argv], capture_output=True, text=True,
                           timeout=300)
        code, printed = r.returncode, r.stdout
        assert code == 0, r.stderr
    assert code == 0
    assert "ensemble ×" in printed and "torch " + torch.__version__ in printed
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


def test_the_docs_example_runs(capsys):
    page = (Path(__file__).resolve().parents[1] / "docs" / "ensemble.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "docs/ensemble.md", "exec"), {"__name__": "__main__"})  # noqa: S102 -- the page's code
    solved = int(capsys.readouterr().out.split(" of 100 seeds solve XOR")[0])
    said = int(re.search(r"it printed `(\d+) of 100 seeds solve XOR`", page)[1])  # what the page says it prints
    assert abs(solved - said) <= 3, (solved, said)  # another machine's rounding may tip a run or two
