"""Triple precision / recall / F1: a Keras metric for training and pure scorers for evaluation.

Three ways to count a predicted triple as correct:
- partial (the paper's protocol): relation and both annotated head words are right; counted over
  the cells (subject head, object head, relation), as the official release counts;
- exact: additionally both full entity spans are tagged right;
- text: the set of (subject string, relation, object string) per sentence, as CasRel/TPLinker count.
"""

from __future__ import annotations

from typing import Iterable

import keras
from keras import ops

from rin_keras.decoding import Triple, tags_to_spans, triple_strings


@keras.saving.register_keras_serializable(package="rin_keras")
class PartialMatchF1(keras.metrics.Metric):
    """Partial-match triple F1 on dense `[batch, n, n, l]` targets (-1 on padding).

    Args:
        threshold: float. A cell is predicted when its probability is >= threshold.
        name: str. Metric name.
    """

    def __init__(self, threshold=0.5, name="partial_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.true_positives = self.add_variable(shape=(), initializer="zeros", name="true_positives")
        self.predicted = self.add_variable(shape=(), initializer="zeros", name="predicted")
        self.gold = self.add_variable(shape=(), initializer="zeros", name="gold")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32")
        real = ops.greater_equal(y_true, 0.0)
        predicted = ops.logical_and(ops.greater_equal(ops.cast(y_pred, "float32"), self.threshold), real)
        gold = ops.equal(y_true, 1.0)
        self.true_positives.assign_add(ops.sum(ops.cast(ops.logical_and(predicted, gold), "float32")))
        self.predicted.assign_add(ops.sum(ops.cast(predicted, "float32")))
        self.gold.assign_add(ops.sum(ops.cast(gold, "float32")))

    def result(self):
        return ops.divide_no_nan(2.0 * self.true_positives, self.predicted + self.gold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def prf(correct: int, predicted: int, gold: int) -> dict:
    """Returns precision, recall and F1 (in %) with the counts."""
    precision = 100.0 * correct / predicted if predicted else 0.0
    recall = 100.0 * correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "correct": correct, "predicted": predicted, "gold": gold}


def score_sets(gold: Iterable[set], predicted: Iterable[set]) -> dict:
    """Scores per-sentence sets of hashable triples."""
    correct = n_pred = n_gold = 0
    for g, p in zip(gold, predicted, strict=True):
        correct += len(g & p)
        n_pred += len(p)
        n_gold += len(g)
    return prf(correct, n_pred, n_gold)


def gold_triples(example: dict) -> list[Triple]:
    """Returns the gold triples of a TFDS example (NumPy) as `Triple`s with score 1."""
    t = example["triples"]
    return [
        Triple(
            int(t["subject"]["head"][i]),
            int(t["relation"][i]),
            int(t["object"]["head"][i]),
            1.0,
            (int(t["subject"]["start"][i]), int(t["subject"]["end"][i])),
            (int(t["object"]["start"][i]), int(t["object"]["end"][i])),
        )
        for i in range(len(t["relation"]))
    ]


def triple_key(triple: Triple, match: str) -> tuple:
    """What identifies a triple under `match`: `"partial"` (heads and relation) or `"exact"` (spans too).

    A predicted triple whose head ends no tagged span keeps span None, so never matches exactly.
    """
    t = triple
    if match == "partial":
        return t.subject_head, t.relation, t.object_head
    return t.subject_head, t.subject_span, t.relation, t.object_head, t.object_span


def _partial(triples):
    return {triple_key(t, "partial") for t in triples}


def _exact(triples):
    return {triple_key(t, "exact") for t in triples}


def score_triples(
    gold: list[list[Triple]],
    predicted: list[list[Triple]],
    tokens: list[list[str]],
    relation_names: list[str],
) -> dict:
    """Returns `{"partial", "exact", "text"}` P/R/F1 of predicted against gold triples per sentence."""
    return {
        "partial": score_sets(map(_partial, gold), map(_partial, predicted)),
        "exact": score_sets(map(_exact, gold), map(_exact, predicted)),
        "text": score_sets(
            (set(triple_strings(g, tok, relation_names)) for g, tok in zip(gold, tokens)),
            (set(triple_strings(p, tok, relation_names)) for p, tok in zip(predicted, tokens)),
        ),
    }


def score_by_relation(gold: list[list[Triple]], predicted: list[list[Triple]], relation_names: list[str]) -> dict:
    """Returns partial-match P/R/F1 per relation name, for each relation gold or predicted at least once."""
    relations = sorted({t.relation for triples in (*gold, *predicted) for t in triples})
    return {
        relation_names[r]: score_sets(
            ({triple_key(t, "partial") for t in g if t.relation == r} for g in gold),
            ({triple_key(t, "partial") for t in p if t.relation == r} for p in predicted),
        )
        for r in relations
    }


def score_entities(gold_tags: list, predicted_tags: list) -> dict:
    """Returns NER span P/R/F1 of BIESO tag-id sequences."""
    return score_sets(
        (set(tags_to_spans(g)) for g in gold_tags), (set(tags_to_spans(p)) for p in predicted_tags)
    )


def overlap_category(triples) -> str:
    """Returns Normal, EntityPairOverlap or SingleEntityOverlap for a sentence's gold triples (a triple listed
    twice counts once, as in the scores)."""
    pairs = [(s, o) for s, _, o in _partial(triples)]
    if len({frozenset(p) for p in pairs}) < len(set(pairs)) or len(set(pairs)) < len(pairs):
        return "EntityPairOverlap"
    entities = [e for p in pairs for e in p]
    return "SingleEntityOverlap" if len(set(entities)) < len(entities) else "Normal"
