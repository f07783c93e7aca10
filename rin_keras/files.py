"""Files that an interruption never leaves half-written: each is written beside its final path and renamed into place."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import threading
from typing import Callable


def write_atomically(path: str, write: Callable[[str], object]) -> None:
    """Calls `write` with a temporary path beside `path`, then renames that file to `path`.

    The temporary name ends like `path` (`.keras`, `.weights.h5`, `.npy`), as the
    writers check extensions. A rename on one file system is atomic, so a
    process stopped at any point leaves either the earlier file at `path` or the
    new one, never part of one; the temporary is removed on an exception.
    Ctrl-C (SIGINT) takes effect once the file is in place.
    """
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):  # Said of `path`, not of the temporary file the writer would name.
        raise FileNotFoundError(errno.ENOENT, f"No folder {directory} to write {name} into", path)
    remove_stale_temporaries(directory, name)
    temporary = os.path.join(directory, temporary_name(name))
    try:
        with interrupts_held():
            write(temporary)
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def temporary_name(name: str) -> str:
    """The name under which this process writes `name` before renaming it into place: `.tmp-<host>-<pid>-<name>`."""
    return f".tmp-{socket.gethostname()}-{os.getpid()}-{name}"


def remove_stale_temporaries(directory: str, name: str | None = None) -> None:
    """Removes the `temporary_name`s of `name` (None: of any name) in `directory` that processes of this host left
    when they were killed (one of another host, whose process this one cannot see, is left)."""
    named = ".+" if name is None else re.escape(name)
    pattern = re.compile(rf"\.tmp-{re.escape(socket.gethostname())}-(\d+)-{named}")
    for entry in os.listdir(directory) if os.path.isdir(directory) else []:
        match = pattern.fullmatch(entry)
        if match and not _process_alive(int(match.group(1))):
            path = os.path.join(directory, entry)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's process.
        return True
    return True


class InterruptsHeld:
    """Holds Ctrl-C (SIGINT) back from `hold()` to `release()`, then delivers it, where Python handles the signal
    (the main thread); `interrupts_held` is the same as a block."""

    def __init__(self):
        self._received = None
        self._previous = None

    def hold(self) -> None:
        if (self._received is not None or threading.current_thread() is not threading.main_thread()
                or not callable(signal.getsignal(signal.SIGINT))):
            return
        received = self._received = []
        self._previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))

    def release(self) -> None:
        if self._received is None:
            return
        signal.signal(signal.SIGINT, self._previous)
        received, self._received = self._received, None
        if received:
            signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def interrupts_held():
    """Holds Ctrl-C (SIGINT) back until the block ends, then delivers it, where Python handles the signal (the main
    thread): an interrupt inside a JAX array's conversion to NumPy ends in a TypeError, not in KeyboardInterrupt."""
    held = InterruptsHeld()
    held.hold()
    try:
        yield
    finally:
        held.release()


def is_local_path(path) -> bool:
    """Whether `path` names a file of the local file system (not a file object or a `gs://`-style address)."""
    return isinstance(path, (str, os.PathLike)) and "://" not in os.fspath(path)
