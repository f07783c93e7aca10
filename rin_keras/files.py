"""Files that an interruption never leaves half-written: each is written beside its final path and renamed into place."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
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
    temporary = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    try:
        with _interrupts_held():
            write(temporary)
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def _interrupts_held():
    """Holds Ctrl-C (SIGINT) back until the block ends, then delivers it, where Python handles the signal (the main
    thread): an interrupt inside a JAX array's conversion to NumPy ends in a TypeError, not in KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread() or not callable(signal.getsignal(signal.SIGINT)):
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


def is_local_path(path) -> bool:
    """Whether `path` names a file of the local file system (not a file object or a `gs://`-style address)."""
    return isinstance(path, (str, os.PathLike)) and "://" not in os.fspath(path)
