"""``TanhNet``: the handout's network as an ``nn.Module``, a drop-in for Linear-Tanh-Linear."""

from __future__ import annotations

import torch
from torch import nn

from .amp import autocast_dtype, cast, off
from .checks import (
    check_features,
    check_labels,
    check_module_weights,
    check_parameter_count,
    check_parameter_dtype,
    check_same_device_dtype,
    check_size,
)
from .functional import _bce_with_logits, _tanhnet_loss, _tanhnet_with_hidden
from .scripting import network_equations, quietly_traced

Tensor = torch.Tensor


class TanhNet(nn.Module):
    """z = tanh(X Uᵀ + b) Wᵀ + c with the hand-derived backward of the handout.

    Parameters are named as in the handout and laid out as ``nn.Linear``'s weight and
    bias, so the state of ``nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 1))``
    maps onto ``U, b, W, c`` one to one (see :meth:`from_sequential`).

    Initialisation (:meth:`reset_parameters`), chosen for tanh: U is Xavier-uniform
    with the tanh gain 5/3, U ~ 𝒰(−a, a), a = (5/3)·√(6 / (D + H)), so that g = Ux
    keeps unit-order variance and the units start in tanh's linear range without
    saturating; W is Xavier-uniform with gain 1 (the output feeds a sigmoid);
    b and c start at 0. It draws from torch's global generator, so it is
    reproducible under ``torch.manual_seed``.
    """

    def __init__(self, in_features: int = 2, hidden_features: int = 3, *, device=None, dtype=None) -> None:
        super().__init__()
        in_features, hidden_features = check_size("in_features", in_features), check_size("hidden_features",
                                                                                            hidden_features)
        check_parameter_count(f"TanhNet({in_features}, {hidden_features})", hidden_features * (in_features + 2) + 1)
        check_parameter_dtype(dtype)
        self.in_features = in_features
        self.hidden_features = hidden_features
        kw = {"device": device, "dtype": dtype}
        self.U = nn.Parameter(torch.empty(hidden_features, in_features, **kw))  # (H, D)
        self.b = nn.Parameter(torch.empty(hidden_features, **kw))  # (H,)
        self.W = nn.Parameter(torch.empty(1, hidden_features, **kw))  # (1, H)
        self.c = nn.Parameter(torch.empty(1, **kw))  # (1,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.U, gain=nn.init.calculate_gain("tanh"))
        nn.init.zeros_(self.b)
        nn.init.xavier_uniform_(self.W, gain=1.0)
        nn.init.zeros_(self.c)

    def forward_with_hidden(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """X (*, D) -> z (*, 1) and the hidden layer H (*, H)."""
        check_features(X, self.in_features)
        weights = self._weights()
        if (low := autocast_dtype(X)) is not None:  # as autocast runs nn.Linear: the products in its dtype
            X, *weights = cast(low, X, *weights)
            with off(X):
                return self._forward_with_hidden(X, *weights)
        return self._forward_with_hidden(X, *weights)

    def _forward_with_hidden(self, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        check_same_device_dtype("X", X, (("U", U),))  # b, W, c: U's (_weights)
        if X.dim() == 2:  # the usual (N, D) batch needs no reshape
            return _tanhnet_with_hidden(X, U, b, W, c)
        batch = X.shape[:-1]
        z, H = _tanhnet_with_hidden(X.reshape(-1, self.in_features), U, b, W, c)
        return z.reshape(*batch, 1), H.reshape(*batch, self.hidden_features)

    def forward(self, X: Tensor) -> Tensor:
        """X (*, D) -> logits z (*, 1), like ``nn.Linear``."""
        if torch.jit.is_scripting():  # what torch.jit.script compiles, alone (torch_tanhnet.scripting)
            return network_equations(X, self.U, self.b, self.W, self.c)
        return self.forward_with_hidden(X)[0]

    def predict_proba(self, X: Tensor) -> Tensor:
        """o = σ(z), the probability of class 1, shape (*, 1)."""
        return torch.sigmoid(self(X))

    def loss(self, X: Tensor, y: Tensor) -> Tensor:
        """The handout's cost ε = (1/N) Σᵢ L(zᵢ, yᵢ) on a batch: X (*, D), y of z's shape (*, 1).

        This is the training path; the trainer calls it and nothing else. With gradients
        enabled it runs :func:`~torch_tanhnet.functional.tanhnet_loss`'s path, one fused pass
        that finds ε and every gradient together (second derivatives, under
        ``create_graph=True``, are recomputed exactly through the reference's equations);
        under ``torch.no_grad()`` it only evaluates ε.

        Under ``torch.autocast`` z comes in its dtype and ε in float32, as ``BCEWithLogitsLoss()(model(X), y)``
        gives them; with hooks on the module (forward or backward hooks, ``torch.nn.utils.spectral_norm``,
        ``prune``), and in a subclass with its own ``forward``, it is that composition, through ``model(X)``, so
        that they run.
        """
        check_features(X, self.in_features)
        low = autocast_dtype(X)
        if low is not None or not torch.is_grad_enabled() or hooked(self) or overrides_forward(self, TanhNet):
            z = self(X)
            if not isinstance(z, Tensor):
                raise TypeError(f"{self._get_name()}(X) gave {type(z).__name__} where a tensor of logits was expected "
                                "(did a forward hook change it?)")
            if low is None:
                check_labels(y, z.shape, z.dtype, z.device)
                return _bce_with_logits(z, y)
            z, y = cast(torch.float32, z, y)  # the cost in float32, as autocast runs binary_cross_entropy_with_logits
            check_labels(y, z.shape, z.dtype, z.device)
            with off(X):
                return _bce_with_logits(z, y)
        U, b, W, c = self._weights()
        check_same_device_dtype("X", X, (("U", U),))  # b, W, c: U's (_weights); before y, which must have X's
        check_labels(y, (*X.shape[:-1], 1), X.dtype, X.device)
        if X.dim() != 2:  # (*, D) -> (N, D); the usual 2-D batch needs no reshape
            X, y = X.reshape(-1, self.in_features), y.reshape(-1, 1)
        return _tanhnet_loss(X, U, b, W, c, y)

    def _weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """U, b, W, c as ``self.U`` etc. would give them, read from ``_parameters`` in one go, checked to be
        dense tensors of this network's shapes, of one dtype and device (a replaced parameter of another shape would
        be read past its end).

        Four ``Module.__getattr__`` fallbacks cost ~2.5 µs, a few percent of a training step at
        N = 256. A parametrized weight (``torch.nn.utils.parametrize``) is not in ``_parameters``
        but a property: then the attributes are read.
        """
        p = self._parameters
        try:
            weights = p["U"], p["b"], p["W"], p["c"]
        except KeyError:
            weights = self.U, self.b, self.W, self.c
        D, H = self.in_features, self.hidden_features
        check_module_weights(self, weights, ((H, D), (H,), (1, H), (1,)), one_dtype=True)
        return weights

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        """A ``Sequential(Linear(D, H), Tanh(), Linear(H, 1))``'s state dict loads too: its keys ``0.weight``,
        ``0.bias``, ``2.weight``, ``2.bias`` are U, b, W, c (the same shapes), so a checkpoint saved before the
        Sequential was swapped for a TanhNet loads into it (as BatchNorm reads its older layouts here). Only a
        state dict that holds all four of them and none of U, b, W, c is read so."""
        if not prefix and "model" in state_dict and "optimizer" in state_dict and "U" not in state_dict:
            raise ValueError("this is a train.py checkpoint, not a model's state dict: load its model, "
                             "model.load_state_dict(checkpoint['model'])")  # torch listed its 12 keys on 3 lines
        for ours, theirs in SEQUENTIAL_KEYS.items():
            if prefix + ours in state_dict or prefix + theirs not in state_dict:
                break
        else:
            for ours, theirs in SEQUENTIAL_KEYS.items():
                state_dict[prefix + ours] = state_dict.pop(prefix + theirs)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _slow_forward(self, *args, **kwargs):  # nn.Module's forward under torch.jit.trace
        return quietly_traced(super()._slow_forward, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, hidden_features={self.hidden_features}"

    @classmethod
    def from_sequential(cls, seq: nn.Sequential) -> "TanhNet":
        """Build a TanhNet holding the weights of ``Sequential(Linear(D, H), Tanh(), Linear(H, 1))``."""
        layers = list(seq) if isinstance(seq, nn.Sequential) else None
        kinds = [type(m).__name__ for m in layers] if layers is not None else [type(seq).__name__]
        if (
            layers is None
            or len(layers) != 3
            or not isinstance(layers[0], nn.Linear)
            or not isinstance(layers[1], nn.Tanh)
            or not isinstance(layers[2], nn.Linear)
        ):
            raise ValueError(f"expected Sequential(Linear(D, H), Tanh(), Linear(H, 1)), got {kinds}")
        _check_plain_layers(seq, layers)
        first, _, last = layers
        if last.in_features != first.out_features or last.out_features != 1:
            raise ValueError(
                f"expected Linear({first.in_features}, H) then Linear(H, 1), got "
                f"Linear({first.in_features}, {first.out_features}) "
                f"then Linear({last.in_features}, {last.out_features})"
            )
        if first.bias is None or last.bias is None:
            raise ValueError("expected both Linear layers to have a bias, got bias=False")
        kinds = {(p.dtype, p.device) for p in (first.weight, first.bias, last.weight, last.bias)}
        if len(kinds) != 1:  # copied into one TanhNet, the others would be cast silently
            came = ", ".join(f"{n} {p.dtype} on {p.device}" for n, p in (
                ("[0].weight", first.weight), ("[0].bias", first.bias), ("[2].weight", last.weight),
                ("[2].bias", last.bias)))
            raise TypeError(f"expected both Linear layers' weights and biases on one dtype and device, got {came}")
        w = first.weight
        # skip_init: built on the meta device, then given memory: a copy draws nothing from torch's generator
        net = nn.utils.skip_init(cls, first.in_features, first.out_features, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            net.U.copy_(first.weight)
            net.b.copy_(first.bias)
            net.W.copy_(last.weight)
            net.c.copy_(last.bias)
        return net

    def to_sequential(self) -> nn.Sequential:
        """The same network as ``Sequential(Linear(D, H), Tanh(), Linear(H, 1))``, weights copied."""
        check_copyable(self, TanhNet, "to_sequential")
        U, b, W, c = self._weights()  # checked: copy_ would broadcast a replaced parameter of another shape
        kw = {"device": U.device, "dtype": U.dtype}
        seq = nn.Sequential(  # skip_init: a copy draws nothing from torch's generator
            nn.utils.skip_init(nn.Linear, self.in_features, self.hidden_features, **kw),
            nn.Tanh(),
            nn.utils.skip_init(nn.Linear, self.hidden_features, 1, **kw),
        )
        with torch.no_grad():
            seq[0].weight.copy_(U)
            seq[0].bias.copy_(b)
            seq[2].weight.copy_(W)
            seq[2].bias.copy_(c)
        return seq


SEQUENTIAL_KEYS = {"U": "0.weight", "b": "0.bias", "W": "2.weight", "c": "2.bias"}  # TanhNet's names in a Sequential


def _check_plain_layers(seq: nn.Sequential, layers: list[nn.Module]) -> None:
    """One-line errors for a Sequential that computes something else than its layers' kinds say: a subclass with its
    own ``forward`` (a Tanh computing tanh(2x)), hooks on a layer or on the Sequential, or an uninitialised
    LazyLinear, which a copy into TanhNet's equations would drop (the copy's outputs differed from ``seq(X)``)."""
    for where, module, base in (("the Sequential", seq, nn.Sequential), ("[0]", layers[0], nn.Linear),
                                ("[1]", layers[1], nn.Tanh), ("[2]", layers[2], nn.Linear)):
        if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
            raise ValueError(f"{where} is an uninitialised {type(module).__name__}: run the Sequential on a batch "
                             "first, so that its shapes are known")
        if overrides_forward(module, base):  # a subclass's, or one set on it
            raise ValueError(f"{where} is a {type(module).__name__} with its own forward, which TanhNet's equations "
                             f"would not compute; expected a plain {base.__name__}")
        if _own_hooks(module):
            raise ValueError(f"{where} has hooks (forward or backward hooks, spectral_norm, weight_norm or prune), "
                             "which TanhNet's equations would not run; remove them first")


def check_copyable(module: nn.Module, base: type, copy: str) -> None:
    """One-line errors where a copy of ``module``'s weights into plain networks (``copy``: to_sequential,
    from_modules, ensemble[k]) would compute something else than ``module(X)``: its own hooks (a forward hook's
    change; the hook-based spectral_norm, weight_norm and prune set the weight in a pre-hook, so after an
    optimizer step it is one step behind until the next call: a copy's logits were 0.3 off) or its own forward."""
    if _own_hooks(module):  # a backward hook too, as from_sequential refuses one: it may change the gradients
        raise ValueError(f"{copy}: this {type(module).__name__} has hooks (forward or backward hooks, or the "
                         "hook-based spectral_norm, weight_norm or prune, whose weight is a step behind until the "
                         "next call), which a copy of its weights would not carry; remove them first (torch.nn.utils."
                         "parametrizations' weight_norm and spectral_norm copy as they compute)")
    if overrides_forward(module, base):
        raise ValueError(f"{copy}: {type(module).__name__} computes its logits with its own forward, which a copy "
                         f"of its weights into plain networks would not")


def hooked(module: nn.Module) -> bool:
    """Whether ``module(X)`` would run hooks: forward (pre-)hooks or backward hooks of its own or global ones.

    A fused pass reads the parameters directly and runs no forward, so where hooks are registered the loss goes
    through ``module(X)``: the classic ``spectral_norm``, ``weight_norm`` and ``prune`` compute the weight in a
    forward pre-hook, and the fused pass read it stale (spectral norm: U never trained; prune: torch's "backward
    through the graph a second time" at the second step). Five dict lookups, ~0.2 µs.
    """
    return _own_hooks(module) or _global_hooks()


def _own_hooks(module: nn.Module) -> bool:
    return bool(module._forward_pre_hooks or module._forward_hooks or module._backward_hooks
                or module._backward_pre_hooks)


FORWARDS = ("forward", "forward_with_hidden", "_forward_with_hidden", "__call__", "_call_impl")


def overrides_forward(module: nn.Module, base: type) -> bool:
    """Whether ``module`` computes its logits otherwise than ``base`` (a subclass's own ``forward``,
    ``forward_with_hidden`` or ``__call__``, or one set on the instance): the fused pass runs ``base``'s equations,
    so its loss goes through ``module(X)`` (a ``Scaled(TanhNet)`` dividing X by 10 trained on the undivided X,
    and ``model(X)`` predicted with another function)."""
    own = module.__dict__
    if "forward" in own or "forward_with_hidden" in own or "_forward_with_hidden" in own or "_call_impl" in own:
        return True  # set on the instance (model.forward = ..., as accelerate wraps it)
    cls = type(module)  # the class itself first: 0.2 µs a loss call where the whole test took 0.6 (of a 99 µs step)
    return cls is not base and any(getattr(cls, name, None) is not getattr(base, name, None) for name in FORWARDS)


def _global_hooks() -> bool:
    m = nn.modules.module
    return bool(m._global_forward_pre_hooks or m._global_forward_hooks or m._global_backward_hooks
                or getattr(m, "_global_backward_pre_hooks", None))
