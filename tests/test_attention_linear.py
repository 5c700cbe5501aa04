"""The linear | retention | gla attention kinds in the Transformer LM (jaxlab.models.attention_linear), and the
short causal convolution every mixer can put before q, k, v (model.conv_size)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.schema import base_config, validate
from jaxlab.data.dataset import Dataset
from jaxlab.models import ATTENTION, get_model, init_params, model_config
from jaxlab.train import run
from jaxlab.kernels.linear_attention import LinearAttention, short_conv
from jaxlab.models import param_count

KINDS = ["linear", "retention", "gla"]


def _lm(attention, vocab=50, T=12, conv_size=0, output_gate=True, gate_bias_init=0.0):
    tokens = np.random.default_rng(0).integers(0, vocab, (2, T)).astype(np.int32)
    ds = Dataset("fake", tokens, tokens, tokens, tokens, vocab, "lm")
    c = model_config("transformer", d_model=32, num_heads=4, num_layers=2, attention=attention, activation="tanh",
                     conv_size=conv_size, output_gate=output_gate, gate_bias_init=gate_bias_init)
    model = get_model(c, ds)
    return model, init_params(model, jax.random.PRNGKey(0), ds), tokens


def _conv_loop(x, w):
    """float64 loops: y[:, t] = sum over j < K with t - j >= 0 of w[j] * x[:, t - j]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    y = np.zeros_like(x)
    for t in range(x.shape[1]):
        for j in range(w.shape[0]):
            if t >= j:
                y[:, t] += w[j] * x[:, t - j]
    return y


@pytest.mark.parametrize("T,K", [(9, 4), (2, 4), (5, 1)])
def test_short_conv_matches_float64_loop(x64, T, K):
    """Depthwise and causal: each channel mixes its own last K steps; a kernel longer than the sequence too."""
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, T, 3, 5)), rng.normal(size=(K, 3, 5))          # [B, T, 3, H, Dh]-like channels
    y = short_conv(jnp.asarray(x), jnp.asarray(w))
    assert y.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y), _conv_loop(x, w), rtol=1e-13, atol=1e-13)
    shift = np.zeros((K, 3, 5))
    shift[min(1, K - 1)] = 1.0                                                  # w[1] = 1: the previous token
    np.testing.assert_array_equal(np.asarray(short_conv(jnp.asarray(x), jnp.asarray(shift)))[:, 1:],
                                  x[:, :-1] if K > 1 else x[:, 1:])


@pytest.mark.parametrize("kind", ["softmax"] + KINDS)
def test_mixer_options_change_the_parameters(kind):
    """model.conv_size=K adds K·3·D weights per layer (a depthwise filter on each q, k, v channel);
    model.output_gate=False removes retention's and gla's D·D gate weights per layer and means nothing to others."""
    base, (_, conv_params, _) = param_count(_lm(kind)[1]), _lm(kind, conv_size=4)
    assert param_count(conv_params) - base == 2 * 4 * 3 * 32
    kernel = np.concatenate([np.ravel(v) for k, v in jax.tree_util.tree_leaves_with_path(conv_params)
                             if "conv" in jax.tree_util.keystr(k)])
    assert kernel.size == 2 * 4 * 3 * 32 and np.abs(kernel).max() <= 0.5 < -kernel.min() + kernel.max()  # U(±1/√K)
    no_gate = _lm(kind, output_gate=False)[1]
    assert base - param_count(no_gate) == (2 * 32 * 32 if kind in ("retention", "gla") else 0)
    assert all("out_gate" not in no_gate[f"block_{i}"]["attn"] for i in range(2))
    if kind == "gla":  # the gate's logits start at its bias: decays exp(log_sigmoid(3) / 16) per step
        np.testing.assert_array_equal(_lm(kind, gate_bias_init=3.0)[1]["block_1"]["attn"]["gate"]["bias"], [3.0] * 4)


def test_conv_size_errors_name_the_key():
    c = base_config()
    c.data.name, c.data.seq_len = "mqar", 32
    c.model = model_config("transformer", conv_size=-1)
    with pytest.raises(ConfigError, match="model.conv_size"):
        validate(c)


@pytest.mark.parametrize("conv_size", [0, 4])
@pytest.mark.parametrize("kind", KINDS + ["softmax"])
def test_registered_and_causal(kind, conv_size):
    assert kind in ATTENTION
    model, params, tokens = _lm(kind, conv_size=conv_size)
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


# retention and gla train through the same kernel as linear (their gradients: tests/test_lm_hvp.py, tests/kernels)
@pytest.mark.parametrize("kind", ["linear", pytest.param("retention", marks=pytest.mark.slow),
                                  pytest.param("gla", marks=pytest.mark.slow)])
def test_lm_learns_mqar(kind, tiny_config):
    """Training loss falls 0.3 nats below a uniform guess over the value pool, log(V − 1) (keys and values share
    tokens 1..V−1): the mixer carries the context's tokens to the query. Recall beyond the bag of values
    (log 2K) needs the short convolution and more steps: tests/test_lm_recall.py, experiments.mqar_recall."""
    c = tiny_config
    c.data.name, c.data.seq_len, c.data.vocab_size, c.data.num_kv_pairs, c.data.num_examples = "mqar", 24, 32, 4, 512
    c.data.num_train = c.data.num_test = 0
    c.model = model_config("transformer", d_model=32, num_heads=2, num_layers=2, attention=kind, activation="gelu")
    c.loss.name = "cross_entropy"
    c.optim.name, c.optim.lr = "adam", 3e-3
    c.train.batch_size, c.train.steps = 64, 100
    res = run(c, 0)
    first, last = res.records[0]["train_loss"], res.records[-1]["train_loss"]
    assert last < np.log(c.data.vocab_size - 1) - 0.3 and np.log(c.data.vocab_size - 1) < first
