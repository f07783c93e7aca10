"""tf.data input pipeline: TFDS examples -> padded, length-bucketed `(inputs, targets)` batches.

Each example is encoded to word ids, BIESO tag ids and a sparse relation list
`[n_triples, 3]` of (subject head, object head, relation). Batches are padded
(bucketed by length for training) and the dense `[B, n, n, l]` relation targets
are scattered per batch inside the graph. Padded cells of both targets are -1,
which the losses and metrics read as "not a real token".
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Iterable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

import tfds_builders  # noqa: F401  (registers the builders)
from tfds_builders import casrel

from rin_keras.data.features import WordIds
from rin_keras.data.vocab import Vocabulary

TAGS = ("B", "I", "E", "S", "O")
TAG_IDS = {tag: i for i, tag in enumerate(TAGS)}
IGNORE = -1  # Target value of padded tokens and cells.
DEFAULT_BUCKET_BOUNDARIES = (12, 16, 20, 24, 28, 32, 40, 48, 64)


@dataclasses.dataclass
class Corpus:
    """A prepared TFDS dataset and the manual folder it was built from.

    Attributes:
        builder: the prepared `webnlg` or `nyt` builder.
        manual_dir: the folder holding the published files.
    """

    builder: tfds.core.DatasetBuilder
    manual_dir: str

    @classmethod
    def prepare(
        cls, dataset: str, variant: str, data_dir: str | None = None, manual_dir: str | None = None
    ) -> "Corpus":
        """Returns the corpus of `dataset/variant`, building the TFDS dataset on first use.

        Args:
            dataset: `"webnlg"` or `"nyt"`.
            variant: `"partial"` or `"exact"`.
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

    @property
    def name(self) -> str:
        return self.builder.info.full_name

    @property
    def relation_names(self) -> list[str]:
        return list(self.builder.info.features["triples"]["relation"].names)

    def split_path(self, split: str) -> str:
        """Returns the published file that `split` is built from."""
        return os.path.join(self.manual_dir, self.builder.builder_config.folder, casrel.SPLIT_FILES[split])

    def raw(self, split: str) -> tf.data.Dataset:
        """Returns the TFDS examples of `split`, in the stored order.

        Raises:
            FileNotFoundError: the split was not built because its file is missing.
        """
        if split not in self.builder.info.splits:
            raise FileNotFoundError(
                f"{self.name} has no {split!r} split: {self.split_path(split)} is missing. "
                "Add the file there (see the data README) and run again; the split is then built."
            )
        return self.builder.as_dataset(split=split, shuffle_files=False)

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

    def split_files(self, split: str) -> list[str]:
        """Returns the shard paths of `split`."""
        if split not in self.info["splits"]:
            raise FileNotFoundError(f"{self.directory} has no {split!r} split (it has {sorted(self.info['splits'])}).")
        return [os.path.join(self.directory, name) for name in self.info["splits"][split]["files"]]

    def raw(self, split: str) -> tf.data.Dataset:
        return tf.data.TFRecordDataset(self.split_files(split)).map(self.features.deserialize_example)


