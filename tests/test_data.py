import pickle

import jax
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.schema import base_config
from jaxlab.data import get_dataset, mqar, sample_batch


def _cfg(**kw):
    c = base_config().data
    for k, v in kw.items():
        c[k] = v
    return c


def test_mnist1d_shapes_standardised_and_deterministic():
    ds = get_dataset(_cfg(name="mnist1d"))
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.y_train.shape == (4000,) and ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert set(np.unique(ds.y_train)) == set(range(10)) and ds.num_classes == 10
    np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-4)  # per-feature standardisation
    np.testing.assert_allclose(ds.x_train.std(0), 1.0, atol=1e-3)
    again = get_dataset(_cfg(name="mnist1d"))
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    sub = get_dataset(_cfg(name="mnist1d", num_train=1000, num_test=100))
    assert sub.x_train.shape == (1000, 40) and sub.x_test.shape == (100, 40)
    np.testing.assert_array_equal(sub.y_train, ds.y_train[:1000])


def test_subset_larger_than_dataset_names_key():
    with pytest.raises(ConfigError, match="num_train=5000"):
        get_dataset(_cfg(name="mnist1d", num_train=5000))


@pytest.mark.parametrize("pool,queries", [("shared", "uniform"), ("split", "uniform"), ("split", "zoology")])
def test_mqar_queries_recall_their_values(pool, queries):
    rng = np.random.default_rng(0)
    x, y = mqar.generate(rng, 64, seq_len=40, vocab_size=32, num_kv=6, pool=pool, queries=queries)
    assert x.shape == y.shape == (64, 40) and x.dtype == y.dtype == np.int32
    for row_x, row_y in zip(x, y):
        keys, values = row_x[0:12:2].tolist(), row_x[1:12:2].tolist()
        assert len(set(keys)) == 6 and len(set(values)) == 6           # distinct keys, distinct values
        assert min(keys + values) >= 1                                  # token 0 is filler
        if pool == "split":
            assert max(keys) < 16 <= min(values)
        pairs = dict(zip(keys, values))
        queries_at = np.nonzero(row_y >= 0)[0]
        assert len(queries_at) == 6 and queries_at.min() >= 12
        for t in queries_at:
            assert pairs[int(row_x[t])] == row_y[t]
        assert sorted(row_x[queries_at].tolist()) == sorted(pairs)      # each key queried once
        if queries == "zoology":                                        # even offsets after the context
            assert all((t - 12) % 2 == 0 for t in queries_at)


def test_mqar_shared_pool_mixes_keys_and_values():
    """Shared pool: every token 1..V-1 serves as key in some sequences and as value in others (its id does not
    say which), but never both in one sequence: the 2K context tokens are distinct."""
    x, _ = mqar.generate(np.random.default_rng(0), 2000, seq_len=24, vocab_size=32, num_kv=8)
    keys, values = x[:, 0:16:2], x[:, 1:16:2]
    assert set(np.unique(keys)) == set(np.unique(values)) == set(range(1, 32))
    assert all(len(set(row)) == 16 for row in x[:, :16])
    # each token is a key as often as a value (uniform over the pool): 2000·8/31 ≈ 516 each, std. error ≈ 22
    np.testing.assert_allclose(np.bincount(keys.ravel(), minlength=32)[1:], 2000 * 8 / 31, atol=100)
    np.testing.assert_allclose(np.bincount(values.ravel(), minlength=32)[1:], 2000 * 8 / 31, atol=100)


def test_mqar_zoology_gaps_follow_the_power_law():
    """Zoology placement with one pair: the query sits at 2 + 2g, gap g with probability ∝ (g+1)^(a-1), a = 0.01.
    20,000 draws: tolerance 0.01 (over 3 std. errors)."""
    x, y = mqar.generate(np.random.default_rng(0), 20000, seq_len=12, vocab_size=32, num_kv=1, queries="zoology")
    gaps = (np.argmax(y >= 0, axis=1) - 2) // 2
    p = np.arange(1, 6, dtype=float) ** (mqar.POWER_A - 1)
    np.testing.assert_allclose(np.bincount(gaps, minlength=5) / len(gaps), p / p.sum(), atol=0.01)


@pytest.mark.parametrize("pool,kv", [("split", 4), ("split", 8), ("shared", 4), ("shared", 8), ("shared", 15)])
def test_mqar_bag_of_values_matches_closed_form(pool, kv):
    """The token-id "bag of values" guess measured on generated data against its closed form: a uniform guess
    among the K values (split: 1/K, log K nats) or the 2K context tokens (shared: 1/(2K), log 2K). Exact per
    sequence (tolerance 1e-12): it is what a model reaches from token ids alone, twice as much with split halves."""
    x, y = mqar.generate(np.random.default_rng(1), 500, seq_len=3 * kv, vocab_size=32, num_kv=kv, pool=pool)
    got = mqar.bag_of_values(x, y, kv, 32, pool)
    want = mqar.bag_of_values_closed_form(kv, pool)
    assert abs(got["recall"] - want["recall"]) < 1e-12 and abs(got["loss"] - want["loss"]) < 1e-12


