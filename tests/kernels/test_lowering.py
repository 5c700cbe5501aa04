"""impl="auto" follows the lowering platform, not the host: lowered or exported from this CPU machine for
tpu / cuda, the Transformer LM and linear_attention contain the Mosaic / Triton kernels, forward and grad."""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

from jaxlab.kernels.linear_attention import linear_attention
from jaxlab.models.transformer import TransformerLM

KERNEL_CALL = {"tpu": "tpu_custom_call", "cuda": "__gpu$xla.gpu.triton"}
ALL = {"linear_attention_fwd", "linear_attention_dq", "linear_attention_dk", "linear_attention_dv"}


def _kernels(text):
    return set(re.findall(r"linear_attention_(?:fwd|dq|dk|dv)\b", text))


def _lm_grad_text(platforms):
    model = TransformerLM(vocab_size=64, d_model=64, num_layers=1, num_heads=2, attention="gla")
    tokens = jax.ShapeDtypeStruct((2, 100), jnp.int32)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((2, 100), jnp.int32)))

    def loss(p, tokens):
        return jnp.mean(model.apply(p, tokens))

    return jax.jit(jax.value_and_grad(loss)).trace(params, tokens).lower(lowering_platforms=platforms).as_text()


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
def test_transformer_gla_lowers_to_kernels(platform):
    text = _lm_grad_text((platform,))
    assert _kernels(text) == ALL
    assert text.count(KERNEL_CALL[platform]) == 4


def test_transformer_gla_on_cpu_uses_xla():
    text = _lm_grad_text(("cpu",))
    assert not _kernels(text) and "custom_call" not in text


@pytest.mark.parametrize("impl,platform", [("auto", "tpu"), ("auto", "cuda"), ("pallas", "tpu"),
                                           ("pallas_gpu", "cuda")])
def test_export_for_tpu_and_cuda(impl, platform):
    """jax.export for one accelerator platform. (One export for tpu and cuda together fails inside JAX:
    it lowers every branch's pallas_call for every platform, and Mosaic params refuse the GPU lowering.)"""
    platforms = [platform]
    x = jax.ShapeDtypeStruct((1, 100, 2, 64), jnp.bfloat16)
    g = jax.ShapeDtypeStruct((1, 100, 2), jnp.float32)

    def loss(q, k, v, g):
        return jnp.sum(linear_attention(q, k, v, log_decay=g, impl=impl).astype(jnp.float32))

    # Triton calls carry no serialization-compatibility guarantee: export must be told that is understood.
    unchecked = [jax.export.DisabledSafetyCheck.custom_call(KERNEL_CALL["cuda"])]
    exp = jax.export.export(jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3))), platforms=platforms,
                            disabled_checks=unchecked)(x, x, x, g)
    text = exp.mlir_module()
    for p in platforms:
        assert KERNEL_CALL[p] in text
    assert _kernels(text) == ALL
