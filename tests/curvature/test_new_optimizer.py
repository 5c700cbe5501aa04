"""One place per extension: an optimiser registered in this file only (its transform and its declared dynamics) is
tracked with its own threshold and flip multiplier, with no change anywhere in jaxlab.

The toy: EMA momentum (m' = βm + (1 − β)g, θ' = θ − ηm'), whose companion matrix per Hessian eigenvalue λ has an
eigenvalue −1 at ηλ = (2 + 2β)/(1 − β) (the frozen-Adam recurrence with P = 1): the declared threshold. Checked
in float64 on a trained state of the 40-6-10 MNIST-1D MLP: the tracker records the declared threshold, and the
learning rate at which the step map's flip multiplier reaches −1 equals (2 + 2β)/((1 − β)λ1) to 1e-6.
"""
import jax
import numpy as np
import optax
import pytest

from jaxlab import optim
from jaxlab.curvature.step_map import flip_multiplier, linearize_step, real_step
from curvature_testing import small_config, trained_f64

NAME = "test_ema_momentum"


@pytest.fixture
def registered():
    optim.register_optimizer(NAME)(lambda cfg, p: optax.ema(p.momentum, debias=False))
    optim.register_dynamics(NAME)(lambda cfg: optim.Declared(
        threshold=lambda n: (2 + 2 * n.momentum) / ((1 - n.momentum) * n.lr)))
    yield
    optim.OPTIMIZERS.pop(NAME)
    optim.DYNAMICS.pop(NAME)


def test_a_new_optimizer_is_tracked_from_its_own_declaration(x64, registered):
    config = small_config()
    config.optim.name, config.optim.momentum, config.optim.lr = NAME, 0.5, 0.05
    config.curvature.quantities = ("sharpness", "step_flip")
    config.curvature.step_iters = 80
    trainer, hp, data, state = trained_f64(config, 5)
    rec, _ = jax.jit(trainer.measure, static_argnames=("test", "curvature"))(state, hp, data, test=False,
                                                                             curvature=True)
    lam = float(rec["sharpness"])
    np.testing.assert_allclose(float(rec["eos_threshold"]), 3 / 0.5 / 0.05, rtol=1e-12)
    np.testing.assert_allclose(float(rec["sharpness_ratio"]), lam / 120.0, rtol=1e-12)
    assert -1 < float(rec["step_flip"]) < 1

    batch = (data["x_curv"], data["y_curv"])
    loss = lambda p: trainer.loss_fn(p, batch)  # noqa: E731
    key = jax.random.PRNGKey(0)

    @jax.jit
    def flip(lr):
        step = optim.make_step(config.optim, config.train.steps, {"lr": lr})
        return flip_multiplier(linearize_step(real_step(step, loss, key), state.params, state.opt_state), key, 80)[0]

    want = 3 / 0.5 / lam
    lo, hi = 0.5 * want, 2 * want
    assert float(flip(lo)) > -1 >= float(flip(hi))
    for _ in range(50):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if float(flip(mid)) > -1 else (lo, mid)
    np.testing.assert_allclose(lo, want, rtol=1e-6)
