"""SGD and Adam for K stacked networks, each with its own learning rate, momentum and weight decay.

The parameters are stacked tensors whose first dimension is the network (``TanhNetEnsemble``'s
U (K, H, D), b (K, H), W (K, 1, H), c (K, 1)). A setting is a number (the same for every
network) or K numbers (a sequence or a tensor (K,)); network k's trajectory is then what
``torch.optim.SGD`` / ``torch.optim.Adam`` with network k's settings would give on network k
alone: on the CPU in float32 and float64 bit for bit (tested over 300 steps) for SGD, and for Adam whose betas
are one number for all networks (the bias corrections 1 − βᵗ are then Python's floats, as torch's are; K betas
take a tensor's pow, a last bit apart from Python's at about 1 step in 60). A step updates all networks in a few
``torch._foreach_*`` calls over the stacked tensors (SGD: 1 to 4, Adam: 8 to 10), whatever K is.

Both are ``torch.optim.Optimizer`` subclasses, so ``state_dict``/``load_state_dict`` and
checkpoints work as for torch's own optimizers: per-network settings are stored in the param
group as float64 tensors (K,), one number as a float. A setting written into a param group later
(``opt.param_groups[0]["momentum"] = [...]``), or a setting tensor changed in place, is checked and
converted at the next step as the constructor does it (only what changed). torch's LR schedulers set
one number per group: they work when the learning rate is one number, and are refused in one line
when they are created for K rates (ReduceLROnPlateau, which leaves no mark on the optimizer, raises
torch's error when it first lowers the rate). CyclicLR and OneCycleLR cycle Adam's momentum through
torch's ``betas`` by default, which EnsembleAdam does not hold: torch refuses them there unless given
``cycle_momentum=False``.
"""

from __future__ import annotations

import math
import numbers
import operator

import torch
from torch.optim import Optimizer

from ..checks import _format, _shape, short
from .checks import per_network, readable
from .step_hooks import profiled, with_step_hooks

Tensor = torch.Tensor


def _setting(name: str, value, K: int, *, low: float = 0.0, below: float | None = None):
    """One number (any real number, or a 0-d tensor or array) becomes a float; K numbers become a float64 tensor (K,);
    either is checked (one-line errors).
    A float within bounds is returned as it is, without a tensor (a scheduler writes one every step)."""
    if type(value) is float and math.isfinite(value) and value >= low and (below is None or value < below):
        return value
    values = per_network(name, value, K, low=low, below=below)
    one = isinstance(value, numbers.Real) or getattr(value, "ndim", None) == 0  # a number, a 0-d tensor or array
    return float(values[0]) if one else values


def _networks(params: list[Tensor]) -> int:
    """K, the first dimension that every parameter in a group must share."""
    if not params:
        raise ValueError("a param group needs parameters of shape (K, ...), got none")
    if any(p.dim() == 0 for p in params):
        raise ValueError("ensemble optimizers need parameters of shape (K, ...), got a 0-d tensor")
    counts = sorted({p.shape[0] for p in params})
    if len(counts) != 1:
        raise ValueError(f"every parameter of a group must have the same first dimension K (networks), got {counts}")
    return counts[0]


FLOAT32_MAX = float(torch.finfo(torch.float32).max)
HALF = (torch.float16, torch.bfloat16)  # their arithmetic with a number is float32's in torch's fused updates


