"""What ``scripts/bench.py`` runs: one training step of each implementation, timed side by side.

- :mod:`.single`: one network, the fused, composed, eager, compiled and JAX cases, interleaved.
- :mod:`.ensemble`: K networks at once (``--ensemble``): the ensemble against a loop of TanhNets,
  torch.func ensembling, batched eager autograd and JAX, interleaved.
"""

from .single import make_problem, run

__all__ = ["make_problem", "run"]
