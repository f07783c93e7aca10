"""TFDS builders for the joint entity and relation extraction benchmarks.

Importing this package registers the `webnlg` and `nyt` builders with TFDS; `casrel_folder`
reads a user's own folder (`casrel_folder.folder_builder(directory)`).
"""

from tfds_builders.casrel_folder.casrel_folder_dataset_builder import Builder as CasrelFolderBuilder
from tfds_builders.nyt.nyt_dataset_builder import Builder as NytBuilder
from tfds_builders.webnlg.webnlg_dataset_builder import Builder as WebnlgBuilder

__all__ = ["CasrelFolderBuilder", "NytBuilder", "WebnlgBuilder"]
