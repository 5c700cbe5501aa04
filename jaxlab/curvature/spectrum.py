"""Whole-spectrum summaries from matvecs: Hutchinson trace and stochastic Lanczos quadrature (SLQ) density.

    tr, se = hutchinson_trace(matvec, params, key, num_samples=32)     # tr(H) ± one standard error
    grid, density = slq_density(matvec, params, key, num_iters=64, num_probes=8)   # [G], [G]; ∫ density ≈ 1
    trp, se = positive_trace(matvec, params, key, num_iters=64, num_probes=32)   # Σ max(λ, 0) ± one std error

Both loop with ``lax.map`` over probes, so memory is that of one probe (one Lanczos basis for SLQ).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.tree import tree_rademacher, tree_vdot
from jaxlab.curvature.lanczos import _flat_operator, lanczos_tridiag, tridiag_eigh


def hutchinson_trace(matvec: Callable, params, key: jax.Array, num_samples: int):
    """tr(H) ≈ mean_s zₛᵀ H zₛ with Rademacher zₛ (unbiased; variance 2 Σ_{i≠j} H_ij²).

    Returns (mean [], standard error [] = std(ddof=1)/√num_samples). num_samples ≥ 2.
    """
    if num_samples < 2:
        raise ValueError(f"hutchinson_trace: num_samples={num_samples}: need >= 2 for a standard error")

    def one(k):
        z = tree_rademacher(k, params)
        return tree_vdot(z, matvec(z))

    samples = jax.lax.map(one, jax.random.split(key, num_samples))
    return jnp.mean(samples), jnp.std(samples, ddof=1) / jnp.sqrt(num_samples)


def slq_nodes(matvec: Callable, params, key: jax.Array, num_iters: int, num_probes: int):
    """Gauss quadrature nodes/weights of the spectral measure, one set per Gaussian probe.

    Returns (nodes [P, m], weights [P, m]) with m = min(num_iters, n); each probe's weights sum to 1 and
    Σ_j w_j f(θ_j) = vᵀ f(H) v for polynomials f of degree < 2m (v the normalised probe), whose expectation is
    tr f(H)/n.
    """
    flat, _, mv = _flat_operator(matvec, params)
    n = flat.shape[0]
    m = min(int(num_iters), n)

    def one(k):
        k_start, k_restart = jax.random.split(k)
        v = jax.random.normal(k_start, (n,), flat.dtype)
        _, alpha, beta = lanczos_tridiag(mv, v, m, k_restart)
        theta, s = tridiag_eigh(alpha, beta)
        return theta, s[0] ** 2

    return jax.lax.map(one, jax.random.split(key, num_probes))


def positive_trace(matvec: Callable, params, key: jax.Array, num_iters: int, num_probes: int):
    """tr(H₊) = Σ_i max(λ_i, 0) by stochastic Lanczos quadrature (Ubaru, Chen & Saad, 2017) on ``slq_nodes``.

    Each probe gives d·Σ_j w_j max(θ_j, 0) (d = number of parameters), whose mean over normalised Gaussian probes is
    tr(H₊) up to the quadrature error of the kink at 0 (none when num_iters ≥ d: the nodes are then H's
    eigenvalues). The positive part is what the ZO stability bounds need (jaxlab.curvature.zo_stability); the
    Hutchinson trace counts negative curvature with a minus sign. Returns (mean [], standard error [] =
    std(ddof=1)/√num_probes); num_probes ≥ 2.
    """
    if num_probes < 2:
        raise ValueError(f"positive_trace: num_probes={num_probes}: need >= 2 for a standard error")
    nodes, weights = slq_nodes(matvec, params, key, num_iters, num_probes)
    d = sum(x.size for x in jax.tree.leaves(params))
    samples = d * jnp.sum(weights * jnp.maximum(nodes, 0.0), axis=1)
    return jnp.mean(samples), jnp.std(samples, ddof=1) / jnp.sqrt(num_probes)


def slq_density(matvec: Callable, params, key: jax.Array, num_iters: int, num_probes: int,
                grid: jax.Array | None = None, sigma: float | None = None, num_points: int = 512):
    """Gaussian-smoothed spectral density φ(t) = mean_p Σ_j w_pj 𝒩(t; θ_pj, σ²) (Ghorbani et al., 2019).

    grid: [G] points to evaluate at; None: ``num_points`` points spanning [min θ − 5σ, max θ + 5σ]. sigma: the
    smoothing width; None: 1% of the node range (max θ − min θ). The density integrates to ~1 over a grid that
    covers the nodes ± a few σ, and its mean is mean_p v_pᵀHv_p ≈ tr(H)/n. Returns (grid [G], density [G]).
    Plot with a log y-axis: the outliers carry weight ~1/n.
    """
    nodes, weights = slq_nodes(matvec, params, key, num_iters, num_probes)
    lo, hi = jnp.min(nodes), jnp.max(nodes)
    if sigma is None:
        sigma = 0.01 * jnp.maximum(hi - lo, jnp.finfo(nodes.dtype).tiny ** 0.5)
    if grid is None:
        grid = jnp.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points)
    grid = jnp.asarray(grid, nodes.dtype)
    z = (grid[:, None, None] - nodes[None]) / sigma                    # [G, P, m]
    kernel = jnp.exp(-0.5 * z ** 2) / (sigma * jnp.sqrt(2 * jnp.pi))
    density = jnp.sum(kernel * weights[None], axis=2).mean(axis=1)     # [G]
    return grid, density

