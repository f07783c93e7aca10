"""Losses over real tokens only, the Keras metric, and the scorers on hand-made cases."""

import dataclasses

import keras
import numpy as np
import pytest

from rin_keras import metrics
from rin_keras.decoding import (
    Triple,
    candidate_logit,
    cells_from_logits,
    decode_triples,
    tags_to_spans,
    triples_from_cells,
)
from rin_keras.losses import MaskedPairwiseBinaryCrossEntropy, MaskedTagCrossEntropy

B, I, E, S, O = range(5)


def test_tag_loss_sums_real_tokens_and_averages_sentences(rng):
    probs = rng.dirichlet(np.ones(5), size=(2, 3)).astype("float32")
    tags = np.array([[0, 4, -1], [3, -1, -1]], "int32")
    expected = (-np.log(probs[0, 0, 0]) - np.log(probs[0, 1, 4]) - np.log(probs[1, 0, 3])) / 2
    assert float(MaskedTagCrossEntropy()(tags, probs)) == pytest.approx(expected, rel=1e-5)


def test_pair_loss_ignores_padded_cells(rng):
    p = rng.uniform(0.05, 0.95, size=(1, 2, 2, 1)).astype("float32")
    y = np.array([[[[1.0], [-1.0]], [[-1.0], [-1.0]]]], "float32")
    assert float(MaskedPairwiseBinaryCrossEntropy()(y, p)) == pytest.approx(-np.log(p[0, 0, 0, 0]), rel=1e-5)


def test_pair_loss_is_binary_cross_entropy_on_int8_targets(rng):
    p = rng.uniform(0.01, 0.99, size=(2, 3, 3, 4)).astype("float32")
    y = rng.integers(-1, 2, size=p.shape).astype("int8")  # The pipeline's targets: 1, 0, -1 on padding.
    cells = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = np.where(y >= 0, cells, 0.0).sum(axis=(1, 2, 3)).mean()
    assert float(MaskedPairwiseBinaryCrossEntropy()(y, p)) == pytest.approx(expected, rel=1e-5)


def test_pair_loss_gradient_is_the_cross_entropy_derivative(rng):
    """The written-out gradient: -1/p on positive cells, 1/(1-p) on negative ones, 0 on padding, over the batch."""
    p = rng.uniform(0.01, 0.99, size=(2, 3, 3, 4)).astype("float32")
    y = rng.integers(-1, 2, size=p.shape).astype("int8")
    expected = np.where(y == 1, -1.0 / p, np.where(y == 0, 1.0 / (1.0 - p), 0.0)) / len(y)
    np.testing.assert_allclose(_gradient(lambda x: MaskedPairwiseBinaryCrossEntropy()(y, x), p), expected, rtol=1e-5)


