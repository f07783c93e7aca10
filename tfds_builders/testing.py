"""Test helpers: build the builders from their dummy_data/ folders."""

import contextlib
import os
from unittest import mock

from tfds_builders import casrel

_ROOT = os.path.dirname(os.path.abspath(__file__))


def dummy_dir(dataset: str) -> str:
    """Returns the dummy manual directory of `dataset` ("webnlg" or "nyt")."""
    return os.path.join(_ROOT, dataset, "dummy_data")


@contextlib.contextmanager
def dummy_checksums(dataset: str):
    """Makes the builders verify files against the dummy data's own sha256 table."""
    with mock.patch.object(
        casrel.CasRelBuilder, "CHECKSUMS_FILE", os.path.join(dummy_dir(dataset), "checksums.tsv")
    ):
        yield
