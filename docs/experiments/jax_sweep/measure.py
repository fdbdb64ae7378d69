"""JAX jit(vmap) training of the sweep's 1000 default moons runs (training alone), for comparison."""
import time
import numpy as np, torch
import jax, jax.numpy as jnp
from torch_tanhnet import TanhNet
from torch_tanhnet.training.data import make_dataset, split
K, steps = 1000, 2000
lrs = np.repeat([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3], 100).astype(np.float32)
Xs, ys, P = [], [], {k: [] for k in "UbWc"}
for s in range(100):
    X, y = make_dataset("moons", 500, None, s); sp = split(X, y, 0.2, s, False)
    torch.manual_seed(s); net = TanhNet(2, 3)
    Xs.append(sp.X_train.float().numpy()); ys.append(sp.y_train.float().numpy())
    for k in "UbWc": P[k].append(getattr(net, k).detach().numpy())
rep = lambda a: np.concatenate([np.stack(a)] * 10)
X, y = jnp.asarray(rep(Xs)), jnp.asarray(rep(ys))
params = {k: jnp.asarray(rep(v)) for k, v in P.items()}
def loss(p, X, y):
    z = jnp.tanh(X @ p["U"].T + p["b"]) @ p["W"].T + p["c"]
    return jnp.mean(jax.nn.softplus(z) - y * z)
def step(carry, lr, X, y):
    p, m = carry
    g = jax.grad(loss)(p, X, y)
    m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + g, m, g)
    p = jax.tree_util.tree_map(lambda p, m: p - lr * m, p, m)
    return p, m
@jax.jit
def train(p, lr, X, y):
    def one(p, lr, X, y):
        m = jax.tree_util.tree_map(jnp.zeros_like, p)
        return jax.lax.fori_loop(0, steps, lambda i, c: step(c, lr, X, y), (p, m))[0]
    return jax.vmap(one)(p, lr, X, y)
lr = jnp.asarray(lrs)
t = time.perf_counter(); out = train(params, lr, X, y); jax.block_until_ready(out); first = time.perf_counter() - t
times = []
for _ in range(3):
    t = time.perf_counter(); out = train(params, lr, X, y); jax.block_until_ready(out); times.append(time.perf_counter() - t)
acc = None
print(f"jax {jax.__version__}: first call (compile + train) {first:.2f} s; training alone {min(times):.2f}-{max(times):.2f} s over 3 runs")
