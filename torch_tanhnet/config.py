"""``from torch_tanhnet.config import TrainConfig`` as earlier READMEs showed it: the settings live in
:mod:`torch_tanhnet.training.config`; ``from torch_tanhnet.training import TrainConfig`` is the path to use."""

from .training.config import ConfigError, TrainConfig

__all__ = ["ConfigError", "TrainConfig"]
