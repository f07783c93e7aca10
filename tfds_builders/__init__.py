"""TFDS builders for the joint entity and relation extraction benchmarks.

Importing this package registers the `webnlg`, `webnlg3` and `nyt` builders with TFDS; `casrel_folder`
reads a user's own folder (`casrel_folder.folder_builder(directory)`).
"""

from tfds_builders.casrel_folder.casrel_folder_dataset_builder import Builder as CasrelFolderBuilder
from tfds_builders.nyt.nyt_dataset_builder import Builder as NytBuilder
from tfds_builders.webnlg.webnlg_dataset_builder import Builder as WebnlgBuilder
from tfds_builders.webnlg3.webnlg3_dataset_builder import Builder as Webnlg3Builder

__all__ = ["CasrelFolderBuilder", "NytBuilder", "WebnlgBuilder", "Webnlg3Builder"]
