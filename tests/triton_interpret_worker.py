"""Run the CUDA training kernel (torch_tanhnet.triton_kernel) in Triton's interpreter on the CPU and
check it against the reference Functions; exits non-zero on the first disagreement.

Run by tests/test_triton_kernel.py in a fresh process, since TRITON_INTERPRET must be set
before Triton reads it. The interpreter runs the kernel's code line by line on CPU tensors,
with the one difference the kernel makes for it: tanh and log1p from exp and log (the
interpreter has no libdevice), so the GPU tests still check the libdevice lines.
"""

import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
import triton.runtime.interpreter as interpreter  # noqa: E402

from conftest import make_data, make_params  # noqa: E402
from torch_tanhnet.kernels import triton_kernel  # noqa: E402
from torch_tanhnet.cost import BCEWithLogitsFunction  # noqa: E402
from torch_tanhnet.ensemble.function import ensemble_reference_loss  # noqa: E402
from torch_tanhnet.network import TanhNetFunction  # noqa: E402

# numpy >= 2.3 refuses int() of a one-element 1-D array, which Triton's interpreter (3.6) does for a
# loop bound that is a kernel argument; give it the element.
_patch_lang_tensor = interpreter._patch_lang_tensor


def _patched(tensor, scope):
    _patch_lang_tensor(tensor, scope)
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))


interpreter._patch_lang_tensor = _patched

B, S = triton_kernel.BLOCK, triton_kernel.SEED_BLOCK
# N = 1, one short tile, exactly one tile, one over, and more tiles than programs (4 here), so each
# program walks several, for either kernel's tile; the seed's shape runs on both kernels. Then
# shapes with padding in H and D, and the widest tile served (8 × 8), on the general kernel.
SEED_NS = sorted({1, B - 1, B, B + 1, S - 1, S, S + 1, 9 * max(B, S) + 7})
CASES = [(N, 2, 3, seed) for N in SEED_NS for seed in (True, False)]
CASES += [(300, 5, 7, False), (500, 3, 1, False), (40, 1, 1, False), (700, 8, 8, False)]
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-13), torch.float32: dict(rtol=2e-4, atol=2e-6)}
# K networks: the interpreter's 4 programs give network k P = 4 // K of them (4, 2, 1), so the cases walk
# several programs a network, one, and more networks than programs; shared and per-network X and y.
ENSEMBLE_CASES = [(K, N, 2, 3, seed, shared_X, shared_y) for K in (1, 2, 5) for N in (1, S + 1, 3 * S + 5)
                  for seed in (True, False) for shared_X, shared_y in ((True, True), (False, False), (True, False))]
ENSEMBLE_CASES += [(3, 300, 5, 7, False, False, True), (6, 130, 1, 1, False, True, False),
                   (2, 700, 8, 8, False, False, False)]


def reference(X, U, b, W, c, y):
    leaves = [t.detach().requires_grad_(True) for t in (X, U, b, W, c)]
    eps = BCEWithLogitsFunction.apply(TanhNetFunction.apply(*leaves)[0], y)
    return eps.detach(), torch.autograd.grad(eps, leaves)


