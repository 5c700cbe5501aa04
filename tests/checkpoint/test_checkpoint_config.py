"""checkpoint.* values are checked before any compute, and errors name the key."""
import pytest

from jaxlab.config import ConfigError
from jaxlab.schema import base_config, validate


@pytest.mark.parametrize("key, value, needle", [
    ("every", 15, "checkpoint.every=15: must be a multiple of train.log_every=10"),
    ("every", -1, "checkpoint.every=-1"),
    ("keep_last", -2, "checkpoint.keep_last=-2"),
    ("keep_every", 30, "checkpoint.keep_every=30: must be a multiple of checkpoint.every=20"),
])
def test_bad_checkpoint_values_name_the_key(key, value, needle):
    c = base_config()
    c.checkpoint.every = 20
    c.checkpoint[key] = value
    with pytest.raises(ConfigError, match=needle):
        validate(c)


def test_resume_refuses_a_different_config(tmp_path):
    from jaxlab.io import config_mismatch
    from jaxlab.io import write_config

    c = base_config()
    write_config(str(tmp_path), c)
    c.train.progress = False          # free to differ
    assert config_mismatch(c, str(tmp_path)) == ""
    c.optim.lr = 0.5
    assert "optim.lr: 0.01 -> 0.5" in config_mismatch(c, str(tmp_path))
    assert config_mismatch(c, str(tmp_path), free_prefixes=("optim.",)) == ""  # an experiment's post-hoc keys
