import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.data.dataset import Dataset
from jaxlab.models import ATTENTION, get_model, init_params, model_config, param_count


def _ds(x, num_classes=10, task="classification"):
    x = np.asarray(x)
    return Dataset("fake", x, np.zeros(len(x), np.int32), x, np.zeros(len(x), np.int32), num_classes, task)


def _model_cfg(name="mlp", **kw):
    return model_config(name, **kw)


@pytest.mark.parametrize("bias", [True, False])
def test_mlp_shape_and_parameter_count(bias):
    ds = _ds(np.zeros((3, 40), np.float32))
    model = get_model(_model_cfg(name="mlp", widths=(200, 200), use_bias=bias), ds)
    params = init_params(model, jax.random.PRNGKey(0), ds)
    expected = 40 * 200 + 200 * 200 + 200 * 10 + (200 + 200 + 10) * bias
    assert param_count(params) == expected
    assert model.apply({"params": params}, jnp.zeros((7, 40))).shape == (7, 10)


def test_mlp_torch_init_bounds():
    ds = _ds(np.zeros((3, 40), np.float32))
    model = get_model(_model_cfg(name="mlp", widths=(64,), init_scheme="torch"), ds)
    params = init_params(model, jax.random.PRNGKey(0), ds)
    bound = 1 / np.sqrt(40)
    for leaf in (params["Dense_0"]["kernel"], params["Dense_0"]["bias"]):
        assert np.abs(leaf).max() <= bound and np.abs(leaf).max() > 0.8 * bound


@pytest.mark.parametrize("shape,spatial", [((2, 40), 1), ((2, 32, 32, 3), 2)])
def test_cnn_shape_and_parameter_count(shape, spatial):
    ds = _ds(np.zeros(shape, np.float32))
    model = get_model(_model_cfg(name="cnn", channels=(8, 16), kernel_size=3, activation="relu"), ds)
    params = init_params(model, jax.random.PRNGKey(0), ds)
    cin = shape[-1] if spatial == 2 else 1
    conv = (3 ** spatial * cin * 8 + 8) + (3 ** spatial * 8 * 16 + 16)
    pooled = int(np.prod([s // 4 for s in shape[1:1 + spatial]]))
    assert param_count(params) == conv + pooled * 16 * 10 + 10
    assert model.apply({"params": params}, jnp.zeros(shape)).shape == (2, 10)


@pytest.mark.parametrize("attention", ["softmax"])
def test_transformer_shapes_and_causality(attention):
    assert attention in ATTENTION
    tokens = np.random.default_rng(0).integers(0, 50, (2, 12)).astype(np.int32)
    ds = _ds(tokens, num_classes=50, task="lm")
    model = get_model(_model_cfg(name="transformer", d_model=32, num_heads=4, num_layers=2, attention=attention,
                                 activation="gelu"), ds)
    params = init_params(model, jax.random.PRNGKey(0), ds)
    logits = model.apply({"params": params}, tokens)
    assert logits.shape == (2, 12, 50) and logits.dtype == jnp.float32
    changed = tokens.copy()
    changed[:, 8:] = (changed[:, 8:] + 1) % 50  # the future must not change the past
    logits2 = model.apply({"params": params}, changed)
    np.testing.assert_allclose(logits[:, :8], logits2[:, :8], rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits[:, 8:], logits2[:, 8:])
    d, v, L = 32, 50, 2
    per_block = 3 * d * d + d * d + 2 * 4 * d * d + 2 * d  # qkv, out, mlp in/out, two RMSNorm scales
    assert param_count(params) == v * d + L * per_block + d
