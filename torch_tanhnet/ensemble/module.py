"""``TanhNetEnsemble``: K independent TanhNets of one shape, stacked, trained in one call a step."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import nn

from ..amp import autocast_dtype, cast, off
from ..checks import (
    _format,
    check_module_weights,
    check_parameter_count,
    check_parameter_dtype,
    check_size,
    short,
)
from ..kernels.dispatch import ensemble_fused_implementation
from ..module import TanhNet, check_copyable, hooked, overrides_forward
from ..scripting import ensemble_equations, quietly_traced
from .checks import check_ensemble_data, check_ensemble_labels, check_module_parameters, check_seeds, readable
from .function import ensemble_cost, ensemble_network
from .fused import _ensemble_loss, ensemble_loss_value

Tensor = torch.Tensor

MAX_MODELS = 2**31 - 1  # far past what any machine trains; the initialisation loops over the networks


class TanhNetEnsemble(nn.Module):
    """K networks z_k = tanh(X_k U_kᵀ + b_k) W_kᵀ + c_k, independent, with the handout's hand-derived backward.

    Parameters U (K, H, D), b (K, H), W (K, 1, H), c (K, 1): row k is network k's ``TanhNet``
    parameters. ``loss(X, y)`` returns ε (K,), each network's own mean cost, so
    ``loss.sum().backward()`` gives each network exactly its own gradient.

    Initialisation is TanhNet's, network by network: with ``seeds``, network k is what
    ``torch.manual_seed(seeds[k]); TanhNet(D, H)`` would be (drawn from its own generator; the
    global one is not touched); without, the K networks are drawn from torch's global generator
    in turn, as ``[TanhNet(D, H) for _ in range(K)]`` would be.
    """

    def __init__(self, models: int, in_features: int = 2, hidden_features: int = 3, *, device=None, dtype=None,
                 seeds: Sequence[int] | None = None) -> None:
        super().__init__()
        models = check_size("models", models, at_most=MAX_MODELS)
        in_features, hidden_features = check_size("in_features", in_features), check_size("hidden_features",
                                                                                            hidden_features)
        check_parameter_count(f"TanhNetEnsemble({models}, {in_features}, {hidden_features})",
                              models * (hidden_features * (in_features + 2) + 1))
        check_parameter_dtype(dtype)
        if seeds is not None:
            seeds = check_seeds(seeds, models)
        self.models, self.in_features, self.hidden_features = models, in_features, hidden_features
        self.seeds = seeds
        K, H, D = models, hidden_features, in_features
        kw = {"device": device, "dtype": dtype}
        self.U = nn.Parameter(torch.empty(K, H, D, **kw))  # (K, H, D)
        self.b = nn.Parameter(torch.empty(K, H, **kw))  # (K, H)
        self.W = nn.Parameter(torch.empty(K, 1, H, **kw))  # (K, 1, H)
        self.c = nn.Parameter(torch.empty(K, 1, **kw))  # (K, 1)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Each network as :meth:`TanhNet.reset_parameters` draws it: U then W, Xavier-uniform, zero biases."""
        if self.U.is_meta:  # no values to draw (a loop over K networks that draws nothing took hours at K = 2**31)
            return
        gain = nn.init.calculate_gain("tanh")
        for k in range(self.models):
            g = None if self.seeds is None else torch.Generator(self.U.device).manual_seed(self.seeds[k])
            nn.init.xavier_uniform_(self.U[k], gain=gain, generator=g)
            nn.init.xavier_uniform_(self.W[k], gain=1.0, generator=g)
        nn.init.zeros_(self.b)
        nn.init.zeros_(self.c)

    def forward_with_hidden(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """X (N, D) shared or (K, N, D) -> z (K, N, 1) and the hidden layers H (K, N, H)."""
        weights = self._weights()
        if (low := autocast_dtype(X)) is not None:  # as autocast runs K nn.Linear's: the products in its dtype
            X, *weights = cast(low, X, *weights)
            check_ensemble_data(X, self.models, self.in_features, weights[0].dtype, weights[0].device)
            with off(X):
                return ensemble_network(X, *weights)
        check_ensemble_data(X, self.models, self.in_features, weights[0].dtype, weights[0].device)
        return ensemble_network(X, *weights)

    def forward(self, X: Tensor) -> Tensor:
        """X (N, D) shared by all networks or (K, N, D) one set each -> logits z (K, N, 1)."""
        if torch.jit.is_scripting():  # what torch.jit.script compiles, alone (torch_tanhnet.scripting)
            return ensemble_equations(X, self.U, self.b, self.W, self.c)
        return self.forward_with_hidden(X)[0]

    def predict_proba(self, X: Tensor) -> Tensor:
        """o = σ(z) (K, N, 1), each network's probability of class 1."""
        return torch.sigmoid(self(X))

    def loss(self, X: Tensor, y: Tensor) -> Tensor:
        """ε (K,): each network's mean cost on its batch. X (N, D) or (K, N, D); y (N, 1) or (K, N, 1).

        The training path: with gradients enabled, one fused pass finds every network's ε and
        gradients (exact to second order under ``create_graph=True``, where the backward recomputes
        them through the reference's equations); under ``torch.no_grad()`` it only evaluates ε. Under
        ``torch.autocast``, and with hooks on the module, it is the composition through ``self(X)``, as for
        :meth:`TanhNet.loss`: z in autocast's dtype, ε in float32; the hooks run. So too in a subclass with its own
        ``forward``.
        """
        low = autocast_dtype(X)
        if low is not None or hooked(self) or overrides_forward(self, TanhNetEnsemble):
            z = self(X)
            if not isinstance(z, Tensor) or z.dim() != 3 or z.shape[0] != self.models or z.shape[2] != 1:
                got = _format(tuple(z.shape)) if isinstance(z, Tensor) else type(z).__name__
                raise ValueError(f"{self._get_name()}(X) gave {got} where logits of shape ({self.models}, N, 1) were "
                                 "expected (did a forward hook change them?)")
            if low is not None:  # the cost in float32, as autocast runs binary_cross_entropy_with_logits
                z, y = cast(torch.float32, z, y)
            check_ensemble_labels(y, self.models, z.shape[1], z.dtype, z.device, whose="the logits'")
            with off(X):
                return ensemble_cost(z, y)
        U, b, W, c = self._weights()
        N = check_ensemble_data(X, self.models, self.in_features, U.dtype, U.device)
        check_ensemble_labels(y, self.models, N, U.dtype, U.device)
        if not torch.is_grad_enabled():
            return ensemble_loss_value(X, U, b, W, c, y)
        return _ensemble_loss(X, U, b, W, c, y)

    def loss_and_grad(self, X: Tensor, y: Tensor) -> Tensor:
        """What ``loss(X, y).sum().backward()`` does, in one call: each network's gradient of its own ε added
        into ``.grad``; returns ε (K,) without a graph.

        The fused pass finds every gradient during its forward, and the backward of ``sum`` only hands each
        network ε̄_k = 1, so asking the pass directly gives the same numbers (tested equal) without the
        autograd engine: about 110 µs less a step on the development machine, a fifth of a whole step of
        1024 networks at N = 256. Parameter hooks (``register_hook``) do not run here. Where no fused pass
        serves (``torch.compile``, ``torch.func``, X or y needing a gradient), it runs exactly
        ``loss(X, y).sum().backward()``. It trains, so it refuses to run under ``torch.inference_mode()``
        (its gradients would be inference tensors that the next ordinary backward cannot add to); ``loss``
        evaluates there.
        """
        if torch.is_inference_mode_enabled():
            raise RuntimeError("loss_and_grad sets gradients for training and cannot run under "
                               "torch.inference_mode(); call loss(X, y) there to evaluate ε")
        params = self._weights()
        # X needing a gradient, autocast, hooks to run, or a parametrized weight (not a leaf: its gradient must flow
        # on to the parametrization's own parameters; set on the computed tensor, it reached none): the composition,
        # which takes what loss() takes (a hook's or autocast's X of another dtype) and checks it
        impl = None
        if (isinstance(X, Tensor) and not X.requires_grad and autocast_dtype(X) is None and not hooked(self)
                and not overrides_forward(self, TanhNetEnsemble) and all(p.is_leaf for p in params)):
            N = check_ensemble_data(X, self.models, self.in_features, params[0].dtype, params[0].device)
            check_ensemble_labels(y, self.models, N, params[0].dtype, params[0].device)
            impl = ensemble_fused_implementation(X, *params, y)
        if impl is None:
            with torch.enable_grad():
                eps = self.loss(X, y)
                eps.sum().backward()
            return eps.detach()
        eps, grads, _ = impl.ensemble_loss_and_gradients(X, *(p.detach() for p in params), y, False)
        for p, g in zip(params, grads):
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = g
            else:
                p.grad.add_(g)
        return eps

    def _weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """U, b, W, c as ``self.U`` etc. would give them (read from ``_parameters`` in one go, as TanhNet does),
        checked to be dense tensors of this ensemble's shapes, of U's dtype and device: the kernels would read a
        replaced parameter of another shape past its end, and one of another dtype as the wrong numbers."""
        p = self._parameters
        try:
            weights = p["U"], p["b"], p["W"], p["c"]
        except KeyError:
            weights = self.U, self.b, self.W, self.c
        K, D, H = self.models, self.in_features, self.hidden_features
        check_module_weights(self, weights, ((K, H, D), (K, H), (K, 1, H), (K, 1)), one_dtype=True)
        return weights

    def __len__(self) -> int:
        return self.models

    def __getitem__(self, key) -> "TanhNet | TanhNetEnsemble":
        """Network k as a plain :class:`TanhNet` (a copy: training it leaves the ensemble unchanged). A slice, a
        list of network numbers, an integer tensor of them or a bool mask (K,) (``ensemble[solved]``) selects
        networks as a new ensemble of copies, in the order given (with their seeds, where the ensemble has them)."""
        check_copyable(self, TanhNetEnsemble, "ensemble[k]")
        if isinstance(key, Tensor):  # a meta, nested or quantized one refused in one line, a sparse one made dense
            key = readable(key, "an ensemble is indexed by network numbers")
        k = _network_number(key)
        if k is None:
            return self._selected(self._networks(key))
        if not -self.models <= k < self.models:
            raise IndexError(f"network {k} is out of range for an ensemble of {self.models}")
        weights = self._weights()  # checked: a replaced parameter of another shape would be re-read silently
        # skip_init: built on the meta device, then given memory: a copy draws nothing from torch's generator
        net = nn.utils.skip_init(TanhNet, self.in_features, self.hidden_features, device=weights[0].device,
                                 dtype=weights[0].dtype)
        with torch.no_grad():
            for name, w in zip(("U", "b", "W", "c"), weights):
                getattr(net, name).copy_(w[k].view_as(getattr(net, name)))
        return net

    def _networks(self, key) -> list[int]:
        """The network numbers a slice, a sequence of ints, an integer tensor (M,) or a bool mask (K,) selects."""
        K = self.models
        if isinstance(key, tuple) and len(key) == 1 and hasattr(key[0], "shape"):  # np.where(mask), torch.where(m)
            key = key[0]
        if isinstance(key, range):  # as a list of its ints
            key = list(key)
        if isinstance(key, tuple):  # ens[1, 2]: NumPy's index of two dimensions, not a list of networks
            raise IndexError(f"an ensemble has one dimension, its networks; got an index of {len(key)} (a tuple): "
                             "select several networks with a list, [1, 2]")
        if getattr(key, "dtype", None) == torch.uint8 or str(getattr(key, "dtype", "")) == "uint8":
            raise TypeError("an ensemble is indexed by network numbers or a bool mask; a uint8 tensor reads as "
                            "either (torch took it as a mask, NumPy as numbers): convert it with .bool() or .long()")
        if isinstance(key, slice):
            chosen = list(range(K)[key])
        elif (isinstance(key, Tensor) and key.dtype == torch.bool or str(getattr(key, "dtype", "")) == "bool"
              or isinstance(key, list) and key and all(isinstance(v, bool) for v in key)):
            mask = torch.as_tensor(key)
            if mask.shape != (K,):
                raise IndexError(f"a mask selects networks with one bool a network, shape ({K},), got shape "
                                 f"{_format(mask.shape)}")
            chosen = mask.nonzero().flatten().tolist()
        elif isinstance(key, Tensor) or hasattr(key, "dtype") and hasattr(key, "shape"):  # a tensor or an array
            index = torch.as_tensor(key)
            if index.dim() != 1 or index.is_floating_point() or index.is_complex():
                came = f"a {key.dtype} tensor of shape {_format(key.shape)}" if isinstance(key, Tensor) else (
                    type(key).__name__ if not key.shape else f"an array of {key.dtype} of shape {_format(key.shape)}")
                raise TypeError(f"an ensemble is indexed by network numbers: an int, a slice, ints or a bool mask "
                                f"({K},), got {came}")
            chosen = index.tolist()
        elif isinstance(key, list):
            numbers = [_network_number(v) for v in key]
            if any(n is None for n in numbers):
                bad = next(v for v, n in zip(key, numbers) if n is None)
                raise TypeError(f"an ensemble is indexed by network numbers, got {type(bad).__name__} {short(bad)} "
                                f"in a {type(key).__name__}")
            chosen = numbers
        else:
            raise TypeError(f"an ensemble is indexed by network numbers: an int, a slice, ints or a bool mask "
                            f"({K},), got {type(key).__name__}")
        out = [k for k in chosen if not -K <= k < K]
        if out:
            raise IndexError(f"network {out[0]} is out of range for an ensemble of {K}")
        if not chosen:
            raise IndexError(f"{_short(key)} selects no network of the {K}; an ensemble holds at least one")
        return [k % K for k in chosen]

    def _selected(self, networks: list[int]) -> "TanhNetEnsemble":
        weights = self._weights()
        ens = nn.utils.skip_init(TanhNetEnsemble, len(networks), self.in_features, self.hidden_features,
                                 device=weights[0].device, dtype=weights[0].dtype)
        index = torch.tensor(networks, device=weights[0].device)
        with torch.no_grad():
            for name, w in zip(("U", "b", "W", "c"), weights):
                getattr(ens, name).copy_(w.index_select(0, index))
        ens.seeds = None if self.seeds is None else [self.seeds[k] for k in networks]
        return ens

    def to_modules(self) -> list[TanhNet]:
        """All K networks as plain TanhNets (copies)."""
        check_copyable(self, TanhNetEnsemble, "to_modules")
        return [self[k] for k in range(self.models)]

    @classmethod
    def from_modules(cls, modules: Sequence[TanhNet]) -> "TanhNetEnsemble":
        """An ensemble holding copies of K TanhNets of one shape, dtype and device."""
        if isinstance(modules, TanhNet):
            raise TypeError("from_modules takes a sequence of TanhNets, got one TanhNet: from_modules([net]) holds it "
                            "alone")
        try:
            modules = list(modules)
        except TypeError:  # not iterable: Python's "'Linear' object is not iterable"
            raise TypeError(f"from_modules takes a sequence of TanhNets, got {type(modules).__name__}") from None
        if not modules:
            raise ValueError("from_modules needs at least one TanhNet, got none")
        for i, m in enumerate(modules):
            if not isinstance(m, TanhNet):
                raise TypeError(f"from_modules takes TanhNets, got {type(m).__name__} at position {i}")
        for i, m in enumerate(modules):
            check_copyable(m, TanhNet, f"from_modules, network {i}")
            check_module_parameters(i, m.in_features, m.hidden_features, m.U, m.b, m.W, m.c)
        first = modules[0]
        key = lambda m: (m.in_features, m.hidden_features, m.U.dtype, m.U.device)  # noqa: E731
        for i, m in enumerate(modules):
            if key(m) != key(first):
                raise ValueError(f"from_modules needs networks of one shape, dtype and device: network 0 is "
                                 f"{_describe(first)}, network {i} is {_describe(m)}")
        ens = nn.utils.skip_init(cls, len(modules), first.in_features, first.hidden_features, device=first.U.device,
                                 dtype=first.U.dtype)  # drawing nothing from torch's generator (K networks' worth)
        with torch.no_grad():
            weights = [m._weights() for m in modules]  # as each computes them (and checked), as to_sequential reads
            for i, name in enumerate(("U", "b", "W", "c")):
                stacked = torch.stack([w[i] for w in weights])
                getattr(ens, name).copy_(stacked.view_as(getattr(ens, name)))
        return ens

    def _slow_forward(self, *args, **kwargs):  # nn.Module's forward under torch.jit.trace
        return quietly_traced(super()._slow_forward, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"models={self.models}, in_features={self.in_features}, hidden_features={self.hidden_features}"


def _network_number(key) -> int | None:
    """An int or what stands for one (a NumPy integer, a 0-d integer tensor or array), else None; a bool is none,
    and a tensor of one dimension selects networks (``ensemble[torch.tensor([4])]``, as torch and NumPy index)."""
    if isinstance(key, bool) or getattr(key, "dtype", None) in (torch.bool, bool) or len(getattr(key, "shape", ())):
        return None
    try:
        return operator.index(key)
    except (TypeError, RuntimeError):  # not an integer (RuntimeError: a tensor of several elements)
        return None


def _short(key) -> str:
    if isinstance(key, slice):
        return f"slice {key.start}:{key.stop}:{key.step}"
    return f"{type(key).__name__} {short(key)}"


def _describe(net: TanhNet) -> str:
    return f"(D={net.in_features}, H={net.hidden_features}, {net.U.dtype}, {net.U.device})"
