"""What a run measures of itself: the logged metrics, the Hessian's extreme eigenvalues, and the check that
it has not diverged."""

from __future__ import annotations

import math

import torch

from ..cost import sample_costs
from ..ensemble.hessian import ensemble_gradient_and_hessian
from ..module import TanhNet, hooked, overrides_forward
from .wording import Worded
from .world import World

Tensor = torch.Tensor
SATURATION = 0.97  # |h| above this counts as a saturated tanh unit (tanh' < 0.06)
PARAMS = ("U", "b", "W", "c")
MAX_HESSIAN_PARAMETERS = 129  # wider networks (--hidden above 32) skip the (P, P) Hessian (as a sweep does)
HESSIAN_ENTRIES = 2**19  # entries of ∂z/∂θ (samples × parameters) a batch of the Hessian's samples holds: 4 MiB
EVERY_LOG = 10**6  # a training set of N samples and P parameters with N·P² at most this has its Hessian at every
# scalar log, not only at the picture steps: 0.44-0.46 ms a log at the default run's 400 training samples and 13
# parameters, 0.65 ms at 49, 1.4 ms at the bound (closed form, quiet 2-core machine), where 10 points under
# TensorBoard's default smoothing showed a minimum as a saddle. A default run: 1.34-1.39 s against 1.21-1.24 s
# (4 rounds, interleaved, quiet)


def hessian_size(model: TanhNet) -> int:
    """P, the Hessian's side: the numbers of U, b, W and c (a parametrized weight's own parameters are others)."""
    return sum(getattr(model, name).numel() for name in PARAMS)


def curvature_at_every_log(n_samples: int, model: TanhNet) -> bool:
    """Whether the Hessian's eigenvalues are cheap enough to log at every scalar log (:data:`EVERY_LOG`)."""
    P = hessian_size(model)
    return P <= MAX_HESSIAN_PARAMETERS and n_samples * P**2 <= EVERY_LOG


class TrainingDiverged(Worded, RuntimeError):
    """The loss or a gradient stopped being finite; the message names the step and the tensor."""


@torch.no_grad()
def evaluate(model: TanhNet, X: Tensor, y: Tensor, world: World) -> Tensor:
    """[Σ L_i, Σ correct, N, Σ saturated h, N·H] over this process's X, summed over all processes."""
    z, H = model.forward_with_hidden(X)
    L = sample_costs(z, y)  # L_i = softplus(z_i) − y_i z_i, the handout's cost per sample
    correct = ((z > 0) == (y > 0.5)).sum()
    saturated = (H.abs() > SATURATION).sum()
    sums = torch.stack([L.sum(), correct.to(L.dtype), torch.tensor(float(X.shape[0]), dtype=L.dtype, device=L.device),
                        saturated.to(L.dtype), torch.tensor(float(H.numel()), dtype=L.dtype, device=L.device)])
    return world.sum(sums.double())


def leaf_grad(model: TanhNet, name: str) -> Tensor | None:
    """``model.<name>.grad``, or None where that weight is computed (a parametrization's), which holds no gradient
    (reading it warns)."""
    weight = getattr(model, name)
    return weight.grad if weight.is_leaf else None


def measure(model: TanhNet, data, world: World, lr: float, step_seconds: float | None) -> dict[str, float]:
    """The scalars of one log: losses and accuracies on the whole training and test sets (all processes'
    shares summed), the norms of the step's gradients and of the parameters, saturation, timing. Before the
    first step (``step_seconds`` None, the untrained network at step 0) there is no gradient and no timing."""
    train_sums = evaluate(model, world.mine(data.X_train), world.mine(data.y_train), world)
    test_sums = evaluate(model, world.mine(data.X_test), world.mine(data.y_test), world)
    (tl, tc, tn, ts, th), (vl, vc, vn, _, _) = train_sums.tolist(), test_sums.tolist()
    p = torch.stack([getattr(model, n).detach().norm() for n in PARAMS]).double().cpu().tolist()
    gradients = {}
    if step_seconds is not None:  # a step was taken: its gradients
        # a parametrized U (wrap=) holds none: its gradient is its parametrization's own parameters'
        grads = {n: grad for n in PARAMS if (grad := leaf_grad(model, n)) is not None}
        g = torch.stack([t.norm() for t in grads.values()]).double().cpu().tolist() if grads else []
        gradients = {f"norm/grad/{n}": v for n, v in zip(grads, g)}
        if len(grads) == len(PARAMS):
            gradients["norm/grad/total"] = math.sqrt(sum(v * v for v in g))
    return {
        "loss/train": tl / tn, "loss/test": vl / vn, "accuracy/train": tc / tn, "accuracy/test": vc / vn,
        **gradients,
        **{f"norm/param/{n}": v for n, v in zip(PARAMS, p)},
        "tanh/saturation": ts / th,
        "run/lr": lr, "run/world_size": float(world.size),
        **({"run/step_ms": 1e3 * step_seconds} if step_seconds is not None else {}),
    }


