"""Shared plumbing of the experiment entrypoints: flags, work directory, one-line errors.

    def main(config, workdir): ...
    if __name__ == "__main__":
        cli.main(main, __file__)     # --config (default experiments/configs/<name>.py, locked), --workdir, ...

    config = cli.parse_command("experiments/eos_weight_decay.py", ["prog", "--config.train.steps=100"])  # no run

Flags are defined only when an experiment runs as a script, so experiment modules import cleanly (tests,
notebooks). What the user sees on stderr:

* a bad input (a flag, a config value, a ``--config.KEY`` flag that a sweep axis also sets, the workdir): one line
  ``error: ...`` and exit code 2, before any compute and before the workdir is touched;
* a recovered fault (a corrupt checkpoint skipped on resume) or any other warning: one line ``warning: ...``;
* a fatal storage fault mid-run (a full disk, an unwritable directory): one line naming the path and the command
  that resumes, exit code 1.
"""
from __future__ import annotations

import errno
import importlib.util
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings

from absl import app, flags, logging
from ml_collections import config_flags

from jaxlab import distributed
from jaxlab.checkpoint.saver import has_checkpoints
from jaxlab.config import ConfigError, lookup
from jaxlab.faults import STORAGE_ERRNOS, HeldOrbaxErrors, fatal_message
from jaxlab.grid import axis_conflict
from jaxlab.io import WorkdirExistsError, config_mismatch, prepare_workdir, write_config
from jaxlab.schema import validate

FLAGS = flags.FLAGS


def _die(message, code: int = 2):
    """The one line every bad input (code 2) or fatal fault (code 1) gets: ``error: ...`` on stderr."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(code)


def _config_file(argv, default: str) -> str:
    """The config file ``argv`` names (``--config=PATH[:args]``), else ``default``."""
    for arg in argv[1:]:
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":", 1)[0]
    return default


def _parse(flag_values, argv, default_file: str):
    """absl's flag parsing with every failure as a ConfigError (absl prints a FATAL line and usage, exit 1)."""
    try:
        return flag_values(argv)
    except flags.Error as e:
        raise ConfigError(str(e)) from e
    except Exception as e:  # noqa: BLE001 - the config file itself failed to load (syntax, get_config raised)
        cause = e.__cause__ or e.__context__ or e
        raise ConfigError(f"--config={_config_file(argv, default_file)}: could not load it "
                          f"({type(cause).__name__}: {cause})") from e


def _default_config_file(entry_file: str) -> str:
    name = os.path.splitext(os.path.basename(entry_file))[0]
    return os.path.join(os.path.dirname(os.path.abspath(entry_file)), "configs", f"{name}.py")


def define_flags(entry_file: str, argv=None, flag_values=FLAGS):
    """Define --config (default: experiments/configs/<name>.py), --workdir, --overwrite, --resume and the
    multi-process flags on ``flag_values`` for the command line ``argv`` (default sys.argv); -> the config's
    FlagHolder. Raises ConfigError (a missing config file, an override naming no key)."""
    argv = sys.argv if argv is None else argv
    default = _default_config_file(entry_file)
    path = _config_file(argv, default)
    if not os.path.isfile(path):
        raise ConfigError(f"--config={path}: no such file (configs live in experiments/configs/)")
    try:
        config = config_flags.DEFINE_config_file("config", default, "Experiment config file (.py with get_config()).",
                                                 flag_values=flag_values, lock_config=True, sys_argv=list(argv))
    except (KeyError, AttributeError) as e:  # config_flags applies --config.a.b overrides right here
        raise ConfigError(_unknown_override(argv, default) or e) from e
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", None, "Output directory (default: runs/<experiment>-<time>).", **define)
    flags.DEFINE_bool("overwrite", False, "Replace results (and checkpoints) already in --workdir.", **define)
    flags.DEFINE_string("coordinator_address", None, "Multi-process: host:port of process 0's coordinator "
                        "(else $JAXLAB_COORDINATOR_ADDRESS; on Cloud TPU / Slurm found by JAX itself).", **define)
    flags.DEFINE_integer("num_processes", None, "Multi-process: how many processes (else $JAXLAB_NUM_PROCESSES).",
                         **define)
    flags.DEFINE_integer("process_id", None, "Multi-process: this process's index (else $JAXLAB_PROCESS_ID).",
                         **define)
    flags.DEFINE_integer("heartbeat_timeout_s", None, "Multi-process: a process silent this long fails the run "
                         f"(default {distributed.DEFAULT_HEARTBEAT_S}).", **define)
    flags.DEFINE_bool("resume", True, "With config.checkpoint.every > 0, continue from the checkpoints in --workdir "
                      "(--noresume: refuse a --workdir that holds results).", **define)
    return config


