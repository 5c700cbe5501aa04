"""Training: the trainer's pure pieces, the loop that drives one run, and resuming from checkpoints.

    result = run(config, seed)                              # one run (loop.py)
    result = run_with_checkpoints(config, seed, workdir)    # ... checkpointed, resuming from workdir (resume.py)
    trainer = make_train(config, dataset)                   # init / advance / measure, jittable (trainer.py)
"""
from jaxlab.train.loop import (Compiled, Result, drive, make_record, measure_flags, run, schedule_points, summarize,
                               to_python)
from jaxlab.train.resume import resume_chunk, run_with_checkpoints
from jaxlab.train.trainer import EVAL_CHUNK, TrainState, Trainer, make_train

__all__ = ["Compiled", "EVAL_CHUNK", "Result", "TrainState", "Trainer", "drive", "make_record",
           "make_train", "resume_chunk", "run", "run_with_checkpoints", "schedule_points", "summarize", "to_python"]
