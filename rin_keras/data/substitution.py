"""Entity substitution: train entity words swapped, in training, for words like them that train never shows.

WebNLG's train split names few distinct entities per relation (16 subjects of
`birthPlace`, all astronauts), so a model learns who the entities are rather than
what the sentence says, and relates almost nothing about unseen people and places
(docs/benchmarks/robustness.md, "Where the misses are"). Here each train entity word gets a
list of stand-ins: its nearest neighbours in the frozen pretrained table (GloVe),
written in its case (`Bean` -> `Collins`, `Texas` -> `Ohio`, `1959` -> `1961`). In
training, a share of the entity words of each sentence are written as one of their
stand-ins before any feature is read (word id, pretrained id, shape, characters,
or a BERT encoder's word pieces), so the model sees the same contexts with many
more names, as it will at inference.
Only train words and the pretrained table are read, never dev or test text.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

# Stand-ins are drawn from the table's most frequent rows (GloVe is sorted by frequency), so they are real words.
DEFAULT_SEARCH_ROWS = 100_000


def _case(word: str) -> str:
    """A word's case pattern: `"upper"`, `"lower"` or `"title"` (also for mixed case such as `McQuaid`)."""
    if word.isupper() and len(word) > 1:
        return "upper"
    return "lower" if word.islower() else "title"


def written_like(word: str, model: str) -> str:
    """`word` in the case pattern of `model`: UPPER, lower, or Title (see `_case`)."""
    case = _case(model)
    if case == "upper":
        return word.upper()
    if case == "lower":
        return word.lower()
    return word[:1].upper() + word[1:].lower()


def _kind(word: str) -> str | None:
    """Which words may stand in for `word`: letters for letters, digits for digits; None for anything else."""
    if word.isalpha():
        return "alpha"
    if word.isdigit():
        return "digit"
    return None


