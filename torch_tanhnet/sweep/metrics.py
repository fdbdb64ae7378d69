"""What a sweep measures of its runs: every network's losses and accuracies in one batched pass.

For a group's K networks, each with its own training and test set side by side in X (K, N, 2),
:func:`measure` returns the four metrics of ``scripts/train.py``'s TensorBoard tags
(:data:`METRICS`) for all K at once: the C kernel ``tn_ensemble_evaluate`` on the CPU, batched
torch ops elsewhere (:func:`~torch_tanhnet.kernels.dispatch.ensemble_evaluate_implementation`).
"""

from __future__ import annotations

import torch

from ..ensemble import TanhNetEnsemble
from ..kernels.dispatch import ensemble_evaluate_implementation

Tensor = torch.Tensor
METRICS = ("loss/train", "accuracy/train", "loss/test", "accuracy/test")  # the columns of measure's answer


@torch.no_grad()
def measure(model: TanhNetEnsemble, X: Tensor, y: Tensor, n_train: int) -> Tensor:
    """(K, 4) float64 on the model's device: :data:`METRICS` of each network, where network k's samples
    are X[k, :n_train] (training) and X[k, n_train:] (test), labels y (K, N, 1).

    loss is the seed's mean cost ε = (1/N) Σ_i L(z_i, y_i), accuracy the share of samples with
    (z_i > 0) = (y_i > ½), as ``training.metrics.evaluate`` finds them for one network.
    """
    n_test = X.shape[1] - n_train
    impl = ensemble_evaluate_implementation(X)
    sums = impl.ensemble_evaluate(X, model.U.detach(), model.b.detach(), model.W.detach(), model.c.detach(), y,
                                  n_train)  # [Σ L, right] on the training part, then on the test part   (K, 4)
    counts = torch.tensor([n_train, n_train, n_test, n_test], dtype=torch.float64, device=sums.device)
    return sums / counts
