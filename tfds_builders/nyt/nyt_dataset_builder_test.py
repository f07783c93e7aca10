"""Tests of the nyt builder on its dummy data."""

import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.nyt import nyt_dataset_builder


class NytTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = nyt_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["partial", "exact"]
    SPLITS = {"validation": 2, "test": 1}
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        cls._patch = testing.dummy_checksums("nyt")
        cls._patch.__enter__()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._patch.__exit__(None, None, None)


if __name__ == "__main__":
    tfds.testing.test_main()
