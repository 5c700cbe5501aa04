"""The LM's per-token loss and recall accuracy: masked token means (labels < 0 ignored) against numpy references
on hand-built logits, labels and MQAR batches."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.data import mqar
from jaxlab.data.dataset import Dataset
from jaxlab.losses import accuracy, cross_entropy, mse
from jaxlab.models import model_config
from jaxlab.schema import base_config
from jaxlab.train import make_train


def _np_token_ce(logits, labels):
    """Reference: mean over the valid tokens (label >= 0) of -log softmax(logits)[label], in float64."""
    logits = np.asarray(logits, np.float64)
    lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    valid = labels >= 0
    picked = np.take_along_axis(logits, np.maximum(labels, 0)[..., None], axis=-1)[..., 0]
    return float(((lse - picked) * valid).sum() / valid.sum())


def test_token_loss_masks_negative_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32)          # [B, T, V]
    labels = rng.integers(0, 7, size=(3, 5)).astype(np.int32)
    labels[0, :4] = -1                                              # rows hold different numbers of tokens:
    labels[1, 1::2] = -1                                            # a token mean, not a mean of row means
    labels[2, 2] = -1
    np.testing.assert_allclose(float(cross_entropy(jnp.asarray(logits), jnp.asarray(labels))),
                               _np_token_ce(logits, labels), rtol=1e-6)
    # Garbage logits at masked positions change nothing.
    noisy = np.where((labels < 0)[..., None], 1e3 * rng.normal(size=logits.shape), logits).astype(np.float32)
    np.testing.assert_allclose(float(cross_entropy(jnp.asarray(noisy), jnp.asarray(labels))),
                               _np_token_ce(logits, labels), rtol=1e-6)
    # MSE: ½‖f − onehot‖² averaged over valid tokens.
    onehot = np.eye(7)[np.maximum(labels, 0)]
    want = (0.5 * ((logits - onehot) ** 2).sum(-1) * (labels >= 0)).sum() / (labels >= 0).sum()
    np.testing.assert_allclose(float(mse(jnp.asarray(logits), jnp.asarray(labels))), want, rtol=1e-6)


def test_all_masked_batch_is_zero_not_nan():
    logits = jnp.ones((2, 3, 4))
    labels = -jnp.ones((2, 3), jnp.int32)
    assert float(cross_entropy(logits, labels)) == 0.0 and float(accuracy(logits, labels)) == 0.0


class _Fixed:
    """A stand-in model whose logits are given: apply({"params": p}, x) -> p["logits"] (shape [N, T, V])."""

    def apply(self, variables, x):
        return variables["params"]["logits"]


def test_recall_accuracy_counts_query_positions_only():
    """On an MQAR batch: logits right at the first half of the queries, wrong at the rest, and wrong at every
    non-query position; the trainer's accuracy must be exactly the fraction of queries answered."""
    V, T, K = 16, 20, 3
    x, y = mqar.generate(np.random.default_rng(0), 6, T, V, K, pool="split")
    queries = y >= 0
    assert queries.sum(axis=1).tolist() == [K] * 6
    # At each query position the input is a key seen earlier; the label is its value (the upper half of the vocab).
    for xi, yi in zip(x, y):
        pairs = dict(zip(xi[:2 * K:2], xi[1:2 * K:2]))
        assert all(pairs[xi[t]] == yi[t] for t in np.nonzero(yi >= 0)[0])
    answer = np.where(queries, y, 0)
    answer[~queries] = (x[~queries] + 1) % V          # non-query positions: predictions never matter
    q_idx = np.argwhere(queries)
    wrong = q_idx[::2]                                # every other query answered wrongly
    answer[wrong[:, 0], wrong[:, 1]] = (y[wrong[:, 0], wrong[:, 1]] + 1 - V // 2) % (V // 2) + V // 2
    logits = 10.0 * np.eye(V, dtype=np.float32)[answer]   # [N, T, V]
    want = 1.0 - len(wrong) / queries.sum()

    c = base_config()
    c.data.name, c.model = "mqar", model_config("transformer", activation="tanh")
    c.data.seq_len, c.data.vocab_size, c.data.num_kv_pairs = T, V, K
    ds = Dataset("mqar", x, y, x, y, num_classes=V, task="lm")
    trainer = dataclasses.replace(make_train(c, ds), model=_Fixed())
    loss, acc = trainer.evaluate({"logits": jnp.asarray(logits)}, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(float(acc), want, rtol=1e-6)
    np.testing.assert_allclose(float(loss), _np_token_ce(logits, y), rtol=1e-5)
    # The same through losses.accuracy, and a check that counting every position would have given another number.
    np.testing.assert_allclose(float(accuracy(jnp.asarray(logits), jnp.asarray(y))), want, rtol=1e-6)
    all_positions = (logits.argmax(-1) == np.where(queries, y, x)).mean()
    assert abs(all_positions - want) > 0.05
