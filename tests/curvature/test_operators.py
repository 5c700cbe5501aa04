"""The GGN operator (jaxlab.curvature.ggn, also through the shared linearisation) and per-block spectra
(jaxlab.curvature.blocks) against dense float64 references: Jᵀ H_out J from jax.jacobian and jax.hessian, and the
diagonal blocks of jax.hessian, for an MLP, a CNN and a Transformer LM."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import make_hvp
from jaxlab.curvature.blocks import block_spectra, param_groups
from jaxlab.curvature.ggn import ggn_from, make_ggn
from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.curvature.linearise import linearise
from jaxlab.losses import cross_entropy, mse
from jaxlab.models import CNN, TransformerLM
from jaxlab.tree import path_str


def _labels(n, c, seed=0):
    y = np.random.default_rng(seed).integers(0, c, n).astype(np.int32)
    y[::5] = -1                                            # masked rows: they must drop out of H_out
    return jnp.asarray(y)


def _dense_ggn(apply, params, x, y, out_loss):
    flat, unravel = ravel_pytree(params)
    out = apply(params, x)
    J = jax.jit(jax.jacobian(lambda f: apply(unravel(f), x)))(flat).reshape(out.size, flat.size)
    H_out = jax.jit(jax.hessian(lambda o: out_loss(o, y)))(out).reshape(out.size, out.size)
    return np.asarray(J.T @ H_out @ J)


@pytest.mark.parametrize("loss_name, out_loss", [("mse", mse), ("cross_entropy", cross_entropy)])
def test_ggn_matches_dense_jt_hout_j(problem, loss_name, out_loss):
    """G v for 3 random v (rtol 1e-10) and λ1(G) by adaptive Lanczos (rtol 1e-9), closed-form H_out and the
    autodiff H_out, standalone and from the shared linearisation; masked labels (< 0) drop out."""
    x = problem.x
    y = _labels(x.shape[0], 3)
    G = _dense_ggn(problem.apply, problem.params, x, y, out_loss)
    flat, unravel = problem.flat, problem.unravel
    lin = linearise(problem.apply, out_loss, problem.params, (x, y))
    ops = {"closed": make_ggn(problem.apply, problem.params, (x, y), loss=loss_name),
           "autodiff": make_ggn(problem.apply, problem.params, (x, y), loss=out_loss),
           "shared": ggn_from(lin, loss_name)}
    V = np.random.default_rng(1).standard_normal((3, flat.size))
    for name, mv in ops.items():
        got = np.stack([np.asarray(ravel_pytree(mv(unravel(jnp.asarray(v))))[0]) for v in V])
        np.testing.assert_allclose(got, V @ G.T, rtol=1e-10, atol=1e-12, err_msg=name)
    top = lanczos_adaptive(ops["shared"], problem.params, jax.random.PRNGKey(0), tol=1e-10, max_iters=100)
    np.testing.assert_allclose(float(top.eigvals[0]), np.linalg.eigvalsh(G)[-1], rtol=1e-9)


def test_shared_linearisation_hessian_is_the_loss_hessian(problem):
    """lin.hvp equals the dense Hessian of out_loss(apply(θ, x), y) (rtol 1e-10) and lin.grad its gradient."""
    lin = linearise(problem.apply, lambda o, y: 0.5 * jnp.mean(jnp.sum((o - y) ** 2, -1)), problem.params,
                    problem.batch)
    V = np.random.default_rng(2).standard_normal((2, problem.flat.size))
    got = np.stack([np.asarray(ravel_pytree(lin.hvp(problem.unravel(jnp.asarray(v))))[0]) for v in V])
    np.testing.assert_allclose(got, V @ problem.H.T, rtol=1e-10, atol=1e-12)
    g = ravel_pytree(jax.grad(problem.loss)(problem.params))[0]
    np.testing.assert_allclose(np.asarray(ravel_pytree(lin.grad)[0]), np.asarray(g), rtol=1e-12)


def _dense_block_top(loss, params, paths):
    flat, unravel = ravel_pytree(params)
    H = np.asarray(jax.jit(jax.hessian(lambda f: loss(unravel(f))))(flat))   # jitted: eager is slow
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    offsets, o = {}, 0
    for p, leaf in leaves:
        offsets[path_str(p)] = (o, o + leaf.size)
        o += leaf.size
    idx = np.concatenate([np.arange(*offsets[p]) for p in paths])
    return np.linalg.eigvalsh(H[np.ix_(idx, idx)])[::-1]


def _models():
    """(name, apply, params, batch, grouping): float64 CNN and Transformer LM small enough for jax.hessian; the
    CNN grouped by layer (depth 1), the Transformer into attention, MLP and embedding weights (norms left out)."""
    rng = np.random.default_rng(3)
    cnn = CNN(channels=(2, 3), num_outputs=3, activation="tanh", pool="avg")
    xc = jnp.asarray(rng.standard_normal((6, 8)))
    pc = jax.tree.map(lambda a: a.astype(jnp.float64), cnn.init(jax.random.PRNGKey(0), xc)["params"])
    lm = TransformerLM(vocab_size=6, d_model=4, num_layers=1, num_heads=1, mlp_ratio=1, dtype=jnp.float64)
    xt = jnp.asarray(rng.integers(0, 6, (2, 5)).astype(np.int32))
    pt = lm.init(jax.random.PRNGKey(0), xt)["params"]
    pt = jax.tree.map(lambda p: (p + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p.shape)).astype(jnp.float64),
                      pt)
    yt = jnp.asarray(rng.integers(0, 6, (2, 5)).astype(np.int32)).at[0, :2].set(-1)
    return [("cnn", lambda p, x: cnn.apply({"params": p}, x), pc, (xc, jnp.asarray(rng.integers(0, 3, 6))), 1),
            ("transformer", lambda p, x: lm.apply({"params": p}, x), pt, (xt, yt), _lm_group)]


def _lm_group(path):
    for name, key in (("attention", "/attn/"), ("mlp", "/mlp_"), ("embedding", "embed/")):
        if key in path:
            return name
    return None


@pytest.mark.parametrize("model", ["mlp", "cnn", "transformer"])
def test_block_spectra_match_dense_diagonal_blocks(problem, model):
    """λ1 (and λ2 when it is not a copy of λ1: the MLP's last layer has λ1 with multiplicity C) of every group's
    diagonal block H_bb (groups from path prefixes: layers of the MLP and CNN, the attention / MLP / norms of the
    Transformer's block) to 1e-8 relative of the dense float64 block's."""
    if model == "mlp":
        apply, params, batch, grouping = problem.apply, problem.params, problem.batch, 1
        out_loss = lambda o, y: 0.5 * jnp.mean(jnp.sum((o - y) ** 2, -1))  # noqa: E731
    else:
        _, apply, params, batch, grouping = {m[0]: m for m in _models()}[model]
        out_loss = cross_entropy
    loss = lambda p: out_loss(apply(p, batch[0]), batch[1])  # noqa: E731
    kw = dict(group=grouping) if callable(grouping) else dict(depth=grouping)
    groups = param_groups(params, **kw)
    assert len(groups) == 3, groups
    spectra = jax.jit(lambda p: block_spectra(make_hvp(lambda q: loss(q), p), p, jax.random.PRNGKey(5), k=2,
                                              tol=1e-11, max_iters=200, **kw))(params)
    for name, paths in groups.items():
        want = _dense_block_top(loss, params, paths)[:2]
        got = np.asarray(spectra[name])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-8, atol=1e-10, err_msg=name)
        if len(want) > 1 and want[0] - want[1] > 1e-6 * abs(want[0]):   # Lanczos sees one copy of a multiple λ
            np.testing.assert_allclose(got[1], want[1], rtol=1e-8, atol=1e-10, err_msg=name)
