import jax.numpy as jnp
import numpy as np

from jaxlab.losses import accuracy, cross_entropy, mse


def test_mse_half_squared_error_mean_over_examples():
    out = jnp.array([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])
    y = jnp.array([0, 1, 1])
    # per example ½‖f − e_y‖²: 0, ½, ½(4 + 0) = 2  -> mean 2.5/3
    np.testing.assert_allclose(mse(out, y), 2.5 / 3, rtol=1e-6)


def test_cross_entropy_matches_log_softmax_and_z_loss():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    y = rng.integers(0, 7, 5)
    lse = np.log(np.exp(logits.astype(np.float64)).sum(1))
    nll = lse - logits[np.arange(5), y]
    np.testing.assert_allclose(cross_entropy(logits, y), nll.mean(), rtol=1e-5)
    np.testing.assert_allclose(cross_entropy(logits, y, 1e-2), (nll + 1e-2 * lse ** 2).mean(), rtol=1e-5)


def test_negative_labels_are_ignored_for_sequences():
    logits = jnp.array([[[5.0, 0.0], [0.0, 5.0], [9.0, -9.0]]])  # [B=1, T=3, C=2]
    y = jnp.array([[0, 0, -1]])
    full = cross_entropy(logits[:, :2], y[:, :2])
    np.testing.assert_allclose(cross_entropy(logits, y), full, rtol=1e-6)
    np.testing.assert_allclose(accuracy(logits, y), 0.5)
