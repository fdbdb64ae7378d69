"""Time the CUDA training kernel alone over its launch settings (run by .ci/gpu; needs a GPU).

For each (BLOCK, PROGRAMS_PER_SM) the kernel's one launch plus the sum of its partial rows is
timed with CUDA events at N = 10^7 (float32 and float64) and printed as µs and GB/s of X and y
read, so that the defaults in torch_tanhnet/triton_kernel.py can be chosen from measurements.
"""

import sys

import torch

from torch_tanhnet import triton_kernel
from torch_tanhnet.benchmark import make_problem

N = 10_000_000


def time_us(fn, reps=50) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = float("inf")
    for _ in range(5):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        best = min(best, 1e3 * start.elapsed_time(end) / reps)
    return best


def main() -> int:
    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}, {props.multi_processor_count} SMs; torch {torch.__version__}, "
          f"triton {getattr(triton_kernel.triton, '__version__', None)}")
    X, y, _, net = make_problem(N, "cuda")
    for dtype in (torch.float32, torch.float64):
        Xd, yd = X.to(dtype), y.to(dtype)
        U, b, W, c = (p.detach().to(dtype) for p in (net.U, net.b, net.W, net.c))
        moved = (Xd.numel() + yd.numel()) * Xd.element_size()
        copy = time_us(lambda: Xd.clone())  # read + write of X: the card's streaming rate, measured
        print(f"{dtype}: X.clone() {copy:.1f} µs = {2 * Xd.numel() * Xd.element_size() / copy / 1e3:.0f} GB/s")
        for block in (128, 256, 512, 1024):
            for per_sm in (2, 4, 8, 16):
                triton_kernel.BLOCK, triton_kernel.PROGRAMS_PER_SM = block, per_sm
                triton_kernel._sms.clear()
                us = time_us(lambda: triton_kernel.loss_and_gradients(Xd, U, b, W, c, yd, False))
                print(f"  BLOCK {block:5d}  programs/SM {per_sm:3d}: {us:8.1f} µs  {moved / us / 1e3:6.0f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
