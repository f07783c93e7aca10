"""Corpora: where examples come from (a prepared TFDS builder, ExampleGen records, or a user's folder).

Each corpus yields raw TFDS examples (`tokens`, `entities`, `triples` with
`[start, end)` spans and the annotated head word), which `rin_keras.data.dataset`
turns into batches.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging as python_logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

import tfds_builders  # noqa: F401  (registers the builders)
from tfds_builders import casrel
from tfds_builders.casrel_folder import casrel_folder_dataset_builder

from rin_keras.config import RINConfig
from rin_keras.data.vocab import Vocabulary


class _TfdsInfoFilter(python_logging.Filter):
    """Drops TFDS's INFO records (a line per dataset read: "Constructing tf.data.Dataset ...", "Reusing dataset
    ..."), which TFDS writes to absl's logger with no switch of its own; its warnings and errors pass."""

    _TFDS_DIR = os.path.dirname(tfds.__file__) + os.sep

    def filter(self, record: python_logging.LogRecord) -> bool:
        return record.levelno >= python_logging.WARNING or not record.pathname.startswith(self._TFDS_DIR)


if not any(isinstance(f, _TfdsInfoFilter) for f in logging.get_absl_logger().filters):
    logging.get_absl_logger().addFilter(_TfdsInfoFilter())
tfds.disable_progress_bar()  # Download and preparation bars, meant for notebooks, would flood the training log.


# Splits a corpus may hold: the benchmark's, and webnlg3's held-out categories and entities (scored, never trained on).
SPLITS = (*casrel.SPLIT_FILES, "heldout_categories", "heldout_entities")


