"""Part-of-speech tags, the paper's second word input, computed the same way in training and in serving.

The tagger looks each token up in a word -> tag lexicon (Brill's, as `textblob` ships it: 94k words of
the Brown corpus and the Penn Treebank) and tags a word the lexicon lacks by its form (digits: `CD`,
a capital: `NNP`, `-ing`: `VBG`, ...). It is made of TensorFlow ops only (a `StringLookup` and regular
expressions), so `tf.data` in training, `RINTripleExtractor` and an exported SavedModel serving raw
text all run the same ops and get the same tags; the lexicon travels with the model's vocabulary.
It reads no context: 94.0% of its tags equal those of the averaged-perceptron tagger of
`textblob-aptagger` on WebNLG 3.0 dev text (`benchmarks/pos_agreement.py`).
"""

from __future__ import annotations

import importlib.util
import pathlib

import keras
import tensorflow as tf

# Penn Treebank tags (ids from 1; 0 is padding), with the lexicon's own tags for brackets and quotes.
TAGS = (
    "NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "RB", "RBR",
    "RBS", "IN", "DT", "PDT", "CC", "CD", "PRP", "PRP$", "WDT", "WP", "WP$", "WRB", "MD", "TO", "EX",
    "RP", "POS", "UH", "FW", "LS", "SYM", "$", "#", ".", ",", ":", "(", ")", "``", "''",
)
# Tags of words the lexicon lacks, tried in this order; RE2 patterns on the token. Anything else is `NN`.
UNKNOWN_WORD_RULES = (
    ("CD", r"[0-9].*"),
    ("NNP", r"\p{Lu}.*"),
    ("SYM", r"[^\pL\pN]+"),
    ("JJ", r".+-.+"),
    ("VBG", r".+ing"),
    ("VBN", r".+ed"),
    ("RB", r".+ly"),
    ("NNS", r".+[^s]s"),
    ("JJ", r".+(able|ible|al|ous|ive|ful|less|ic|ian|ese)"),
)


def brill_lexicon() -> dict[str, str]:
    """Reads `textblob`'s Brill lexicon: word -> its first tag, for the tags of `TAGS`."""
    spec = importlib.util.find_spec("textblob")  # Finds the file without importing textblob (and NLTK).
    if spec is None:
        raise ImportError("Part-of-speech tags need the textblob package (pip install textblob).")
    path = pathlib.Path(spec.submodule_search_locations[0], "en", "en-lexicon.txt")
    lexicon = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) != 2 or line.startswith(";;;"):
            continue
        tag = fields[1].split("|")[0]
        if tag in TAGS:
            lexicon[fields[0]] = tag
    return lexicon


class PosTagger:
    """Maps a tf.string tensor of tokens to tag ids (`TAGS` index + 1) of the same shape.

    Args:
        lexicon: word -> tag (one of `TAGS`), looked up case-sensitively.

    Example:
    >>> tagger = PosTagger({"was": "VBD", "born": "VBN", "in": "IN"})
    >>> tagger.tag(["Bean", "was", "born", "in", "1932", "flying", "planes"])
    ['NNP', 'VBD', 'VBN', 'IN', 'CD', 'VBG', 'NNS']
    """

    def __init__(self, lexicon: dict[str, str]):
        unknown = sorted({tag for tag in lexicon.values() if tag not in TAGS})
        if unknown:
            raise ValueError(f"Lexicon tags outside TAGS: {unknown[:10]}.")
        words = sorted(lexicon)
        self.lookup = keras.layers.StringLookup(vocabulary=words, num_oov_indices=1, mask_token=None)
        self.lookup(tf.constant([""]))  # Builds the layer (SavedModel export needs built layers).
        # Row 0: a word the lexicon lacks.
        self._tag_ids = tf.constant([0] + [TAGS.index(lexicon[word]) + 1 for word in words], tf.int32)

    @property
    def layers(self) -> list:
        return [self.lookup]

    def __call__(self, words: tf.Tensor) -> tf.Tensor:
        tag_ids = tf.gather(self._tag_ids, tf.cast(self.lookup(words), tf.int32))
        guess = tf.fill(tf.shape(words), TAGS.index("NN") + 1)
        for tag, pattern in reversed(UNKNOWN_WORD_RULES):
            guess = tf.where(tf.strings.regex_full_match(words, pattern), TAGS.index(tag) + 1, guess)
        return tf.where(tag_ids > 0, tag_ids, guess)

    def tag(self, tokens: list[str]) -> list[str]:
        """Returns the tags of a tokenised sentence, as names."""
        return [TAGS[i - 1] for i in self(tf.constant(tokens, tf.string)).numpy()] if tokens else []
