"""Trainer: rin_keras training on ExampleGen's shards, with the pipeline's config.

Output: the `rin_keras.train` model folder (best.keras, config.json, vocab/,
results.json, history and plots). Interrupted runs resume from the
BackupAndRestore state left in the `.partial` folder; a run that finished
before the component was recorded is read back, not trained again.
"""

from __future__ import annotations

import dataclasses
import json
import os

from rin_keras import RINConfig, train
from rin_keras.data.corpus import RecordCorpus


@dataclasses.dataclass
class Config:
    """Trainer settings.

    Attributes:
        hyperparameters: RINConfig fields to override the dataset defaults (rounds, epochs, ...).
        word_vectors: `word2vec`, `random` or a vectors text file.
        pretrained_vectors: the frozen pretrained word features: `glove` or a vectors
            text file (set `pretrained_dim: 0` in `hyperparameters` for none).
        mixed_precision: the Keras dtype policy: `none`, `mixed_float16` or `mixed_bfloat16`.
        patience: early-stopping patience in epochs.
        max_train_sentences: train on the first N sentences of the stored order only.
    """

    hyperparameters: dict = dataclasses.field(default_factory=dict)
    word_vectors: str = "word2vec"
    pretrained_vectors: str = "glove"
    mixed_precision: str = "none"
    patience: int = 30
    max_train_sentences: int | None = None


def run(config: Config, examples_dir: str, output_dir: str) -> dict:
    """Trains into `output_dir`; returns the best epoch and its dev and test partial F1.

    Raises:
        ValueError: the examples were built with another builder config than the hyperparameters ask for (held-out
            categories or not).
    """
    corpus = RecordCorpus(examples_dir)
    dataset, builder_config, _ = corpus.name.split("/")
    variant = builder_config.removesuffix("_heldout")
    rin_config = RINConfig.for_dataset(dataset, variant=variant, **config.hyperparameters)
    if rin_config.builder_config != builder_config:
        raise ValueError(f"the examples are {corpus.name}, but the model's config asks for {dataset}/"
                         f"{rin_config.builder_config} (heldout_categories={rin_config.heldout_categories}).")
    if train.is_finished_run(output_dir):
        with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
    else:
        results = train.train(
            rin_config, output_dir, corpus=corpus, word_vectors_source=config.word_vectors,
            pretrained_source=config.pretrained_vectors, mixed_precision=config.mixed_precision,
            patience=config.patience, max_train_sentences=config.max_train_sentences,
        )
    return {
        "best_epoch": results["best_epoch"],
        "validation_partial_f1": results["validation"]["partial"]["f1"],
        "test_partial_f1": results["test"]["partial"]["f1"],
    }
