"""Tests of the nyt builder on its dummy data."""

import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.nyt import nyt_dataset_builder


class NytTest(testing.DummyDataTestCase):
    DATASET_CLASS = nyt_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["partial", "exact"]
    SPLITS = {"validation": 2, "test": 1}
    DUMMY_DATASET = "nyt"


if __name__ == "__main__":
    tfds.testing.test_main()
