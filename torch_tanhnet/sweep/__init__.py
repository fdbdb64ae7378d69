"""The sweep behind ``scripts/sweep.py``: a grid (or random draws) of settings times seeds, trained as ensembles.

- :mod:`.config`: :class:`~.config.SweepConfig`, the sweep's settings; :mod:`.space`: the values, ranges, seeds and
  the runs they make;
- :mod:`.plan`: the runs grouped into ensembles of one shape, the memory and time they need;
- :mod:`.runner`: :func:`~.runner.sweep`, the loop over groups; :mod:`.group`: one group's training;
- :mod:`.data`, :mod:`.metrics`: each run's data and the metrics logged;
- :mod:`.state`: the checkpoint and resuming; :mod:`.distributed`: under torchrun;
- :mod:`.results`, :mod:`.board`, :mod:`.pictures`: results.csv and the table, TensorBoard, the galleries.

The stable import path: ``from torch_tanhnet.sweep.runner import sweep`` with
``from torch_tanhnet.sweep.config import SweepConfig``.
"""

from . import config as _config  # noqa: F401 - registers the sweep's settings, which its errors name (wording.register)
