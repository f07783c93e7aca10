"""ExampleGen: the TFDS builder's splits -> TFRecord shards and plain-text sentences (Beam).

Output folder (a `rin_keras.data.corpus.RecordCorpus`):

    features.json, triples-relation.labels.txt   the TFDS features, to parse the shards
    splits.json                                  dataset name, shard files and counts per split
    data/<split>-SSSSS-of-NNNNN.tfrecord         serialized TFDS examples
    text/<split>.txt                             one whitespace-tokenised sentence a line
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import ClassVar

import apache_beam as beam
import tensorflow_datasets as tfds

from rin_keras.data.corpus import Corpus, RecordCorpus


@dataclasses.dataclass
class Config:
    """ExampleGen settings.

    Attributes:
        dataset: `webnlg`, `webnlg3` or `nyt`.
        builder_config: the TFDS builder config, `RINConfig.builder_config`: `partial` or `exact` (for webnlg3 also
            `partial_heldout` and `exact_heldout`).
        data_dir: manual folder of the published files (default $RIN_DATA_DIR or ../shared/data).
        tfds_data_dir: where TFDS keeps the prepared dataset.
        num_shards: TFRecord shards per split (0: let the runner choose).
    """

    # Where the files are, not what they hold (the builder checks the published files' sha256, and
    # `outside_inputs` names the splits present): left out of the fingerprint.
    LOCATIONS: ClassVar[tuple[str, ...]] = ("data_dir", "tfds_data_dir")

    dataset: str = "webnlg"
    builder_config: str = "partial"
    data_dir: str | None = None
    tfds_data_dir: str | None = None
    num_shards: int = 1


class _SentenceText(beam.DoFn):
    """Serialized example -> its tokens joined by spaces."""

    def __init__(self, features_dir: str):
        self._features_dir = features_dir

    def setup(self):
        import tensorflow_datasets as tfds

        self._features = tfds.features.FeatureConnector.from_config(self._features_dir)

    def process(self, record: bytes):
        tokens = self._features.deserialize_example_np(record)["tokens"]
        yield " ".join(t.decode("utf-8") for t in tokens)


def outside_inputs(config: Config) -> dict:
    """What ExampleGen reads from outside the pipeline, for its fingerprint: the builder's version and the splits
    whose published file is in the manual folder (a new builder version or a file added later makes a new run)."""
    return {"builder_version": str(tfds.builder_cls(config.dataset).VERSION),
            "published_splits": Corpus.published_splits(config.dataset, config.builder_config, config.tfds_data_dir,
                                                        config.data_dir)}


def run(config: Config, output_dir: str, beam_options=None) -> dict:
    """Builds (or reuses) the TFDS dataset and writes its splits as shards; returns counts."""
    corpus = Corpus.prepare(config.dataset, config.builder_config, config.tfds_data_dir, config.data_dir)
    info = corpus.builder.info
    info.features.save_config(output_dir)
    splits = list(info.splits)
    with beam.Pipeline(options=beam_options) as pipeline:
        for split in splits:
            records = (
                pipeline
                | f"Files[{split}]" >> beam.Create([str(path) for path in info.splits[split].filepaths])
                | f"Read[{split}]" >> beam.io.ReadAllFromTFRecord()
            )
            _ = records | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                os.path.join(output_dir, "data", split), file_name_suffix=".tfrecord", num_shards=config.num_shards
            )
            _ = (
                records
                | f"Text[{split}]" >> beam.ParDo(_SentenceText(output_dir))
                | f"WriteText[{split}]" >> beam.io.WriteToText(
                    os.path.join(output_dir, "text", split), file_name_suffix=".txt", shard_name_template=""
                )
            )
    record = {"name": corpus.name, "splits": {}}
    for split in splits:
        files = sorted(glob.glob(os.path.join(output_dir, "data", f"{split}-*.tfrecord")))
        record["splits"][split] = {
            "files": [os.path.relpath(f, output_dir) for f in files],
            "num_examples": info.splits[split].num_examples,
        }
    with open(os.path.join(output_dir, RecordCorpus.SPLITS_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    return {"name": corpus.name, "num_examples": {s: v["num_examples"] for s, v in record["splits"].items()}}
