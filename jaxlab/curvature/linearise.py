"""One linearisation per measurement, shared by the Hessian, the Gauss–Newton matrix / NTK and the trace.

    lin = linearise(apply_fn, out_loss, params, (x, y))
    lin.outputs, lin.grad          # f(θ, x) [N, C] and ∇L(θ) (like params): the primal pass's results
    Hv, Jv = lin.hvp_jvp(v)        # one tangent pass: H v (like params) and the outputs' tangent J v [N, C]
    lin.hvp(v)                     # H v alone (XLA drops the unused half inside jit)
    lin.jvp(v), lin.vjp(u)         # J v [N, C]; Jᵀ u (u [N, C] -> like params)

L(θ) = out_loss(apply_fn(θ, x), y). The map θ ↦ (f(θ), J(θ)ᵀ ∇_f ℓ(f(θ))) = (f, ∇L) is linearised once
(``jax.linearize``: one forward and one backward pass, residuals kept). Its tangent map is v ↦ (J v, H v): the
forward tangent J v is computed by the HVP anyway, so a Lanczos run on H records J v of every basis vector at no
extra cost, and the Gauss–Newton matrix Jᵀ H_out J (jaxlab.curvature.ggn) reads the same residuals through the
transposed tangent map. Build it inside the jitted measurement; each product is then a tangent pass only.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

PyTree = Any


class Linearised(NamedTuple):
    outputs: jax.Array                 # f(θ, x): [N, C] (or [B, T, V])
    grad: PyTree                       # ∇L(θ), like params
    hvp_jvp: Callable                  # v -> (H v like params, J v like outputs)
    hvp: Callable                      # v -> H v
    jvp: Callable                      # v -> J v
    vjp: Callable                      # u (like outputs) -> Jᵀ u (like params)
    out_loss: Callable                 # (outputs, labels) -> scalar
    labels: Any                        # the batch's labels y


def linearise(apply_fn: Callable, out_loss: Callable, params: PyTree, batch) -> Linearised:
    """The joint linearisation at ``params``. apply_fn(params, x) -> outputs; out_loss(outputs, y) -> scalar
    (e.g. ``jaxlab.losses.mse``); batch = (x, y). Returns :class:`Linearised`."""
    x, y = batch

    def joint(p):
        out, pull = jax.vjp(lambda q: apply_fn(q, x), p)
        return out, pull(jax.grad(out_loss)(out, y))[0]

    (out, grad), lin = jax.linearize(joint, params)

    def hvp_jvp(v):
        jv, hv = lin(v)
        return hv, jv

    def jvp(v):
        return lin(v)[0]

    transpose = jax.linear_transpose(jvp, params)
    return Linearised(out, grad, hvp_jvp, lambda v: lin(v)[1], jvp, lambda u: transpose(u)[0], out_loss, y)
