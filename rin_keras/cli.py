"""Flags that the command-line tools share, checked as they are parsed.

A path that is not there stops the command with one line saying what is missing (absl's "Flags parsing error"),
before a model or any data loads, instead of a traceback from deep inside.
"""

from __future__ import annotations

import os
from typing import Callable

from absl import flags


def register_path_check(name: str, check: Callable[[str], object], flag_values=flags.FLAGS) -> None:
    """Makes the parsing of `--name` call `check(value)` when the flag is set (on each value of a list flag).

    Args:
        name: the flag, already defined.
        check: raises `FileNotFoundError` (or `ValueError`) with a message for the user when the value names
            nothing usable.
        flag_values: the `FlagValues` holding the flag.
    """

    def validate(value):
        for path in [] if value is None else value if isinstance(value, list) else [value]:
            try:
                check(path)
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


def define_threshold_flag(flag_values=flags.FLAGS) -> None:
    """Defines `--threshold`, the score from which a triple is returned, in [0, 1] (default: the model's)."""
    flags.DEFINE_float("threshold", None, "Score (pair probability) from which a triple is returned, in [0, 1] "
                       "(default: the trained model's, 0.5 unless set; 0 returns every word pair and relation).",
                       flag_values=flag_values)
    flags.register_validator("threshold", lambda t: t is None or 0.0 <= t <= 1.0, "must be in [0, 1].",
                             flag_values=flag_values)


def load_extractor(flag_values=flags.FLAGS):
    """Returns the `RINTripleExtractor` of `--model_dir`, with `--threshold` where the command has it and it is set."""
    from rin_keras.triple_extractor import RINTripleExtractor

    try:
        extractor = RINTripleExtractor.from_preset(flag_values.model_dir)
    except (FileNotFoundError, ValueError) as e:  # What is wrong with the folder, in one line.
        raise SystemExit(f"--model_dir={flag_values.model_dir}: {e}") from e
    if "threshold" in flag_values and flag_values.threshold is not None:
        extractor.threshold = flag_values.threshold
    return extractor


def training_run(path: str) -> str:
    """Returns `path` when it is a training output folder (it holds `config.json`); raises otherwise."""
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"No config.json in {path}: pass a rin_keras.train --model_dir.")
    return path


def existing_file(path: str) -> str:
    """Returns `path` when it is a file; raises `FileNotFoundError` otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No file {path}.")
    return path


def file_to_write(path: str) -> str:
    """Returns `path` when a file can be written there (its folder exists, it is no folder); raises otherwise."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; name a file to write.")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No folder {folder} to write {os.path.basename(path)} in.")
    return path


def folder_to_write(path: str) -> str:
    """Returns `path` when it is a folder or nothing yet (a folder to make there, under no file); raises
    `ValueError` otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{path} is a file; name a folder.")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{path} lies under the file {parent}; name a folder.")
    return path
