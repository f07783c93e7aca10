"""TFDS builders for the joint entity and relation extraction benchmarks.

Importing this package registers the `webnlg` and `nyt` builders with TFDS.
"""

from tfds_builders.nyt.nyt_dataset_builder import Builder as NytBuilder
from tfds_builders.webnlg.webnlg_dataset_builder import Builder as WebnlgBuilder

__all__ = ["NytBuilder", "WebnlgBuilder"]
