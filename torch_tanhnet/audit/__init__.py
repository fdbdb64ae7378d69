"""The gradient audit behind ``scripts/check_gradients.py``, and the forms of the maths it checks against.

- :mod:`.report`: every intermediate adjoint of the handout's backward, and every tangent of its forward
  mode, hand-written vs autograd;
- :mod:`.reference`: the same maths in plain torch ops, for autograd to differentiate;
- :mod:`.scalar`: the handout's scalar-form equations as explicit loops over i, j, k.
"""

from .report import QUANTITIES, TANGENTS, audit, seed_problem, seed_tangents

__all__ = ["QUANTITIES", "TANGENTS", "audit", "seed_problem", "seed_tangents"]
