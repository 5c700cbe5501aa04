"""The CNN's im2col ("gemm") convolution and reshape pooling against lax/flax references, in float64."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest


from jaxlab.models.cnn import CNN, GemmConv, pool2


pytestmark = pytest.mark.usefixtures("x64")  # tests/conftest.py


# even kernels pad asymmetrically (lax SAME: lo = (k - 1) // 2); odd 2-D kernels are covered below
@pytest.mark.parametrize("shape,k", [((3, 17, 2), 4), ((2, 6, 5, 2), 2)])
def test_gemm_conv_equals_lax_conv(shape, k):
    x = jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float64)
    d = len(shape) - 2
    ref = nn.Conv(5, (k,) * d, padding="SAME", param_dtype=jnp.float64)
    gemm = GemmConv(5, (k,) * d, param_dtype=jnp.float64)
    params = jax.jit(ref.init)(jax.random.PRNGKey(1), x)["params"]
    params["bias"] = jax.random.normal(jax.random.PRNGKey(2), (5,), jnp.float64)
    assert jax.tree.map(jnp.shape, jax.eval_shape(gemm.init, jax.random.PRNGKey(1), x)["params"]) == jax.tree.map(
        jnp.shape, params)
    np.testing.assert_allclose(gemm.apply({"params": params}, x), ref.apply({"params": params}, x), rtol=1e-12,
                               atol=1e-12)
    # and the gradients, with respect to the kernel, the bias and the input
    loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply({"params": p}, x)))  # noqa: E731
    for a, b in zip(jax.tree.leaves(jax.jit(jax.grad(loss(gemm), (0, 1)))(params, x)),
                    jax.tree.leaves(jax.jit(jax.grad(loss(ref), (0, 1)))(params, x))):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 9, 3), (2, 8, 3), (2, 5, 7, 3)])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool2_equals_flax_pooling(shape, kind):
    x = jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float64)
    window = (2,) * (len(shape) - 2)
    ref = (nn.max_pool if kind == "max" else nn.avg_pool)(x, window, strides=window)
    np.testing.assert_array_equal(pool2(x, kind), ref)
    g = lambda f: jax.grad(lambda x: jnp.sum(jnp.cos(f(x))))(x)  # noqa: E731  (no ties in random inputs)
    np.testing.assert_allclose(g(lambda x: pool2(x, kind)),
                               g(lambda x: (nn.max_pool if kind == "max" else nn.avg_pool)(x, window, strides=window)),
                               rtol=1e-12)


def test_vmapped_cnn_forms_agree_with_per_run():
    """vmap over 3 parameter sets of the gemm form == each set through the XLA form (value, grad, HVP), on images
    (the 1-D case runs in tests/sweep/test_curvature_vmap.py)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 8, 8, 3), jnp.float64)
    cnn = CNN(num_outputs=5, channels=(3, 4), conv_impl="xla")
    xla, gemm = cnn, cnn.for_vmap()
    params = jax.jit(jax.vmap(lambda k: xla.init(k, x)["params"]))(jax.random.split(jax.random.PRNGKey(1), 3))
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)

    def quantities(model):
        loss = lambda p: jnp.mean(model.apply({"params": p}, x) ** 2)  # noqa: E731
        def f(p):
            g = jax.grad(loss)(p)
            return loss(p), g, jax.jvp(jax.grad(loss), (p,), (g,))[1]
        return f

    got = jax.jit(jax.vmap(quantities(gemm)))(params)
    one = jax.jit(quantities(xla))
    for i in range(3):
        want = one(jax.tree.map(lambda p: p[i], params))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a[i], b, rtol=1e-10, atol=1e-12)
