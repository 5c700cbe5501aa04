"""jaxlab's Lanczos against matfree's (``matfree.eig.eigh_partial`` of ``matfree.decomp.tridiag_sym``), same process.

    python -m jaxlab.bench.curvature --peers          # pip install "jaxlab[bench]" (matfree)

The EoS setting of experiments/eos_weight_decay.py: tanh MLP 40-200-200-10 (50,410 parameters, PyTorch init),
MSE, MNIST-1D (1,000 standardised examples), full-batch GD at η = 0.1 without weight decay, trained here. Target:
λ1 to 1e-3 relative against a float64 reference (adaptive Lanczos to a 1e-6 residual, float64 HVPs). Both
methods apply the same Hessian of the same loss in float32: jaxlab its tracker's HVP (the shared linearisation),
matfree the forward-over-reverse HVP its documentation builds (``jax.jvp`` of ``jax.grad``); both reorthogonalise
fully. Cases:
  init      the initial weights (λ2/λ1 ≈ 0.97), cold start from the same random vector
  edge      after 1,500 GD steps, at the edge of stability (λ2/λ1 ≈ 0.99), the same cold start
  tracking  every 50 steps from 0 to 2,500 (51 measurements): jaxlab's tracker (warm start from its carried Ritz
            vector, stopped by ``curvature.tol``) against matfree warm-started by hand from its previous top
            eigenvector with the fixed step count its worst measurement needs
In the cold cases both get the smallest fixed step count that reaches the target (found here against the
reference, an oracle no user has; the rule of the issue's table), and jaxlab's adaptive rule is printed besides.
In tracking matfree keeps the oracle count and jaxlab runs at its configured tolerance; every λ1 it returns is
checked against the reference. Times: medians of interleaved repeats of compiled calls (tracking: the whole
51-measurement chain). The last three lines are ``<case>: jaxlab X ms, matfree Y ms, ratio R`` with
R = matfree / jaxlab (> 1: jaxlab is faster).
"""
from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxlab import data as data_lib, optim
from jaxlab.bench.sweep import eos_config
from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.curvature.lanczos import lanczos
from jaxlab.curvature.linearise import linearise
from jaxlab.curvature.tracker import make_tracker
from jaxlab.train import Compiled, make_train

TARGET = 1e-3          # relative error of λ1 against the float64 reference
TOL = 3e-3             # jaxlab's curvature.tol (Ritz residual / λ), as in experiments/configs/eos_weight_decay.py
CAP = 40               # its curvature.num_iters (the cap)


def setting(steps: int = 2500, every: int = 50):
    """(trainer, curvature batch (x, y), [params every ``every`` steps from 0 to ``steps``])."""
    c = eos_config("mlp", steps)
    c.data.standardize, c.model.init_scheme, c.optim.lr = True, "torch", 0.1
    c.curvature.every, c.curvature.quantities, c.curvature.k = every, ("sharpness",), 1
    c.curvature.num_iters, c.curvature.tol = CAP, TOL
    ds = data_lib.get_dataset(c.data)
    trainer = make_train(c, ds)
    fns = Compiled(trainer)
    hp = optim.traced_numbers(c.optim)
    data = trainer.device_data(ds)
    state = fns.init(jax.random.PRNGKey(0), hp)
    states = [jax.tree.map(jnp.copy, state.params)]          # copies: advance donates the state
    for _ in range(steps // every):
        state, _ = fns.advance(state, hp, data, num_steps=every)
        states.append(jax.tree.map(jnp.copy, state.params))
    return trainer, (data["x_curv"], data["y_curv"]), states


def enable_x64():
    """The float64 context manager of this jax (jax.enable_x64, or jax.experimental's before it)."""
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:  # older jax
        from jax.experimental import enable_x64 as ctx
    return ctx()


def references(loss_fn, batch, states) -> np.ndarray:
    """Float64 λ1 of every state: adaptive Lanczos to a 1e-6 relative residual (a simple top eigenvalue is then
    accurate to about its square), warm from the previous state's vector."""
    with enable_x64():
        b = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if a.dtype == jnp.float32 else a, batch)
        run = jax.jit(lambda p, v0, key: lanczos_adaptive(
            lambda v: jax.jvp(jax.grad(lambda q: loss_fn(q, b)), (p,), (v,))[1], p, key, tol=1e-6, max_iters=100,
            v0=v0, return_vectors=True))
        out, v0 = [], None
        for i, p in enumerate(states):
            p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), p)
            res = run(p, v0 if v0 is not None else jax.tree.map(jnp.ones_like, p), jax.random.PRNGKey(i))
            out.append(float(res.eigvals[0]))
            v0 = jax.tree.map(lambda a: a[0], res.eigvecs)
        return np.array(out)


def matfree_lanczos(loss_fn, batch, steps: int):
    """jit((params, flat v0 [n]) -> (λ1, flat top eigenvector)) of matfree's Lanczos with ``steps`` products."""
    from matfree import decomp, eig

    eigh = eig.eigh_partial(decomp.tridiag_sym(steps, materialize=True, reortho="full", custom_vjp=False))

    def run(params, v0):
        unravel = ravel_pytree(params)[1]
        f = lambda q: loss_fn(q, batch)  # noqa: E731
        hvp = lambda v: ravel_pytree(jax.jvp(jax.grad(f), (params,), (unravel(v),))[1])[0]  # noqa: E731
        vals, vecs = eigh(hvp, v0)
        return vals[-1], vecs[-1]

    return jax.jit(run)