def accuracies(model: TanhNet, data, world: World) -> tuple[float, float]:
    """(train, test) accuracy, all processes' shares summed: the pictures' caption between logs."""
    (_, tc, tn, _, _), (_, vc, vn, _, _) = (evaluate(model, world.mine(X), world.mine(y), world).tolist()
                                            for X, y in ((data.X_train, data.y_train), (data.X_test, data.y_test)))
    return tc / tn, vc / vn


def curvature(model: TanhNet, X: Tensor, y: Tensor) -> dict[str, float]:
    """The least and greatest eigenvalue of the Hessian of ε on (X, y), as ``loss_hessian/min_eigenvalue`` and
    ``loss_hessian/max_eigenvalue``: where the gradient vanishes, a negative least one marks a saddle.

    Empty (nothing computed) for a network of more than ``MAX_HESSIAN_PARAMETERS`` parameters, and for one whose
    Hessian overflows float64 (weights near 1e300: ``--init-scale 1e300 --dtype float64``).

    The Hessian is the closed form of :mod:`torch_tanhnet.ensemble.hessian` for one network (tested against
    :func:`torch_tanhnet.landscape.hessian`, ≤ 1e-10), in float64, summed over batches of samples: 0.5 ms at
    N = 400 where torch.func's column-by-column form took 10-20 ms.
    """
    P = hessian_size(model)
    if P > MAX_HESSIAN_PARAMETERS or hooked(model) or overrides_forward(model, TanhNet):  # not TanhNet's equations
        return {}
    with torch.no_grad():
        params = [getattr(model, name).detach().double().unsqueeze(0) for name in PARAMS]  # a network of one
        X, y = X.detach().reshape(-1, model.in_features), y.detach().reshape(-1, 1)
        N, step = X.shape[0], max(1, HESSIAN_ENTRIES // P)
        hessian = torch.zeros(P, P, dtype=torch.float64, device=X.device)
        for start in range(0, N, step):  # ε = Σ_batches (n_b/N) ε_b: each batch's mean cost, weighed by its share
            Xb, yb = X[start:start + step].double(), y[start:start + step].double()
            hessian += ensemble_gradient_and_hessian(Xb, *params, yb)[1][0] * (Xb.shape[0] / N)
        if not bool(torch.isfinite(hessian).all()):  # weights near 1e300: no eigenvalue to log
            return {}
        eigenvalues = torch.linalg.eigvalsh(hessian.cpu()).tolist()  # ascending; at most 129 × 129: on the CPU
    return {"loss_hessian/min_eigenvalue": eigenvalues[0], "loss_hessian/max_eigenvalue": eigenvalues[-1]}


def check_finite(loss: Tensor, model: TanhNet, step: int, world: World) -> None:
    """One device sync per step: the loss, the gradients it gave and the parameters after the step.

    Under torchrun the verdict is summed over the processes, so that all of them stop together.
    """
    named = list(model.named_parameters())  # the leaves: a parametrized U's own (weight_norm's g and v), not U
    grads = [p.grad for _, p in named if p.grad is not None]
    params = [p.detach() for _, p in named]
    tensors = [loss.detach()] + grads + params
    if world.size == 1:
        if bool(torch.isfinite(torch.cat([t.reshape(-1) for t in tensors])).all()):
            return
        bad = [not bool(torch.isfinite(t).all()) for t in tensors]
    else:
        flags = torch.stack([(~torch.isfinite(t)).any() for t in tensors]).to(torch.float64)
        bad = [v > 0 for v in world.sum(flags).tolist()]
        if not any(bad):
            return
    names = (["the loss"] + [f"the gradient of {n}" for n, p in named if p.grad is not None]
             + [f"the parameter {n}" for n, _ in named])
    raise TrainingDiverged(f"{names[bad.index(True)]} became NaN or infinite at step {step}")
