"""Shared plumbing of the experiment entrypoints: flags, work directory, clean errors.

    def main(config, workdir): ...
    if __name__ == "__main__":
        cli.main(main, __file__)     # --config (default experiments/configs/<name>.py, locked), --workdir, ...

Flags are defined only when an experiment runs as a script, so experiment modules import cleanly (tests,
notebooks). Every bad input (config value, override key, workdir) is one line on stderr and exit code 2,
before any compute and before the workdir is touched.
"""
from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from jaxlab import distributed
from jaxlab.checkpoint.saver import has_checkpoints
from jaxlab.config import ConfigError
from jaxlab.io import WorkdirExistsError, config_mismatch, prepare_workdir, write_config
from jaxlab.schema import validate

FLAGS = flags.FLAGS


def _die(message: str):
    """The one line every bad input gets: ``error: ...`` on stderr, exit code 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


def _config_file(default: str) -> str:
    """The config file the command line names (``--config=PATH[:args]``), else ``default``."""
    for arg in sys.argv[1:]:
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":", 1)[0]
    return default


def _parse_flags(argv):
    """absl's flag parsing with every failure as one line (absl prints a FATAL line and usage, exit 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        _die(e)
    except Exception as e:  # noqa: BLE001 - the config file itself failed to load (syntax, get_config raised)
        cause = e.__cause__ or e.__context__ or e
        _die(f"--config={_config_file('')}: could not load it ({type(cause).__name__}: {cause})")


def define_flags(entry_file: str):
    """Define --config (default: experiments/configs/<name>.py), --workdir and --overwrite."""
    name = os.path.splitext(os.path.basename(entry_file))[0]
    default = os.path.join(os.path.dirname(os.path.abspath(entry_file)), "configs", f"{name}.py")
    path = _config_file(default)
    if not os.path.isfile(path):
        _die(f"--config={path}: no such file (configs live in experiments/configs/)")
    try:
        config = config_flags.DEFINE_config_file("config", default, "Experiment config file (.py with get_config()).",
                                                 lock_config=True)
    except (KeyError, AttributeError) as e:  # config_flags applies --config.a.b overrides right here
        _die(_unknown_override(default) or e)
    flags.DEFINE_string("workdir", None, "Output directory (default: runs/<experiment>-<time>).")
    flags.DEFINE_bool("overwrite", False, "Replace results (and checkpoints) already in --workdir.")
    flags.DEFINE_string("coordinator_address", None, "Multi-process: host:port of process 0's coordinator "
                        "(else $JAXLAB_COORDINATOR_ADDRESS; on Cloud TPU / Slurm found by JAX itself).")
    flags.DEFINE_integer("num_processes", None, "Multi-process: how many processes (else $JAXLAB_NUM_PROCESSES).")
    flags.DEFINE_integer("process_id", None, "Multi-process: this process's index (else $JAXLAB_PROCESS_ID).")
    flags.DEFINE_integer("heartbeat_timeout_s", None, "Multi-process: a process silent this long fails the run "
                         f"(default {distributed.DEFAULT_HEARTBEAT_S}).")
    flags.DEFINE_bool("resume", True, "With config.checkpoint.every > 0, continue from the checkpoints in --workdir "
                      "(--noresume: refuse a --workdir that holds results).")
    return config


def _unknown_override(default_file: str) -> str | None:
    """The first ``--config.a.b=...`` on the command line naming no key of the config file, as a message."""
    path = _config_file(default_file)
    try:
        spec = importlib.util.spec_from_file_location("_jaxlab_config_file", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config()
    except Exception:  # noqa: BLE001 - only a better message is at stake
        return None
    for arg in sys.argv[1:]:
        if not arg.startswith("--config."):
            continue
        key = arg[len("--config."):].split("=", 1)[0]
        node, done = config, []
        for part in key.split("."):
            if not hasattr(node, "keys") or part not in node:
                options = list(node.keys()) if hasattr(node, "keys") else []
                hint = difflib.get_close_matches(part, options, n=1)
                where = ".".join(done)
                extra = f" (did you mean {where + '.' if where else ''}{hint[0]}?)" if hint else ""
                return f"--config.{key}: config.{key} is not a key of {path}{extra}"
            node, done = node[part], done + [part]
    return None


def default_workdir(name: str) -> str:
    return os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _resuming(config, workdir: str, resume: bool | None, free: tuple[str, ...]) -> bool:
    """Resume when asked (default: --resume) and checkpointing is on and the workdir holds checkpoints, the
    config being the one they were written with (up to keys that do not change the numbers, and ``free``)."""
    resume = FLAGS.resume if resume is None else resume
    if not resume or FLAGS.overwrite or not config.checkpoint.every or not has_checkpoints(workdir):
        return False
    diff = config_mismatch(config, workdir, free)
    if diff:
        raise ConfigError(f"--workdir={workdir} holds checkpoints of a different config ({diff}); "
                          f"pass --overwrite to start over or choose another --workdir")
    return True


def main(main_fn, entry_file: str, *, check=None, resume: bool | None = None, resume_free: tuple[str, ...] = ()):
    """Define the flags, then validate the config and the workdir before any compute and call
    ``main_fn(config, workdir)``. The experiment's name is its file's.

    check: ``check(config)``, the experiment's own checks (raise ConfigError), run after the library's.
    resume: continue from the workdir's checkpoints (None: the --resume flag; see :func:`_resuming`).
    resume_free: config prefixes that may differ from the checkpoints' run (post-hoc settings, e.g. ("wsm.",))."""
    name = os.path.splitext(os.path.basename(entry_file))[0]
    config_flag = define_flags(entry_file)

    def _main(argv):
        logging.set_verbosity(logging.WARNING)  # keep jax's backend probing out of the user's terminal
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        # before any JAX computation: the processes of a multi-process run find each other here
        distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                               FLAGS.heartbeat_timeout_s)
        say = (lambda msg: print(msg, file=sys.stderr)) if distributed.is_writer() else (lambda msg: None)
        try:
            config = config_flag.value
            validate(config)
            if check is not None:
                check(config)
            workdir = FLAGS.workdir or default_workdir(name)
            resuming = _resuming(config, os.path.abspath(os.path.expanduser(workdir)), resume, resume_free)
            created = not os.path.exists(os.path.abspath(os.path.expanduser(workdir)))
            workdir = prepare_workdir(workdir, FLAGS.overwrite, resume=resuming)
        except (ConfigError, WorkdirExistsError) as e:
            _die(e)
        distributed.barrier("workdir ready")  # process 0 has cleared (--overwrite) and created it
        write_config(workdir, config)
        say(f"[{name}] {'resuming from the checkpoints in' if resuming else 'writing results to'} {workdir}")
        try:
            main_fn(config, workdir)
        except ConfigError as e:  # found once the data is known (e.g. a batch larger than the dataset)
            if created:
                shutil.rmtree(workdir, ignore_errors=True)  # nothing but what this call began to write
            _die(e)
        say(f"[{name}] done: results in {workdir}")

    app.run(_main, flags_parser=_parse_flags)
