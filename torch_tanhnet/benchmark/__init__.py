"""What ``scripts/bench.py`` runs: one training step of each implementation, timed side by side.

- :mod:`.single`: one network, the fused, composed, eager, compiled and JAX cases, interleaved;
- :mod:`.report`: the results and their table, which marks figures from widely spread repeats;
- :mod:`.ensemble`: K networks at once (``--ensemble``): the ensemble against a loop of TanhNets,
  torch.func ensembling, batched eager autograd and JAX, interleaved.
"""

from .report import UNRELIABLE, Report, Result
from .single import make_problem, run

__all__ = ["UNRELIABLE", "Report", "Result", "make_problem", "run"]
