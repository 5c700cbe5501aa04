"""Storage faults as plain Python: a failed write is an OSError naming the path (whether Python or orbax wrote),
and a read or write orbax gave up on leaves nothing behind on stderr. Imports no jaxlab module.

    forgive_stray_callbacks()                               # once, before orbax is used
    with storage_errors(directory):                         # a full disk: OSError(ENOSPC, ..., directory)
        mngr.save(step, args=...)

    print(fatal_message(fault, "python -m experiments.eos_weight_decay --workdir=runs/eos", resumable=True))
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys

# errno values that say the storage (not the program) failed: full, over quota, too large, not writable, broken.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                            errno.EIO})
_OS_CODE = re.compile(r"os_error_code='?(\d+)'?")  # how tensorstore's status messages carry errno


def as_storage_error(exc: BaseException, path: str) -> OSError | None:
    """``exc`` (or its cause) as ``OSError(errno, strerror, path)`` when it is a storage failure, else None.

    orbax raises what tensorstore reports, a ValueError such as ``RESOURCE_EXHAUSTED: Failed writing: "...":
    No space left on device [os_error_code='28']``; Python's own writes raise OSError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = exc.errno if isinstance(exc, OSError) else None
        if code is None:
            m = _OS_CODE.search(str(exc))
            code = int(m.group(1)) if m else None
        if code in STORAGE_ERRNOS:
            return OSError(code, os.strerror(code), path)
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def storage_errors(path: str):
    """Re-raise a storage failure inside the block as :func:`as_storage_error`'s OSError (from the original);
    anything else as it is."""
    try:
        yield
    except Exception as e:
        fault = as_storage_error(e, path)
        if fault is None:
            raise
        raise fault from e


_previous_hook = None


def forgive_stray_callbacks() -> None:
    """Drop the ``RuntimeError: Event loop is closed`` that follow a failed orbax read or write.

    orbax runs a restore (or a save's commit) on a fresh event loop and closes it as soon as one operation fails;
    tensorstore then completes the operations still in flight and calls back into that closed loop. Each such
    callback's error reaches ``sys.unraisablehook`` with no object and would print a traceback, although the
    failure itself is reported (a corrupt checkpoint skipped, a full disk). The callbacks can come before the
    failure reaches the caller, so this is installed up front (idempotent); every other unraisable error goes to
    the hook that was there before."""
    global _previous_hook
    if _previous_hook is not None:
        return
    _previous_hook = sys.unraisablehook

    def hook(unraisable):
        exc = unraisable.exc_value
        if unraisable.object is None and isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        _previous_hook(unraisable)

    sys.unraisablehook = hook


def fatal_message(fault: OSError, rerun: str, resumable: bool) -> str:
    """The one line a run ended by ``fault`` (a storage failure) prints: the path, the reason, how to go on."""
    where = fault.filename or "the work directory"
    how = (f"resume with the same command: {rerun}" if resumable else
           f"start over (no checkpoint to resume from) with: {rerun} --overwrite")
    return f"cannot write {where}: {fault.strerror}. Free space or make it writable, then {how}"


class HeldOrbaxErrors(logging.Filter):
    """Holds back orbax's error records (each with a traceback; orbax logs a failed save before raising it) while
    a run goes: a storage fault then ends in one line of its own, and any other ending replays them.

        with HeldOrbaxErrors() as held:
            ...
            held.drop()            # on a storage fault, which the caller reports itself
    """

    def __init__(self, logger: str = "absl"):
        super().__init__()
        self.logger, self.held = logging.getLogger(logger), []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and f"{os.sep}orbax{os.sep}" in record.pathname:
            self.held.append(record)
            return False
        return True

    def drop(self) -> None:
        self.held = []

    def __enter__(self):
        self.logger.addFilter(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeFilter(self)
        for record in self.held:
            self.logger.handle(record)
        return False
