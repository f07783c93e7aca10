"""Tests of the webnlg builder on its dummy data."""

import tensorflow_datasets as tfds

from tfds_builders import testing
from tfds_builders.webnlg import webnlg_dataset_builder


class WebnlgPartialTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = webnlg_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["partial", "exact"]
    SPLITS = {"train": 6, "validation": 2, "test": 2}
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        cls._patch = testing.dummy_checksums("webnlg")
        cls._patch.__enter__()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._patch.__exit__(None, None, None)


if __name__ == "__main__":
    tfds.testing.test_main()
