"""The training path's one pass on CUDA: a Triton kernel that finds ε and every gradient at once.

The CUDA twin of the C kernel's ``tn_fused_loss`` (``csrc/tanhnet_kernels.c``), in two
forms: ``_seed_loss_kernel`` for the handout's own shape (2 inputs, 3 hidden units), written in
the handout's scalar equations, and ``_fused_loss_kernel`` for other small shapes, on tiles
of rank 2 and 3 (2.6-3.2x slower on the handout's shape, measured on an H200).

Each program walks tiles of ``BLOCK`` samples (tile t, t + programs, ...), reads X and y
once, runs the handout's forward and backward on the tile in registers, and adds into per-row
sums; at the end it reduces those to one row of ``partials``: [ε, Ū, b̄, W̄, c̄] (ε already
divided by N). Summing the rows (one small torch op) gives the step's cost and gradients at
ε̄ = 1, the same contract as the CPU kernel. Nothing of size N is written unless X needs a
gradient.

The same two kernels serve K networks (:mod:`torch_tanhnet.ensemble`, the CUDA twin of
``tn_ensemble_fused_loss``): network k gets P programs of its own, which read its weights
and its X and y (or the X and y all networks share) and write its rows of ``partials``; one
network is the case K = 1.

Shapes are compile-time constants (D, H rounded up to powers of two, the padding masked
off), so it serves networks with few features and hidden units; beyond ``MAX_TILE_WIDTH``
(H·D after rounding) the matrix-product schedule in torch ops is the better fit and runs
instead. Triton >= 3.0 compiles it on first use, once per shape and dtype (a line on stderr
says so), and caches it (``~/.triton``); where Triton is missing or the launch fails, the
torch-ops schedule runs after one warning.
"""

from __future__ import annotations

import contextlib
import time
import warnings

import torch

from ..console import say
from . import cpu
from .c_kernels import dense

try:  # Triton ships with PyTorch's CUDA wheels on Linux; libdevice's tanh/log1p need Triton >= 3.0
    import triton
    import triton.language as tl

    try:
        from triton.language.extra import libdevice  # the backend-neutral name, from Triton 3.1 on
    except ImportError:
        from triton.language.extra.cuda import libdevice  # Triton 3.0
except ImportError as e:  # no Triton (CPU-only wheels, macOS, Windows) or one too old
    triton, _import_error = None, e
else:
    _import_error = None

# Launch settings (samples per tile, warps per program, programs per multiprocessor), chosen by
# .ci/kernel_sweep.py's measurements on an H200 (see docs/performance.md).
SEED_KERNEL = True  # the handout's shape (D = 2, H = 3) runs _seed_loss_kernel; False: the general one
SEED_BLOCK, SEED_WARPS = 256, 8  # one sample a thread: 85-89 µs at N = 10^7 on an H200 (512 × 4 warps: 93-110)
BLOCK, WARPS = 256, 4  # the general kernel: 2 rows a thread, up to 4·H·D running sums each
PROGRAMS_PER_SM = 16  # enough tiles in flight to cover memory latency
MAX_TILE_WIDTH = 64  # H·D (powers of two) above which the torch-ops schedule runs instead

COMPILE_NOTE_S = 1.0  # a first launch slower than this was a compilation, and says so on stderr

_warned = False
_failed: set = set()  # (dtype, D, H) whose first launch failed: not tried again
_launched: set = set()  # the variants launched in this process
_sms: dict[int, int] = {}

