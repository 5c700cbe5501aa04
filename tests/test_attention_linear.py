"""The linear | retention | gla attention kinds in the Transformer LM (jaxlab.models.attention_linear)."""
import jax
import numpy as np
import pytest

from jaxlab.data.dataset import Dataset
from jaxlab.models import ATTENTION, get_model, init_params, model_config
from jaxlab.train import run
from jaxlab.kernels.linear_attention import LinearAttention

KINDS = ["linear", "retention", "gla"]


def _lm(attention, vocab=50, T=12):
    tokens = np.random.default_rng(0).integers(0, vocab, (2, T)).astype(np.int32)
    ds = Dataset("fake", tokens, tokens, tokens, tokens, vocab, "lm")
    c = model_config("transformer", d_model=32, num_heads=4, num_layers=2, attention=attention, activation="tanh")
    model = get_model(c, ds)
    return model, init_params(model, jax.random.PRNGKey(0), ds), tokens


@pytest.mark.parametrize("kind", KINDS)
def test_registered_and_causal(kind):
    assert kind in ATTENTION
    model, params, tokens = _lm(kind)
    apply = jax.jit(model.apply)
    logits = apply({"params": params}, tokens)
    assert logits.shape == (2, 12, 50) and np.all(np.isfinite(logits))
    changed = tokens.copy()
    changed[:, 8:] = (changed[:, 8:] + 1) % 50  # the future must not change the past
    logits2 = apply({"params": params}, changed)
    np.testing.assert_allclose(logits[:, :8], logits2[:, :8], rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits[:, 8:], logits2[:, 8:])


def test_pallas_and_xla_mixers_agree():
    """The mixer runs through the Pallas kernels (interpreted here) and matches the XLA path (their gradients
    are checked against the float64 reference in tests/kernels)."""
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 20, 32))
    layers = {impl: LinearAttention(num_heads=2, d_model=32, kind="gla", chunk_size=16, impl=impl)
              for impl in ("xla", "pallas")}
    params = layers["xla"].init(jax.random.PRNGKey(0), x)
    np.testing.assert_allclose(layers["pallas"].apply(params, x), layers["xla"].apply(params, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_lm_learns_mqar(kind, tiny_config):
    """Training loss falls below the value marginal's entropy log(V/2): the model recalls, not just guesses."""
    c = tiny_config
    c.data.name, c.data.seq_len, c.data.vocab_size, c.data.num_kv_pairs, c.data.num_examples = "mqar", 24, 32, 4, 512
    c.data.num_train = c.data.num_test = 0
    c.model = model_config("transformer", d_model=32, num_heads=2, num_layers=2, attention=kind, activation="gelu")
    c.loss.name = "cross_entropy"
    c.optim.name, c.optim.lr = "adam", 3e-3
    c.train.batch_size, c.train.steps = 64, 100
    res = run(c, 0)
    first, last = res.records[0]["train_loss"], res.records[-1]["train_loss"]
    assert last < np.log(c.data.vocab_size / 2) < first
