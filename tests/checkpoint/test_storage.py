"""Checkpoint storage: every item is a standard orbax PyTree of named leaves (plain orbax opens it without jaxlab),
restore_latest is bitwise by key path (curv None or a tree, stacked states, empty optimiser states), and a torn or
missing item is skipped with a warning in favour of an older step."""
import json
import os
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from jaxlab.checkpoint import manager as mgr
from jaxlab.train import TrainState


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense(5)(x)))


def _params(seed=0):
    return MLP().init(jax.random.PRNGKey(seed), jnp.zeros((1, 4)))["params"]


def _state(tx=None, curv=None, seed=0, updates=2):
    """A TrainState after ``updates`` real optax updates of an MLP on a least-squares loss."""
    tx = tx or optax.adam(1e-3)
    params = _params(seed)
    opt_state = tx.init(params)
    x = jax.random.normal(jax.random.PRNGKey(seed + 1), (8, 4))
    for _ in range(updates):
        grads = jax.grad(lambda p: jnp.mean(MLP().apply({"params": p}, x) ** 2))(params)
        upd, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, upd)
    return TrainState(step=jnp.int32(updates), params=params, opt_state=opt_state, key=jax.random.PRNGKey(seed + 2),
                      ref_loss=jnp.float32(0.75), diverged=jnp.bool_(False), diverged_step=jnp.int32(-1), curv=curv)


def _paths(tree):
    return sorted(jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0])


def _assert_bitwise(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, jax.tree_util.keystr(path)
        assert a.tobytes() == b.tobytes(), jax.tree_util.keystr(path)


def _save(directory, states: dict, **kw):
    """Save {step: state}; return the manager (closed by the caller)."""
    m = mgr.open_manager(str(directory), **kw)
    for step, s in states.items():
        mgr.save(m, step, mgr.host_copy(s), {"note": "test"})
    m.wait_until_finished()
    return m


def _truncate_largest(directory):
    files = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs]
    victim = max(files, key=os.path.getsize)
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)


# ------------------------------------------------------------------------------------------------ layout

def test_adam_state_opens_with_plain_orbax(tmp_path):
    state = _state()
    host = mgr.host_copy(state)
    m = _save(tmp_path, {2: state})
    m.close()
    step_dir = tmp_path / "2"
    assert {"params", "opt_state", "train", "meta"} <= set(os.listdir(step_dir))
    plain = {item: ocp.StandardCheckpointer().restore(str(step_dir / item)) for item in ("params", "opt_state", "train")}

    # Parameters: the flax tree as is.
    assert _paths(plain["params"]) == _paths(host.params)
    _assert_bitwise(plain["params"], host.params)

    # Optimiser state: optax.adam is chain(scale_by_adam, scale_by_learning_rate) -> (ScaleByAdamState, EmptyState).
    adam = host.opt_state[0]
    assert isinstance(adam, optax.ScaleByAdamState) and isinstance(host.opt_state[1], optax.EmptyState)
    assert set(plain["opt_state"]) == {"0"}                      # the EmptyState has no leaves, hence no key
    named = plain["opt_state"]["0"]
    assert set(named) == {"count", "mu", "nu"}
    assert _paths(named["nu"]) == _paths(host.params) == _paths(named["mu"])  # second moments: the params' paths
    _assert_bitwise(named["mu"], adam.mu)
    _assert_bitwise(named["nu"], adam.nu)
    assert np.asarray(named["count"]).tobytes() == np.asarray(adam.count).tobytes()
    assert int(named["count"]) == 2

    # Everything else, by field name.
    assert set(plain["train"]) == {"step", "key", "ref_loss", "diverged", "diverged_step"}
    for name in plain["train"]:
        a, b = np.asarray(plain["train"][name]), np.asarray(getattr(host, name))
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name

    # meta: plain JSON, a CRC per leaf path.
    meta_files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir / "meta") for f in fs]
    meta = json.load(open(meta_files[0]))
    assert meta["step"] == 2 and meta["note"] == "test" and meta["format"] == mgr.FORMAT
    assert set(meta["crc"]["opt_state"]) == {"0/count"} | {f"0/{m}/{p}" for m in ("mu", "nu") for p in
                                                           ("Dense_0/bias", "Dense_0/kernel", "Dense_1/bias",
                                                            "Dense_1/kernel")}
    assert meta["crc"]["params"]["Dense_1/kernel"] == mgr.crc(np.asarray(host.params["Dense_1"]["kernel"]))


def test_tree_to_dict_names_namedtuple_fields_and_tuple_indices():
    params = _params()
    st = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)).init(params)
    d = mgr.tree_to_dict(st)
    assert set(d) == {"1"}                     # clip's EmptyState: no leaves
    assert set(d["1"]) == {"0"} and set(d["1"]["0"]) == {"count", "mu", "nu"}
    assert mgr.tree_to_dict({"a": None, "b": (), "c": optax.EmptyState()}) == {}
    back = mgr.dict_to_tree(st, d)
    _assert_bitwise(back, st)
    assert isinstance(back[1][0], optax.ScaleByAdamState) and isinstance(back[0], optax.EmptyState)
    with pytest.raises(mgr.CheckpointError, match="no leaf"):
        mgr.dict_to_tree(st, {"1": {"0": {"count": d["1"]["0"]["count"], "mu": d["1"]["0"]["mu"]}}})
    with pytest.raises(mgr.CheckpointError, match="does not have"):
        mgr.dict_to_tree(st, {**d, "2": np.zeros(1)})


