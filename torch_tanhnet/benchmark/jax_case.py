"""The JAX peer of the benchmarks: JAX itself where it can run on the tensors' device, and the same maths.

Both benchmarks (:mod:`.single`, :mod:`.ensemble`) time JAX's jitted value-and-grad of the handout's
loss beside torch's cases, when JAX is installed (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import os

from ..training.setup import address_space_headroom

JAX_ROOM = 3 * 2**29  # address space XLA needs beyond the benchmark's (ulimit -v 2 GB, 1.0 GiB left when JAX would
# start: std::bad_alloc, the process aborted; 3 GB, 1.9 GiB left: it ran; the 2-core development machine)


def jax_for(device):
    """(jax, jax.numpy, "") where JAX can run on ``device``'s kind, else (None, None, why not)."""
    # on a GPU, JAX would otherwise take 75% of its memory at import, which torch's cases then lack
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    room = address_space_headroom()
    if room is not None and room < JAX_ROOM:  # XLA's threads and buffers then fail to allocate: it aborts the process
        return None, None, (f"jax skipped: {room / 2**30:.1f} GiB of address space is left under this process's "
                            f"limit (ulimit -v), and XLA aborted the process below about {JAX_ROOM / 2**30:.1f} GiB")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None, None, "jax not installed (pip install -e \".[bench]\")"
    if device.type == "cuda" and jax.default_backend() != "gpu":
        return None, None, f"jax has no GPU backend here ({jax.default_backend()})"
    return jax, jnp, ""


def seed_loss(jax, jnp):
    """ε(p, X, y) of the handout's network in JAX: tanh hidden layer, mean binary cross-entropy on the logits."""

    def loss(p, X, y):
        H = jnp.tanh(X @ p["U"].T + p["b"])
        z = H @ p["W"].T + p["c"]
        return jnp.mean(jax.nn.softplus(z) - y * z)

    return loss