def ensemble_problem(K, N, D, H, shared_X, shared_y, dtype, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn((N, D) if shared_X else (K, N, D), generator=g, dtype=torch.float64)
    y = torch.rand((N, 1) if shared_y else (K, N, 1), generator=g, dtype=torch.float64)
    params = [scale * torch.randn(s, generator=g, dtype=torch.float64) for s in ((K, H, D), (K, H), (K, 1, H), (K, 1))]
    return X.to(dtype), [p.to(dtype) for p in params], y.to(dtype)


def check_ensemble(X, params, y, need_X_bar, tol) -> None:
    """The K-network launch against the ensemble's reference composition at ε̄_k = 1 (X̄ per network)."""
    K, N = params[0].shape[0], X.shape[-2]
    eps, grads, X_bar = triton_kernel.ensemble_loss_and_gradients(X, *params, y, need_X_bar)
    leaves = [t.detach().requires_grad_(True) for t in (X, *params)]
    ref = ensemble_reference_loss(*leaves, y)
    ref_X_bar, *ref_grads = torch.autograd.grad(ref.sum(), leaves)
    torch.testing.assert_close(eps, ref.detach(), **tol, msg=lambda m: f"ε: {m}")
    for name, got, want in zip(("Ū", "b̄", "W̄", "c̄"), grads, ref_grads):
        torch.testing.assert_close(got, want, **tol, msg=lambda m, n=name: f"{n}: {m}")
    if need_X_bar:
        assert X_bar.shape == (K, N, X.shape[-1]), X_bar.shape
        torch.testing.assert_close(X_bar.sum(0) if X.dim() == 2 else X_bar, ref_X_bar, **tol, msg=lambda m: f"X̄: {m}")
    elif X_bar is not None:
        raise AssertionError("X̄ was computed though not asked for")


def main() -> int:
    checked = 0
    for (N, D, H, seed) in CASES:
        triton_kernel.SEED_KERNEL = seed
        for dtype in (torch.float64, torch.float32):
            for need_X_bar in (False, True):
                X, y = make_data(N, D, dtype=dtype)
                U, b, W, c = make_params(D, H, dtype=dtype, requires_grad=False)
                eps, grads, X_bar = triton_kernel.loss_and_gradients(X, U, b, W, c, y, need_X_bar)
                ref_eps, (ref_X_bar, *ref_grads) = reference(X, U, b, W, c, y)
                where = f"N={N} D={D} H={H} {dtype} need_X_bar={need_X_bar} seed kernel={seed}"
                try:
                    torch.testing.assert_close(eps, ref_eps, **TOL[dtype], msg=lambda m: f"ε: {m}")
                    for name, got, want in zip(("Ū", "b̄", "W̄", "c̄"), grads, ref_grads):
                        torch.testing.assert_close(got, want, **TOL[dtype], msg=lambda m, n=name: f"{n}: {m}")
                    if need_X_bar:
                        torch.testing.assert_close(X_bar, ref_X_bar, **TOL[dtype], msg=lambda m: f"X̄: {m}")
                    elif X_bar is not None:
                        raise AssertionError("X̄ was computed though not asked for")
                except AssertionError as e:
                    print(f"{where}: {e}")
                    return 1
                checked += 1
    for (K, N, D, H, seed, shared_X, shared_y) in ENSEMBLE_CASES:
        triton_kernel.SEED_KERNEL = seed
        for dtype in (torch.float64, torch.float32):
            for need_X_bar in (False, True):
                X, params, y = ensemble_problem(K, N, D, H, shared_X, shared_y, dtype, seed=checked)
                try:
                    check_ensemble(X, params, y, need_X_bar, TOL[dtype])
                except AssertionError as e:
                    print(f"K={K} N={N} D={D} H={H} {dtype} shared X={shared_X} shared y={shared_y} "
                          f"need_X_bar={need_X_bar} seed kernel={seed}: {e}")
                    return 1
                checked += 1
    failure = check_properties()
    if failure:
        print(failure)
        return 1
    print(f"checked {checked} cases and the properties")
    return 0


def check_properties() -> str | None:
    """Hypothesis: any small shape either kernel serves, one network or K, weights from gentle to saturating tanh,
    any labels."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=30, deadline=None, derandomize=True)
    @given(N=st.integers(1, 1200), D=st.integers(1, 8), H=st.integers(1, 8), scale=st.floats(0.05, 8.0),
           seed=st.integers(0, 2**16), need_X_bar=st.booleans(), seed_kernel=st.booleans())
    def kernel_equals_reference(N, D, H, scale, seed, need_X_bar, seed_kernel):
        U0 = torch.zeros(H, D)
        if not triton_kernel.usable(torch.zeros(1, D), U0):
            return
        triton_kernel.SEED_KERNEL = seed_kernel
        X, y = make_data(N, D, seed=seed)
        U, b, W, c = (scale * p for p in make_params(D, H, seed=seed + 1, requires_grad=False))
        eps, grads, X_bar = triton_kernel.loss_and_gradients(X, U, b, W, c, y, need_X_bar)
        ref_eps, (ref_X_bar, *ref_grads) = reference(X, U, b, W, c, y)
        tol = dict(rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(eps, ref_eps, **tol)
        for got, want in zip(grads, ref_grads):
            torch.testing.assert_close(got, want, **tol)
        if need_X_bar:
            torch.testing.assert_close(X_bar, ref_X_bar, **tol)

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(K=st.integers(1, 9), N=st.integers(1, 700), D=st.integers(1, 8), H=st.integers(1, 8),
           scale=st.floats(0.05, 8.0), seed=st.integers(0, 2**16), shared_X=st.booleans(), shared_y=st.booleans(),
           need_X_bar=st.booleans(), seed_kernel=st.booleans())
    def ensemble_equals_reference(K, N, D, H, scale, seed, shared_X, shared_y, need_X_bar, seed_kernel):
        if not triton_kernel.usable(torch.zeros(1, D), torch.zeros(K, H, D)):
            return
        triton_kernel.SEED_KERNEL = seed_kernel
        X, params, y = ensemble_problem(K, N, D, H, shared_X, shared_y, torch.float64, seed, scale)
        check_ensemble(X, params, y, need_X_bar, dict(rtol=1e-9, atol=1e-12))

    for prop in (kernel_equals_reference, ensemble_equals_reference):
        try:
            prop()
        except AssertionError as e:
            return f"property {prop.__name__}: {e}"
    return None


if __name__ == "__main__":
    sys.exit(main())