def smallest_steps(errors_at, lo: int = 2, hi: int = 120) -> int:
    """The smallest step count m in [lo, hi] with max(errors_at(m)) ≤ TARGET (errors shrink with m)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if np.max(errors_at(mid)) <= TARGET:
            hi = mid
        else:
            lo = mid + 1
    return lo


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each zero-argument function, called in turn ``repeats`` times after a warm-up call."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def cold_case(trainer, batch, params, ref: float, key, repeats: int):
    """From the same cold start vector, each method at the fewest fixed steps that reach TARGET (the issue's rule
    for the cold cases) and jaxlab's adaptive rule besides: {"jaxlab"|"matfree"|"adaptive": (s, steps)} and the
    adaptive run's rel. error."""
    v0 = jax.random.normal(key, ravel_pytree(params)[0].shape)
    t = make_tracker(trainer.config, trainer.loss_fn, apply_fn=trainer.apply)
    hvp = lambda p: linearise(t.apply_fn, t.out_loss, p, batch).hvp  # noqa: E731
    adaptive = jax.jit(lambda p, v: lanczos_adaptive(hvp(p), p, key, k=1, tol=TOL, max_iters=CAP, min_iters=3,
                                                     v0=ravel_pytree(p)[1](v)))
    res = jax.device_get(adaptive(params, v0))  # the tracker's operator and stopping rule, from exactly v0
    ours, mf = {}, {}

    def ours_at(m):
        ours[m] = jax.jit(lambda p, v: lanczos(hvp(p), p, key, m, v0=ravel_pytree(p)[1](v))[0][0])
        return abs(float(ours[m](params, v0)) - ref) / ref

    def matfree_at(m):
        mf[m] = matfree_lanczos(trainer.loss_fn, batch, m)
        return abs(float(mf[m](params, v0)[0]) - ref) / ref

    mj, mm = smallest_steps(ours_at), smallest_steps(matfree_at)
    block = jax.block_until_ready
    t = interleaved({"jaxlab": lambda: block(ours[mj](params, v0)), "matfree": lambda: block(mf[mm](params, v0)),
                     "adaptive": lambda: block(adaptive(params, v0))}, repeats)
    steps = {"jaxlab": mj, "matfree": mm, "adaptive": int(res.num_iters)}
    return {k: (t[k], steps[k]) for k in t}, abs(float(res.eigvals[0]) - ref) / ref


def tracking_case(trainer, batch, states, refs, key, repeats: int):
    """(jaxlab s, matfree s, jaxlab steps [51], matfree steps, jaxlab max rel. error) over the whole run."""
    tracker = make_tracker(trainer.config, trainer.loss_fn, apply_fn=trainer.apply)
    ours = jax.jit(lambda p, carry, t: tracker(p, None, {"lr": 0.1}, batch, carry, t=t))
    v0 = jax.random.normal(key, ravel_pytree(states[0])[0].shape)

    def jaxlab_chain():
        carry, recs = tracker.init(states[0]), []
        for i, p in enumerate(states):
            rec, carry = ours(p, carry, i * 50)
            recs.append(rec)
        return jax.device_get(recs)

    def matfree_chain(run):
        v, lams = v0, []
        for p in states:
            lam, v = run(p, v)
            lams.append(lam)
        return np.array(jax.device_get(lams))

    recs = jaxlab_chain()
    lam = np.array([r["sharpness"] for r in recs])
    iters = np.array([int(r["lanczos_iters"]) for r in recs])
    runs = {}

    def errors_at(m):
        runs[m] = matfree_lanczos(trainer.loss_fn, batch, m)
        return np.abs(matfree_chain(runs[m]) - refs) / refs

    m = smallest_steps(errors_at, lo=4, hi=60)
    t = interleaved({"jaxlab": jaxlab_chain, "matfree": lambda: matfree_chain(runs[m])}, repeats)
    return t["jaxlab"], t["matfree"], iters, m, float(np.max(np.abs(lam - refs) / refs))


def main(repeats: int = 7, edge_step: int = 1500):
    t0 = time.perf_counter()
    trainer, batch, states = setting()
    refs = references(trainer.loss_fn, batch, states)
    e = edge_step // 50
    print(f"\nPeers (same process): λ1 to {TARGET:g} relative; jaxlab curvature.tol = {TOL:g} (cap {CAP}); "
          f"states trained in-process; references: float64 ({time.perf_counter() - t0:.0f} s)")
    print(f"  λ1 reference: init {refs[0]:.4f}, step {edge_step} {refs[e]:.4f}, step 2500 {refs[-1]:.4f}")
    key = jax.random.PRNGKey(7)
    lines = []
    for case, params, ref in (("init", states[0], refs[0]), ("edge", states[e], refs[e])):
        r, err = cold_case(trainer, batch, params, ref, key, repeats)
        print(f"  {case}: products, the fewest reaching {TARGET:g}: jaxlab {r['jaxlab'][1]}, matfree "
              f"{r['matfree'][1]}; jaxlab adaptive (tol {TOL:g}): {r['adaptive'][1]} products, "
              f"{1e3 * r['adaptive'][0]:.1f} ms, rel. error {err:.1e}", flush=True)
        lines.append((case, r["jaxlab"][0], r["matfree"][0]))
    tj, tm, iters, m, err = tracking_case(trainer, batch, states, refs, key, max(repeats // 2, 3))
    print(f"  tracking: jaxlab {iters.sum()} products over {len(states)} measurements (mean {iters.mean():.1f}, "
          f"max {iters.max()}; max rel. error {err:.1e}), matfree {m} × {len(states)} = {m * len(states)} "
          f"(its worst measurement's need)")
    lines.append(("tracking", tj, tm))
    for case, tj, tm in lines:
        print(f"{case}: jaxlab {1e3 * tj:.1f} ms, matfree {1e3 * tm:.1f} ms, ratio {tm / tj:.2f}")
