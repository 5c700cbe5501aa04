"""Losses and accuracy. Integer labels < 0 mark ignored positions (padding, non-query tokens).

    out: [B, C] or [B, T, C] float, labels: [B] or [B, T] int
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

import ml_collections

from jaxlab.config import require, require_choice
from jaxlab.registry import lookup, registrar


def _flat(out, labels):
    out = out.reshape(-1, out.shape[-1])
    out = out.astype(jnp.promote_types(out.dtype, jnp.float32))  # bf16 logits in float32; float64 stays float64
    labels = labels.reshape(-1)
    mask = (labels >= 0).astype(jnp.float32)
    return out, jnp.maximum(labels, 0), mask


def _masked_mean(values, mask):
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


LOSSES: dict = {}      # name -> fn(out, labels, z_loss) -> scalar
register_loss = registrar(LOSSES)


@register_loss("mse")
def mse(out, labels, z_loss: float = 0.0):
    """½‖f(x) − onehot(y)‖², summed over outputs and averaged over examples (the EoS papers' convention)."""
    del z_loss
    out, labels, mask = _flat(out, labels)
    target = jax.nn.one_hot(labels, out.shape[-1], dtype=out.dtype)
    return _masked_mean(0.5 * jnp.sum((out - target) ** 2, axis=-1), mask)


@register_loss("cross_entropy")
def cross_entropy(out, labels, z_loss: float = 0.0):
    """Softmax cross-entropy, plus ``z_loss · logsumexp²`` (PaLM's auxiliary loss keeping logits from drifting)."""
    out, labels, mask = _flat(out, labels)
    lse = jax.nn.logsumexp(out, axis=-1)
    nll = lse - jnp.take_along_axis(out, labels[:, None], axis=-1)[:, 0]
    return _masked_mean(nll + z_loss * lse ** 2, mask)


def accuracy(out, labels):
    out, labels, mask = _flat(out, labels)
    return _masked_mean((jnp.argmax(out, axis=-1) == labels).astype(jnp.float32), mask)


def get_loss(name: str):
    return lookup(LOSSES, "loss.name", name)


def default_config() -> ml_collections.ConfigDict:
    """The ``loss`` section."""
    return ml_collections.ConfigDict(dict(name="cross_entropy", z_loss=0.0))  # mse | cross_entropy


def check(config):
    """Raise ConfigError naming the first bad ``loss.*`` key."""
    require_choice("loss.name", config.loss.name, LOSSES)
    require(config.loss.z_loss >= 0, "loss.z_loss", config.loss.z_loss, "must be >= 0")
