"""The C kernels under AddressSanitizer and UndefinedBehaviorSanitizer (float32 and float64 builds) and
ThreadSanitizer (float32): every entry point over shapes, edge sizes, shared and per-network data, lanes on
and off, 1 to 4 threads and several splits (tests/sanitize_driver.c). An out-of-bounds read in a partial
lane group or at a chunk's edge, or a data race in the thread pool, would pass every numerical test and
still be a bug; here it aborts the driver."""

import shutil
import subprocess
from pathlib import Path

import pytest

from torch_tanhnet.kernels import cpu

DRIVER = Path(__file__).parent / "sanitize_driver.c"


@pytest.mark.parametrize("sanitizers,double", [("address,undefined", False), ("address,undefined", True),
                                               ("thread", False)])
def test_every_kernel_is_clean_under_the_sanitizers(tmp_path, sanitizers, double):
    cc = cpu._compiler()
    if cc is None or shutil.which(cc) is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "driver"
    flags = [f for f in cpu.ATTEMPTS[0] if not f.startswith("-Wl,") and f != "-O3"]
    cmd = [cc, "-O1", "-g", f"-fsanitize={sanitizers}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
           *flags, *(["-DTN_DOUBLE"] if double else []), f"-I{cpu.SOURCE.parent}", str(DRIVER), "-o", str(exe),
           "-lmvec", "-lm", "-lpthread"]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if built.returncode != 0:
        pytest.skip(f"cannot build with the sanitizers here: {(built.stderr.strip().splitlines() or ['?'])[-1]}")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "clean", r.stderr[-3000:]
