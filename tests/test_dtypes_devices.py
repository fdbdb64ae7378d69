"""float32/float64 exact to their precision, float16/bfloat16 run, every available device."""

import pytest
import torch
from conftest import make_data, make_params

from torch_tanhnet import TanhNet, bce_with_logits, tanhnet
from torch_tanhnet.audit.reference import loss_reference

# (dtype, rtol) for gradients against the float64 reference, documented in docs/api.md (Precision)
TOLERANCES = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 5e-2, torch.float16: 1e-2}


@pytest.mark.parametrize("dtype", list(TOLERANCES))
def test_gradients_to_dtype_precision(dtype, device):
    X64, y64 = make_data(64, 2)
    p64 = make_params(2, 3)
    ref = torch.autograd.grad(loss_reference(X64, *p64, y64), p64)
    X, y = X64.to(device, dtype), y64.to(device, dtype)
    p = [t.detach().to(device, dtype).requires_grad_(True) for t in p64]
    eps = bce_with_logits(tanhnet(X, *p), y)
    assert eps.dtype == dtype and eps.device.type == device
    mine = torch.autograd.grad(eps, p)
    rtol = TOLERANCES[dtype]
    for a, r in zip(mine, ref):
        # low precision: compare against the largest gradient entry, not entry by entry
        torch.testing.assert_close(a.double().cpu(), r, rtol=rtol, atol=rtol * r.abs().max().item())


def test_module_moves_with_to(device):
    net = TanhNet().to(device=device, dtype=torch.float64)
    X = torch.randn(3, 2, device=device, dtype=torch.float64)
    y = torch.ones(3, 1, device=device, dtype=torch.float64)
    net.loss(X, y).backward()
    assert all(p.grad.device.type == device for p in net.parameters())


def test_cuda_agrees_with_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, y = make_data(100, 2)
    p = make_params(2, 3)
    cpu = torch.autograd.grad(bce_with_logits(tanhnet(X, *p), y), p)
    pc = [t.detach().cuda().requires_grad_(True) for t in p]
    cuda = torch.autograd.grad(bce_with_logits(tanhnet(X.cuda(), *pc), y.cuda()), pc)
    for a, b in zip(cpu, cuda):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-12, atol=1e-15)