class EntitySubstitutes:
    """Stand-ins for train entity words, from a pretrained table's nearest neighbours.

    Args:
        substitutes: `{train entity word: [stand-in, ...]}` (each already written in the word's case).
    """

    def __init__(self, substitutes: dict[str, list[str]]):
        self.substitutes = {w: list(s) for w, s in substitutes.items() if s}

    @classmethod
    def from_pretrained(cls, entity_words, pretrained_words: list[str], vectors: np.ndarray, k: int = 20,
                        search_rows: int = DEFAULT_SEARCH_ROWS) -> "EntitySubstitutes":
        """The `k` nearest neighbours (cosine) of each entity word's lower-cased form among the table's first
        `search_rows` rows, of the same kind (letters or digits), the word itself left out.

        Args:
            entity_words: words inside the gold entities of the train split.
            pretrained_words: the table's words, in row order.
            vectors: the table, `[len(pretrained_words), dim]`.
            k: stand-ins per word.
            search_rows: how many of the table's first rows may stand in.
        """
        row_of = {}
        for row, word in enumerate(pretrained_words):
            row_of.setdefault(word, row)
        searched = min(search_rows, len(pretrained_words))
        candidates = {kind: np.asarray([r for r in range(searched) if _kind(pretrained_words[r]) == kind], np.int64)
                      for kind in ("alpha", "digit")}
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
        wanted = sorted({w for w in entity_words if _kind(w) and w.lower() in row_of})
        substitutes = {}
        for kind, rows in candidates.items():
            words = [w for w in wanted if _kind(w) == kind]
            for begin in range(0, len(words), 512):
                chunk = words[begin:begin + 512]
                similarity = unit[[row_of[w.lower()] for w in chunk]] @ unit[rows].T
                nearest = np.argsort(-similarity, axis=1)[:, :k + 1]
                for word, order in zip(chunk, nearest):
                    found = [pretrained_words[rows[i]] for i in order if pretrained_words[rows[i]] != word.lower()]
                    substitutes[word] = [written_like(s, word) for s in found[:k]]
        logging.info("Entity substitutes: %d of %d train entity words have %d stand-ins each.",
                     len(substitutes), len(set(entity_words)), k)
        return cls(substitutes)

    @classmethod
    def from_train_split(cls, corpus, pretrained_words: list[str], vectors: np.ndarray,
                         k: int = 20) -> "EntitySubstitutes":
        """Stand-ins for the entity words of `corpus`'s train split, from a pretrained table (its words in row
        order and its rows `vectors`); see `from_pretrained`."""
        return cls.from_pretrained(cls.entity_words(corpus.examples("train")), pretrained_words, vectors, k)

    @staticmethod
    def entity_words(examples) -> list[str]:
        """The words inside the gold entities of encoded-or-raw TFDS `examples` (`tokens`, `entities`)."""
        words = []
        for x in examples:
            tokens = x["tokens"]
            for start, end in zip(x["entities"]["start"], x["entities"]["end"]):
                words += [t.decode("utf-8") if isinstance(t, bytes) else t for t in tokens[start:end]]
        return words

    def _stand_in_tables(self):
        """The graph tables `substituter` draws from: `block` (word -> its row of `starts` and `counts`; -1 for
        other words), `pool` (every stand-in, each word's `counts` of them from `starts`, the words ordered by
        kind and case), and each word's (kind, case) group as `group_start` and `group_size` rows of `pool`."""
        words = sorted(self.substitutes, key=lambda w: (_kind(w) or "", _case(w), w))
        if not words:
            raise ValueError("No train entity word has stand-ins.")
        counts = np.asarray([len(self.substitutes[w]) for w in words], np.int32)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        groups = [(_kind(w) or "", _case(w)) for w in words]
        span = {}  # (kind, case) -> (first row in `pool`, rows).
        for group, start, count in zip(groups, starts, counts):
            first = span.get(group, (start, 0))[0]
            span[group] = (first, start + count - first)
        block = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(words), tf.range(len(words), dtype=tf.int32)), -1)
        pool = tf.constant([s for w in words for s in self.substitutes[w]])
        return (block, pool, tf.constant(starts), tf.constant(counts),
                tf.constant([span[g][0] for g in groups], tf.int32), tf.constant([span[g][1] for g in groups], tf.int32))

    def substituter(self, rate: float, unrelated_share: float = 0.0):
        """Returns a tf.data map function `substitute(example, key)` over raw TFDS examples (`tokens`, `entities`)
        that writes each word inside a gold entity, with probability `rate`, as one of its stand-ins, before the
        featurizer reads it (so every input of any encoder, word ids, pretrained ids, shapes, characters or word
        pieces, sees the stand-in). A word said several times in a sentence gets the same stand-in each time
        (mentions outside the gold entities too, once one inside is swapped).

        The draws are a function of the int64 `key` alone (stateless random ops), so the same keys give the same
        substitutions in any process and in any order of a parallel map: give each example a new key each epoch
        (`tf.data.Dataset.random(seed, rerandomize_each_iteration=True)` zipped with the examples).

        With `unrelated_share`, that share of the swapped words takes instead a stand-in of any train entity word
        of its kind and case (`Texas` -> `Collins`, `Bean` -> `Ohio`): only the sentence, not the stand-in's
        likeness to the word, then tells what the entity is, as for the unseen names of another domain.

        Args:
            rate: the share of entity words substituted.
            unrelated_share: the share of those swaps whose stand-in is unrelated to the word.
        """
        if not 0.0 <= unrelated_share <= 1.0:
            raise ValueError(f"unrelated_share must be in [0, 1], got {unrelated_share}.")
        block, pool, starts, counts, group_start, group_size = self._stand_in_tables()
        k = int(tf.reduce_max(counts))

        def substitute(example, key):
            tokens = example["tokens"]
            n = tf.shape(tokens)[0]
            entities = example["entities"]
            position = tf.range(n)[:, None]
            inside = tf.reduce_any((position >= entities["start"][None, :]) & (position < entities["end"][None, :]),
                                   axis=1)
            word = block.lookup(tokens)
            # One draw per distinct word of the sentence, so a repeated name stays one name, also where a
            # mention of it lies outside the gold entities.
            distinct, same = tf.unique(tokens)
            in_entity = tf.math.unsorted_segment_max(tf.cast(inside, tf.int32), same, tf.size(distinct)) > 0
            draws = tf.random.stateless_uniform([n], seed=tf.stack([key, 0]))
            picks = tf.random.stateless_uniform([n], seed=tf.stack([key, 1]), maxval=k, dtype=tf.int32)
            swap = (word >= 0) & tf.gather(in_entity & (draws[:tf.size(distinct)] < rate), same)
            word = tf.maximum(word, 0)
            row = tf.gather(starts, word) + tf.gather(picks, same) % tf.gather(counts, word)
            if unrelated_share:
                unrelated = tf.random.stateless_uniform([n], seed=tf.stack([key, 2])) < unrelated_share
                anywhere = tf.random.stateless_uniform([n], seed=tf.stack([key, 3]), maxval=pool.shape[0],
                                                       dtype=tf.int32)
                row = tf.where(tf.gather(unrelated, same),
                               tf.gather(group_start, word) + tf.gather(anywhere, same) % tf.gather(group_size, word),
                               row)
            return {**example, "tokens": tf.where(swap, tf.gather(pool, row), tokens)}

        return substitute