class FolderCorpus(Corpus):
    """Any folder in the CasRel layout, read as it is (no TFDS build): for scoring a model on it.

    The folder holds some of `train_triples.json`, `val_triples.json`,
    `test_triples.json` (read exactly as the TFDS builders read them, mis-decoded
    UTF-8 repaired) and optionally `raw_train.jsonl` / `raw_val.jsonl` /
    `raw_test.jsonl`: one `{"raw_text": ...}` line per sentence of the split, in
    order, the untokenised text (e.g. `webnlg_ood_dev`).

    Args:
        directory: the folder.
        relation_names: the relation names of the model to score, in id order.
        drop_unknown_relations: leave out triples of any other relation (counted in
            `unknown_relations`, and logged), e.g. to score an exact-match model,
            whose relation set differs, on a partial-match folder; else such a
            triple is an error.
    """

    RAW_FILES = {"train": "raw_train.jsonl", "validation": "raw_val.jsonl", "test": "raw_test.jsonl"}

    def __init__(self, directory: str, relation_names: list[str],  # pylint: disable=super-init-not-called
                 drop_unknown_relations: bool = False):
        self.directory = directory
        self._relation_names = list(relation_names)
        self.drop_unknown_relations = drop_unknown_relations
        self.unknown_relations = {}  # Split -> {relation name: triples left out}, for the splits read.

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.directory))

    @property
    def relation_names(self) -> list[str]:
        return self._relation_names

    @property
    def splits(self) -> list[str]:
        """The splits whose file is in the folder."""
        return [split for split in casrel.SPLIT_FILES if os.path.exists(self.split_path(split))]

    def split_path(self, split: str) -> str:
        return os.path.join(self.directory, casrel.SPLIT_FILES[split])

    def raw(self, split: str) -> tf.data.Dataset:
        if not os.path.exists(self.split_path(split)):
            raise FileNotFoundError(f"{self.directory} has no {split!r} split: {self.split_path(split)} is missing.")
        with open(self.split_path(split), encoding="utf-8") as f:
            records = json.load(f)
        relation_ids = {name: i for i, name in enumerate(self._relation_names)}
        if self.drop_unknown_relations:
            unknown = collections.Counter(r for record in records for _, r, _ in record["triple_list"]
                                          if r not in relation_ids)
            if unknown:
                logging.warning("%s/%s: %d triples of relations the model does not know are left out: %s",
                                self.name, split, sum(unknown.values()), dict(unknown.most_common()))
            self.unknown_relations[split] = dict(unknown.most_common())
            records = [{**record, "triple_list": [t for t in record["triple_list"] if t[1] in relation_ids]}
                       for record in records]
        examples = [casrel.to_example(record, set(relation_ids), f"{split}_{i}")[0] for i, record in enumerate(records)]

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

        Raises:
            ValueError: a line is not a JSON object with `raw_text`, or the count differs from the split's.
        """
        path = os.path.join(self.directory, self.RAW_FILES[split])
        if not os.path.exists(path):
            return None
        records = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                    if not isinstance(record.get("raw_text"), str):
                        raise ValueError('no "raw_text" string')
                except (json.JSONDecodeError, ValueError, AttributeError) as e:
                    raise ValueError(f"{path}:{number}: {e}") from e
                records.append(record)
        with open(self.split_path(split), encoding="utf-8") as f:
            expected = len(json.load(f))
        if len(records) != expected:
            raise ValueError(f"{path} has {len(records)} lines but {self.split_path(split)} {expected} sentences.")
        return records


def encoder(featurizer, max_length: int):
    """Returns a tf.data map function that encodes one raw TFDS example.

    The encoded example holds the model inputs of `featurizer` (e.g. `token_ids`
    [n]), `tags` [n] (BIESO ids), `relations` [t, 3] (subject head, object head,
    relation id), `length`, and the counts `truncated_tokens` and
    `dropped_triples` caused by `max_length`.
    """

    def encode(example):
        tokens = example["tokens"]
        full_length = tf.shape(tokens, out_type=tf.int32)[0]
        length = tf.minimum(full_length, max_length)
        entities = example["entities"]
        inside = entities["end"] <= length
        triples = example["triples"]
        kept = (triples["subject"]["end"] <= length) & (triples["object"]["end"] <= length)
        relations = tf.stack(
            [
                tf.boolean_mask(triples["subject"]["head"], kept),
                tf.boolean_mask(triples["object"]["head"], kept),
                tf.boolean_mask(tf.cast(triples["relation"], tf.int32), kept),
            ],
            axis=1,
        )
        inputs = featurizer(tf.RaggedTensor.from_tensor(tokens[None, :length]))
        return {
            **{k: v[0, :length] if k in featurizer.word_inputs else v[0] for k, v in inputs.items()},
            "tags": bieso_tags(
                tf.boolean_mask(entities["start"], inside),
                tf.boolean_mask(entities["end"], inside),
                length,
            ),
            "relations": tf.reshape(relations, [-1, 3]),
            "length": length,
            "truncated_tokens": full_length - length,
            "dropped_triples": tf.reduce_sum(tf.cast(~kept, tf.int32)),
        }

    return encode


def bieso_tags(starts: tf.Tensor, ends: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """Returns BIESO tag ids [length] for entity spans [start, end).

    Where spans nest or overlap, tags written later (E, then S) win.
    """
    single = ends - starts == 1
    multi_starts = tf.boolean_mask(starts, ~single)
    multi_ends = tf.boolean_mask(ends, ~single)
    inner = tf.ragged.range(multi_starts + 1, multi_ends - 1).flat_values
    tags = tf.fill([length], TAG_IDS["O"])
    for positions, tag in (
        (inner, "I"),
        (multi_starts, "B"),
        (multi_ends - 1, "E"),
        (tf.boolean_mask(starts, single), "S"),
    ):
        tags = tf.tensor_scatter_nd_update(
            tags, positions[:, None], tf.fill(tf.shape(positions), TAG_IDS[tag])
        )
    return tags


def dense_relation_targets(
    relations: tf.Tensor, lengths: tf.Tensor, max_len: tf.Tensor, num_relations: int
) -> tf.Tensor:
    """Scatters padded sparse triples [B, t, 3] into int8 targets [B, n, n, l].

    Cells of real token pairs are 0 or 1; cells touching padding are -1. int8
    keeps the batches waiting in the prefetch buffer 4x smaller than float32.
    """
    batch = tf.shape(relations)[0]
    rows = tf.where(relations[:, :, 0] >= 0)
    cells = tf.gather_nd(relations, rows)
    indices = tf.concat([tf.cast(rows[:, :1], tf.int32), cells], axis=1)
    shape = tf.stack([batch, max_len, max_len, num_relations])
    dense = tf.scatter_nd(indices, tf.ones(tf.shape(indices)[:1], tf.int8), shape)
    dense = tf.minimum(dense, 1)  # A triple listed twice is one cell.
    mask = tf.sequence_mask(lengths, max_len)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    return tf.where(pair_mask[..., None], dense, tf.constant(IGNORE, tf.int8))


def make_dataset(
    corpus: Corpus,
    split: str,
    vocab: Vocabulary,
    batch_size: int = 50,
    *,
    training: bool = False,
    max_length: int = 100,
    bucket_boundaries: Iterable[int] | None = DEFAULT_BUCKET_BOUNDARIES,
    pad_to_bucket_boundary: bool = False,
    seed: int | None = None,
    limit: int | None = None,
    featurizer=None,
    with_index: bool = False,
    entity_unknown_rate: float = 0.0,
) -> tf.data.Dataset:
    """Returns batches `({"token_ids"}, {"entity_tags", "relations"})` for `model.fit`.

    Empty sentences are dropped; longer sentences are truncated to `max_length`
    and triples reaching past it dropped; the counts are logged.

    Args:
        corpus: a prepared corpus.
        split: `"train"`, `"validation"` or `"test"`.
        vocab: the train-split vocabulary.
        batch_size: sentences per batch.
        training: shuffle (with `seed`) and bucket by length. Otherwise batches
            keep the stored order, so outputs line up with `corpus.examples(split)`.
        max_length: truncation length.
        bucket_boundaries: length bucket edges when training; None pads each
            batch to its longest sentence without bucketing.
        pad_to_bucket_boundary: pad to the bucket edge (fixed shapes, for XLA).
        seed: shuffle seed.
        limit: use only the first `limit` sentences of the split.
        featurizer: the model's input featurizer (default: word ids of `vocab`,
            for the BiLSTM encoder; see `rin_keras.data.features`).
        entity_unknown_rate: when training, the share of words inside gold entities
            whose `token_ids` read as unknown (1), drawn anew each epoch.
        with_index: for inference over a whole split: bucket by length without
            shuffling (padding far fewer n^2 cells than the stored order) and add
            each sentence's position in the split as `targets["index"]`, by which
            the caller puts the results back in order.
    """
    featurizer = featurizer or WordIds(vocab)
    raw = corpus.raw(split)
    if limit:
        raw = raw.take(limit)
    encoded = raw.map(encoder(featurizer, max_length), num_parallel_calls=tf.data.AUTOTUNE)
    if with_index:
        encoded = encoded.enumerate().map(lambda i, x: {**x, "index": tf.cast(i, tf.int32)})
    encoded = encoded.cache()
    _log_counts(encoded, f"{corpus.name}/{split}")
    if training:
        encoded = encoded.filter(lambda x: x["length"] > 0)
    input_names = list(featurizer.padding_values)
    extra = ("index",) if with_index else ()
    examples = encoded.map(lambda x: {k: x[k] for k in (*input_names, "tags", "relations", "length", *extra)})
    padded_shapes = {**featurizer.padded_shapes, "tags": [None], "relations": [None, 3], "length": [],
                     **{k: [] for k in extra}}
    padding_values = {**featurizer.padding_values, "tags": IGNORE, "relations": IGNORE, "length": 0,
                      **{k: 0 for k in extra}}
    if training and entity_unknown_rate and "token_ids" in input_names:
        examples = examples.map(_entity_hider(entity_unknown_rate, seed))
    if training:
        examples = examples.shuffle(8192, seed=seed, reshuffle_each_iteration=True)
    if (training or with_index) and bucket_boundaries:
        boundaries = sorted({b for b in bucket_boundaries if b <= max_length} | {max_length + 1})
        batches = examples.bucket_by_sequence_length(
            element_length_func=lambda x: x["length"],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padded_shapes=padded_shapes,
            padding_values=padding_values,
            pad_to_bucket_boundary=pad_to_bucket_boundary,
        )
    else:
        batches = examples.padded_batch(batch_size, padded_shapes, padding_values)
    num_relations = vocab.num_relations

    def to_inputs_targets(batch):
        max_len = tf.shape(batch["tags"])[1]
        relations = dense_relation_targets(batch["relations"], batch["length"], max_len, num_relations)
        targets = {"entity_tags": batch["tags"], "relations": relations, **{k: batch[k] for k in extra}}
        return {k: batch[k] for k in input_names}, targets

    return batches.map(to_inputs_targets, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _entity_hider(rate: float, seed: int | None):
    """Returns a map function that reads each word inside a gold entity as unknown with probability `rate`."""

    def hide(example):
        inside = tf.not_equal(example["tags"], TAG_IDS["O"])
        hidden = inside & (tf.random.uniform(tf.shape(example["tags"]), seed=seed) < rate)
        token_ids = example["token_ids"]
        return {**example, "token_ids": tf.where(hidden & (token_ids > 1), tf.ones_like(token_ids), token_ids)}

    return hide


def _log_counts(encoded: tf.data.Dataset, name: str) -> None:
    """Logs how many sentences are empty and what truncation removed."""
    totals = encoded.reduce(
        np.zeros(4, np.int64),
        lambda acc, x: acc
        + tf.cast(
            tf.stack(
                [1, tf.cast(x["length"] == 0, tf.int32), x["truncated_tokens"], x["dropped_triples"]]
            ),
            tf.int64,
        ),
    ).numpy()
    logging.info(
        "%s: %d sentences, %d empty, %d tokens truncated, %d triples dropped by truncation.",
        name,
        *totals,
    )
    if totals[2] or totals[3]:
        logging.warning(
            "%s: max_length truncated %d tokens and dropped %d triples.", name, totals[2], totals[3]
        )