@dataclasses.dataclass
class Corpus:
    """A prepared TFDS dataset and the folder it was built from.

    Attributes:
        builder: the prepared `webnlg`, `nyt` or `casrel_folder` builder.
        manual_dir: the folder holding the published files (a user folder itself).
    """

    builder: tfds.core.DatasetBuilder
    manual_dir: str

    @classmethod
    def prepare(
        cls, dataset: str, variant: str, data_dir: str | None = None, manual_dir: str | None = None
    ) -> "Corpus":
        """Returns the corpus of `dataset/variant`, building the TFDS dataset on first use.

        Args:
            dataset: `"webnlg"`, `"webnlg3"` or `"nyt"`.
            variant: the builder config: `"partial"` or `"exact"` (for webnlg3 also `"partial_heldout"` and
                `"exact_heldout"`, `RINConfig.builder_config`).
            data_dir: where TFDS keeps prepared datasets (TFDS default when None).
            manual_dir: folder of the published files (default: $RIN_DATA_DIR or ../shared/data).
        """
        builder = tfds.builder(f"{dataset}/{variant}", data_dir=data_dir)
        corpus = cls(builder, manual_dir or casrel.default_manual_dir())
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=corpus.manual_dir)
        )
        appeared = [
            split
            for split in casrel.SPLIT_FILES
            if split not in builder.info.splits and os.path.exists(corpus.split_path(split))
        ]
        if appeared:  # A file that was absent at the last build has since been added.
            logging.info("Rebuilding %s to add split(s) %s.", builder.info.full_name, appeared)
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(
                    manual_dir=corpus.manual_dir,
                    download_mode=tfds.download.GenerateMode.FORCE_REDOWNLOAD,
                )
            )
            corpus = cls(tfds.builder(f"{dataset}/{variant}", data_dir=data_dir), corpus.manual_dir)
        return corpus

    @classmethod
    def check_splits(cls, dataset: str, variant: str, splits: tuple[str, ...], data_dir: str | None = None,
                     manual_dir: str | None = None) -> None:
        """Checks, before any build, that each of `splits` is prepared already or has its published file.

        Args:
            dataset, variant, data_dir, manual_dir: as for `prepare`.
            splits: the splits the caller needs, e.g. `("train", "validation")` to train.

        Raises:
            FileNotFoundError: a split is neither; the message names its missing file.
        """
        corpus = cls(tfds.builder(f"{dataset}/{variant}", data_dir=data_dir), manual_dir or casrel.default_manual_dir())
        for split in splits:
            if split not in corpus.builder.info.splits and not os.path.exists(corpus.split_path(split)):
                raise FileNotFoundError(corpus._missing_split_message(split))

    @classmethod
    def published_splits(cls, dataset: str, variant: str, data_dir: str | None = None,
                         manual_dir: str | None = None) -> list[str]:
        """The splits of `casrel.SPLIT_FILES` whose published file is in the manual folder (nothing is built).

        Args:
            dataset, variant, data_dir, manual_dir: as for `prepare`.
        """
        corpus = cls(tfds.builder(f"{dataset}/{variant}", data_dir=data_dir), manual_dir or casrel.default_manual_dir())
        return [split for split in casrel.SPLIT_FILES if os.path.exists(corpus.split_path(split))]

    @property
    def user_folder(self) -> str | None:
        """The user's folder the corpus was built from (None for a benchmark)."""
        if isinstance(self.builder.builder_config, casrel_folder_dataset_builder.FolderConfig):
            return self.manual_dir
        return None

    def _missing_split_message(self, split: str) -> str:
        guide = "docs/custom_data.md" if self.user_folder else "README.md, 'Get the data'"
        return (f"{self.name} has no {split!r} split: {self.split_path(split)} is missing. "
                f"Add the file there (see {guide}) and run again; the split is then built.")

    @classmethod
    def for_model(cls, model_dir: str, config: RINConfig, data_dir: str | None = None,
                  manual_dir: str | None = None) -> "Corpus":
        """Returns the corpus a model was trained on.

        Args:
            model_dir: the model's training folder (or its `.keras` file); its `config.json`, where there is
                one, names the data exactly (`heldout_categories` included).
            config: the model's network `RINConfig`, read where the folder has no `config.json`.
            data_dir: where TFDS keeps prepared datasets (TFDS default when None).
            manual_dir: folder of the published files (default: $RIN_DATA_DIR or ../shared/data).
        """
        config = cls.run_config(model_dir, config)
        return cls.prepare(config.dataset, config.builder_config, data_dir, manual_dir)

    @staticmethod
    def run_config(model_dir: str, config: RINConfig) -> RINConfig:
        """Returns the config of the run that trained a model: its folder's `config.json`, which names the data
        exactly (`heldout_categories` included), else the model's network `config`."""
        saved = os.path.join(model_dir, "config.json")
        return RINConfig.load(saved) if os.path.isfile(saved) else config

    @classmethod
    def from_folder(cls, directory: str, data_dir: str | None = None) -> "Corpus":
        """Returns the corpus of a user's folder (see `casrel_folder_dataset_builder`), built on first use.

        Args:
            directory: the folder of annotated sentences.
            data_dir: where TFDS keeps prepared datasets (TFDS default when None).

        Raises:
            FileNotFoundError, ValueError: the folder cannot be read; the message names the file and line.
        """
        builder = casrel_folder_dataset_builder.folder_builder(directory, data_dir)
        builder.download_and_prepare()
        return cls(builder, builder.builder_config.directory)

    @property
    def name(self) -> str:
        return self.builder.info.full_name

    @property
    def splits(self) -> list[str]:
        """The splits the dataset holds: train, validation, test and the held-out ones, in that order."""
        return [split for split in SPLITS if split in self.builder.info.splits]

    @property
    def relation_names(self) -> list[str]:
        return list(self.builder.info.features["triples"]["relation"].names)

    def split_path(self, split: str) -> str:
        """Returns the file that `split` is built from."""
        return os.path.join(self.manual_dir, self.builder.builder_config.split_file(split))

    def raw(self, split: str, limit: int | None = None) -> tf.data.Dataset:
        """Returns the TFDS examples of `split` (its first `limit` only, with one: all where it holds fewer), in the
        stored order.

        Raises:
            FileNotFoundError: the split was not built because its file is missing.
            ValueError: a held-out split of data built without held-out categories.
        """
        if split not in self.builder.info.splits:
            if split not in casrel.SPLIT_FILES:  # A held-out split: made by the webnlg3 `*_heldout` configs.
                raise ValueError(f"{self.name} has no {split!r} split; its splits: {', '.join(self.splits)}.")
            raise FileNotFoundError(self._missing_split_message(split))
        # TFDS reads a slice itself: a `take` after its reader leaves a later `cache()` unfinished (TF warns); a
        # limit beyond the split reads all of it.
        read_all = not limit or limit >= self.builder.info.splits[split].num_examples
        return self.builder.as_dataset(split=split if read_all else f"{split}[:{limit}]", shuffle_files=False)

    def examples(self, split: str) -> list[dict]:
        """Returns the examples of `split` as NumPy dicts, in the stored order."""
        return list(tfds.as_numpy(self.raw(split)))

    def build_vocabulary(self) -> Vocabulary:
        """Builds the word vocabulary from the train split only."""
        sentences = ([t.decode("utf-8") for t in x["tokens"]] for x in self.examples("train"))
        return Vocabulary.build(sentences, self.relation_names)


