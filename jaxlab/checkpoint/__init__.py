"""Checkpoint storage: orbax saving with retention and checksums, the in-training writer, and streaming merges.

    mngr = open_manager(checkpoint_dir(workdir), config.checkpoint)
    step, state, meta = restore_latest(mngr, template)           # newest checkpoint that verifies
    out = merge_workdir(workdir, "cosine", window=8)              # WSM merge of the last 8 checkpoints
    c = coefficients("one_minus_sqrt", 8)                         # the merge weights themselves

Modules: ``manager`` (orbax save/restore, checksums) · ``saver`` (the training callback, directory layout)
· ``coefficients`` (uniform, EMA, WSM decay shapes) · ``merge`` (streaming average, summary.json) ·
``settings`` (the config section). Resuming a run is the drivers' job: ``jaxlab.train.run_with_checkpoints``.
"""
from jaxlab.checkpoint.coefficients import SCHEMES, WSM_SHAPES, coefficients
from jaxlab.checkpoint.manager import CheckpointError, open_manager, restore_latest, restore_params
from jaxlab.checkpoint.merge import MergeError, merge_params, merge_workdir, window_steps
from jaxlab.checkpoint.saver import Checkpointer, checkpoint_dir, checkpoint_sets, has_checkpoints

__all__ = ["SCHEMES", "WSM_SHAPES", "coefficients", "CheckpointError", "open_manager", "restore_latest",
           "restore_params", "MergeError", "merge_params", "merge_workdir", "window_steps", "Checkpointer",
           "checkpoint_dir", "checkpoint_sets", "has_checkpoints"]
