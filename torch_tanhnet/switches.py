"""On/off settings read from the environment: ``TORCH_TANHNET_NO_EXTENSION``, ``TORCH_TANHNET_REFERENCE``.

``1``, ``true``, ``yes``, ``on`` turn one on; ``0``, ``false``, ``no``, ``off`` or nothing leave it off (any case,
spaces around taken). Anything else is read as off, with a warning naming the variable: ``=false`` once turned a
switch on (only ``""`` and ``"0"`` were off).
"""

from __future__ import annotations

import os
import warnings

ON = frozenset({"1", "true", "yes", "on"})
OFF = frozenset({"", "0", "false", "no", "off"})


def switch(name: str, warn: bool = True) -> bool:
    """Whether the environment variable ``name`` turns its switch on (``warn``: of a value neither on nor off)."""
    value = os.environ.get(name, "")
    word = value.strip().lower()
    if word in ON:
        return True
    if word not in OFF and warn:
        warnings.warn(f"{name}={value!r} is neither on (1, true, yes, on) nor off (0, false, no, off, or empty): "
                      "read as off", UserWarning, stacklevel=2)
    return False