# ------------------------------------------------------------------------------------------------ round trips

def _curv(params):
    return {"vectors": jax.tree.map(lambda p: jnp.stack([p, -p]), params), "values": jnp.arange(2.0)}


@pytest.mark.parametrize("case", ["adam", "adam_curv", "stacked", "sgd_empty", "inject_adamw"])
def test_restore_latest_round_trip_is_bitwise(tmp_path, case):
    if case == "stacked":  # a vmapped sweep chunk: a leading run axis on every leaf
        state = jax.vmap(lambda s: _state(seed=0, curv=_curv(_params(0))).replace(
            key=jax.random.fold_in(jax.random.PRNGKey(9), s)))(jnp.arange(3))
        state = state.replace(params=jax.tree.map(lambda x: x * jnp.arange(1.0, 4.0).reshape(-1, *[1] * (x.ndim - 1)),
                                                  state.params))
    elif case == "sgd_empty":  # no optimiser leaves at all: no opt_state item is written
        state = _state(tx=optax.sgd(0.1))
    elif case == "inject_adamw":  # nested NamedTuples and a hyperparameter dict
        state = _state(tx=optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3, weight_decay=0.1))
    else:
        state = _state(curv=_curv(_params()) if case == "adam_curv" else None)
    old = state.replace(step=state.step - 1, params=jax.tree.map(lambda x: x + 1, state.params))
    host = mgr.host_copy(state)
    m = _save(tmp_path, {5: old, 10: state})
    if case == "sgd_empty":
        assert "opt_state" not in os.listdir(tmp_path / "10")
    if case == "adam_curv":
        plain = ocp.StandardCheckpointer().restore(str(tmp_path / "10" / "train"))
        _assert_bitwise(plain["curv"], host.curv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # nothing is skipped
        step, got, meta = mgr.restore_latest(m, state)
        step5, got5, _ = mgr.restore_latest(m, state, max_step=9)
    m.close()
    assert step == 10 and meta["note"] == "test" and step5 == 5
    _assert_bitwise(got, host)
    _assert_bitwise(got5, mgr.host_copy(old))
    assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(got))   # host numpy, not device arrays
    # A ShapeDtypeStruct template works the same.
    m = mgr.open_manager(str(tmp_path), read_only=True)
    _, got_sds, _ = mgr.restore_latest(m, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state))
    items, _ = mgr.restore_raw(m, 10)
    m.close()
    _assert_bitwise(got_sds, host)
    assert set(items) == {"params", "opt_state", "train"}


# ------------------------------------------------------------------------------------------------ bad checkpoints

@pytest.mark.parametrize("damage", ["truncate_opt_state", "truncate_train", "delete_params", "edit_meta_crc"])
def test_bad_checkpoint_is_skipped_with_a_warning(tmp_path, damage):
    state = _state(curv=_curv(_params()))
    older = state.replace(step=jnp.int32(1), opt_state=jax.tree.map(lambda x: x * 2, state.opt_state))
    m = _save(tmp_path, {1: older, 2: state})
    m.close()
    item = damage.split("_", 1)[1]
    if damage.startswith("truncate"):
        _truncate_largest(tmp_path / "2" / item)
    elif damage == "delete_params":
        import shutil
        shutil.rmtree(tmp_path / "2" / "params")
    else:  # a leaf's checksum no longer matches (as if its bytes had changed)
        meta_file = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "2" / "meta") for f in fs][0]
        meta = json.load(open(meta_file))
        meta["crc"]["opt_state"]["0/nu/Dense_0/kernel"] ^= 1
        json.dump(meta, open(meta_file, "w"))
    m = mgr.open_manager(str(tmp_path), read_only=True)
    with pytest.warns(RuntimeWarning, match="skipping checkpoint.*step 2"):
        step, got, _ = mgr.restore_latest(m, state)
    assert step == 1
    _assert_bitwise(got, mgr.host_copy(older))
    if damage == "delete_params":
        with pytest.raises(mgr.CheckpointError):
            mgr.restore_params(m, 2)
    m.close()


def test_restore_params_checks_checksums(tmp_path):
    state = _state()
    m = _save(tmp_path, {3: state})
    _assert_bitwise(mgr.restore_params(m, 3), mgr.host_copy(state.params))
    m.close()
    _truncate_largest(tmp_path / "3" / "params")
    m = mgr.open_manager(str(tmp_path), read_only=True)
    with pytest.raises(mgr.CheckpointError):
        mgr.restore_params(m, 3)
    m.close()


def test_checkpoint_that_does_not_fit_the_template_is_skipped(tmp_path):
    with_curv = _state(curv=_curv(_params()))
    m = _save(tmp_path, {4: with_curv})
    with pytest.warns(RuntimeWarning, match="skipping checkpoint.*does not have.*curv"):
        assert mgr.restore_latest(m, with_curv.replace(curv=None)) == (None, None, None)
    m.close()
