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
        """Returns the name of `split`'s file in the folder (where the folder lacks the split, the name it would
        have in the folder's format)."""
        return self.split_files.get(split) or casrel.split_file_name(split, self.split_files.values())


def folder_config(directory: str) -> FolderConfig:
    """Describes `directory`: its split files, relations and a name that changes with its content.

    Raises:
        FileNotFoundError: no folder, or no train split in it.
        ValueError: malformed `rel2id.json` (a name given twice included) or train file, or no relation.
    """
    directory = os.path.abspath(directory)
    paths = casrel.find_split_files(directory, required=("train",))
    relations_path = os.path.join(directory, casrel.RELATIONS_FILE)
    if os.path.exists(relations_path):
        relations = [casrel.relation_name(name, relations_path) for name in casrel.read_relation_names(relations_path)]
        repeated = sorted(name for name, count in collections.Counter(relations).items() if count > 1)
        if repeated:
            raise casrel.DataError(f"{relations_path} names {', '.join(map(repr, repeated))} more than once (spaces "
                                   "around a name and mis-decoded UTF-8 aside): give each relation one id.")
        source = relations_path
    else:
        relations = sorted({casrel.relation_name(t[1], f"{paths['train']}:{position}")
                            for position, r in casrel.read_records(paths["train"]) for t in r["triple_list"]})
        source = f"the relations of {paths['train']}"
    if not relations:
        raise casrel.DataError(f"{source} names no relation: the train split needs annotated triples.")
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(directory).lower()).strip("_") or "data"
    return FolderConfig(
        name=f"{slug}_{files_digest(directory)}",
        description=f"Annotated sentences of {directory}.",
        directory=directory,
        split_files={split: os.path.basename(path) for split, path in paths.items()},
        relations=tuple(relations),
        relations_source=source,
    )


def files_digest(directory: str) -> str:
    """A hash of the split files and `rel2id.json` of `directory`, which changes when any of them is edited.

    Raises:
        FileNotFoundError: the folder has no train split.
    """
    paths = casrel.find_split_files(directory, required=("train",))
    relations_path = os.path.join(directory, casrel.RELATIONS_FILE)
    digest = hashlib.sha256()
    for path in sorted(paths.values()) + ([relations_path] if os.path.exists(relations_path) else []):
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


def folder_builder(directory: str, data_dir: str | None = None) -> "Builder":
    """Returns the (maybe unprepared) builder of the user folder `directory`."""
    return Builder(config=folder_config(directory), data_dir=data_dir)


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for a user folder; make it with `folder_builder(directory)`."""

    VERSION = tfds.core.Version("1.7.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Raw texts: a period that ends a sentence inside a text is a token of its own (`Warsaw`, `.`).",
        "1.2.0": "An entity written with the punctuation after it (`London.`) spans its words alone.",
        "1.3.0": "Relation names of rel2id.json read as those of triples: spaces around them removed, mis-decoded "
                 "UTF-8 repaired. JSON lines split at line breaks only (a form feed or U+2028 in a line no longer ends it).",
        "1.4.0": "An entity found more than once is placed outside another entity's longer name where it stands "
                 "alone (`Paris` of `Paris Hilton was born in Paris`); a triple written twice in other spellings "
                 "(`Paris.`, accents composed otherwise) is kept once. Raw texts: an ellipsis written as three "
                 "periods is a token of its own (`Janeiro`, `...`).",
        "1.5.0": "Tokenised (CasRel JSON) texts split on ASCII whitespace only, as pre-tokenised text is at "
                 "prediction: a no-break space is part of its word.",
        "1.6.0": "An entity written with the ellipsis after it (`Texas...`, `Texas…`) spans its words alone.",
        "1.7.0": "Mis-decodings that ftfy leaves repaired by reading each word back through cp1252 "
                 "(`DavutoÄŸlu` -> `Davutoğlu`).",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=casrel.features(list(self.builder_config.relations)), supervised_keys=None
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # The folder is read in place.
        config = self.builder_config
        # Every split is read and checked before any is written.
        examples = {split: self._read_split(os.path.join(config.directory, name), split)
                    for split, name in config.split_files.items()}
        return {split: self._generate_examples(split_examples) for split, split_examples in examples.items()}

    def _read_split(self, path: str, split: str) -> list[tuple[str, dict]]:
        """Returns the `(key, example)` pairs of one split file; see `casrel.folder_example`.

        A key is `<split>_<line>` (`<split>_<line>_<column>` for a record that shares its line with others).

        Raises:
            DataError: a record that cannot be read, or no sentence that is not empty.
        """
        relations = set(self.builder_config.relations)
        records = casrel.read_records(path)
        counts = collections.Counter()
        examples = []
        for position, record in records:
            example, example_counts = casrel.folder_example(record, relations, f"{path}:{position}",
                                                            pretokenized=path.endswith(".json"))
            counts.update(example_counts)
            if not example["tokens"]:
                counts["empty"] += 1
                continue
            key = f"{split}_{position.line}" + ("" if position.column is None else f"_{position.column}")
            examples.append((key, example))
        if not examples:
            raise casrel.DataError(f"{path}: the {split} split has no sentences.")
        if split != "train" and not counts["triples"]:  # Train is checked by its relations (`folder_config`).
            cannot = " and cannot choose the epoch" if split == "validation" else ""
            raise casrel.DataError(f"{path}: the {split} split states no triple, so it scores nothing{cannot}: "
                                   "annotate its triples.")
        logging.info("%s: %d sentences, %d triples; %d mis-decoded texts repaired.", path, len(records),
                     counts["triples"], counts["repaired"])
        if counts["empty"] or counts["duplicates"] or counts["ambiguous"] or counts["trimmed"] or counts["overlapping"]:
            logging.warning(
                "%s: %d empty sentences left out, %d repeated triples kept once, %d entities found more than "
                "once in their sentence (the first that lies in no longer entity name taken), %d entities written with the punctuation "
                "after them (`London.`: the punctuation left out of the span), %d entities that overlap another "
                "of their sentence (`Wheeler, Texas` and `Texas`: the entity tags mark one, so whole-name scores "
                "and predictions miss the other).",
                path, counts["empty"], counts["duplicates"], counts["ambiguous"], counts["trimmed"],
                counts["overlapping"],
            )
        return examples

    def _generate_examples(self, examples: list[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
        """Yields the `(key, example)` pairs of one split, as `_read_split` read them."""
        yield from examples
