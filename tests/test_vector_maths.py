"""The lane kernel's inline float32 maths (csrc/vector_maths.h) against float64, in ulps of the float32 result.

Each function is run through ``tn_vector_maths`` on every 97th float32 of its range (10^7 values in all)
and on the special values. The bounds are the largest errors found on every 7th float (vector_maths.h
lists them), rounded up.
"""

import pytest
import torch

from torch_tanhnet.kernels import dispatch

TANH, EXP, LOG1P, SIGMOID = range(4)
INF, NAN = float("inf"), float("nan")


@pytest.fixture(scope="module")
def lib():
    k = dispatch.c_kernels(torch.float32)
    if k is None:
        pytest.skip("the C kernels are unavailable here")
    return k.lib


def run(lib, which: int, x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    assert lib.tn_vector_maths(which, x.data_ptr(), out.data_ptr(), x.numel()) == 0
    return out


def floats_up_to(top: float, step: int = 97) -> torch.Tensor:
    """Every step-th non-negative float32 from 0 (subnormals included) up to top."""
    last = int(torch.tensor(top, dtype=torch.float32).view(torch.int32))
    return torch.arange(0, last + 1, step, dtype=torch.int32).view(torch.float32)


def ulps(got: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|got − exact| in units of the last place of exact rounded to float32."""
    e = exact.float().abs()
    ulp = torch.nextafter(e, torch.tensor(INF)) - e
    return (got.double() - exact).abs() / ulp.double()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_tanh_is_within_two_and_a_half_ulps(lib, sign):
    x = sign * floats_up_to(10.0)  # tanh rounds to ±1 beyond 9
    assert ulps(run(lib, TANH, x), torch.tanh(x.double())).max() <= 2.5


def test_exp_is_within_one_and_a_half_ulps_down_to_the_subnormals(lib):
    x = -floats_up_to(104.0)  # e^x for x <= 0; below −103.3 it is subnormal, below −104 it rounds to 0
    assert ulps(run(lib, EXP, x), torch.exp(x.double())).max() <= 1.5


def test_log1p_is_within_two_ulps_on_the_unit_interval(lib):
    x = floats_up_to(1.0)
    assert ulps(run(lib, LOG1P, x), torch.log1p(x.double())).max() <= 2.0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_sigmoid_is_within_three_ulps(lib, sign):
    x = sign * floats_up_to(110.0)  # σ(−110) is below the smallest subnormal float
    assert ulps(run(lib, SIGMOID, x), torch.sigmoid(x.double())).max() <= 3.0


def test_special_values():
    k = dispatch.c_kernels(torch.float32)
    if k is None:
        pytest.skip("the C kernels are unavailable here")
    x = torch.tensor([NAN, INF, -INF, 0.0, -0.0, 1e-45, -1e-45, 9.0, -9.0])
    torch.testing.assert_close(run(k.lib, TANH, x), torch.tanh(x), rtol=1.2e-7, atol=0, equal_nan=True)  # 1 ulp
    assert torch.signbit(run(k.lib, TANH, torch.tensor([-0.0]))).all()  # tanh(−0) = −0
    torch.testing.assert_close(run(k.lib, SIGMOID, x), torch.sigmoid(x), rtol=3e-7, atol=0, equal_nan=True)
    e = torch.tensor([NAN, -INF, -200.0, -0.0, 0.0])
    torch.testing.assert_close(run(k.lib, EXP, e), torch.exp(e), rtol=0, atol=0, equal_nan=True)
    assert torch.isnan(run(k.lib, LOG1P, torch.tensor([NAN]))).all()


def test_an_unknown_function_number_is_refused(lib):
    x = torch.zeros(3)
    assert lib.tn_vector_maths(7, x.data_ptr(), x.data_ptr(), 3) == 2
