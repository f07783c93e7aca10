"""A user's folder of annotated sentences (CasRel JSON or JSON lines) as a TFDS dataset.

The folder holds `train` and usually `val` and `test` splits, each either a
CasRel JSON array (`train_triples.json`: `{"text": "<tokens joined by spaces>",
"triple_list": [[subject, relation, object], ...]}`) or JSON lines of raw text
(`train.jsonl`: one such object per line, the text as written, tokenised with
the project's tokeniser), and optionally `rel2id.json` (else the relations are
those of the train split, sorted). `folder_builder(directory)` returns a builder
whose config is named after the folder and a hash of its files, so an edited
folder is built again and an unchanged one is read from the TFDS cache.

Input is checked strictly: malformed JSON or records, an entity that is not in
its sentence, a dev/test relation that train lacks and an empty split are
errors naming the file and line; what is left out (empty sentences, repeated
triples) is counted in a warning.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import re
from typing import Iterator

import tensorflow_datasets as tfds
from absl import logging

from tfds_builders import casrel


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    """One user folder.

    Attributes:
        directory: the folder.
        split_files: {split: file name in the folder}.
        relations: relation names in id order.
        relations_source: where the relations come from, for messages.
    """

    directory: str = ""
    split_files: dict = dataclasses.field(default_factory=dict)
    relations: tuple = ()
    relations_source: str = ""

    def split_file(self, split: str) -> str:
        """Returns the name of `split`'s file in the folder (the JSON name where the folder lacks the split)."""
        return self.split_files.get(split, casrel.SPLIT_FILES[split])


def folder_config(directory: str) -> FolderConfig:
    """Describes `directory`: its split files, relations and a name that changes with its content.

    Raises:
        FileNotFoundError: no folder, or no train split in it.
        ValueError: malformed `rel2id.json` or train file, or an empty train split.
    """
    directory = os.path.abspath(directory)
    paths = casrel.find_split_files(directory, required=("train",))
    relations_path = os.path.join(directory, casrel.RELATIONS_FILE)
    if os.path.exists(relations_path):
        with open(relations_path, encoding="utf-8") as f:
            try:
                relations = casrel.parse_relation_names(json.load(f))
            except (json.JSONDecodeError, ValueError, AttributeError) as e:
                raise casrel.DataError(f"{relations_path}: {e}") from e
        source = relations_path
    else:
        relations = sorted({t[1].strip() for _, r in casrel.read_records(paths["train"]) for t in r["triple_list"]})
        source = f"the relations of {paths['train']}"
    if not relations:
        raise casrel.DataError(f"{source} names no relation: the train split needs annotated triples.")
    digest = hashlib.sha256()
    for path in sorted(paths.values()) + ([relations_path] if os.path.exists(relations_path) else []):
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read())
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(directory).lower()).strip("_") or "data"
    return FolderConfig(
        name=f"{slug}_{digest.hexdigest()[:12]}",
        description=f"Annotated sentences of {directory}.",
        directory=directory,
        split_files={split: os.path.basename(path) for split, path in paths.items()},
        relations=tuple(relations),
        relations_source=source,
    )


def folder_builder(directory: str, data_dir: str | None = None) -> "Builder":
    """Returns the (maybe unprepared) builder of the user folder `directory`."""
    return Builder(config=folder_config(directory), data_dir=data_dir)


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for a user folder; make it with `folder_builder(directory)`."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Raw texts: a period that ends a sentence inside a text is a token of its own (`Warsaw`, `.`).",
        "1.2.0": "An entity written with the punctuation after it (`London.`) spans its words alone.",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=casrel.features(list(self.builder_config.relations)), supervised_keys=None
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # The folder is read in place.
        config = self.builder_config
        return {
            split: self._generate_examples(os.path.join(config.directory, name), split)
            for split, name in config.split_files.items()
        }

    def _generate_examples(self, path: str, split: str) -> Iterator[tuple[str, dict]]:
        """Yields the examples of one split file; see `casrel.folder_example`."""
        relations = set(self.builder_config.relations)
        records = casrel.read_records(path)
        if not records:
            raise casrel.DataError(f"{path}: the {split} split has no sentences.")
        counts = collections.Counter()
        for line, record in records:
            example, example_counts = casrel.folder_example(record, relations, f"{path}:{line}",
                                                            pretokenized=path.endswith(".json"))
            counts.update(example_counts)
            if not example["tokens"]:
                counts["empty"] += 1
                continue
            yield f"{split}_{line}", example
        logging.info("%s: %d sentences, %d triples; %d mis-decoded texts repaired.", path, len(records),
                     counts["triples"], counts["repaired"])
        if counts["empty"] or counts["duplicates"] or counts["ambiguous"] or counts["trimmed"]:
            logging.warning(
                "%s: %d empty sentences left out, %d repeated triples kept once, %d entities found more than "
                "once in their sentence (the first occurrence taken), %d entities written with the punctuation "
                "after them (`London.`: the punctuation left out of the span).",
                path, counts["empty"], counts["duplicates"], counts["ambiguous"], counts["trimmed"],
            )