def _factor(value, like: list[Tensor], own_dtype: bool = False):
    """A setting as a factor for each tensor in ``like``: the float itself, or per-network tensors shaped
    (K, 1, ..., 1) in each tensor's dtype and device, so that they broadcast over network k's rows; for half
    parameters in float32 (unless ``own_dtype``: lerp's weight), as torch's fused updates apply a setting (K rates
    of 1e5 cast to float16 made every network infinite; a float32 factor only where one was past the range made
    one network's setting change the others' numbers). A float past a tensor's dtype (lr 1e39 in float32, 1e5 in
    float16: torch's foreach ops refuse it as an alpha, "value cannot be converted") is taken the same way: in
    float32 for half parameters (a finite step where it fits), else as the dtype's infinity, so that the networks
    diverge and the step goes on."""
    if not isinstance(value, Tensor):
        if abs(value) <= 65504.0 or all(abs(value) <= torch.finfo(p.dtype).max for p in like):  # float16's max
            return value
        # shaped (1, ..., 1), not 0-d: type promotion takes a 0-d tensor as a number and computed in float16
        # (torch.tensor, not torch.full: full refuses a value past the dtype, tensor makes it infinite)
        return [torch.tensor(value, dtype=torch.float32 if p.dtype in HALF else p.dtype,
                             device=p.device).reshape((1,) * p.dim()) for p in like]
    return [value.to(p.device, p.dtype if own_dtype or p.dtype not in HALF else torch.float32)
            .view(-1, *([1] * (p.dim() - 1))) for p in like]


