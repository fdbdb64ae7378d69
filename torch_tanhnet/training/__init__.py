"""The training application behind ``scripts/train.py``: settings, data, the loop, and what it writes.

- :mod:`.config`: :class:`TrainConfig`, the run's settings, validated in one place;
- :mod:`.data`: the built-in data sets, CSV files, the seeded split;
- :mod:`.loop`: :func:`train`, the loop, in readable parts;
- :mod:`.logger`, :mod:`.render`, :mod:`.graph`: what TensorBoard shows;
- :mod:`.checkpoint`: atomic checkpoints; :mod:`.signals`: Ctrl-C and SIGTERM;
- :mod:`.distributed`: the torchrun launch.

The stable import paths: ``from torch_tanhnet.training import TrainConfig, train``.
"""

from .config import ConfigError, TrainConfig
from .loop import TrainingDiverged, TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "TrainingDiverged", "train"]
