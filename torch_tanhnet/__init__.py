"""torch-tanhnet: the hand-derived 2-3-1 tanh network of a backpropagation handout, as PyTorch.

- :class:`TanhNetFunction` / :func:`tanhnet`: the network with a hand-written backward.
- :class:`BCEWithLogitsFunction` / :func:`bce_with_logits`: the handout's cost, hand-written backward.
- :class:`TanhNet`: the ``nn.Module`` (parameters U, b, W, c), a drop-in for
  ``nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 1))``.
- :class:`TanhNetEnsemble`: K independent TanhNets trained in one call a step (:mod:`torch_tanhnet.ensemble`).
- :func:`hessian` / :func:`hessian_eigenvalues`: the loss landscape at a point, ∂²ε/∂θ² over U, b, W, c.
- :func:`reference_equations`: run the handout's equations themselves, not the fast kernels (for a class).
"""

from .cost import BCEWithLogitsFunction
from .ensemble import TanhNetEnsemble
from .functional import bce_with_logits, tanhnet, tanhnet_loss, tanhnet_with_hidden
from .kernels.dispatch import reference_equations
from .landscape import hessian, hessian_eigenvalues
from .module import TanhNet
from .network import TanhNetFunction

__all__ = [
    "BCEWithLogitsFunction",
    "TanhNet",
    "TanhNetEnsemble",
    "TanhNetFunction",
    "bce_with_logits",
    "hessian",
    "hessian_eigenvalues",
    "reference_equations",
    "tanhnet",
    "tanhnet_loss",
    "tanhnet_with_hidden",
]
__version__ = "0.1.0"
