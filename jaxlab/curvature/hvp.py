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


def valid_count(batch) -> jax.Array:
    """Items a jaxlab loss averages over: labels ≥ 0 when the last leaf is integer labels, else examples."""
    leaves = jax.tree.leaves(batch)
    labels = leaves[-1]
    if jnp.issubdtype(labels.dtype, jnp.integer):
        return jnp.sum(labels >= 0)
    return jnp.asarray(labels.shape[0])


def make_hvp(loss_fn: Callable, params: PyTree, batch: Any = None, chunk_size: int = 0,
             linearize: bool = False, chunk_weight: Callable[[Any], jax.Array] = valid_count,
             shards: int = 1) -> MatVec:
    """A matvec v -> H v at fixed ``params``.

    loss_fn: ``loss_fn(params) -> scalar`` when ``batch`` is None, else ``loss_fn(params, batch) -> scalar``
      with ``batch`` a pytree of arrays sharing a leading example axis N (e.g. ``(x [N, ...], y [N])``).
    chunk_size: 0 evaluates the whole batch at once. ``chunk_size > 0`` splits the N examples into
      ⌊N/chunk_size⌋ chunks (a ``lax.scan``, so memory is that of one chunk) plus one remainder chunk, and returns
      Σ_c (m_c/M)·H_c v with m_c = ``chunk_weight(chunk)`` and M = Σ_c m_c. For a loss that is a mean over
      *counted items* — L = Σ_items ℓ / M, so L = Σ_c (m_c/M) L_c — this is the full-batch H v exactly.
    chunk_weight: batch -> scalar count. Default :func:`valid_count`, jaxlab's convention: when the batch's last
      leaf is an integer label array, the number of labels ≥ 0 (jaxlab.losses mask labels < 0 and average over the
      rest, so chunks with uneven masks weigh by their valid tokens); otherwise the number of examples. A chunk
      with no valid label weighs 0 (its loss is 0 by jaxlab's max(count, 1) guard). A loss that is not such a
      mean (e.g. sum-reduced) is not split exactly by any weights of this form: use chunk_size=0 for it.
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
            m = chunk_weight(chunk)
            return jax.tree.map(lambda a, h: a + (m * h).astype(a.dtype), acc, hv), None

        zero = jax.tree.map(jnp.zeros_like, v)
        total, _ = jax.lax.scan(body, zero, head)
        if tail is not None:
            total = tree_axpy(chunk_weight(tail), hvp(lambda p: loss_fn(p, tail), params, v), total)
        # Σ_c m_c H_c v / Σ_c m_c (the whole batch's count; ≥ 1 like jaxlab's own guard).
        return tree_scale(total, 1.0 / jnp.maximum(chunk_weight(batch), 1))

    return matvec
