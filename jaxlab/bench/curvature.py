"""Curvature benchmark: cost of HVPs and Lanczos in units of one full-batch gradient, for the EoS models.

    python -m jaxlab.bench.curvature                      # MLP 40-200-200-10 tanh and CNN (32, 32) relu, MSE
    python -m jaxlab.bench.curvature --models=mlp --examples=1000 --iters=20 --repeats=5
    python -m jaxlab.bench.curvature --peers     # against matfree's Lanczos, same process (jaxlab.bench.curvature_peers)
    python -m jaxlab.bench.curvature --lm        # Transformer LM HVP memory, plain vs chunked over tokens

Data: ``--examples`` random MNIST-1D-shaped inputs [N, 40] and labels in 0..9 (the cost does not depend on the
values). Every entry is the fastest of --repeats wall times of a compiled call (compilation excluded), on the device JAX picks.
Rows:
  gradient         jax.grad of the full-batch loss (the unit)
  HVP              one forward-over-reverse H·v (``make_hvp``)
  HVP chunked      the same over --chunk examples at a time (``lax.scan``; bounded memory)
  Lanczos-k        ``--iters`` Lanczos steps with full reorthogonalisation, top eigenvalue (one compiled loop)
  Lanczos-k chunk. the same with the chunked HVP (on CPU smaller working sets run faster)
  Lanczos-k lin.   the same with ``make_hvp(linearize=True)``: forward/backward once, then tangent passes only
  power-k          ``--iters`` power-iteration steps (chunked HVP)
Aims: HVP ≤ 2 gradients; 20-step Lanczos ≤ 25 gradients.
"""
from __future__ import annotations

from types import SimpleNamespace

import jax

from jaxlab.bench import make_parser, timed
from jaxlab.curvature import lanczos, make_hvp, power_iteration
from jaxlab.losses import mse
from jaxlab.models import get_model, init_params, model_config, param_count


def eos_model(name: str):
    """The EoS models: tanh MLP 40-200-200-10; CNN with (32, 32) channels, relu (jaxlab.bench.sweep's)."""
    if name == "cnn":
        return model_config("cnn", channels=(32, 32), activation="relu")
    return model_config(name, widths=(200, 200), activation="tanh")


def timed_min(fn, repeats: int) -> float:
    return timed(fn, repeats, reduce=min)


def bench_model(name: str, examples: int, iters: int, chunk: int, repeats: int) -> list[tuple[str, float]]:
    kx, ky, kp, kv, kl = jax.random.split(jax.random.PRNGKey(0), 5)
    x = jax.random.normal(kx, (examples, 40))
    y = jax.random.randint(ky, (examples,), 0, 10)
    ds = SimpleNamespace(num_classes=10, x_train=x)
    model = get_model(eos_model(name), ds)
    params = init_params(model, kp, ds)
    loss_fn = lambda p, b: mse(model.apply({"params": p}, b[0]), b[1])  # noqa: E731
    batch = (x, y)
    v = jax.tree.map(lambda a: jax.random.normal(kv, a.shape, a.dtype), params)
    block = jax.block_until_ready

    grad = jax.jit(jax.grad(loss_fn))
    hvp = jax.jit(lambda p, b, v: make_hvp(loss_fn, p, b)(v))
    hvp_chunk = jax.jit(lambda p, b, v: make_hvp(loss_fn, p, b, chunk_size=chunk)(v))
    lz = jax.jit(lambda p, b, k: lanczos(make_hvp(loss_fn, p, b), p, k, iters)[0])
    lz_chunk = jax.jit(lambda p, b, k: lanczos(make_hvp(loss_fn, p, b, chunk_size=chunk), p, k, iters)[0])
    lz_lin = jax.jit(lambda p, b, k: lanczos(make_hvp(loss_fn, p, b, linearize=True), p, k, iters)[0])
    pw = jax.jit(lambda p, b, k: power_iteration(make_hvp(loss_fn, p, b, chunk_size=chunk), p, k, iters)[0])
    rows = [("gradient", timed_min(lambda: block(grad(params, batch)), repeats)),
            ("HVP", timed_min(lambda: block(hvp(params, batch, v)), repeats)),
            (f"HVP chunked ({chunk})", timed_min(lambda: block(hvp_chunk(params, batch, v)), repeats)),
            (f"Lanczos-{iters}", timed_min(lambda: block(lz(params, batch, kl)), repeats)),
            (f"Lanczos-{iters} chunked ({chunk})", timed_min(lambda: block(lz_chunk(params, batch, kl)), repeats)),
            (f"Lanczos-{iters} linearised", timed_min(lambda: block(lz_lin(params, batch, kl)), repeats)),
            (f"power-{iters} chunked ({chunk})", timed_min(lambda: block(pw(params, batch, kl)), repeats))]
    rows += warm_start_rows(loss_fn, params, batch, kl, chunk)
    print(f"\n{name}: {param_count(params):,} parameters, {examples} examples, {jax.devices()[0].platform}")
    print(f"| {'quantity':<34} | {'ms':>9} | {'× gradient':>10} |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 12}|")
    for label, t in rows:
        print(f"| {label:<34} | {1e3 * t:9.2f} | {t / rows[0][1]:10.2f} |")
    return rows


def warm_start_rows(loss_fn, params, batch, key, chunk: int, lr: float = 0.05, iters=(5, 10)):
    """Accuracy of a short Lanczos after one GD step θ' = θ − lr·∇L, cold vs started from the previous top
    eigenvector (what a tracker measuring every few steps does); reference: 60 cold iterations at θ'."""
    run = jax.jit(lambda p, k, v0, m: lanczos(make_hvp(loss_fn, p, batch, chunk_size=chunk), p, k, m, v0=v0,
                                               return_vectors=True), static_argnums=3)
    _, u = run(params, key, None, 40)
    u0 = jax.tree.map(lambda a: a[0], u)
    g = jax.grad(loss_fn)(params, batch)
    moved = jax.tree.map(lambda p, d: p - lr * d, params, g)
    ref = float(run(moved, key, None, 60)[0][0])
    rows = []
    for m in iters:
        for label, v0 in (("cold", None), ("warm", u0)):
            lam = float(run(moved, jax.random.fold_in(key, 1), v0, m)[0][0])
            t = timed_min(lambda: jax.block_until_ready(run(moved, key, v0, m)), 5)
            rows.append((f"Lanczos-{m} {label}: rel. err {abs(lam - ref) / abs(ref):.0e}", t))
    return rows


def parser():
    return make_parser(__doc__, models="mlp,cnn", examples=1000, iters=20, chunk=500, repeats=10, peers=False,
                       lm=False)


def main(argv=None):
    args = parser().parse_args(argv)
    if args.lm:
        from jaxlab.bench import curvature_lm
        curvature_lm.main(args)
    if args.peers:
        from jaxlab.bench import curvature_peers
        curvature_peers.main(repeats=min(args.repeats, 7))
    if args.lm or args.peers:
        return
    for name in args.models.split(","):
        bench_model(name, args.examples, args.iters, args.chunk, args.repeats)


if __name__ == "__main__":
    main()