def _unknown_override(argv, default_file: str) -> str | None:
    """The first ``--config.a.b=...`` of ``argv`` naming no key of the config file, as a message."""
    path = _config_file(argv, default_file)
    try:
        spec = importlib.util.spec_from_file_location("_jaxlab_config_file", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config()
    except Exception:  # noqa: BLE001 - only a better message is at stake
        return None
    for arg in argv[1:]:
        if arg.startswith("--config."):
            key = arg[len("--config."):].split("=", 1)[0]
            found, hint = lookup(config, key)
            if not found:
                return f"--config.{key}: config.{key} is not a key of {path}{hint}"
    return None


def _checked(config, flag_values):
    """``config`` once no ``--config.KEY`` flag sets a key that a grid of it (``sweep.axes``, ``*_axes``) also
    sets; else ConfigError naming both (:func:`jaxlab.grid.axis_conflict`)."""
    conflict = axis_conflict(config, config_flags.get_override_values(flag_values["config"]))
    if conflict:
        raise ConfigError(conflict)
    return config


def parse_command(entry_file: str, argv) -> object:
    """The config the command line ``argv`` (``argv[0]`` the program) gives the experiment ``entry_file``, parsed
    by that experiment's own flags and validated, without running it (fresh flags, not ``FLAGS``; the
    experiment's own ``check`` is not run). Raises ConfigError: the line the command would print."""
    flag_values = flags.FlagValues()
    holder = define_flags(entry_file, argv, flag_values)
    _parse(flag_values, list(argv), _default_config_file(entry_file))
    return _checked(validate(holder.value), flag_values)


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


def _prepare(workdir: str, resuming: bool) -> tuple[str, bool]:
    """(absolute workdir, whether this call created it), the workdir proven writable; ConfigError otherwise."""
    path = os.path.abspath(os.path.expanduser(workdir))
    created = not os.path.exists(path)
    try:
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        path = prepare_workdir(workdir, FLAGS.overwrite, resume=resuming)
        with tempfile.TemporaryFile(dir=path):
            pass
    except WorkdirExistsError:
        raise
    except OSError as e:
        if created and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        raise ConfigError(f"--workdir={workdir}: cannot write there ({e.strerror or e})") from e
    return path, created


def _command(argv, workdir: str) -> str:
    """The command line that reruns this one in the same workdir."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None else ["python", argv[0]]
    given = any(a == "--workdir" or a.startswith("--workdir=") for a in argv[1:])
    return shlex.join(head + list(argv[1:]) + ([] if given else [f"--workdir={workdir}"]))


def _show_warning(say):
    def show(message, category, filename, lineno, file=None, line=None):
        say(f"warning: {' '.join(str(message).split())}")
    return show


def main(main_fn, entry_file: str, *, check=None, resume: bool | None = None, resume_free: tuple[str, ...] = ()):
    """Define the flags, then validate the config and the workdir before any compute and call
    ``main_fn(config, workdir)``. The experiment's name is its file's.

    check: ``check(config)``, the experiment's own checks (raise ConfigError), run after the library's.
    resume: continue from the workdir's checkpoints (None: the --resume flag; see :func:`_resuming`).
    resume_free: config prefixes that may differ from the checkpoints' run (post-hoc settings, e.g. ("wsm.",))."""
    name = os.path.splitext(os.path.basename(entry_file))[0]
    try:
        config_flag = define_flags(entry_file)
    except ConfigError as e:
        _die(e)

    def _main(argv):
        logging.set_verbosity(logging.WARNING)  # keep jax's backend probing out of the user's terminal
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        # before any JAX computation: the processes of a multi-process run find each other here
        distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                               FLAGS.heartbeat_timeout_s)
        say = (lambda msg: print(msg, file=sys.stderr)) if distributed.is_writer() else (lambda msg: None)
        warnings.showwarning = _show_warning(say)
        try:
            config = _checked(validate(config_flag.value), FLAGS)
            if check is not None:
                check(config)
            workdir = FLAGS.workdir or default_workdir(name)
            resuming = _resuming(config, os.path.abspath(os.path.expanduser(workdir)), resume, resume_free)
            workdir, created = _prepare(workdir, resuming)
        except (ConfigError, WorkdirExistsError) as e:
            _die(e)
        distributed.barrier("workdir ready")  # process 0 has cleared (--overwrite) and created it
        rerun = _command(sys.argv, workdir)
        with HeldOrbaxErrors() as held:
            try:
                write_config(workdir, config)
                say(f"[{name}] {'resuming from the checkpoints in' if resuming else 'writing results to'} {workdir}")
                main_fn(config, workdir)
            except ConfigError as e:  # found once the data is known (e.g. a batch larger than the dataset)
                if created:
                    shutil.rmtree(workdir, ignore_errors=True)  # nothing but what this call began to write
                _die(e)
            except OSError as e:
                if e.errno not in STORAGE_ERRNOS:
                    raise
                held.drop()
                e = e if e.filename else OSError(e.errno, e.strerror, workdir)
                _die(fatal_message(e, rerun, bool(config.checkpoint.every) and has_checkpoints(workdir)), code=1)
        say(f"[{name}] done: results in {workdir}")

    app.run(_main, flags_parser=lambda argv: _die_on_error(_parse, FLAGS, argv, _default_config_file(entry_file)))


def _die_on_error(fn, *args):
    try:
        return fn(*args)
    except ConfigError as e:
        _die(e)