class RecordCorpus(Corpus):
    """A corpus read from TFRecord shards of serialized TFDS examples (a pipeline's ExampleGen output).

    The folder holds `features.json` (with the relation label file) as written by
    `FeaturesDict.save_config`, `splits.json` and the shards it names. It offers
    the same `name`, `relation_names`, `raw`, `examples` and `build_vocabulary`
    as a TFDS `Corpus`, so training and evaluation read either.

    Args:
        directory: the folder.
    """

    SPLITS_FILE = "splits.json"

    user_folder = None  # A pipeline's examples, whatever data they were made from.

    def __init__(self, directory: str):  # pylint: disable=super-init-not-called
        self.directory = directory
        with open(os.path.join(directory, self.SPLITS_FILE), encoding="utf-8") as f:
            self.info = json.load(f)
        self.features = tfds.features.FeatureConnector.from_config(directory)

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def relation_names(self) -> list[str]:
        return list(self.features["triples"]["relation"].names)

    @property
    def splits(self) -> list[str]:
        return [split for split in SPLITS if split in self.info["splits"]]

    def split_files(self, split: str) -> list[str]:
        """Returns the shard paths of `split`."""
        if split not in self.info["splits"]:
            raise FileNotFoundError(f"{self.directory} has no {split!r} split (it has {sorted(self.info['splits'])}).")
        return [os.path.join(self.directory, name) for name in self.info["splits"][split]["files"]]

    def raw(self, split: str, limit: int | None = None) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(self.split_files(split))
        return (records.take(limit) if limit else records).map(self.features.deserialize_example)