def _gradient(function, x):
    """d function / dx on the current Keras backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(function))(x))
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = function(x)
    return tape.gradient(value, x).numpy()


def test_partial_match_metric_counts_cells():
    metric = metrics.PartialMatchF1()
    y_true = np.array([[[[1, 0], [0, -1]], [[1, -1], [-1, -1]]]], "float32")
    y_pred = np.array([[[[0.9, 0.6], [0.1, 0.9]], [[0.2, 0.9], [0.9, 0.9]]]], "float32")
    metric.update_state(y_true, y_pred)  # tp=1, predicted=2 (padding ignored), gold=2
    assert float(metric.result()) == pytest.approx(0.5)


def test_tags_to_spans():
    assert tags_to_spans([S, O, B, I, E, B, E, I, E, O, S]) == [(0, 1), (2, 5), (5, 7), (10, 11)]
    assert tags_to_spans([O, I, E, B, O]) == []


def _triple(s, r, o, s_span=None, o_span=None):
    return Triple(s, r, o, 1.0, s_span or (s, s + 1), o_span or (o, o + 1))


def test_scorer_overlapping_and_multiword_triples():
    tokens = [["New", "York", "is", "in", "USA", "and", "York", "too"]]
    gold = [[_triple(1, 0, 4, (0, 2)), _triple(1, 1, 4, (0, 2)), _triple(6, 0, 4)]]
    predicted = [[
        _triple(1, 0, 4, (0, 2)),  # right
        _triple(1, 1, 4, (1, 2)),  # same pair, second relation: head right, span wrong
        _triple(6, 2, 4),  # same word twice in the sentence, wrong relation
    ]]
    scores = metrics.score_triples(gold, predicted, tokens, ["r0", "r1", "r2"])
    assert (scores["partial"]["correct"], scores["partial"]["predicted"], scores["partial"]["gold"]) == (2, 3, 3)
    assert scores["exact"]["correct"] == 1
    # Text level: ("York", r0, "USA") of the third gold triple equals no predicted string triple.
    assert scores["text"]["correct"] == 1 and scores["text"]["gold"] == 3


def test_scores_by_relation_count_each_relation_alone():
    gold = [[_triple(1, 0, 4), _triple(1, 1, 4)], [_triple(0, 0, 2)]]
    predicted = [[_triple(1, 0, 4), _triple(4, 2, 1)], [_triple(0, 1, 2)]]
    scores = metrics.score_by_relation(gold, predicted, ["r0", "r1", "r2", "r3"])
    assert set(scores) == {"r0", "r1", "r2"}  # r3: neither gold nor predicted.
    assert [(scores[r]["correct"], scores[r]["predicted"], scores[r]["gold"]) for r in ("r0", "r1", "r2")] == \
        [(1, 1, 2), (0, 1, 1), (0, 1, 0)]
    assert sum(s["correct"] for s in scores.values()) == metrics.score_triples(
        gold, predicted, [[]] * 2, ["r0", "r1", "r2", "r3"])["partial"]["correct"]


def test_scorer_empty_predictions_and_empty_gold():
    scores = metrics.score_triples([[_triple(0, 0, 1)], []], [[], []], [["a", "b"], []], ["r"])
    assert scores["partial"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "correct": 0, "predicted": 0, "gold": 1}


def test_decode_triples_threshold_and_spans():
    tags = np.array([B, E, O, S, O])
    probs = np.zeros((5, 5, 2), "float32")
    probs[1, 3, 0] = 0.5
    probs[3, 1, 1] = 0.49  # under the threshold
    probs[2, 3, 1] = 0.8  # a subject head without a tagged span
    probs[2, 4, 1] = 0.7  # the object outside the length
    probs[4, 4, 0] = 0.9  # both outside the length
    triples = decode_triples(tags, probs, length=4)
    assert triples == [Triple(1, 0, 3, 0.5, (0, 2), (3, 4)), Triple(2, 1, 3, pytest.approx(0.8), None, (3, 4))]
    assert triples[1].subject_extent == (2, 3)


@pytest.mark.parametrize("threshold", [0.0, 1e-6, 0.5, 0.9999, 0.99999, 1.0])
def test_candidate_logit_keeps_every_cell_whose_sigmoid_reaches_the_threshold(threshold):
    bound = candidate_logit(threshold)
    logits = np.linspace(-40.0, 40.0, 2_000_001).astype("float32")
    reached = logits[keras.ops.convert_to_numpy(keras.ops.sigmoid(logits)) >= threshold]
    assert reached.size and reached.min() >= bound
    if 0.0 < threshold <= 0.9999:  # A close bound (higher thresholds share 0.9999's).
        assert bound > reached.min() - 0.1


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_cells_from_logits_are_the_cells_decode_triples_reads_from_probabilities(rng, threshold):
    logits = rng.normal(0.0, 3.0, size=(3, 6, 6, 4)).astype("float32")
    logits[0, 5, 5] = 30.0  # Padding: never a cell.
    lengths = np.array([5, 6, 0])
    tags = rng.integers(0, 5, size=(3, 6))
    cells, scores = cells_from_logits(logits, lengths, threshold)
    assert cells.shape[1] == 4 and (threshold == 1.0 or len(cells) > 5)
    probs = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))
    for i, length in enumerate(lengths):
        mine = cells[:, 0] == i
        # A sigmoid over some cells may round the last bit unlike one over all of them (vectorised or not).
        assert triples_from_cells(tags[i], length, cells[mine, 1:], scores[mine]) == [
            dataclasses.replace(t, score=pytest.approx(t.score, rel=1e-6))
            for t in decode_triples(tags[i], probs[i], length, threshold)]


def test_cells_from_logits_reads_a_pair_with_a_nan_logit_cell_by_cell_and_tiny_thresholds_as_zero():
    logits = np.array([[[[np.nan, 5.0]]]], "float32")
    assert cells_from_logits(logits, [1], 0.5)[0].tolist() == [[0, 0, 0, 1]]
    very_negative = np.full((1, 2, 2, 1), -120.0, "float32")
    for threshold in (0.0, 1e-50):  # 1e-50 is 0 in float32, and so was every cell's probability reaching it.
        assert len(cells_from_logits(very_negative, [2], threshold)[0]) == 4
