"""The C kernels (:mod:`torch_tanhnet.kernels.cpu` builds and loads them) behind the torch-ops contract.

:class:`CKernels` wraps one loaded library (float32 or float64) with the methods of
:mod:`torch_tanhnet.kernels.torch_ops`: each call makes its inputs contiguous, allocates the
outputs and runs one pass of a kernel on the tensors' memory through ctypes. At N = 256 a
kernel's work takes about 1 µs, so this glue is written for few torch calls (each allocation
~1 µs here).
"""

from __future__ import annotations

import ctypes

import torch

Tensor = torch.Tensor
# The least work worth a thread. The kernels' threads are a pool that outlives each call
# (csrc/thread_pool.h), so handing out a job costs ~5 µs where starting and joining a thread per call
# cost 45–150 µs on the 2-vCPU development machine. Measured there (tn_fused_loss, float32): 4096 samples
# took 15 µs on one thread, 10.5 on two; 8192 samples 28 and 16 µs. So each thread gets at least 4096.
SAMPLES_PER_THREAD = 4096
PARALLEL_MIN = 2 * SAMPLES_PER_THREAD  # the least N that runs on more than one thread


def threads(n: int) -> int:
    return max(1, min(torch.get_num_threads(), n // SAMPLES_PER_THREAD))


UNITS_PER_THREAD = 4  # with fewer work items than this many per thread, each item's samples are split too
LANES = 16  # networks side by side in the float32 lane kernel (csrc/ensemble_lanes.h: LANES)


def ensemble_lanes(K: int, D: int, H: int, dtype: torch.dtype, need_X_bar: bool) -> bool:
    """Whether ``tn_ensemble_fused_loss`` runs LANES networks at once, one per vector lane: float32, the handout's
    shape (D = 2, H = 3), no X̄, and at least LANES networks (with fewer, most lanes would idle). At K = 1024,
    N = 256 it took 2.3 ns a network-sample on one core against 3.5 ns network by network."""
    return dtype == torch.float32 and (D, H) == (2, 3) and not need_X_bar and K >= LANES


def ensemble_schedule(K: int, N: int, lanes: bool = False) -> tuple[int, int]:
    """(threads, splits) for ``tn_ensemble_fused_loss``: a thread per SAMPLES_PER_THREAD samples of all K
    networks (at most torch's thread count), and each work item (a network, or LANES of them with ``lanes``)
    cut into ``splits`` chunks when there are too few items to go round the threads."""
    items = -(-K // LANES) if lanes else K
    n_threads = threads(K * N)
    if n_threads == 1 or items >= UNITS_PER_THREAD * n_threads:
        return n_threads, 1
    return n_threads, -(-UNITS_PER_THREAD * n_threads // items)


def dense(*ts: Tensor) -> tuple[Tensor, ...]:
    """Each tensor as the C and Triton kernels read it (``data_ptr``): contiguous, a pending negation applied (a
    tensor with the negative bit, such as ``z.conj().imag``, holds −t in memory; reading it raw gave −ε's inputs)."""
    return tuple(t.resolve_neg().contiguous() for t in ts)


def _ptr(t: Tensor | None):
    return None if t is None else t.data_ptr()


def _check(status: int) -> None:
    if status == 2:
        raise ValueError("torch-tanhnet: the lane kernel takes float32 networks of 2 inputs and 3 hidden units "
                         "without X̄")
    if status != 0:
        raise MemoryError("torch-tanhnet: a CPU kernel could not allocate its working buffers")


def parameter_gradients(U: Tensor) -> list[Tensor]:
    """Empty Ū (H, D), b̄ (H,), W̄ (1, H), c̄ (1,) for a kernel to fill."""
    H, D = U.shape
    return [U.new_empty(H, D), U.new_empty(H), U.new_empty(1, H), U.new_empty(1)]


class CKernels:
    """The C kernels of one precision, called as :mod:`~torch_tanhnet.kernels.torch_ops` is."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib

    def loss_and_gradients(self, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                           need_X_bar: bool) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """ε (), [Ū, b̄, W̄, c̄] at ε̄ = 1 and X̄ (N, D) or None: ``tn_fused_loss``, the handout's whole
        forward and backward in one pass over X and y."""
        N, D = X.shape
        X, y, U, b, W, c = dense(X, y, U, b, W, c)
        X_bar = torch.empty_like(X) if need_X_bar else None
        eps = X.new_empty(())
        grads = parameter_gradients(U)
        _check(self.lib.tn_fused_loss(X.data_ptr(), y.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(),
                                      c.data_ptr(), N, D, U.shape[0], _ptr(X_bar), eps.data_ptr(),
                                      *(g.data_ptr() for g in grads), threads(N)))
        return eps, grads, X_bar

    def ensemble_loss_and_gradients(self, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                                    need_X_bar: bool, lanes: bool | None = None
                                    ) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """K networks (:mod:`torch_tanhnet.ensemble`): ε (K,), [Ū (K, H, D), b̄ (K, H), W̄ (K, 1, H), c̄ (K, 1)]
        at ε̄ = 1 and X̄ (K, N, D) or None: ``tn_ensemble_fused_loss``. X (N, D) or (K, N, D), y (N, 1) or
        (K, N, 1): a shared X or y is read by every network (stride 0), never copied. ``lanes``: the lane
        kernel or not (tests compare both); None: :func:`ensemble_lanes` chooses."""
        K, H, D = U.shape
        N = X.shape[-2]
        if lanes is None:
            lanes = ensemble_lanes(K, D, H, U.dtype, need_X_bar)
        X, y, U, b, W, c = dense(X, y, U, b, W, c)
        eps = U.new_empty(K)
        grads = [U.new_empty(K, H, D), U.new_empty(K, H), U.new_empty(K, 1, H), U.new_empty(K, 1)]
        X_bar = U.new_empty(K, N, D) if need_X_bar else None
        n_threads, splits = ensemble_schedule(K, N, lanes)
        _check(self.lib.tn_ensemble_fused_loss(X.data_ptr(), N * D if X.dim() == 3 else 0, y.data_ptr(),
                                               N if y.dim() == 3 else 0, U.data_ptr(), b.data_ptr(), W.data_ptr(),
                                               c.data_ptr(), K, N, D, H, _ptr(X_bar), eps.data_ptr(),
                                               *(g.data_ptr() for g in grads), splits, int(lanes), n_threads))
        return eps, grads, X_bar

    def ensemble_evaluate(self, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                          n_first: int) -> Tensor:
        """K networks' metrics (float64 (K, 4)): Σ L and right answers over samples [0, n_first), then over
        [n_first, N): ``tn_ensemble_evaluate``. X (N, D) or (K, N, D), y (N, 1) or (K, N, 1), as above."""
        K, H, D = U.shape
        N = X.shape[-2]
        X, y, U, b, W, c = dense(X, y, U, b, W, c)
        out = torch.empty(K, 4, dtype=torch.float64)
        n_threads = threads(K * N)
        _check(self.lib.tn_ensemble_evaluate(X.data_ptr(), N * D if X.dim() == 3 else 0, y.data_ptr(),
                                             N if y.dim() == 3 else 0, U.data_ptr(), b.data_ptr(), W.data_ptr(),
                                             c.data_ptr(), K, N, D, H, n_first, out.data_ptr(), n_threads))
        return out

    def forward(self, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """z (N, 1) and H (N, H): ``tn_forward``."""
        X, U, b, W, c = dense(X, U, b, W, c)
        N, D = X.shape
        z = X.new_empty(N, 1)
        H = X.new_empty(N, U.shape[0])
        _check(self.lib.tn_forward(X.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(), c.data_ptr(), N, D,
                                   U.shape[0], z.data_ptr(), H.data_ptr(), threads(N)))
        return z, H

    def backward(self, z_bar: Tensor, X: Tensor, U: Tensor, W: Tensor, H: Tensor, needs) -> list[Tensor | None]:
        """[X̄, Ū, b̄, W̄, c̄] from z̄ (None where ``needs`` says so): ``tn_backward``."""
        N, D = X.shape
        X, U, W, H, z_bar = dense(X, U, W, H, z_bar)
        X_bar = torch.empty_like(X) if needs[0] else None
        grads = parameter_gradients(U)
        _check(self.lib.tn_backward(X.data_ptr(), U.data_ptr(), W.data_ptr(), H.data_ptr(), z_bar.data_ptr(), N, D,
                                    U.shape[0], _ptr(X_bar), *(g.data_ptr() for g in grads), threads(N)))
        return [X_bar, *(g if need else None for g, need in zip(grads, needs[1:]))]

    def cost(self, z: Tensor, y: Tensor) -> Tensor:
        """ε = (1/N) Σ_i L(z_i, y_i): ``tn_cost``."""
        z, y = dense(z, y)
        eps = z.new_empty(())
        _check(self.lib.tn_cost(z.data_ptr(), y.data_ptr(), z.numel(), 0.0, None, eps.data_ptr(), threads(z.numel())))
        return eps

    def cost_backward(self, z: Tensor, y: Tensor, eps_bar: Tensor) -> Tensor:
        """z̄ = ε̄ (o − y)/N: ``tn_cost`` with an output for z̄."""
        z, y = dense(z, y)
        z_bar = torch.empty_like(z)
        _check(self.lib.tn_cost(z.data_ptr(), y.data_ptr(), z.numel(), eps_bar.item(), z_bar.data_ptr(), None,
                                threads(z.numel())))
        return z_bar
