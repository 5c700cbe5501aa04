"""WSM decay shapes (jaxlab/checkpoint/coefficients.py; lives here because tests/checkpoint is outside this change's
files): every shape decays from 1 to its end value 0, so the merge schemes are comparable."""
import numpy as np
import pytest

from jaxlab.checkpoint.coefficients import WSM_SHAPES, coefficients


@pytest.mark.parametrize("shape", sorted(WSM_SHAPES))
def test_every_shape_runs_from_one_to_zero(shape):
    f = WSM_SHAPES[shape]
    x = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose([f(0.0), f(1.0)], [1.0, 0.0], atol=1e-15)
    assert np.all(np.diff(f(x)) <= 1e-15)


def test_inverse_sqrt_is_the_rescaled_inverse_sqrt_profile():
    x = np.linspace(0.0, 1.0, 11)
    r = 1.0 / np.sqrt(1.0 + 15.0 * x)
    np.testing.assert_allclose(WSM_SHAPES["inverse_sqrt"](x), (r - r[-1]) / (r[0] - r[-1]), rtol=1e-14, atol=1e-15)
    c = coefficients("inverse_sqrt", 8)
    assert np.all(c >= 0) and abs(c.sum() - 1.0) < 1e-12