if triton is not None:

    @triton.jit
    def _tanh(g, LIBDEVICE: tl.constexpr):
        if LIBDEVICE:
            return libdevice.tanh(g)
        else:  # Triton's interpreter (CPU tests) has no libdevice: tanh|g| = (1 − e^(−2|g|)) / (1 + e^(−2|g|))
            t = tl.exp(-2.0 * tl.abs(g))
            r = (1.0 - t) / (1.0 + t)
            return tl.where(g < 0, -r, r)

    @triton.jit
    def _log1p(e, LIBDEVICE: tl.constexpr):
        if LIBDEVICE:
            return libdevice.log1p(e)
        else:
            return tl.log(1.0 + e)

    @triton.jit
    def _seed_loss_kernel(X, y, U, b, W, c, X_bar, partials, N, n_tiles, P, X_k, y_k,
                          NEED_X_BAR: tl.constexpr, BLOCK: tl.constexpr, LIBDEVICE: tl.constexpr):
        """The handout's own network (2 inputs, 3 hidden units) in the handout's scalar equations, one
        sample per lane: no padding and no tensor of rank > 1, so nothing moves between lanes
        until the final sums. Writes one row of ``partials`` as :func:`_fused_loss_kernel` does."""
        pid = tl.program_id(0)
        k = (pid // P).to(tl.int64)  # network k, whose program pid % P of P this is (int64: k·N·D may pass 2³¹)
        X, y = X + k * X_k, y + k * y_k  # network k's data (X_k = y_k = 0: shared by all)
        U, b, W, c, X_bar = U + k * 6, b + k * 3, W + k * 3, c + k, X_bar + k * 2 * N  # network k's weights
        u11, u12 = tl.load(U + 0), tl.load(U + 1)
        u21, u22 = tl.load(U + 2), tl.load(U + 3)
        u31, u32 = tl.load(U + 4), tl.load(U + 5)
        b1, b2, b3 = tl.load(b + 0), tl.load(b + 1), tl.load(b + 2)
        w1, w2, w3 = tl.load(W + 0), tl.load(W + 1), tl.load(W + 2)
        c0 = tl.load(c)
        inv_n = 1.0 / tl.cast(N, u11.dtype)
        zero = tl.zeros((BLOCK,), u11.dtype)
        s_loss, s_c, s_w1, s_w2, s_w3, s_b1, s_b2, s_b3 = zero, zero, zero, zero, zero, zero, zero, zero
        s_u11, s_u12, s_u21, s_u22, s_u31, s_u32 = zero, zero, zero, zero, zero, zero
        for tile in range(pid % P, n_tiles, P):
            i = tl.cast(tile, tl.int64) * BLOCK + tl.arange(0, BLOCK)  # sample index      (BLOCK,)
            row = i < N
            k = tl.arange(0, 2)
            x_i1, x_i2 = tl.split(tl.load(X + 2 * i[:, None] + k[None, :], mask=row[:, None], other=0.0))
            y_i = tl.load(y + i, mask=row, other=0.0)
            g_i1 = u11 * x_i1 + u12 * x_i2 + b1  #              g_ij = u_j1 x_i1 + u_j2 x_i2 + b_j
            g_i2 = u21 * x_i1 + u22 * x_i2 + b2
            g_i3 = u31 * x_i1 + u32 * x_i2 + b3
            h_i1 = _tanh(g_i1, LIBDEVICE)  #                    h_ij = tanh(g_ij)
            h_i2 = _tanh(g_i2, LIBDEVICE)
            h_i3 = _tanh(g_i3, LIBDEVICE)
            z_i = w1 * h_i1 + w2 * h_i2 + w3 * h_i3 + c0  #     z_i = w_1 h_i1 + w_2 h_i2 + w_3 h_i3 + c
            # L = y log(1 + e^(−z)) + (1 − y) log(1 + e^z) = max(z, 0) − yz + log(1 + e^(−|z|))
            e_i = tl.exp(-tl.abs(z_i))  # one exp serves L and σ
            L_i = tl.maximum(z_i, 0.0) - y_i * z_i + _log1p(e_i, LIBDEVICE)
            s_loss += tl.where(row, L_i, 0.0)  #                ε = (1/N) Σ_i L(z_i, y_i)
            r_i = 1.0 / (1.0 + e_i)
            o_i = tl.where(z_i >= 0, r_i, e_i * r_i)  #         o_i = σ(z_i) = 1/(1 + e^(−z_i))
            z_bar = tl.where(row, (o_i - y_i) * inv_n, 0.0)  #  z̄_i = (o_i − y_i)/N
            s_w1 += z_bar * h_i1  #                             w̄_j = Σ_i z̄_i h_ij
            s_w2 += z_bar * h_i2
            s_w3 += z_bar * h_i3
            s_c += z_bar  #                                     c̄ = Σ_i z̄_i
            g_bar1 = z_bar * w1 * (1.0 - h_i1 * h_i1)  #        ḡ_ij = h̄_ij (1 − tanh²(g_ij)),  h̄_ij = z̄_i w_j
            g_bar2 = z_bar * w2 * (1.0 - h_i2 * h_i2)
            g_bar3 = z_bar * w3 * (1.0 - h_i3 * h_i3)
            s_u11 += g_bar1 * x_i1  #                           ū_jk = Σ_i ḡ_ij x_ik
            s_u12 += g_bar1 * x_i2
            s_u21 += g_bar2 * x_i1
            s_u22 += g_bar2 * x_i2
            s_u31 += g_bar3 * x_i1
            s_u32 += g_bar3 * x_i2
            s_b1 += g_bar1  #                                   b̄_j = Σ_i ḡ_ij
            s_b2 += g_bar2
            s_b3 += g_bar3
            if NEED_X_BAR:  #                                   x̄_ik = Σ_j ḡ_ij u_jk
                x_bar = tl.join(g_bar1 * u11 + g_bar2 * u21 + g_bar3 * u31, g_bar1 * u12 + g_bar2 * u22 + g_bar3 * u32)
                tl.store(X_bar + 2 * i[:, None] + k[None, :], x_bar, mask=row[:, None])
        out = partials + pid.to(tl.int64) * 14  # [ε, ū11, ū12, ū21, ū22, ū31, ū32, b̄1, b̄2, b̄3, w̄1, w̄2, w̄3, c̄]
        tl.store(out + 0, tl.sum(s_loss, axis=0) * inv_n)
        tl.store(out + 1, tl.sum(s_u11, axis=0))
        tl.store(out + 2, tl.sum(s_u12, axis=0))
        tl.store(out + 3, tl.sum(s_u21, axis=0))
        tl.store(out + 4, tl.sum(s_u22, axis=0))
        tl.store(out + 5, tl.sum(s_u31, axis=0))
        tl.store(out + 6, tl.sum(s_u32, axis=0))
        tl.store(out + 7, tl.sum(s_b1, axis=0))
        tl.store(out + 8, tl.sum(s_b2, axis=0))
        tl.store(out + 9, tl.sum(s_b3, axis=0))
        tl.store(out + 10, tl.sum(s_w1, axis=0))
        tl.store(out + 11, tl.sum(s_w2, axis=0))
        tl.store(out + 12, tl.sum(s_w3, axis=0))
        tl.store(out + 13, tl.sum(s_c, axis=0))

    @triton.jit
    def _fused_loss_kernel(X, y, U, b, W, c, X_bar, partials, N, n_tiles, P, X_k, y_k,
                           D: tl.constexpr, H: tl.constexpr, DP: tl.constexpr, HP: tl.constexpr,
                           NEED_X_BAR: tl.constexpr, BLOCK: tl.constexpr, LIBDEVICE: tl.constexpr):
        pid = tl.program_id(0)
        k = (pid // P).to(tl.int64)  # network k, whose program pid % P of P this is (int64: k·N·D may pass 2³¹)
        X, y = X + k * X_k, y + k * y_k  # network k's data (X_k = y_k = 0: shared by all)
        U, b, W, c, X_bar = U + k * (H * D), b + k * H, W + k * H, c + k, X_bar + k * D * N  # network k's weights
        d = tl.arange(0, DP)  # feature index   (DP,)
        j = tl.arange(0, HP)  # hidden index    (HP,)
        # the weights, once per program; padded rows and columns are 0, so they add nothing
        u_mask = (j[:, None] < H) & (d[None, :] < D)
        u = tl.load(U + j[:, None] * D + d[None, :], mask=u_mask, other=0.0)  # U        (HP, DP)
        bj = tl.load(b + j, mask=j < H, other=0.0)  # b                                   (HP,)
        w = tl.load(W + j, mask=j < H, other=0.0)  # W                                    (HP,)
        c0 = tl.load(c)  # c                                                               ()
        dtype = u.dtype
        inv_n = 1.0 / tl.cast(N, dtype)
        acc_loss = tl.zeros((BLOCK,), dtype)
        acc_c = tl.zeros((BLOCK,), dtype)
        acc_w = tl.zeros((BLOCK, HP), dtype)
        acc_b = tl.zeros((BLOCK, HP), dtype)
        acc_u = tl.zeros((BLOCK, HP, DP), dtype)
        for tile in range(pid % P, n_tiles, P):
            n = tl.cast(tile, tl.int64) * BLOCK + tl.arange(0, BLOCK)  # sample index          (BLOCK,)
            row = n < N
            x = tl.load(X + n[:, None] * D + d[None, :], mask=row[:, None] & (d[None, :] < D), other=0.0)
            yn = tl.load(y + n, mask=row, other=0.0)
            # forward, per sample i
            g = tl.sum(x[:, None, :] * u[None, :, :], axis=2) + bj[None, :]  # G = XUᵀ + b  (BLOCK, HP)
            h = _tanh(g, LIBDEVICE)  #                                     H = tanh(G)    (BLOCK, HP)
            z = tl.sum(h * w[None, :], axis=1) + c0  #                       z = HWᵀ + c    (BLOCK,)
            # L = y log(1 + e^(−z)) + (1 − y) log(1 + e^z) = max(z, 0) − yz + log(1 + e^(−|z|))
            e = tl.exp(-tl.abs(z))  # one exp serves L and σ
            loss = tl.maximum(z, 0.0) - yn * z + _log1p(e, LIBDEVICE)
            r = 1.0 / (1.0 + e)
            o = tl.where(z >= 0, r, e * r)  #                                o = σ(z)       (BLOCK,)
            z_bar = (o - yn) * inv_n  #                                      z̄ = (o − y)/N  (BLOCK,)
            loss = tl.where(row, loss, 0.0)
            z_bar = tl.where(row, z_bar, 0.0)  # padded samples carry no gradient
            # backward
            h_bar = z_bar[:, None] * w[None, :]  #                           H̄ = z̄W         (BLOCK, HP)
            g_bar = h_bar * (1.0 - h * h)  #                                 Ḡ = H̄ ⊙ (1 − H²)
            acc_loss += loss  #                                              ε = (1/N) Σ L  (after the division below)
            acc_c += z_bar  #                                                c̄ = z̄ᵀ1
            acc_w += z_bar[:, None] * h  #                                   W̄ = z̄ᵀH
            acc_b += g_bar  #                                                b̄ = Ḡᵀ1
            acc_u += g_bar[:, :, None] * x[:, None, :]  #                    Ū = ḠᵀX
            if NEED_X_BAR:
                x_bar = tl.sum(g_bar[:, :, None] * u[None, :, :], axis=1)  # X̄ = ḠU          (BLOCK, DP)
                tl.store(X_bar + n[:, None] * D + d[None, :], x_bar, mask=row[:, None] & (d[None, :] < D))
        # one row of partials: [ε, Ū (H·D, row-major), b̄ (H), W̄ (H), c̄]
        out = partials + pid.to(tl.int64) * (1 + H * D + 2 * H + 1)
        tl.store(out, tl.sum(acc_loss, axis=0) * inv_n)
        tl.store(out + 1 + j[:, None] * D + d[None, :], tl.sum(acc_u, axis=0), mask=u_mask)
        tl.store(out + 1 + H * D + j, tl.sum(acc_b, axis=0), mask=j < H)
        tl.store(out + 1 + H * D + H + j, tl.sum(acc_w, axis=0), mask=j < H)
        tl.store(out + 1 + H * D + 2 * H, tl.sum(acc_c, axis=0))


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _warn_once(why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"torch-tanhnet: the fused CUDA kernel is unavailable ({why}); using the torch-ops "
                      "schedule: the same equations, more slowly, with results equal to rounding (which a run that does not "
                      "converge amplifies)", RuntimeWarning, stacklevel=4)


def usable(X: torch.Tensor, U: torch.Tensor) -> bool:
    """Whether the kernels serve these inputs, U (H, D) or K networks' (K, H, D); warns once where Triton is missing."""
    if X.dtype not in (torch.float32, torch.float64) or cpu.disabled():
        return False
    if triton is None:
        _warn_once(f"Triton >= 3.0 is needed: {_import_error}")
        return False
    H, D = U.shape[-2:]
    return _pow2(H) * _pow2(D) <= MAX_TILE_WIDTH and (X.dtype, D, H) not in _failed


def _programs(device: torch.device) -> int:
    """How many programs to launch at most: PROGRAMS_PER_SM per multiprocessor."""
    if device.type != "cuda":  # Triton's interpreter (TRITON_INTERPRET=1), which the CPU tests use
        return 4
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _sms:
        _sms[index] = torch.cuda.get_device_properties(index).multi_processor_count * PROGRAMS_PER_SM
    return _sms[index]


def _launch(X, U, b, W, c, y, need_X_bar: bool):
    """K networks' rows [ε, Ū, b̄, W̄, c̄] (K, H·D + 2H + 2) and X̄ (K, N, D) or None, from one launch.

    X (N, D) shared or (K, N, D), y (N, 1) or (K, N, 1), U (K, H, D), b (K, H), W (K, 1, H), c (K, 1), all on one
    device. Network k gets P programs (P·K about the programs the card keeps busy, at most its tiles); program p of
    network k walks its tiles p, p + P, ... and writes row k·P + p of the partials, which are summed here.
    Returns None if the kernel could not be compiled or launched (after one warning).
    """
    K, H, D = U.shape
    N = X.shape[-2]
    X, y, U, b, W, c = dense(X, y, U, b, W, c)  # as the kernel reads them: contiguous, no pending negation
    seed = SEED_KERNEL and (D, H) == (2, 3)
    block = SEED_BLOCK if seed else BLOCK
    n_tiles = -(-N // block)
    P = max(1, min(n_tiles, _programs(X.device) // K))
    partials = X.new_empty(K * P, 1 + H * D + 2 * H + 1)
    X_bar = X.new_empty(K, N, D) if need_X_bar else None
    X_k, y_k = (N * D if X.dim() == 3 else 0), (N if y.dim() == 3 else 0)  # per-network data, or shared by all
    args = (X, y, U, b, W, c, X_bar if need_X_bar else X, partials, N, n_tiles, P, X_k, y_k)
    switch = X.is_cuda and X.device.index != torch.cuda.current_device()  # Triton launches on the current device
    variant = (X.dtype, D, H, need_X_bar, seed, block, X.device)
    first = variant not in _launched
    started = time.perf_counter() if first else 0.0
    try:
        with torch.cuda.device(X.device) if switch else contextlib.nullcontext():
            if seed:
                _seed_loss_kernel[(K * P,)](*args, NEED_X_BAR=need_X_bar, BLOCK=block, LIBDEVICE=X.is_cuda,
                                            num_warps=SEED_WARPS)
            else:
                _fused_loss_kernel[(K * P,)](*args, D=D, H=H, DP=_pow2(D), HP=_pow2(H), NEED_X_BAR=need_X_bar,
                                             BLOCK=block, LIBDEVICE=X.is_cuda, num_warps=WARPS)
    except Exception as e:  # noqa: BLE001 -- a compiler or driver failure; the torch-ops schedule still works
        _failed.add((X.dtype, D, H))
        _warn_once(f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}")
        return None
    if first:  # Triton compiles on the host before the launch returns; from its disk cache it takes ~0.1 s
        _launched.add(variant)
        took = time.perf_counter() - started
        if took > COMPILE_NOTE_S:
            say(f"torch-tanhnet: compiled the fused CUDA kernel ({X.dtype}, D = {D}, H = {H}) with Triton in "
                f"{took:.1f} s, once per shape; Triton caches it on disk (~/.triton)")
    rows = partials.view(K, P, -1)
    return (rows[:, 0] if P == 1 else rows.sum(1)), X_bar


def loss_and_gradients(X, U, b, W, c, y, need_X_bar: bool):
    """ε (), [Ū, b̄, W̄, c̄] at ε̄ = 1 and X̄ (or None) in one kernel launch (and a sum of its partial rows).

    Inputs as :func:`torch_tanhnet.kernels.torch_ops.loss_and_gradients` takes them, on one CUDA device.
    Returns None if the kernel could not be compiled or launched here (after one warning).
    """
    H, D = U.shape
    found = _launch(X, U.unsqueeze(0), b.unsqueeze(0), W.unsqueeze(0), c.unsqueeze(0), y, need_X_bar)
    if found is None:
        return None
    totals, X_bar = found
    eps, U_bar, b_bar, W_bar, c_bar = totals[0].split([1, H * D, H, H, 1])  # the row's layout, as the kernels write it
    return eps[0], [U_bar.view(H, D), b_bar, W_bar.view(1, H), c_bar], None if X_bar is None else X_bar[0]


def ensemble_loss_and_gradients(X, U, b, W, c, y, need_X_bar: bool):
    """K networks (:mod:`torch_tanhnet.ensemble`): ε (K,), the gradients at ε̄ = 1 and X̄ (K, N, D) or None, in one
    launch. Inputs as :func:`torch_tanhnet.kernels.torch_ops.ensemble_loss_and_gradients` takes them, on one CUDA
    device. Returns None if the kernel could not be compiled or launched here (after one warning)."""
    K, H, D = U.shape
    found = _launch(X, U, b, W, c, y, need_X_bar)
    if found is None:
        return None
    totals, X_bar = found
    eps, U_bar, b_bar, W_bar, c_bar = totals.split([1, H * D, H, H, 1], dim=1)
    return eps[:, 0], [U_bar.view(K, H, D), b_bar, W_bar.view(K, 1, H), c_bar], X_bar
