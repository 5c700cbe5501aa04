"""Per-block spectra: the top eigenvalues of each parameter group's diagonal Hessian block H_bb.

    groups = param_groups(params, depth=1)            # {"Dense_0": ("Dense_0/bias", "Dense_0/kernel"), ...}
    spectra = block_spectra(matvec, params, key, depth=1, k=1, tol=1e-4)   # {"Dense_0": eigvals [k], ...}
    spectra = block_spectra(matvec, params, key, group=lambda path: "attn" if "/attn/" in path else "rest")

Groups come from parameter-tree paths only (``jaxlab.tree.path_str``: 'block_0/attn/query/kernel'): ``depth``
keeps the first ``depth`` path components, or ``group(path) -> name`` decides (None: the leaf is left out), so
any model's layers, or attention vs MLP weights, are blocks without the model's code. H_bb = P_bᵀ H P_b with P_b
the embedding of the group's leaves; its product is one H product of the embedded vector, read back on the
group (``matvec`` is any symmetric operator on pytrees like params: the Hessian, the GGN, ...). Each block runs
its own ``krylov.lanczos_adaptive`` (sequentially: one basis in memory at a time). λ1(H_bb) ≤ λ1(H) for PSD H, and
Σ_b tr(H_bb) = tr(H).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.tree import path_str


def param_groups(params, depth: int = 1, group: Callable[[str], str | None] | None = None) -> dict:
    """{group name: tuple of leaf paths} in tree order; by the first ``depth`` path components or ``group``."""
    out: dict[str, list[str]] = {}
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        p = path_str(path)
        name = group(p) if group is not None else "/".join(p.split("/")[:depth])
        if name is not None:
            out.setdefault(name, []).append(p)
    return {k: tuple(v) for k, v in out.items()}


def block_operator(matvec: Callable, params, paths: tuple[str, ...]):
    """(sub-params: a dict path -> leaf, v_b -> H_bb v_b on such dicts) for the leaves named by ``paths``."""
    flat = {path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    sub = {p: flat[p] for p in paths}
    treedef = jax.tree.structure(params)
    order = [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]

    def mv(v_b):
        full = jax.tree.unflatten(treedef, [v_b[p] if p in v_b else jnp.zeros_like(flat[p]) for p in order])
        hv = {path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(matvec(full))[0]}
        return {p: hv[p] for p in paths}

    return sub, mv


def block_spectra(matvec: Callable, params, key: jax.Array, *, depth: int = 1, group=None, k: int = 1,
                  tol=1e-4, max_iters: int = 40, return_iters: bool = False) -> dict:
    """{group name: top-k eigenvalues [k] (descending) of H_bb} (and {name: operator products} with
    return_iters). A group with fewer than k parameters gets its whole spectrum padded with NaN."""
    spectra, iters = {}, {}
    for i, (name, paths) in enumerate(param_groups(params, depth, group).items()):
        sub, mv = block_operator(matvec, params, paths)
        size = sum(int(leaf.size) for leaf in jax.tree.leaves(sub))
        kb = min(k, size)
        res = lanczos_adaptive(mv, sub, jax.random.fold_in(key, i), k=kb, tol=tol, max_iters=min(max_iters, size))
        spectra[name] = jnp.concatenate([res.eigvals, jnp.full(k - kb, jnp.nan, res.eigvals.dtype)])
        iters[name] = res.num_iters
    return (spectra, iters) if return_iters else spectra