class _EnsembleOptimizer(Optimizer):
    SETTINGS: dict[str, dict] = {}  # name -> bounds for per_network
    RUNS: dict[str, object] = {}  # torch.optim's options that step() runs with this value only (a group may hold them)
    IGNORED = ("foreach", "fused")  # torch.optim's choices of implementation, not of numbers: taken, not read
    RENAMED: dict[str, str] = {}  # torch.optim's keys that these hold under other names: key -> what to set instead
    STATE: tuple[str, ...] = ()  # a parameter's state holds all of these, or none before its first step
    KEPT_APART = ("step", "momentum_networks")  # state kept in a dtype and place of its own (float64, bool; CPU)

    def __init__(self, params, defaults: dict, options: dict | None = None) -> None:
        """``options``: torch.optim's keyword arguments that these take as torch's optimizers do (``foreach``,
        ``fused``, and those of :attr:`RUNS` at the value they run), so that code written for torch.optim runs;
        another value is refused in one line, as in a param group (:meth:`_settings`)."""
        options = dict(options or {})
        for key in options:
            if key not in self.RUNS and key not in self.IGNORED:
                raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument {key!r}")
        _drop_ignored(options, "")  # not kept in the groups
        _not_a_module(type(self).__name__, params)
        self._held: dict[int, tuple] = {}  # id(group) -> what it held when last checked (_hold)
        super().__init__(params, {**defaults, **options})

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._held = {}  # new param groups (load_state_dict, unpickling): each is checked at its next step

    def __setattr__(self, name: str, value) -> None:
        """A torch LR scheduler (all but ReduceLROnPlateau) wraps ``step`` when it is created, before it first writes
        the learning rates: refused there (one line) while a group holds K of them, which it cannot write
        (torch's own error would be "fill_ only supports 0-dimension value tensor")."""
        if name == "step" and getattr(value, "_wrapped_by_lr_sched", False):
            for i, group in enumerate(self.param_groups):
                _one_lr(self, group, f" in param group {i}")
        super().__setattr__(name, value)

    def add_param_group(self, param_group: dict) -> None:
        """torch's add_param_group, with the settings checked for the group's K: a refused group (one-line
        error) is not added, so the optimizer stays as it was."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._accept(group)
        except Exception:
            self.param_groups.pop()
            raise

    def _accept(self, group: dict, where: str = "", changed: set | None = None) -> None:
        """Checks ``group`` and converts its settings as add_param_group does (one-line errors, the group left as it
        was), and notes what it holds, so that step() checks it again only once something in it is replaced or
        changed in place. ``changed``: the keys written since it was last accepted, the only ones checked (None:
        all)."""
        _drop_ignored(group, where)
        settings = self._settings(group, where=where, keys=changed)
        if "lr" in settings and getattr(self.step, "_wrapped_by_lr_sched", False):  # an LR scheduler drives this
            _one_lr(self, settings, where)
        group.update(settings)
        self._hold(group)

    def _hold(self, group: dict) -> None:
        """Notes what ``group`` holds: its entries, its parameters and the version counters of its tensors (an
        in-place edit such as ``group["lr"][1] = -5.0`` or ``group["lr"].fill_(...)`` moves the counter)."""
        values = tuple(group.values())
        tensors = tuple(v for v in values if isinstance(v, Tensor))
        self._held[id(group)] = (group, tuple(group), values, tuple(group["params"]), tensors,
                                 tuple(map(_version, tensors)))

    def _check_all(self) -> None:
        """Every group checked (:meth:`_check`) before any parameter moves: a setting refused in group 1 once left
        group 0 stepped, and a step() again after the fix stepped group 0 twice on one gradient. And each
        parameter's state in its parameter's dtype and device: a model cast (``.double()``) or moved after the
        first step left float32 moments beside float64 weights, which Adam refused from deep in torch (its step
        count already moved on) and SGD's momentum kept at float32 without a word."""
        for i, group in enumerate(self.param_groups):
            self._check(group, i)
            for j, p in enumerate(group["params"]):
                if p.grad is not None and p.grad.layout is not torch.strided:  # torch's kernels: "Could not run
                    # 'aten::lerp_.Scalar' with arguments from the 'SparseCPU' backend", many lines
                    raise RuntimeError(f"{type(self).__name__} does not take sparse gradients, and parameter {j} in "
                                       f"param group {i} has one ({p.grad.layout}); make it dense with "
                                       ".to_dense() first")
                for name, value in self.state.get(p, {}).items():
                    if name in self.KEPT_APART or not isinstance(value, Tensor):
                        continue
                    if (value.dtype is not p.dtype or value.get_device() != p.get_device()  # ints, not devices
                            or value.is_meta != p.is_meta):  # (meta reads as the CPU's -1)
                        raise ValueError(f"{name} of parameter {j} in param group {i} is {_where(value)}, but the "
                                         f"parameter is {_where(p)} (cast or moved after the optimizer's first "
                                         f"step): create the optimizer again for it, or load its state_dict into a "
                                         f"new one, which casts the state")

    def _check(self, group: dict, i: int) -> None:
        """At each step: ``group`` accepted again, the entries that changed checked, if any of its entries is not the
        object accepted last, a tensor in it was changed in place or its list of parameters was edited (a setting
        written since, such as ``group["momentum"] = [...]``; a few identity and counter tests when nothing was)."""
        held = self._held.get(id(group))
        if held is not None and held[0] is group:
            _, keys, values, params, tensors, versions = held
            if (len(group) == len(keys) and all(map(operator.is_, map(group.get, keys), values))
                    and all(map(operator.eq, map(_version, tensors), versions))
                    and len(group["params"]) == len(params) and all(map(operator.is_, group["params"], params))):
                return
            self._accept(group, f" in param group {i}", _changed(group, held))
        else:
            self._accept(group, f" in param group {i}")

    def _settings(self, group: dict, saved: dict | None = None, where: str = "", keys: set | None = None) -> dict:
        """The settings for ``group``'s K, taken from ``saved`` (a loaded param group) or else ``group``;
        checked (one-line errors), nothing changed. ``keys``: check only these (None: all)."""
        saved = group if saved is None else saved
        lack = [name for name in ("params", *self.SETTINGS) if name not in saved]
        if lack:
            raise ValueError(f"{', '.join(lack)} missing{where}: {type(self).__name__} needs params, "
                             f"{', '.join(self.SETTINGS)} in every param group (each setting a number or K numbers)")
        if keys is not None and "networks" in group and keys.isdisjoint(("params", "networks")):
            K = group["networks"]  # the parameters are those last accepted
        else:
            K, keys = _networks(group["params"]), None
        for key, instead in self.RENAMED.items():
            if key in saved and (keys is None or key in keys):
                raise ValueError(f"{type(self).__name__} does not read {key}{where} (got {short(saved[key])}): set "
                                 f"{instead} instead")
        for key, value in self.RUNS.items():
            if key in saved and (keys is None or key in keys) and not (
                    isinstance(saved[key], numbers.Real) and saved[key] == value):
                runs = ", ".join(f"{k}={v!r}" for k, v in self.RUNS.items())
                raise ValueError(f"{type(self).__name__} cannot honour {key}={short(saved[key])}{where}: it runs only "
                                 f"{runs}")
        settings = {name: _setting(name + where, saved[name], K, **bounds) for name, bounds in self.SETTINGS.items()
                    if keys is None or name in keys}
        return {**settings, "networks": K}

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's load_state_dict, once the state_dict is checked to be this optimizer's, for these parameters
        (one-line ValueErrors): a refused one leaves the optimizer as it was. torch checks the numbers of groups
        and parameters."""
        _check_layout(state_dict)
        saved = [dict(g) for g in state_dict["param_groups"]]  # copies: the caller's state_dict is left as it was
        for i, g in enumerate(saved):
            _drop_ignored(g, f" in the state_dict's param group {i}")
        state_dict = {**state_dict, "param_groups": saved}
        groups = self.param_groups
        if len(saved) == len(groups) and all(len(s["params"]) == len(g["params"]) for g, s in zip(groups, saved)):
            for i, (group, saved_group) in enumerate(zip(groups, saved)):
                self._check_saved(i, group, saved_group, state_dict["state"])
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            self._accept(group)  # as add_param_group leaves them, with this group's K

    def _check_saved(self, i: int, group: dict, saved: dict, state: dict) -> None:
        """Param group i of a state_dict, ``saved``, against this optimizer's ``group``: its settings, and the
        shapes of its per-parameter state."""
        lack = [name for name in self.SETTINGS if name not in saved]
        if lack:
            raise ValueError(f"this state_dict is {_owner(saved)}, not {type(self).__name__}'s: "
                             f"its param groups lack {', '.join(lack)}")
        self._settings(group, saved, f" in the state_dict's param group {i}")
        for j, (p, key) in enumerate(zip(group["params"], saved["params"])):
            entries = state.get(key, {})
            if not isinstance(entries, dict):
                raise ValueError(f"the state_dict's state of parameter {j} in param group {i} must be a dict, got "
                                 f"{type(entries).__name__}")
            lack = [name for name in self.STATE if name not in entries]
            if entries and lack:
                raise ValueError(f"the state_dict's state of parameter {j} in param group {i} lacks {', '.join(lack)}: "
                                 f"{type(self).__name__} keeps {', '.join(self.STATE)} for a parameter (none before "
                                 "its first step)")
            for name, value in entries.items():
                if value is None and name == "momentum_buffer":  # torch.optim.SGD's "none yet": b = d next step
                    continue
                if not isinstance(value, Tensor):
                    raise ValueError(f"{name} of parameter {j} in the state_dict's param group {i} must be a tensor, "
                                     f"got {type(value).__name__}")
                if name == LIVE and value.shape != p.shape[:1]:
                    raise ValueError(f"{name} of parameter {j} in the state_dict's param group {i} must have shape "
                                     f"{_format(p.shape[:1])} (one flag a network), got {_shape(value)}")
                if name == LIVE:
                    continue
                if name == "step" and value.dim() != 0:
                    raise ValueError(f"step of parameter {j} in the state_dict's param group {i} must be one number "
                                     f"(a 0-d tensor), got shape {_shape(value)}")
                if name == "step" and (value.is_complex() or value.dtype is torch.bool
                                       or not 0 <= float(value) < math.inf):
                    raise ValueError(f"step of parameter {j} in the state_dict's param group {i} must be a finite "
                                     f"number ≥ 0 (the steps taken), got {value.item()!r}")
                if name != "step" and value.shape != p.shape:
                    raise ValueError(f"{name} of parameter {j} in the state_dict's param group {i} must have its "
                                     f"parameter's shape {_format(p.shape)}, got {_shape(value)}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch.optim.Optimizer.zero_grad, with a profiler record only while a profiler runs (step_hooks.py)."""
        with profiled(f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if set_to_none:
                        p.grad = None
                    else:
                        if p.grad.grad_fn is not None:
                            p.grad.detach_()
                        else:
                            p.grad.requires_grad_(False)
                        p.grad.zero_()


# EnsembleSGD's state: which networks' rows of a momentum buffer are a buffer, where not all are (K,), bool
LIVE = "momentum_networks"


class EnsembleSGD(_EnsembleOptimizer):
    """torch.optim.SGD (dampening 0, no Nesterov) with a learning rate, momentum and weight decay per network.

    For each network k: d = g + λ_k θ; b = μ_k b + d (b = d on network k's first step with μ_k ≠ 0); θ ← θ − η_k b.
    While μ_k is 0, network k steps by d and its buffer stays as it was, as torch.optim.SGD's does, so that a
    momentum changed to or from 0 mid-training still follows torch.optim.SGD on network k alone.
    """

    SETTINGS = {"lr": {}, "momentum": {}, "weight_decay": {}}
    RUNS = {"dampening": 0, "nesterov": False, "maximize": False, "differentiable": False}

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, **options) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}, options)

    @with_step_hooks
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_all()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if _nonzero(group["weight_decay"]):
                grads = _axpy(grads, params, _factor(group["weight_decay"], params))  # d = g + λ θ
            if _nonzero(group["momentum"]):
                grads = self._momentum(group["momentum"], params, grads)  # b
            _axpy_(params, grads, _factor(-group["lr"], params))  # θ ← θ − η b
        return loss

    def _momentum(self, momentum, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        """Each parameter's step b: b = μ b + d, or b = d on the parameter's first step with a gradient (a parameter
        may get its first one later than the others). Where some μ_k are 0, network by network (:meth:`_rows`)."""
        states = [self.state[p] for p in params]
        on = momentum != 0 if isinstance(momentum, Tensor) else None  # (K,): which networks' μ_k ≠ 0
        if (on is not None and not bool(on.all())) or any(LIVE in s for s in states):
            # below, every row of b goes b = μ b + d: right where exactly the networks at μ_k ≠ 0 hold a buffer
            # (a momentum fixed per network, every step after the first); the others' rows are then scratch
            if on is None or not all(LIVE in s and torch.equal(s[LIVE].to("cpu", torch.bool), on) for s in states):
                return [self._rows(momentum, p, d, s) for p, d, s in zip(params, grads, states)]
        bufs = [s.get("momentum_buffer") for s in states]
        old = [i for i, b in enumerate(bufs) if b is not None]
        if old:
            old_bufs = [bufs[i] for i in old]
            _scale_(old_bufs, _factor(momentum, [params[i] for i in old]))  # b = μ b
            torch._foreach_add_(old_bufs, [grads[i] for i in old])  #          b = μ b + d
        for i, b in enumerate(bufs):
            if b is None:  #                                                  b = d
                bufs[i] = states[i]["momentum_buffer"] = torch.clone(grads[i]).detach()
        return bufs

    @staticmethod
    def _rows(momentum, p: Tensor, d: Tensor, state: dict) -> Tensor:
        """Parameter ``p``'s step, network by network as torch.optim.SGD keeps network k's buffer alone: while μ_k
        is 0 it keeps none (or leaves the one it had as it was) and steps by d; with μ_k ≠ 0 it goes on from its
        buffer, b = μ_k b + d, or starts one, b = d. ``state[LIVE]`` (K,) says which networks hold a buffer, when
        not all of them do."""
        K, rows = p.shape[0], (-1,) + (1,) * (p.dim() - 1)
        mu = momentum.to(p.device, p.dtype) if isinstance(momentum, Tensor) else torch.full((K,), momentum,
                                                                                               dtype=p.dtype,
                                                                                               device=p.device)
        on = mu != 0
        b = state.get("momentum_buffer")
        if b is None:
            live, b = torch.zeros(K, dtype=torch.bool, device=p.device), torch.zeros_like(p)
        else:
            live = state.get(LIVE, torch.ones(K)).to(p.device, torch.bool)
        going_on = (on & live).view(rows)
        b_new = torch.where(going_on, b * mu.view(rows) + d, d)  #   b = μ b + d, or b = d at a network's start
        state["momentum_buffer"] = torch.where(on.view(rows), b_new, b)  # a network at μ = 0: its buffer as it was
        live = live | on
        if bool(live.all()):
            state.pop(LIVE, None)
        else:
            state[LIVE] = live.cpu()  # read on the CPU at each step (no device sync)
        return torch.where(on.view(rows), b_new, d)


class EnsembleAdam(_EnsembleOptimizer):
    """torch.optim.Adam (no AMSGrad) with a learning rate, β1, β2, ε and weight decay per network.

    For each network k at step t: d = g + λ_k θ; m = lerp(m, d, 1 − β1_k); v = β2_k v + (1 − β2_k) d²;
    θ ← θ − (η_k / (1 − β1_kᵗ)) m / (√v / √(1 − β2_kᵗ) + ε_k), in torch.optim.Adam's order of operations.
    """

    SETTINGS = {"lr": {}, "beta1": {"below": 1.0}, "beta2": {"below": 1.0}, "eps": {}, "weight_decay": {}}
    RUNS = {"amsgrad": False, "maximize": False, "decoupled_weight_decay": False, "differentiable": False,
            "capturable": False}
    RENAMED = {"betas": "beta1 and beta2 (each a number or K numbers; torch.optim.Adam's betas pair)"}
    STATE = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, **options) -> None:
        _not_a_module(type(self).__name__, params)
        if type(betas).__module__ == "numpy" and getattr(betas, "ndim", 0) >= 1:  # an array, as torch.optim.Adam takes
            try:
                betas = torch.as_tensor(betas)
            except (TypeError, RuntimeError, ValueError):  # of objects, say: refused below, as it came
                pass
        if isinstance(betas, Tensor):
            betas = readable(betas, "betas must be a pair (β1, β2) of numbers")
        if isinstance(betas, Tensor) and betas.dim() >= 1 and betas.shape[0] == 2:  # (2,) or (2, K): its two rows
            betas = (betas[0], betas[1])
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            got = f"a tensor of shape {_shape(betas)}" if isinstance(betas, Tensor) else short(betas)
            raise ValueError(f"betas must be a pair (β1, β2), each a number or K numbers (β1 of each network, β2 of "
                             f"each), got {got}")
        if not isinstance(params, Tensor):  # a tensor: torch's own error ("params argument ... iterable")
            params = [{**g, "params": _listed(g.get("params"))} if isinstance(g, dict) else g for g in params]
        if _two_ways(betas) and 2 in _counts(params):
            raise ValueError(f"betas={betas!r} for 2 networks reads two ways, (β1 of each, β2 of each) or a (β1, β2) "
                             "pair for each network: give the β1s and the β2s as tensors, betas=(torch.tensor([β1 of "
                             "network 0, β1 of network 1]), torch.tensor([β2 of network 0, β2 of network 1]))")
        super().__init__(params, {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
                                  "weight_decay": weight_decay}, options)

    @with_step_hooks
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_all()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if "step" not in self.state[p]:
                    self.state[p].update(step=torch.tensor(0.0, dtype=torch.float64),
                                         exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                self.state[p]["step"] += 1
            for t, ps in _by_step(params, self.state).items():  # each parameter's own t, as torch.optim.Adam
                self._update(group, ps, t)
        return loss

    def _update(self, group: dict, params: list[Tensor], t: float) -> None:
        """One Adam step of ``params``, all at step t."""
        grads = [p.grad for p in params]
        state = [self.state[p] for p in params]
        beta1, beta2 = group["beta1"], group["beta2"]
        bc2_sqrt = _sqrt(1 - beta2 ** t)  #                       √(1 − β2ᵗ)
        step_size = _quotient(group["lr"], 1 - beta1 ** t)  #      η / (1 − β1ᵗ)
        m = [s["exp_avg"] for s in state]
        v = [s["exp_avg_sq"] for s in state]
        if _nonzero(group["weight_decay"]):
            grads = _axpy(grads, params, _factor(group["weight_decay"], params))  # d = g + λ θ
        _lerp_(m, grads, _factor(1 - beta1, params, own_dtype=True))  # m = lerp(m, d, 1 − β1)
        _scale_(v, _factor(beta2, params))  #                      v = β2 v
        torch._foreach_addcmul_(v, _scaled(grads, _factor(1 - beta2, params)), grads)  # v += (1 − β2) d d
        denom = torch._foreach_sqrt(v)  #                          √v
        _divide_(denom, _factor(bc2_sqrt, params))  #              √v / √(1 − β2ᵗ)
        _plus_(denom, _factor(group["eps"], params))  #            + ε
        if not isinstance(step_size, Tensor) and abs(step_size) <= FLOAT32_MAX:  # torch.optim.Adam's own call, the
            # same kernel on every device (its value in float32 or wider, also for half parameters)
            torch._foreach_addcdiv_(params, m, denom, value=-step_size)  # θ ← θ − η/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε)
        else:  # K rates: −η/(1 − β1ᵗ) · m first, as the CPU's addcdiv rounds (value · m) / d (a rate past float32:
            step = _scaled(m, _factor(-step_size, params))  # its infinity, so that the networks diverge)
            torch._foreach_addcdiv_(params, step, denom)


def _not_a_module(optimizer: str, params) -> None:
    """The module given where its parameters go: torch's own words named a TanhNet (iterating an ensemble yields
    copies of its networks)."""
    if isinstance(params, torch.nn.Module):
        raise TypeError(f"{optimizer} takes the networks' parameters, got the module itself: pass "
                        f"{type(params).__name__.lower().removeprefix('tanhnet') or 'model'}.parameters()")


def _drop_ignored(group: dict, where: str) -> None:
    """Take torch.optim's foreach and fused out of ``group`` (a param group, or the constructor's options), once
    checked: torch's load_state_dict reads a group's 'fused' and then moved Adam's step to float32 on the
    parameter's device (it stops counting at 2^24)."""
    for key in _EnsembleOptimizer.IGNORED:
        if key in group:
            if group[key] is not None and not isinstance(group[key], bool):  # refused: the group left as it was
                raise ValueError(f"{key} must be True, False or None{where}, got {short(group[key])}")
            del group[key]


def _where(t: Tensor) -> str:
    return f"{str(t.dtype).replace('torch.', '')} on {t.device}"


def _two_ways(betas) -> bool:
    """Whether ``betas`` (a pair) could also be read as one (β1, β2) pair a network, for 2 networks: both halves two
    numbers (not tensors, which hold one setting's K numbers), and the two readings not the same numbers."""
    halves = [b for b in betas if isinstance(b, (tuple, list)) and len(b) == 2]
    return len(halves) == 2 and halves[0][1] != halves[1][0]


def _listed(params):
    """A group's parameters as a list (a generator read once, for K and then for torch); a tensor as it is."""
    return params if params is None or isinstance(params, Tensor) else list(params)


def _counts(params) -> set[int]:
    """The numbers of networks K of ``params`` (parameters, or param groups), as far as they tell."""
    if isinstance(params, Tensor):
        return set()
    groups = [g.get("params", []) for g in params if isinstance(g, dict)] if any(isinstance(g, dict)
                                                                                 for g in params) else [params]
    found = set()
    for g in groups:
        for p in ([g] if isinstance(g, Tensor) else g):
            if isinstance(p, tuple) and len(p) == 2:  # named_parameters(): (name, tensor)
                p = p[1]
            if isinstance(p, Tensor) and p.dim():
                found.add(p.shape[0])
    return found


def _version(t: Tensor) -> tuple[int, int]:
    """What changes when ``t``'s numbers do: its version counter (every in-place op) and its data pointer
    (``.data =``, ``torch.utils.swap_tensors``, which bring a counter of their own)."""
    return t._version, t.data_ptr()


def _changed(group: dict, held: tuple) -> set:
    """The keys of ``group`` written, or whose tensor was changed in place, since ``held`` (_hold) was noted;
    "params" when its list of parameters was edited."""
    _, keys, values, params, tensors, versions = held
    old = dict(zip(keys, values))
    moved = {id(t) for t, v in zip(tensors, versions) if _version(t) != v}
    changed = {key for key, value in group.items() if key not in old or value is not old[key] or id(value) in moved}
    if "params" in group and (len(group["params"]) != len(params) or not all(map(operator.is_, group["params"],
                                                                                  params))):
        changed.add("params")
    return changed


def _by_step(params: list[Tensor], state) -> dict[float, list[Tensor]]:
    """The parameters grouped by their step count t (one group, unless a parameter got its first gradient later)."""
    groups: dict[float, list[Tensor]] = {}
    for p in params:
        groups.setdefault(float(state[p]["step"]), []).append(p)
    return groups


def _one_lr(opt: _EnsembleOptimizer, group: dict, where: str) -> None:
    """Refuses (one line) K learning rates in ``group`` of an optimizer that a torch LR scheduler drives."""
    if isinstance(group["lr"], Tensor):
        raise ValueError(f"{type(opt).__name__} holds {len(group['lr'])} learning rates{where} (one per network), "
                         "but torch's LR schedulers set one number per param group: give lr as one number to use one, "
                         "or set param_groups[i]['lr'] to K numbers yourself, without a scheduler")


def _check_layout(state_dict) -> None:
    """An optimizer's state_dict: a dict with 'state' (a dict) and 'param_groups' (a list of dicts with 'params')."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"an optimizer's state_dict is a dict, got {type(state_dict).__name__}")
    lack = [key for key in ("state", "param_groups") if key not in state_dict]
    if lack:
        raise ValueError(f"an optimizer's state_dict holds 'state' and 'param_groups'; this one lacks {lack[0]!r}")
    if not isinstance(state_dict["state"], dict):
        raise ValueError(f"the state_dict's 'state' must be a dict, got {type(state_dict['state']).__name__}")
    groups = state_dict["param_groups"]
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise ValueError("the state_dict's 'param_groups' must be a list of dicts, each with its 'params', got "
                         f"{type(groups).__name__}")


def _owner(group: dict) -> str:
    """Whose a loaded param group may be: the ensemble optimizers whose settings it carries, or another optimizer."""
    owners = [cls.__name__ + "'s" for cls in _EnsembleOptimizer.__subclasses__() if cls.SETTINGS.keys() <= group.keys()]
    return " or ".join(owners + ["another optimizer's"])


# ---- foreach ops whose factor is one float for all tensors or a list of per-network tensors (_factor) ----

def _nonzero(value) -> bool:
    return bool((value != 0).any()) if isinstance(value, Tensor) else value != 0


def _quotient(a, b):
    """a / b, rounded once as Python's float division is: a float over a tensor is torch's reciprocal times the
    float (``Tensor.__rtruediv__``), a last bit off in about 1 division in 5."""
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        return torch.div(torch.tensor(a, dtype=b.dtype, device=b.device), b)
    return a / b


def _sqrt(value):
    return value.sqrt() if isinstance(value, Tensor) else value ** 0.5


def _scale_(xs: list[Tensor], f) -> None:
    """x ← f x."""
    torch._foreach_mul_(xs, f)


def _scaled(xs: list[Tensor], f) -> list[Tensor]:
    """f x, new tensors."""
    return torch._foreach_mul(xs, f)


def _divide_(xs: list[Tensor], f) -> None:
    """x ← x / f."""
    torch._foreach_div_(xs, f)


def _plus_(xs: list[Tensor], f) -> None:
    """x ← x + f."""
    torch._foreach_add_(xs, f)


def _axpy(ys: list[Tensor], xs: list[Tensor], f) -> list[Tensor]:
    """y + f x, new tensors (torch's ``y.add(x, alpha=f)``), in y's dtype (a float32 factor of half parameters
    would make them float32, which lerp then refuses beside half tensors)."""
    if not isinstance(f, list):
        return torch._foreach_add(ys, xs, alpha=f)
    return [z if z.dtype == y.dtype else z.to(y.dtype) for z, y in zip(torch._foreach_addcmul(ys, xs, f), ys)]


def _axpy_(ys: list[Tensor], xs: list[Tensor], f) -> None:
    """y ← y + f x (torch's ``y.add_(x, alpha=f)``)."""
    if isinstance(f, list):
        torch._foreach_addcmul_(ys, xs, f)
    else:
        torch._foreach_add_(ys, xs, alpha=f)


def _lerp_(xs: list[Tensor], ends: list[Tensor], w) -> None:
    """x ← lerp(x, end, w) (torch's ``x.lerp_(end, w)``)."""
    torch._foreach_lerp_(xs, ends, w)
