"""K independent TanhNets trained together: one call a step for all of them.

- :class:`TanhNetEnsemble` (module.py): the stacked networks, ``loss`` → ε (K,).
- :class:`EnsembleFunction`, :class:`EnsembleBCEFunction` (function.py): the handout's equations with a
  network index, the reference; :func:`ensemble_reference_loss` composes them.
- :class:`EnsembleLossFunction` (fused.py): the training path, ε and every gradient in one pass.
- :class:`EnsembleSGD`, :class:`EnsembleAdam` (optim.py): per-network learning rates, momenta and
  weight decays, all networks updated in one step.
"""

from .function import EnsembleBCEFunction, EnsembleFunction, ensemble_reference_loss
from .fused import EnsembleLossFunction, ensemble_loss
from .module import TanhNetEnsemble
from .optim import EnsembleAdam, EnsembleSGD

__all__ = [
    "EnsembleAdam",
    "EnsembleBCEFunction",
    "EnsembleFunction",
    "EnsembleLossFunction",
    "EnsembleSGD",
    "TanhNetEnsemble",
    "ensemble_loss",
    "ensemble_reference_loss",
]
