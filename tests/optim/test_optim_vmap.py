"""A sweep over weight decay (and lr) vmapped through the trainer equals the separate runs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import optim
from jaxlab.data import get_dataset
from jaxlab.train import make_train


# momentum + l2 is checked the same way through the study runner (tests/optim/test_optim_studies.py).
@pytest.mark.parametrize("name,variant", [("adam", "cautious"), ("lion", "independent")])
def test_vmap_over_weight_decay_equals_separate_runs(tiny_config, name, variant):
    c = tiny_config
    c.model.widths = (16, 16)
    c.optim.name, c.optim.wd_variant, c.optim.lr = name, variant, 1e-2
    c.optim.schedule.name, c.optim.schedule.warmup_steps = "cosine", 3
    trainer = make_train(c, get_dataset(c.data))
    data = trainer.device_data(get_dataset(c.data))
    key = jax.random.PRNGKey(0)
    wds = jnp.array([0.0, 0.05, 0.5])
    lrs = jnp.array([1e-2, 2e-2, 5e-3])

    def train(lr, wd):
        hp = optim.Numbers(lr=lr, weight_decay=wd)
        state, _ = trainer.advance(trainer.init(key, hp), hp, data, 12)
        return state.params

    batched = jax.jit(jax.vmap(train))(lrs, wds)
    single = jax.jit(train)
    for i in range(len(wds)):
        separate = single(lrs[i], wds[i])
        for a, b in zip(jax.tree.leaves(separate), jax.tree.leaves(batched)):
            np.testing.assert_allclose(b[i], a, rtol=2e-5, atol=2e-6)
    # and the decay did something: larger λ, smaller kernels (same lr for the comparison)
    norms = jax.vmap(lambda wd: sum(jnp.sum(p ** 2) for p in jax.tree.leaves(train(1e-2, wd))))(wds)
    assert norms[2] < norms[0]