class FolderCorpus(Corpus):
    """Any folder in the CasRel layout, read as it is (no TFDS build): for scoring a model on it.

    The folder holds some of `train_triples.json`, `val_triples.json`,
    `test_triples.json` (read exactly as the TFDS builders read them, mis-decoded
    UTF-8 repaired) and optionally `raw_train.jsonl` / `raw_val.jsonl` /
    `raw_test.jsonl`: one `{"raw_text": ...}` line per sentence of the split, in
    order, the untokenised text (e.g. `webnlg_ood_dev`). As the benchmark builders
    do, it leaves out a gold triple of a CasRel JSON split whose subject or object
    is not in the text, counted in `triples_not_found` and logged with its lines.

    Args:
        directory: the folder.
        relation_names: the relation names of the model to score, in id order.
        drop_unknown_relations: leave out triples of any other relation (counted in
            `unknown_relations`, and logged), e.g. to score an exact-match model,
            whose relation set differs, on a partial-match folder; else such a
            triple is an error.
        as_training_folder: read a CasRel JSON split as `rin_keras.train --dataset_dir`
            reads a user's folder (`casrel.folder_example`: every entity must be in
            the text, the punctuation written after one is left out of its span, a
            repeated triple counts once), for a model trained on such a folder; else
            as the benchmark builders read theirs. A JSON-lines split is always read
            as a training folder is.
    """

    RAW_FILES = {"train": "raw_train.jsonl", "validation": "raw_val.jsonl", "test": "raw_test.jsonl"}

    @property
    def user_folder(self) -> str:
        return self.directory

    def __init__(self, directory: str, relation_names: list[str],  # pylint: disable=super-init-not-called
                 drop_unknown_relations: bool = False, as_training_folder: bool = False):
        self.directory = directory
        self._relation_names = list(relation_names)
        self.drop_unknown_relations = drop_unknown_relations
        self.as_training_folder = as_training_folder
        self.unknown_relations = {}  # Split -> {relation name: triples left out}, for the splits read.
        self.triples_not_found = {}  # Split -> gold triples of a CasRel JSON split left out: an entity not in the text.

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.directory))

    @property
    def relation_names(self) -> list[str]:
        return self._relation_names

    @property
    def splits(self) -> list[str]:
        """The splits whose file is in the folder."""
        return list(casrel.find_split_files(self.directory))

    def split_path(self, split: str) -> str:
        """Returns the file of `split`: where the folder lacks it, the name it would have in the folder's format."""
        found = casrel.find_split_files(self.directory)
        return found.get(split) or os.path.join(self.directory, casrel.split_file_name(split, found.values()))

    def records(self, split: str) -> list[tuple[casrel.RecordPosition, dict]]:
        """Returns the `(position, record)` pairs of `split`'s file (see `casrel.read_records`), relation names
        read as the folder builder reads them (`casrel.relation_name`)."""
        if not os.path.exists(self.split_path(split)):
            raise FileNotFoundError(f"{self.directory} has no {split} split: add {self.split_path(split)} "
                                    f"(it holds {', '.join(self.splits) or 'no split'}).")
        path = self.split_path(split)
        return [(position, {**record, "triple_list": [[s, casrel.relation_name(r, f"{path}:{position}"), o]
                                                      for s, r, o in record["triple_list"]]})
                for position, record in casrel.read_records(path)]

    def raw(self, split: str, limit: int | None = None) -> tf.data.Dataset:
        path = self.split_path(split)
        pairs = self.records(split)[:limit]
        positions, records = [position for position, _ in pairs], [record for _, record in pairs]
        relation_ids = {name: i for i, name in enumerate(self._relation_names)}
        if self.drop_unknown_relations:
            unknown = collections.Counter(r for record in records for _, r, _ in record["triple_list"]
                                          if r not in relation_ids)
            if unknown and split not in self.unknown_relations:  # Once a split, however often it is read.
                logging.warning("%s/%s: %d triples of relations the model does not know are left out: %s",
                                self.name, split, sum(unknown.values()), dict(unknown.most_common()))
            self.unknown_relations[split] = dict(unknown.most_common())
            records = [{**record, "triple_list": [t for t in record["triple_list"] if t[1] in relation_ids]}
                       for record in records]
        if path.endswith(".jsonl") or self.as_training_folder:  # Read as a training folder is (strictly).
            examples = [casrel.folder_example(record, set(relation_ids), f"{path}:{position}",
                                              pretokenized=not path.endswith(".jsonl"))[0]
                        for position, record in zip(positions, records)]
        else:  # Tokenised CasRel JSON, read as the benchmark builders read it.
            examples, not_found = [], []
            for i, (position, record) in enumerate(zip(positions, records)):
                example, counts = casrel.to_example(record, set(relation_ids), f"{split}_{i}")
                examples.append(example)
                not_found += [str(position)] * counts["not_found"]
            if not_found and split not in self.triples_not_found:  # Once a split, however often it is read.
                logging.warning("%s: %d gold triples whose subject or object is not in the text are left out of the "
                                "index-based scores (the string scores count them as missed), at lines %s.",
                                path, len(not_found), ", ".join(dict.fromkeys(not_found)))
            self.triples_not_found[split] = len(not_found)

        def spans(items, key=None):
            rows = [item[key] if key else item for item in items]
            return {k: np.asarray([row[k] for row in rows], np.int32).reshape(-1) for k in ("start", "end", "head")}

        def generate():
            for example in examples:
                yield {
                    "tokens": np.asarray(example["tokens"], object).reshape(-1),
                    "entities": spans(example["entities"]),
                    "triples": {
                        "subject": spans(example["triples"], "subject"),
                        "relation": np.asarray([relation_ids[t["relation"]] for t in example["triples"]], np.int64),
                        "object": spans(example["triples"], "object"),
                    },
                }

        span = {k: tf.TensorSpec([None], tf.int32) for k in ("start", "end", "head")}
        signature = {
            "tokens": tf.TensorSpec([None], tf.string),
            "entities": span,
            "triples": {"subject": span, "relation": tf.TensorSpec([None], tf.int64), "object": span},
        }
        return tf.data.Dataset.from_generator(generate, output_signature=signature)

    def raw_texts(self, split: str) -> list[dict] | None:
        """Returns the `raw_*.jsonl` records of `split` (`raw_text`, maybe `category`), or None without one.

        A JSON-lines split is raw text itself: its texts are returned. Mis-decoded UTF-8 is repaired
        (`casrel.repair_text`), as in the split's tokens and triples.

        Raises:
            DataError: a line is not a JSON object with `raw_text`, or the count differs from the split's.
        """
        if self.split_path(split).endswith(".jsonl"):
            return [{"raw_text": casrel.repair_text(record["text"])} for _, record in self.records(split)]
        path = os.path.join(self.directory, self.RAW_FILES[split])
        if not os.path.exists(path):
            return None
        records = []
        for number, line in enumerate(casrel.split_lines(casrel.read_text(path)), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record.get("raw_text"), str):
                    raise ValueError('no "raw_text" string')
            except (json.JSONDecodeError, ValueError, AttributeError) as e:
                raise casrel.DataError(f"{path}:{number}: {e}") from e
            records.append({**record, "raw_text": casrel.repair_text(record["raw_text"])})
        expected = len(self.records(split))
        if len(records) != expected:
            raise casrel.DataError(f"{path} has {len(records)} lines but {self.split_path(split)} {expected} "
                                   "sentences: give one raw text a sentence, in the same order.")
        return records
