"""Hessian-vector products on parameter pytrees (forward-over-reverse), optionally chunked over an eval set.

    Hv     = hvp(loss_fn, params, v)                        # loss_fn(params) -> scalar; v like params
    mv     = make_hvp(loss_fn, params, batch=(x, y))        # loss_fn(params, batch) -> scalar; mv(v) = Hv
    mv     = make_hvp(loss_fn, params, batch, chunk_size=250)  # same H, memory of one chunk at a time
    mv     = make_hvp(loss_fn, params, linearize=True)      # forward/backward linearised once, reused per mv

Everything here is a pure function of JAX values: build the matvec inside a jitted function and hand it to
:mod:`jaxlab.curvature.lanczos`. Curvature code never sees the model, only the ``loss_fn`` closure.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxlab.tree import tree_axpy, tree_scale

PyTree = Any
MatVec = Callable[[PyTree], PyTree]   # v (like params) -> Hv (like params)


# ------------------------------------------------------------------------------------------ HVP

def hvp(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
    """H(params)·v by forward-over-reverse (jvp of grad): one forward + backward pass with tangents, ~2–3 gradients.

    loss_fn: params -> scalar; v: same structure as params. Returns a pytree like params.
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def _batch_size(batch) -> int:
    sizes = {int(x.shape[0]) for x in jax.tree.leaves(batch)}
    if len(sizes) != 1:
        raise ValueError(f"make_hvp: batch leaves disagree on the leading (example) axis: {sorted(sizes)}")
    return sizes.pop()


def make_hvp(loss_fn: Callable, params: PyTree, batch: Any = None, chunk_size: int = 0,
             linearize: bool = False, shards: int = 1) -> MatVec:
    """A matvec v -> H v at fixed ``params``.

    loss_fn: ``loss_fn(params) -> scalar`` when ``batch`` is None, else ``loss_fn(params, batch) -> scalar``
      with ``batch`` a pytree of arrays sharing a leading example axis N (e.g. ``(x [N, ...], y [N])``).
    chunk_size: 0 evaluates the whole batch at once. ``chunk_size > 0`` splits the N examples into
      ⌊N/chunk_size⌋ chunks (a ``lax.scan``, so memory is that of one chunk) plus one remainder chunk, and returns
      Σ_c (n_c/N)·H_c v. This equals the full-batch H v exactly when ``loss_fn`` is a *mean over examples*
      (every jaxlab loss is); no padding, so nothing needs masking. For a sum-reduced loss, divide by N yourself.
    linearize: ``jax.linearize`` the gradient once (one forward+backward pass, residuals kept) so each matvec is a
      tangent pass only — about 2× cheaper inside Lanczos, at the memory of all residuals. Unchunked only.
    shards: the batch's example axis is split into this many equal contiguous pieces across devices (a
      data-parallel mesh). A chunked HVP then takes ``chunk_size`` examples from *each* piece per pass, so every
      device works on its own examples and nothing moves between devices but the reduction of H v; the sum over
      chunks is the same mean. Ignored when N does not divide evenly (plain chunks).
    """
    if batch is None:
        if chunk_size:
            raise ValueError("make_hvp: chunk_size needs a batch to split")
        f = loss_fn
    else:
        f = lambda p: loss_fn(p, batch)  # noqa: E731

    if linearize:
        if chunk_size:
            raise ValueError("make_hvp: linearize=True stores all residuals; use it without chunk_size")
        _, lin = jax.linearize(jax.grad(f), params)
        return lin

    if not chunk_size:
        return lambda v: hvp(f, params, v)

    n = _batch_size(batch)
    s = shards if shards > 1 and n % shards == 0 else 1
    num_full, rem = divmod(n // s, chunk_size)
    if num_full == 0:   # one chunk is the whole batch
        return lambda v: hvp(f, params, v)

    def head_of(a):
        """[N, ...] -> [num_full, s·chunk, ...]: pass c takes examples c·chunk... of every piece (the reshapes
        keep each piece's examples where they are)."""
        a = a.reshape(s, n // s, *a.shape[1:])[:, : num_full * chunk_size]
        a = jnp.swapaxes(a.reshape(s, num_full, chunk_size, *a.shape[2:]), 0, 1)
        return a.reshape(num_full, s * chunk_size, *a.shape[3:])

    def tail_of(a):
        """[N, ...] -> the last ``rem`` examples of every piece: [s·rem, ...]."""
        a = a.reshape(s, n // s, *a.shape[1:])[:, num_full * chunk_size:]
        return a.reshape(s * rem, *a.shape[2:])

    head = jax.tree.map(head_of, batch)
    tail = jax.tree.map(tail_of, batch) if rem else None
    chunk_size, rem = s * chunk_size, s * rem  # examples per pass, over all pieces

    def matvec(v):
        def body(acc, chunk):
            hv = hvp(lambda p: loss_fn(p, chunk), params, v)
            return jax.tree.map(jnp.add, acc, hv), None

        zero = jax.tree.map(jnp.zeros_like, v)
        total, _ = jax.lax.scan(body, zero, head)
        total = tree_scale(total, chunk_size / n)
        if tail is not None:
            total = tree_axpy(rem / n, hvp(lambda p: loss_fn(p, tail), params, v), total)
        return total

    return matvec
