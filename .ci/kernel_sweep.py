"""Time the CUDA training kernel alone over its launch settings (run by .ci/gpu; needs a GPU).

The seed-shape kernel's one launch plus the sum of its partial rows is timed with CUDA events at
N = 10^7 for each (BLOCK, warps, programs per SM) in float32, at the defaults in float64, and the
general kernel on the same shape for comparison; printed as µs and GB/s of X and y read, so that
the defaults in torch_tanhnet/triton_kernel.py are chosen from measurements.
"""

import sys

import torch

from torch_tanhnet.kernels import triton_kernel
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

        def report(label, need_X_bar=False):
            triton_kernel._sms.clear()
            us = time_us(lambda: triton_kernel.loss_and_gradients(Xd, U, b, W, c, yd, need_X_bar))
            print(f"  {label}: {us:8.1f} µs  {moved / us / 1e3:6.0f} GB/s of X, y read", flush=True)

        triton_kernel.SEED_KERNEL = False
        report(f"general kernel, BLOCK {triton_kernel.BLOCK}, {triton_kernel.WARPS} warps, "
               f"{triton_kernel.PROGRAMS_PER_SM}/SM")
        triton_kernel.SEED_KERNEL = True
        defaults = triton_kernel.SEED_BLOCK, triton_kernel.SEED_WARPS, triton_kernel.PROGRAMS_PER_SM
        report(f"seed kernel at the defaults {defaults}, X̄ too", need_X_bar=True)
        grid = [(blk, warps, per_sm) for blk in (128, 256, 512) for warps in (4, 8) for per_sm in (8, 16)]
        for blk, warps, per_sm in grid if dtype == torch.float32 else [defaults]:
            triton_kernel.SEED_BLOCK, triton_kernel.SEED_WARPS, triton_kernel.PROGRAMS_PER_SM = blk, warps, per_sm
            report(f"seed kernel, BLOCK {blk:5d}, {warps} warps, {per_sm:2d}/SM")
        triton_kernel.SEED_BLOCK, triton_kernel.SEED_WARPS, triton_kernel.PROGRAMS_PER_SM = defaults
    return 0


if __name__ == "__main__":
    sys.exit(main())
