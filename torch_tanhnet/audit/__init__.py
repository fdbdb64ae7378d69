"""The gradient audit behind ``scripts/check_gradients.py``, and the forms of the maths it checks against.

- :mod:`.report`: every intermediate adjoint of the handout's backward, and every tangent of its forward
  mode, hand-written vs autograd; every quantity's numbers (:func:`values`);
- :mod:`.reference`: the same maths in plain torch ops, for autograd to differentiate;
- :mod:`.scalar`: the handout's scalar-form equations as explicit loops over i, j, k.
"""

from .report import FORWARD, QUANTITIES, TANGENTS, audit, seed_problem, seed_tangents, values

__all__ = ["FORWARD", "QUANTITIES", "TANGENTS", "audit", "seed_problem", "seed_tangents", "values"]
