"""What ``scripts/bench.py`` runs: one training step of each implementation, timed side by side.

- :mod:`.single`: one network, the fused, composed, eager, compiled and JAX cases, interleaved.
"""

from .single import make_problem, run

__all__ = ["make_problem", "run"]
