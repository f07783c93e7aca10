"""Word and relation vocabularies, built from the train split only."""

from __future__ import annotations

import collections
import os
from typing import Iterable

import keras

PAD = "<pad>"
UNK = "<unk>"
_WORDS_FILE = "words.txt"
_RELATIONS_FILE = "relations.txt"


class Vocabulary:
    """Word ids (`<pad>`=0, `<unk>`=1, then words by frequency) and relation names.

    Args:
        words: the vocabulary, `PAD` and `UNK` first.
        relations: relation names in label-id order.
    """

    def __init__(self, words: list[str], relations: list[str]):
        if words[:2] != [PAD, UNK]:
            raise ValueError(f"words must start with {PAD!r}, {UNK!r}.")
        self.words = list(words)
        self.relations = list(relations)

    @classmethod
    def build(
        cls, sentences: Iterable[list[str]], relations: list[str], min_count: int = 1
    ) -> "Vocabulary":
        """Counts words of `sentences` (the train split); ties break alphabetically."""
        counts = collections.Counter(word for tokens in sentences for word in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK] + kept, relations)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def word_lookup(self) -> keras.layers.StringLookup:
        """Returns a StringLookup that maps tokens to these ids (0 pad, 1 unknown)."""
        return keras.layers.StringLookup(
            vocabulary=self.words[2:], mask_token=PAD, oov_token=UNK, num_oov_indices=1
        )

    def save(self, directory: str) -> None:
        """Writes words.txt and relations.txt, one entry a line."""
        os.makedirs(directory, exist_ok=True)
        for name, entries in ((_WORDS_FILE, self.words), (_RELATIONS_FILE, self.relations)):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                f.write("\n".join(entries) + "\n")

    @classmethod
    def load(cls, directory: str) -> "Vocabulary":
        """Reads a vocabulary written by `save`."""
        entries = []
        for name in (_WORDS_FILE, _RELATIONS_FILE):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                entries.append(f.read().split("\n")[:-1])
        return cls(*entries)
