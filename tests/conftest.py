"""Test-wide JAX settings: rank promotion is an error (catches silent broadcasting bugs); XLA:CPU compiles without
LLVM's expensive optimisations (TEST_XLA_FLAGS) and through one persistent compilation cache, since compiling, not
running, is most of the suite's time.

The flags cut the suite's CPU time by about a third and change no test's verdict: every comparison is against a
reference compiled the same way, or within a stated tolerance of float rounding. ``XLA_FLAGS= python -m pytest``
(set, even empty) runs the suite with XLA's defaults instead; subprocesses inherit whichever was used.
"""
import os
import shutil
import tempfile

TEST_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)
# One persistent compilation cache for the session, shared by the xdist workers and every subprocess (they inherit
# the environment): tests compile the same programs again (a resumed run, a sweep's reference runs, a run that
# a subprocess repeats), and a hit skips XLA. Keyed by the program and the flags, so it cannot change a result. Removed at exit.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxlab-tests-xla-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_unconfigure(config):
    if _OWN_CACHE and not hasattr(config, "workerinput"):   # the controller made it; workers share it
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def x64():
    """Float64 for derivative/reference tests."""
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # older jax
        from jax.experimental import enable_x64
    with enable_x64():
        yield


@pytest.fixture
def tiny_config():
    """A seconds-long MNIST-1D run: tanh MLP, full-batch GD, MSE."""
    from jaxlab.schema import base_config

    c = base_config()
    c.data.num_train = 256
    c.data.num_test = 128
    c.model.widths = (32, 32)
    c.loss.name = "mse"
    c.optim.lr = 0.05
    c.train.steps = 40
    c.train.log_every = 10
    c.train.progress = False
    return c


# The files that take a minute or more, first. xdist's loadfile hands out whole files in collection order, so the
# long ones start at once and the short ones fill in around them: this shortens the wall time, not the CPU time.
FIRST = ("tests/notebooks/", "tests/scale/test_multiprocess.py", "tests/kernels/test_aot.py",
         "tests/test_cli_errors.py", "tests/curvature/test_tracker.py", "tests/test_attention_linear.py",
         "tests/checkpoint/test_resume.py", "tests/scale/test_data_parallel.py", "tests/test_experiments_stability.py",
         "tests/curvature/test_tracker_adaptive.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return next((i for i, prefix in enumerate(FIRST) if path.startswith(prefix)), len(FIRST))

    items.sort(key=rank)   # stable: within a rank, pytest's order
