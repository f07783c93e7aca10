"""Tests of the webnlg builder on its dummy data."""

import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.webnlg import webnlg_dataset_builder


class WebnlgTest(testing.DummyDataTestCase):
    DATASET_CLASS = webnlg_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["partial", "exact"]
    SPLITS = {"train": 6, "validation": 2, "test": 2}
    DUMMY_DATASET = "webnlg"


if __name__ == "__main__":
    tfds.testing.test_main()