def test_mqar_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="data.kv_pool"):
        get_dataset(_cfg(name="mqar", seq_len=32, num_kv_pairs=4, kv_pool="halves"))
    with pytest.raises(ConfigError, match="data.vocab_size"):
        get_dataset(_cfg(name="mqar", seq_len=64, vocab_size=32, num_kv_pairs=16))  # 32 distinct tokens > 31
    with pytest.raises(ConfigError, match="data.seq_len"):
        get_dataset(_cfg(name="mqar", seq_len=20, num_kv_pairs=6, queries="zoology"))


def test_mqar_mixture_holds_equal_shares_of_each_pair_count():
    """data.kv_pairs_mix: every sequence is a valid MQAR sequence of one of the counts (its queries recall the
    values of its own context), in equal shares, shuffled, in the training and the test set."""
    ds = get_dataset(_cfg(name="mqar", seq_len=32, vocab_size=32, kv_pairs_mix=(4, 7, 10), num_examples=300))
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        k = (y >= 0).sum(axis=1)
        assert sorted(np.unique(k, return_counts=True)[1].tolist()) == [len(x) // 3] * 3
        assert set(k.tolist()) == {4, 7, 10} and len(set(k[:6].tolist())) > 1   # mixed, not in blocks
        for xi, yi, ki in zip(x, y, k):
            pairs = dict(zip(xi[:2 * ki:2], xi[1:2 * ki:2]))
            assert len(set(xi[:2 * ki])) == 2 * ki and all(pairs[xi[t]] == yi[t] for t in np.nonzero(yi >= 0)[0])
    one = get_dataset(_cfg(name="mqar", seq_len=32, vocab_size=32, num_kv_pairs=7, num_examples=300))
    assert np.array_equal(one.x_train, mqar.generate(np.random.default_rng(0), 300, 32, 32, 7)[0])
    with pytest.raises(ConfigError, match="data.seq_len"):                   # checked at the largest count
        get_dataset(_cfg(name="mqar", seq_len=24, vocab_size=32, kv_pairs_mix=(4, 10)))
    with pytest.raises(ConfigError, match="data.kv_pairs_mix"):
        get_dataset(_cfg(name="mqar", seq_len=32, vocab_size=32, kv_pairs_mix=(4, 4)))


def test_mqar_rejects_too_short_sequences():
    with pytest.raises(ConfigError, match="data.seq_len"):
        get_dataset(_cfg(name="mqar", seq_len=10, num_kv_pairs=8))


def test_text_windows_are_next_characters(tmp_path):
    path = tmp_path / "t.txt"
    text = "the quick brown fox jumps over the lazy dog. " * 40
    path.write_text(text)
    ds = get_dataset(_cfg(name="text", path=str(path), seq_len=16))
    assert ds.task == "lm" and ds.x_train.shape[1] == 16
    vocab = ds.meta["vocab"]
    for x, y in zip(ds.x_train[:5], ds.y_train[:5]):
        s = "".join(vocab[i] for i in x)
        t = "".join(vocab[i] for i in y)
        assert s[1:] == t[:-1] and s in text


def test_text_missing_file_names_key(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        get_dataset(_cfg(name="text", path=str(tmp_path / "nope.txt")))


def test_cifar10_from_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 20))}
        with open(tmp_path / name, "wb") as f:
            pickle.dump(batch, f)
    ds = get_dataset(_cfg(name="cifar10", path=str(tmp_path)))
    assert ds.x_train.shape == (100, 32, 32, 3) and ds.x_test.shape == (20, 32, 32, 3)
    np.testing.assert_allclose(ds.x_train.mean((0, 1, 2)), 0.0, atol=1e-4)


def test_cifar10_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXLAB_CIFAR10", raising=False)
    with pytest.raises(ConfigError, match="cifar-10-python.tar.gz"):
        get_dataset(_cfg(name="cifar10", path=str(tmp_path)))


def test_batches_are_a_pure_function_of_key_and_step():
    x = np.arange(50, dtype=np.float32)[:, None]
    y = np.arange(50, dtype=np.int32)
    key = jax.random.PRNGKey(3)
    seen = []
    for step in range(5):  # one epoch of 5 batches of 10 covers every example once
        xb, yb = sample_batch(key, step, x, y, 10)
        xb2, _ = sample_batch(key, step, x, y, 10)
        np.testing.assert_array_equal(xb, xb2)
        np.testing.assert_array_equal(np.asarray(xb)[:, 0], np.asarray(yb))
        seen += np.asarray(yb).tolist()
    assert sorted(seen) == list(range(50))
    other, _ = sample_batch(key, 5, x, y, 10)  # the next epoch is another permutation
    assert not np.array_equal(np.asarray(other), np.asarray(sample_batch(key, 0, x, y, 10)[0]))


def test_chunk_permutations_give_the_same_batches():
    from jaxlab.data.batching import batch_from_permutations, chunk_permutations

    x = np.arange(70, dtype=np.float32)[:, None]
    y = np.arange(70, dtype=np.int32)
    key = jax.random.PRNGKey(1)
    for start, n in [(0, 5), (3, 17), (12, 1), (20, 40)]:  # chunks straddling 0, 1 and many epoch boundaries
        perms = chunk_permutations(key, start, n, 70, 16)
        for step in range(start, start + n):
            np.testing.assert_array_equal(batch_from_permutations(*perms, step, x, y, 16)[1],
                                          sample_batch(key, step, x, y, 16)[1])
