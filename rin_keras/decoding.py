"""From model outputs to entity spans and relational triples."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

TAGS = ("B", "I", "E", "S", "O")
_B, _I, _E, _S, _O = range(len(TAGS))


@dataclasses.dataclass(frozen=True)
class Triple:
    """One extracted (subject, relation, object).

    Attributes:
        subject_head: index of the subject's annotated (last) word.
        relation: relation id.
        object_head: index of the object's annotated (last) word.
        score: the pair probability p(<subject, relation, object>).
        subject_span: `(start, end)` of the tagged entity ending at the head, else None.
        object_span: likewise for the object.
    """

    subject_head: int
    relation: int
    object_head: int
    score: float
    subject_span: tuple[int, int] | None
    object_span: tuple[int, int] | None

    @property
    def subject_extent(self) -> tuple[int, int]:
        """The subject's tagged span, else its head word alone."""
        return self.subject_span or (self.subject_head, self.subject_head + 1)

    @property
    def object_extent(self) -> tuple[int, int]:
        """The object's tagged span, else its head word alone."""
        return self.object_span or (self.object_head, self.object_head + 1)


def tags_to_spans(tag_ids) -> list[tuple[int, int]]:
    """Returns `[start, end)` spans of a BIESO tag sequence: S, or B I* E; broken spans are dropped."""
    spans = []
    start = None
    for i, tag in enumerate(tag_ids):
        if tag == _S:
            spans.append((i, i + 1))
            start = None
        elif tag == _B:
            start = i
        elif tag == _E and start is not None:
            spans.append((start, i + 1))
            start = None
        elif tag != _I:
            start = None
    return spans


def span_starts(tag_ids) -> np.ndarray:
    """Returns, for each word of a BIESO tag sequence, the start of the entity (`tags_to_spans`) that ends at it,
    else the word's own index. The serving graph computes the same in TensorFlow."""
    starts = np.arange(len(tag_ids))
    for start, end in tags_to_spans(tag_ids):
        starts[end - 1] = start
    return starts


def decode_triples(tag_probs, relation_probs, length: int, threshold: float = 0.5) -> list[Triple]:
    """Returns the triples of one sentence.

    Args:
        tag_probs: `[n, 5]` tag probabilities (or `[n]` tag ids).
        relation_probs: `[n, n, l]` pair probabilities.
        length: number of real tokens.
        threshold: a cell is a triple when its probability is >= threshold.
    """
    probs = np.asarray(relation_probs)[:length, :length]
    cells = np.argwhere(probs >= threshold)
    return triples_from_cells(tag_probs, length, cells, probs[tuple(cells.T)])


def triples_from_cells(tag_probs, length: int, cells: np.ndarray, scores: np.ndarray) -> list[Triple]:
    """Returns the triples of one sentence's cells above the threshold.

    Args:
        tag_probs: `[n, 5]` tag probabilities (or `[n]` tag ids).
        length: number of real tokens.
        cells: int `[k, 3]`, each triple's (subject head, object head, relation), in that order.
        scores: `[k]` the cells' probabilities.
    """
    tag_ids = tag_probs if np.ndim(tag_probs) == 1 else np.argmax(tag_probs, axis=-1)
    span_by_head = {end - 1: (start, end) for start, end in tags_to_spans(tag_ids[:length])}
    return [
        Triple(int(s), int(r), int(o), float(score), span_by_head.get(s), span_by_head.get(o))
        for (s, o, r), score in zip(cells, scores)
    ]


def candidate_logit(threshold: float) -> float:
    """A logit below which no cell's float32 sigmoid reaches `threshold`: logit(threshold) less a margin
    far above the error of a float32 sigmoid (thresholds above 0.9999 read as 0.9999; below float32's smallest
    normal number, which float32 comparisons may read as 0, -inf)."""
    if threshold < np.finfo(np.float32).tiny:
        return -math.inf
    threshold = min(threshold, 0.9999)
    return math.log(threshold) - math.log1p(-threshold) - 0.05


def cells_from_logits(logits, lengths, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The cells of a batch whose probability reaches `threshold`, from the final relation head's logits.

    Only the word pairs whose largest logit can reach the threshold (`candidate_logit`) get a sigmoid (Keras's,
    as the model's own), so the cells and their probabilities are those of the model's `"relations"` output
    without its sigmoid and masking passes over every cell. (A sigmoid over some cells may round a probability's
    last float32 bit unlike one over all of them, so a cell within that rounding of the threshold may go either
    way.) The serving graph does the same in TensorFlow.

    Args:
        logits: `[batch, n, n, l]`, `RINModel.split_at_encoder(relation_logits=True)`'s `"relation_logits"`.
        lengths: `[batch]` real tokens of each sentence.
        threshold: a cell is a triple when its probability is >= threshold.

    Returns:
        `(cells, scores)`: int `[k, 4]` (sentence, subject head, object head, relation), in that order, and
        their float32 probabilities `[k]`.
    """
    logits = np.asarray(logits)
    lengths = np.asarray(lengths)
    best = logits.max(axis=-1).astype("float32")
    pairs = np.argwhere((best >= candidate_logit(threshold)) | np.isnan(best))  # NaN: read each cell.
    pairs = pairs[np.all(pairs[:, 1:] < lengths[pairs[:, :1]], axis=1)]
    probs = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits[tuple(pairs.T)].astype("float32")))
    found = np.argwhere(probs >= threshold)
    return np.concatenate([pairs[found[:, 0]], found[:, 1:]], axis=1), probs[tuple(found.T)]


def triple_strings(triples: list[Triple], tokens: list[str], relation_names: list[str]):
    """Returns `(subject, relation, object)` strings; an entity without a span is its head word."""
    return [
        (span_text(tokens, t.subject_extent), relation_names[t.relation], span_text(tokens, t.object_extent))
        for t in triples
    ]


def span_text(tokens: list[str], span: tuple[int, int]) -> str:
    """Returns the tokens of `[start, end)` joined by spaces."""
    return " ".join(tokens[span[0]:span[1]])
