"""Test helpers: build the builders from their dummy_data/ folders."""

import contextlib
import os
from unittest import mock

import tensorflow_datasets as tfds

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


class DummyDataTestCase(tfds.testing.DatasetBuilderTestCase):
    """DatasetBuilderTestCase whose builder checks the dummy data's own sha256 table.

    Subclasses set DATASET_CLASS, SPLITS and DUMMY_DATASET ("webnlg" or "nyt").
    Refer to it as `testing.DummyDataTestCase` so that pytest does not collect it.
    """

    DUMMY_DATASET = ""
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        cls._checksums = dummy_checksums(cls.DUMMY_DATASET)
        cls._checksums.__enter__()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._checksums.__exit__(None, None, None)
