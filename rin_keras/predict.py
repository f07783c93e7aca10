"""Triples from raw sentences with a trained model: the `Extractor` API and CLI.

Sentences are tokenised the way the training data was (CopyRE / CasRel
release): split on ASCII whitespace (space, tab, newline, vertical tab, form
feed, carriage return), nothing else. Punctuation is not split off, so
"Rome ." and "Rome." are different inputs. Invalid UTF-8 bytes become U+FFFD.

    python -m rin_keras.predict --model_dir=runs/webnlg "Alan Bean was born in Wheeler , Texas ."
    cat sentences.txt | python -m rin_keras.predict --model_dir=runs/webnlg > triples.jsonl
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Iterable

import numpy as np

from rin_keras.config import RINConfig
from rin_keras.data import features
from rin_keras.data.vocab import Vocabulary
from rin_keras.decoding import decode_triples, span_text

_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
MODEL_FILE = "best.keras"


def tokenize(sentence: str | bytes) -> list[str]:
    """Splits a sentence on ASCII whitespace, as `tf.strings.split` does."""
    if isinstance(sentence, bytes):
        sentence = sentence.decode("utf-8", errors="replace")
    return [token for token in _WHITESPACE.split(sentence) if token]


def triple_dicts(tokens: list[str], triples, relation_names: list[str]) -> list[dict]:
    """Returns `decoding.Triple`s as the dicts `Extractor.predict` gives.

    An entity whose span the NER head did not tag is its annotated (last) word.
    """
    return [
        {
            "subject": span_text(tokens, t.subject_extent),
            "relation": relation_names[t.relation],
            "object": span_text(tokens, t.object_extent),
            "score": t.score,
            "subject_span": list(t.subject_extent),
            "object_span": list(t.object_extent),
        }
        for t in triples
    ]


def triples_from_outputs(outputs: dict) -> list[list[dict]]:
    """Returns `Extractor.predict`'s structure from the exported signature's outputs.

    Args:
        outputs: NumPy arrays or nested lists keyed by `rin_keras.export.OUTPUTS` names
            (`subjects`, `relations`, `objects`, `scores`, `subject_spans`,
            `object_spans`, `num_triples`), batch first.
    """

    def text(value):
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)

    results = []
    for row, count in enumerate(np.asarray(outputs["num_triples"]).tolist()):
        results.append([
            {
                "subject": text(outputs["subjects"][row][k]),
                "relation": text(outputs["relations"][row][k]),
                "object": text(outputs["objects"][row][k]),
                "score": float(outputs["scores"][row][k]),
                "subject_span": [int(i) for i in outputs["subject_spans"][row][k]],
                "object_span": [int(i) for i in outputs["object_spans"][row][k]],
            }
            for k in range(count)
        ])
    return results


class Extractor:
    """Extracts relational triples from raw sentences with a trained RIN model.

    Args:
        model: a trained RINModel.
        vocab: the vocabulary it was trained with.
        max_length: sentences are cut to this many tokens (the result says so).
        threshold: pair probability at which a cell is a triple.

    Example:
    >>> extractor = Extractor.from_model_dir("runs/webnlg")
    >>> extractor.predict(["Alan Bean was born in Wheeler , Texas ."])
    [[{"subject": "Bean", "relation": "birthPlace", "object": "Texas", "score": 0.98, ...}]]
    """

    def __init__(self, model, vocab: Vocabulary, max_length: int = 100, threshold: float = 0.5, featurizer=None):
        self.model = model
        self.vocab = vocab
        self.max_length = max_length
        self.threshold = threshold
        self.featurizer = featurizer or features.featurizer_for(model.config, vocab)

    @classmethod
    def from_model_dir(cls, model_dir: str) -> "Extractor":
        """Loads `best.keras`, `config.json` and `vocab/` written by `rin_keras.train`."""
        import keras

        path = os.path.join(model_dir, MODEL_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: is {model_dir!r} a rin_keras.train --model_dir?")
        config = RINConfig.load(os.path.join(model_dir, "config.json"))
        vocab = Vocabulary.load(os.path.join(model_dir, "vocab"))
        return cls(keras.saving.load_model(path), vocab, config.max_length, config.threshold,
                   features.featurizer_for(config, vocab, model_dir))

    def predict(self, sentences: Iterable[str], batch_size: int = 64) -> list[list[dict]]:
        """Returns, per sentence, its triples as dicts.

        Each dict holds `subject`, `relation`, `object` (strings), `score` (the pair
        probability), `subject_span` and `object_span` (`[start, end)` token indices).
        """
        return [result["triples"] for result in self.predict_detailed(sentences, batch_size)]

    def predict_detailed(self, sentences: Iterable[str], batch_size: int = 64) -> list[dict]:
        """Like `predict`, but each sentence gives `{"tokens", "truncated", "triples"}`."""
        token_lists = [tokenize(s) for s in sentences]
        results = []
        for begin in range(0, len(token_lists), batch_size):
            batch = token_lists[begin:begin + batch_size]
            results.extend(self._predict_tokens(batch))
        return results

    def _predict_tokens(self, batch: list[list[str]]) -> list[dict]:
        import tensorflow as tf

        kept = [tokens[: self.max_length] for tokens in batch]
        inputs = self.featurizer(tf.ragged.constant(kept, dtype=tf.string, ragged_rank=1))
        outputs = self.model.predict_on_batch({k: v.numpy() for k, v in inputs.items()})
        tag_ids = np.argmax(outputs["entity_tags"], axis=-1)
        results = []
        for row, tokens in enumerate(kept):
            triples = decode_triples(tag_ids[row], outputs["relations"][row], len(tokens), self.threshold)
            results.append({
                "tokens": tokens,
                "truncated": len(batch[row]) > self.max_length,
                "triples": triple_dicts(tokens, triples, self.vocab.relations),
            })
        return results


def main(argv):
    from absl import flags

    sentences = argv[1:] or [line.rstrip("\n") for line in sys.stdin]
    extractor = Extractor.from_model_dir(flags.FLAGS.model_dir)
    for sentence, result in zip(sentences, extractor.predict_detailed(sentences, flags.FLAGS.batch_size)):
        print(json.dumps({"sentence": sentence, **result}, ensure_ascii=False))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("model_dir", None, "Training output folder (best.keras, config.json, vocab/).")
    flags.DEFINE_integer("batch_size", 64, "Sentences per model call.")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
