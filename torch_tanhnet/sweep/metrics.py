"""What a sweep measures of its runs: every network's losses and accuracies in one batched pass.

For a group's K networks, each with its own training and test set side by side in X (K, N, 2),
:func:`measure` returns the four metrics of ``scripts/train.py``'s TensorBoard tags
(:data:`METRICS`) for all K at once: the C kernel ``tn_ensemble_evaluate`` on the CPU, batched
torch ops elsewhere (:func:`~torch_tanhnet.kernels.dispatch.ensemble_evaluate_implementation`).

After training, :func:`curvature` reads where each run ended: the norm of its gradient and the
least and greatest eigenvalue of its Hessian, of its final training cost ε over its own
parameters, as ``scripts/train.py`` reports them (:data:`CURVATURE`, under its tag names), for
all K networks in a few batched products (:mod:`torch_tanhnet.ensemble.hessian`).
"""

from __future__ import annotations

import torch

from ..cost import sample_costs
from ..ensemble import TanhNetEnsemble
from ..ensemble.function import ensemble_network
from ..ensemble.hessian import ensemble_gradient, ensemble_gradient_and_hessian
from ..kernels.dispatch import ensemble_evaluate_implementation
from ..training.metrics import MAX_HESSIAN_PARAMETERS

Tensor = torch.Tensor
D_IN = 2  # the data sets' features (plan.py's D)
METRICS = ("loss/train", "accuracy/train", "loss/test", "accuracy/test")  # the columns of measure's answer
CURVATURE = ("norm/grad/total", "loss_hessian/min_eigenvalue", "loss_hessian/max_eigenvalue")  # curvature's columns
CHUNK = {"cpu": 2**19, "cuda": 2**24}  # entries of ∂z/∂θ (networks × samples × parameters) per batch of networks:
# on the CPU a batch that stays in cache (K = 1000, N = 400, H = 3: 0.09-0.15 s in batches of 2^19 on one thread of
# the 2-core machine loaded by other work, 0.16-0.33 s in one batch; on two threads 0.3-1.6 s, so the runner calls it
# on one), on CUDA most of a group at once (2^24 float64 entries: about 0.5 GiB at the peak)


@torch.no_grad()
def measure(model: TanhNetEnsemble, X: Tensor, y: Tensor, n_train: int) -> Tensor:
    """(K, 4) float64 on the model's device: :data:`METRICS` of each network, where network k's samples
    are X[k, :n_train] (training) and X[k, n_train:] (test), labels y (K, N, 1).

    loss is the handout's mean cost ε = (1/N) Σ_i L(z_i, y_i), accuracy the share of samples with
    (z_i > 0) = (y_i > ½), as ``training.metrics.evaluate`` finds them for one network.
    """
    n_test = X.shape[1] - n_train
    impl = ensemble_evaluate_implementation(X)
    params = (model.U.detach(), model.b.detach(), model.W.detach(), model.c.detach())
    if impl is None:  # reference_equations(): the handout's lines, as they train
        sums = _reference_sums(X, *params, y, n_train)
    else:
        sums = impl.ensemble_evaluate(X, *params, y, n_train)  # [Σ L, right] on the training part, then the test's
    counts = torch.tensor([n_train, n_train, n_test, n_test], dtype=torch.float64, device=sums.device)
    return sums / counts


def _reference_sums(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor, n_train: int) -> Tensor:
    """[Σ L, right] of each network on the training part, then the test part (K, 4) float64, through the ensemble's
    reference forward and the cost's line L = softplus(z) − y z."""
    z, _ = ensemble_network(X, U, b, W, c)  #                                                         (K, N, 1)
    L, right = sample_costs(z, y)[..., 0], ((z > 0) == (y > 0.5))[..., 0]  #                           (K, N)
    parts = (slice(None, n_train), slice(n_train, None))
    return torch.stack([t[:, part].sum(1, dtype=torch.float64) for part in parts for t in (L, right)], dim=1)


@torch.no_grad()
def curvature(model: TanhNetEnsemble, X: Tensor, y: Tensor) -> Tensor:
    """(K, 3) float64 on the CPU: :data:`CURVATURE` of each network, ‖∂ε_k/∂θ_k‖ and the least and greatest
    eigenvalue of ∂²ε_k/∂θ_k², of network k's mean cost on its own samples X[k] (K, N, D), y[k] (K, N, 1).

    Computed in float64 whatever the networks' dtype. NaN where a network's weights are not finite, and the
    eigenvalues NaN for networks of more than ``MAX_HESSIAN_PARAMETERS`` parameters (as train.py skips them).
    """
    K, H, D = model.U.shape
    P = network_parameters(H, D)
    params = [p.detach() for p in (model.U, model.b, model.W, model.c)]
    out = torch.full((K, 3), float("nan"), dtype=torch.float64, device=X.device)
    step = networks_at_once(X.shape[1], H, X.device.type)
    for start in range(0, K, step):  # in float64 a batch at a time: a copy of all of X in float64 took more memory
        part = slice(start, start + step)  # than the group's training
        args = [t[part].double() for t in (X, *params, y)]
        if P > MAX_HESSIAN_PARAMETERS:  # the gradient alone, as train.py logs it
            out[part, 0] = ensemble_gradient(*args).norm(dim=1)
            continue
        grad, hessian = ensemble_gradient_and_hessian(*args)
        finite = torch.isfinite(hessian).flatten(1).all(1)
        eigenvalues = torch.linalg.eigvalsh(torch.where(finite[:, None, None], hessian, 0))  # ascending   (k, P)
        out[part, 0] = grad.norm(dim=1)
        out[part, 1:] = torch.where(finite[:, None], eigenvalues[:, [0, -1]], float("nan"))
    return _finite_only(out, params)


def network_parameters(H: int, D: int = D_IN) -> int:
    """P = H·D + 2H + 1: one network's U (H, D), b (H,), W (1, H) and c (1,)."""
    return H * D + 2 * H + 1


def networks_at_once(N: int, H: int, device_type: str) -> int:
    """How many networks :func:`curvature` takes in one batch: ∂z/∂θ (networks × samples × parameters) within
    :data:`CHUNK`'s entries, at least one network."""
    P = network_parameters(H)
    return max(1, CHUNK.get(device_type, CHUNK["cuda"]) // (N * P))


def curvature_bytes(N: int, H: int, device_type: str) -> int:
    """The most :func:`curvature` holds at once for networks of H hidden units on N samples: a batch's float64
    copies of its data and weights, a few (k, N, H) arrays (the hidden layer, its derivative, Ḡ), and where the
    Hessian is taken (P ≤ MAX_HESSIAN_PARAMETERS) ∂z/∂θ (k, N, P) with its weighted copy and the (k, P, P) Hessian
    with its eigensolver's copy; for :func:`~torch_tanhnet.sweep.plan.group_bytes`."""
    P = network_parameters(H)
    k = networks_at_once(N, H, device_type)
    hessian = 3 * N * P + 2 * P * P if P <= MAX_HESSIAN_PARAMETERS else 0
    return 8 * k * (N * (D_IN + 1) + P + 4 * N * H + hessian)


def _finite_only(out: Tensor, params: list[Tensor]) -> Tensor:
    """NaN in every column of a network whose weights are not all finite (a diverged run)."""
    finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in params]).all(0)
    return torch.where(finite[:, None], out, float("nan")).cpu()
