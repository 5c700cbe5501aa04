"""Checkpoints: orbax saving with retention, exact resume, and streaming checkpoint averaging.

    res = run_with_checkpoints(config, seed, workdir)        # resumes from workdir/checkpoints when present
    out = merge_workdir(workdir, "cosine", window=8)          # WSM merge of the last 8 checkpoints, evaluated
    c = coefficients("one_minus_sqrt", 8)                     # the merge weights themselves

Modules: ``manager`` (orbax save/restore, checksums) · ``resume`` (the training callback, metrics cut-back)
· ``coefficients`` (uniform, EMA, WSM decay shapes) · ``merge`` (streaming average, evaluation, summary.json)
· ``study`` (the WSM experiment). The in-training parameter EMA lives in the optimiser state
(``jaxlab.optim.ema``) and is re-exported here.
"""
from jaxlab.checkpoint.coefficients import SCHEMES, WSM_SHAPES, coefficients
from jaxlab.checkpoint.manager import CheckpointError, open_manager, restore_latest, restore_params
from jaxlab.checkpoint.resume import Checkpointer, checkpoint_dir, checkpoint_sets, has_checkpoints, run_with_checkpoints
from jaxlab.optim.ema import ema_params, with_param_ema

__all__ = ["SCHEMES", "WSM_SHAPES", "coefficients", "CheckpointError", "open_manager", "restore_latest",
           "restore_params", "Checkpointer", "checkpoint_dir", "checkpoint_sets", "has_checkpoints",
           "run_with_checkpoints", "ema_params", "with_param_ema"]
