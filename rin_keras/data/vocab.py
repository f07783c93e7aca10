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
_CHARS_FILE = "chars.txt"
_PRETRAINED_FILE = "pretrained_words.txt"
_POS_LEXICON_FILE = "pos_lexicon.txt"


class Vocabulary:
    """Word ids (`<pad>`=0, `<unk>`=1, then words by frequency), relation names, and
    the inputs of the unseen-word features: characters and a pretrained table's words,
    and the part-of-speech tagger's lexicon.

    Args:
        words: the vocabulary, `PAD` and `UNK` first.
        relations: relation names in label-id order.
        chars: characters of the train words, for character features (ids from 2).
        pretrained_words: the words of a pretrained vector table, in its row order
            (ids from 2), looked up lower-cased; empty when the model has none.
        pos_lexicon: word -> part-of-speech tag (`rin_keras.data.pos`); empty when the model reads no tags.
    """

    def __init__(self, words: list[str], relations: list[str], chars: list[str] = (),
                 pretrained_words: list[str] = (), pos_lexicon: dict[str, str] | None = None):
        if words[:2] != [PAD, UNK]:
            raise ValueError(f"words must start with {PAD!r}, {UNK!r}.")
        self.words = list(words)
        self.relations = list(relations)
        self.chars = list(chars)
        self.pretrained_words = list(pretrained_words)
        self.pos_lexicon = dict(pos_lexicon or {})

    @classmethod
    def build(
        cls, sentences: Iterable[list[str]], relations: list[str], min_count: int = 1
    ) -> "Vocabulary":
        """Counts words of `sentences` (the train split); ties break alphabetically. A word spelled like a reserved
        entry (`<pad>`, `<unk>`) is that entry's (`WordIds` reads it as unknown)."""
        counts = collections.Counter(word for tokens in sentences for word in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK)),
                      key=lambda w: (-counts[w], w))
        chars = collections.Counter()
        for word, count in counts.items():
            for char in word:
                chars[char] += count
        return cls([PAD, UNK] + kept, relations, sorted(chars, key=lambda c: (-chars[c], c)))

    def with_pretrained_words(self, words: list[str]) -> "Vocabulary":
        """Returns a copy that also holds a pretrained table's words (in its row order)."""
        return Vocabulary(self.words, self.relations, self.chars, words, self.pos_lexicon)

    def with_pos_lexicon(self, lexicon: dict[str, str]) -> "Vocabulary":
        """Returns a copy that also holds a part-of-speech lexicon (word -> tag)."""
        return Vocabulary(self.words, self.relations, self.chars, self.pretrained_words, lexicon)

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

    def char_lookup(self) -> keras.layers.StringLookup:
        """Returns a StringLookup from characters to ids (0 padding, 1 unknown)."""
        return keras.layers.StringLookup(vocabulary=self.chars, mask_token="", oov_token=UNK, num_oov_indices=1)

    def pretrained_lookup(self) -> keras.layers.StringLookup:
        """Returns a StringLookup from lower-cased words to pretrained rows + 2 (0 padding, 1 unknown)."""
        return keras.layers.StringLookup(
            vocabulary=self.pretrained_words, mask_token=PAD, oov_token=UNK, num_oov_indices=1
        )

    def save(self, directory: str) -> None:
        """Writes words.txt, relations.txt, chars.txt, pretrained_words.txt (one entry a line) and
        pos_lexicon.txt (a word and its tag, tab-separated, a line each)."""
        os.makedirs(directory, exist_ok=True)
        lexicon = [f"{word}\t{tag}" for word, tag in sorted(self.pos_lexicon.items())]
        for name, entries in ((_WORDS_FILE, self.words), (_RELATIONS_FILE, self.relations),
                              (_CHARS_FILE, self.chars), (_PRETRAINED_FILE, self.pretrained_words),
                              (_POS_LEXICON_FILE, lexicon)):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                f.write("".join(entry + "\n" for entry in entries))

    @classmethod
    def load(cls, directory: str) -> "Vocabulary":
        """Reads a vocabulary written by `save` (one saved before chars, pretrained words and the
        part-of-speech lexicon too)."""
        entries = []
        for name in (_WORDS_FILE, _RELATIONS_FILE, _CHARS_FILE, _PRETRAINED_FILE, _POS_LEXICON_FILE):
            path = os.path.join(directory, name)
            if not os.path.exists(path) and name not in (_WORDS_FILE, _RELATIONS_FILE):
                entries.append([])
                continue
            with open(path, encoding="utf-8") as f:
                entries.append(f.read().split("\n")[:-1])
        *lists, lexicon = entries
        return cls(*lists, dict(line.split("\t") for line in lexicon))
