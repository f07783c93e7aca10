"""Checks of the command-line tools' path flags, made as the flags are parsed.

A path that is not there stops the command with one line saying what is missing (absl's "Flags parsing error"),
before a model or any data loads, instead of a traceback from deep inside.
"""

from __future__ import annotations

import os
from typing import Callable

from absl import flags


def register_path_check(name: str, check: Callable[[str], object], flag_values=flags.FLAGS) -> None:
    """Makes the parsing of `--name` call `check(value)` when the flag is set.

    Args:
        name: the flag, already defined.
        check: raises `FileNotFoundError` (or `ValueError`) with a message for the user when the value names
            nothing usable.
        flag_values: the `FlagValues` holding the flag.
    """

    def validate(value):
        if value is not None:
            try:
                check(value)
            except (FileNotFoundError, ValueError) as e:
                raise flags.ValidationError(str(e)) from e
        return True

    flags.register_validator(name, validate, flag_values=flag_values)


def define_model_dir_flag(flag_values=flags.FLAGS) -> None:
    """Defines the required `--model_dir` of the commands that load a trained extractor, checked at parsing."""
    from rin_keras.triple_extractor import artifact_file

    flags.DEFINE_string("model_dir", None, "Training output folder, or an extractor .keras file.",
                        flag_values=flag_values)
    flags.mark_flag_as_required("model_dir", flag_values)
    register_path_check("model_dir", artifact_file, flag_values)


def existing_file(path: str) -> str:
    """Returns `path` when it is a file; raises `FileNotFoundError` otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No file {path}.")
    return path
