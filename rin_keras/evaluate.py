"""Scoring a RIN model on a split: P/R/F1 tables and breakdowns.

`python -m rin_keras.evaluate --model_dir=runs/webnlg` re-scores the best saved
model on the test split (and dev with --split=validation), with breakdowns by
overlap category and by number of triples per sentence.
"""

from __future__ import annotations

import collections
import json
import os

import numpy as np
from absl import app, flags, logging

from rin_keras import metrics
from rin_keras.data import features, pipeline
from rin_keras.decoding import decode_triples


def predict_split(model, corpus: pipeline.Corpus, split: str, vocab, batch_size: int = 100, max_length: int = 100,
                  threshold: float = 0.5, featurizer=None):
    """Runs `model` over `split` in length-bucketed batches.

    Returns:
        (predicted triples, predicted tag ids, gold tag ids), each a list with
        one entry per sentence in the stored order of `split`.
    """
    dataset = pipeline.make_dataset(
        corpus, split, vocab, batch_size, max_length=max_length, featurizer=featurizer, with_index=True
    )
    triples, tags, gold_tags = {}, {}, {}
    for inputs, targets in dataset:
        outputs = model.predict_on_batch(inputs)
        gold = targets["entity_tags"].numpy()
        lengths = np.sum(gold >= 0, axis=1)
        tag_ids = np.argmax(outputs["entity_tags"], axis=-1)
        for i, (index, length) in enumerate(zip(targets["index"].numpy(), lengths)):
            triples[index] = decode_triples(tag_ids[i], outputs["relations"][i], int(length), threshold)
            tags[index] = tag_ids[i][:length]
            gold_tags[index] = gold[i][:length]
    order = sorted(triples)
    return [triples[i] for i in order], [tags[i] for i in order], [gold_tags[i] for i in order]


def overlap_category(triples) -> str:
    """Returns Normal, EntityPairOverlap or SingleEntityOverlap for a sentence's gold triples."""
    pairs = [(t.subject_head, t.object_head) for t in triples]
    if len({frozenset(p) for p in pairs}) < len(set(pairs)) or len(set(pairs)) < len(pairs):
        return "EntityPairOverlap"
    entities = [e for p in pairs for e in p]
    return "SingleEntityOverlap" if len(set(entities)) < len(entities) else "Normal"


def evaluate_split(model, corpus: pipeline.Corpus, split: str, vocab, *, batch_size: int = 100,
                   max_length: int = 100, threshold: float = 0.5, breakdown: bool = False, featurizer=None) -> dict:
    """Returns partial / exact / text triple scores and NER F1 of `model` on `split`.

    With `breakdown`, adds partial-match scores per overlap category and per
    number of gold triples in the sentence. `featurizer` makes the model inputs
    (default: word ids, for the BiLSTM encoder).
    """
    examples = corpus.examples(split)
    predicted, predicted_tags, gold_tags = predict_split(
        model, corpus, split, vocab, batch_size, max_length, threshold, featurizer
    )
    gold = [metrics.gold_triples(x) for x in examples]
    tokens = [[t.decode("utf-8") for t in x["tokens"]] for x in examples]
    relation_names = corpus.relation_names
    scores = metrics.score_triples(gold, predicted, tokens, relation_names)
    scores["ner"] = metrics.score_entities(gold_tags, predicted_tags)
    if breakdown:
        groups = collections.defaultdict(list)
        for i, g in enumerate(gold):
            groups[("overlap", overlap_category(g))].append(i)
            groups[("triples", str(min(len(g), 5)) + ("+" if len(g) >= 5 else ""))].append(i)
        scores["breakdown"] = {
            f"{kind}/{name}": {
                "sentences": len(ids),
                **metrics.score_triples(
                    [gold[i] for i in ids], [predicted[i] for i in ids], [tokens[i] for i in ids], relation_names
                )["partial"],
            }
            for (kind, name), ids in sorted(groups.items())
        }
    return scores


def format_table(scores: dict) -> str:
    """Returns a plain-text P/R/F1 table of `evaluate_split` scores."""
    rows = [f"{'scorer':<12}{'P':>8}{'R':>8}{'F1':>8}{'correct':>9}{'pred':>7}{'gold':>7}"]
    for name in ("partial", "exact", "text", "ner"):
        s = scores[name]
        rows.append(
            f"{name:<12}{s['precision']:8.2f}{s['recall']:8.2f}{s['f1']:8.2f}"
            f"{s['correct']:9d}{s['predicted']:7d}{s['gold']:7d}"
        )
    for name, s in scores.get("breakdown", {}).items():
        rows.append(f"{name:<28}{s['sentences']:5d} sent  P {s['precision']:6.2f}  R {s['recall']:6.2f}  F1 {s['f1']:6.2f}")
    return "\n".join(rows)


FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras

    from rin_keras import RINConfig
    from rin_keras.data.vocab import Vocabulary

    config = RINConfig.load(os.path.join(FLAGS.model_dir, "config.json"))
    vocab = Vocabulary.load(os.path.join(FLAGS.model_dir, "vocab"))
    corpus = pipeline.Corpus.prepare(config.dataset, config.variant, FLAGS.tfds_data_dir, FLAGS.data_dir)
    model = keras.saving.load_model(os.path.join(FLAGS.model_dir, "best.keras"))
    scores = evaluate_split(
        model, corpus, FLAGS.split, vocab, max_length=config.max_length, threshold=config.threshold, breakdown=True,
        featurizer=features.featurizer_for(config, vocab, FLAGS.model_dir),
    )
    print(format_table(scores))
    path = os.path.join(FLAGS.model_dir, f"evaluation_{FLAGS.split}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(scores, f, indent=2)
    logging.info("Wrote %s", path)


if __name__ == "__main__":
    flags.DEFINE_string("model_dir", None, "Training output folder (holds best.keras, config.json, vocab/).")
    flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split to score.")
    flags.DEFINE_string("data_dir", None, "Manual folder of the published data (default $RIN_DATA_DIR or ../shared/data).")
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps prepared datasets.")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
