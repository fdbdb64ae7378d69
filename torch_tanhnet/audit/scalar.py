"""The handout's scalar-form equations, one explicit loop per equation over i, j, k.

Slow on purpose: this is the derivation read literally, index by index, to check
the vector-form code against. Values are Python floats taken from the tensors. Three
lines are not the handout's exp definitions letter for letter: tanh is ``math.tanh``,
and σ and log(1 + e^t) are written in forms that do not overflow (e^t past t ≈ 709),
equal in value.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


# each quantity's line as the loops below compute it, for the audit's table (``--scalar``)
SCALAR_EQUATIONS = {
    "G": "g_ij = Σ_k u_jk x_ik + b_j",
    "H": "h_ij = tanh(g_ij)",
    "z": "z_i = Σ_j w_j h_ij + c",
    "o": "o_i = σ(z_i)",
    "eps": "ε = (1/N) Σ_i [y_i log(1 + e^−z_i) + (1 − y_i) log(1 + e^z_i)]",
    "eps_bar": "ε̄ = 1",
    "z_bar": "z̄_i = (o_i − y_i)/N",
    "W_bar": "w̄_j = Σ_i z̄_i h_ij",
    "c_bar": "c̄ = Σ_i z̄_i",
    "H_bar": "h̄_ij = z̄_i w_j",
    "G_bar": "ḡ_ij = h̄_ij (1 − tanh² g_ij)",
    "U_bar": "ū_jk = Σ_i ḡ_ij x_ik",
    "b_bar": "b̄_j = Σ_i ḡ_ij",
    "X_bar": "x̄_ik = Σ_j ḡ_ij u_jk (not in the handout)",
}


def _sigma(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _log1p_exp(t: float) -> float:
    """log(1 + e^t), as max(t, 0) + log1p(e^(−|t|)): e^t alone overflows a Python float (OverflowError) past 709."""
    return max(t, 0.0) + math.log1p(math.exp(-abs(t)))


def scalar_forward_backward(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Every quantity of the handout's scalar equations: forward g, h, z, o, ε and every adjoint.

    X (N, D), U (H, D), b (H,), W (1, H), c (1,), y (N, 1). Returns a dict of
    float64 tensors keyed by the handout's names (``G``, ``H``, ``z``, ``o``, ``eps``,
    ``eps_bar``, ``z_bar``, ``W_bar``, ``c_bar``, ``H_bar``, ``G_bar``, ``U_bar``,
    ``b_bar``, ``X_bar``), shaped as their vector forms.
    """
    x, u, bb = X.tolist(), U.tolist(), b.tolist()
    w, cc, yy = W.tolist()[0], c.tolist()[0], [row[0] for row in y.tolist()]
    N, D, Hn = len(x), len(x[0]), len(u)
    I, J, K = range(N), range(Hn), range(D)

    g = [[sum(u[j][k] * x[i][k] for k in K) + bb[j] for j in J] for i in I]  # g_ij = Σ_k u_jk x_ik + b_j
    h = [[math.tanh(g[i][j]) for j in J] for i in I]  #                        h_ij = tanh(g_ij)
    z = [sum(w[j] * h[i][j] for j in J) + cc for i in I]  #                     z_i = Σ_j w_j h_ij + c
    o = [_sigma(z[i]) for i in I]  #                                            o_i = σ(z_i)
    # L(z, y) = y log(1 + e^(−z)) + (1 − y) log(1 + e^z), the positive cost
    L = [yy[i] * _log1p_exp(-z[i]) + (1 - yy[i]) * _log1p_exp(z[i]) for i in I]
    eps = sum(L) / N  #                                                         ε = (1/N) Σ_i L(z_i, y_i)

    eps_bar = 1.0  #                                                            ε̄ = 1
    z_bar = [eps_bar * (o[i] - yy[i]) / N for i in I]  #                        z̄_i = (o_i − y_i)/N
    w_bar = [sum(z_bar[i] * h[i][j] for i in I) for j in J]  #                  w̄_j = Σ_i z̄_i h_ij
    c_bar = sum(z_bar[i] for i in I)  #                                         c̄ = Σ_i z̄_i
    h_bar = [[z_bar[i] * w[j] for j in J] for i in I]  #                        h̄_ij = z̄_i w_j
    g_bar = [[h_bar[i][j] * (1 - math.tanh(g[i][j]) ** 2) for j in J] for i in I]  # ḡ_ij = h̄_ij (1 − tanh² g_ij)
    u_bar = [[sum(g_bar[i][j] * x[i][k] for i in I) for k in K] for j in J]  #  ū_jk = Σ_i ḡ_ij x_ik
    b_bar = [sum(g_bar[i][j] for i in I) for j in J]  #                         b̄_j = Σ_i ḡ_ij
    x_bar = [[sum(g_bar[i][j] * u[j][k] for j in J) for k in K] for i in I]  # x̄_ik = Σ_j ḡ_ij u_jk (not in the handout)

    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return {
        "G": t(g), "H": t(h), "z": t(z).view(N, 1), "o": t(o).view(N, 1), "eps": t(eps),
        "eps_bar": t(eps_bar), "z_bar": t(z_bar).view(N, 1), "W_bar": t(w_bar).view(1, Hn),
        "c_bar": t([c_bar]), "H_bar": t(h_bar), "G_bar": t(g_bar), "U_bar": t(u_bar),
        "b_bar": t(b_bar), "X_bar": t(x_bar),
    }
