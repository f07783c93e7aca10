"""Model inputs from tokens, for each encoder: word ids (and unseen-word features), or word pieces.

A featurizer maps a ragged `[batch, (n)]` batch of token strings to the model's
dense input dict. `rin_keras.preprocessor.RINPreprocessor` owns one; training
(`dataset.make_dataset`), `RINTripleExtractor` and the exported SavedModel all
call it, so they agree exactly.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from rin_keras.config import WORD_PIECES
from rin_keras.data.pos import PosTagger
from rin_keras.data.vocab import Vocabulary

TOKENIZER_DIR = "tokenizer"
MAX_WORD_CHARS = 20  # Characters of a word that the character CNN reads (its first ones).
# Word shapes (ids from 1; 0 is padding), tried in this order; RE2 patterns on the token.
WORD_SHAPES = (
    ("lower", r"\p{Ll}+"),
    ("title", r"\p{Lu}\p{Ll}+"),
    ("upper", r"\p{Lu}+"),
    ("number", r"[0-9][0-9.,:/-]*"),
    ("mixed_alnum", r".*[0-9].*"),
    ("punctuation", r"[^\pL\pN]+"),
)  # Anything else (mixed case, e.g. "McDonald", "iPhone") is the last id.
TOKENS_SPEC = tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)  # What a featurizer reads.


def padded_width(tokens: tf.RaggedTensor) -> tf.Tensor:
    """Padded word count of a batch: its longest sentence, and at least 1."""
    return tf.maximum(tf.reduce_max(tf.concat([tf.cast(tokens.row_lengths(), tf.int32), [0]], 0)), 1)


def word_shape_ids(words: tf.Tensor) -> tf.Tensor:
    """Returns the `WORD_SHAPES` id (1-based) of each string of `words`."""
    shape = tf.fill(tf.shape(words), len(WORD_SHAPES) + 1)
    for index, (_, pattern) in reversed(list(enumerate(WORD_SHAPES, start=1))):
        shape = tf.where(tf.strings.regex_full_match(words, pattern), index, shape)
    return shape


class WordIds:
    """Word ids `{"token_ids": [batch, n]}` (0 padding, 1 unknown), and the inputs of
    the unseen-word features the config enables: `pretrained_ids` [batch, n] (the
    lower-cased word in the pretrained table), `shape_ids` [batch, n] (`WORD_SHAPES`),
    `pos_ids` [batch, n] (part-of-speech tags, `rin_keras.data.pos`) and `char_ids`
    [batch, n, chars] (the word's first `MAX_WORD_CHARS` characters).

    Args:
        vocab: the train-split vocabulary (with its characters and pretrained words).
        inputs: the feature inputs to make besides `token_ids` (`RINConfig.word_feature_inputs`).
    """

    def __init__(self, vocab: Vocabulary, inputs: tuple[str, ...] = ()):
        self.inputs = tuple(inputs)
        self.lookup = vocab.word_lookup()
        self._layers = [self.lookup]
        if "pretrained_ids" in self.inputs:
            if not vocab.pretrained_words:
                raise ValueError("The model reads pretrained_ids but the vocabulary has no pretrained words.")
            self.pretrained_lookup = vocab.pretrained_lookup()
            self._layers.append(self.pretrained_lookup)
        if "char_ids" in self.inputs:
            self.char_lookup = vocab.char_lookup()
            self._layers.append(self.char_lookup)
        if "pos_ids" in self.inputs:
            if not vocab.pos_lexicon:
                raise ValueError("The model reads pos_ids but the vocabulary has no part-of-speech lexicon.")
            self.pos_tagger = PosTagger(vocab.pos_lexicon)
            self._layers.extend(self.pos_tagger.layers)
        for layer in self._layers:
            layer(tf.constant([""]))  # Builds the layer (SavedModel export needs built layers).
        self.padding_values = {name: 0 for name in ("token_ids", *self.inputs)}
        self.padded_shapes = {name: [None, None] if name == "char_ids" else [None] for name in self.padding_values}
        self.word_inputs = tuple(self.padding_values)  # Inputs with one entry per word.
        # One graph call when run eagerly (`RINTripleExtractor.predict`): 3.7 ms a batch of 64 short sentences
        # against 30 ms op by op (AVX2 host).
        self._featurize = tf.function(self._featurize, input_signature=[TOKENS_SPEC])

    @property
    def layers(self):
        return self._layers

    def __call__(self, tokens: tf.RaggedTensor) -> dict:
        return self._featurize(tokens)

    def _featurize(self, tokens: tf.RaggedTensor) -> dict:
        batch = tokens.nrows(out_type=tf.int32)
        words = tokens.to_tensor(default_value="", shape=tf.stack([batch, padded_width(tokens)]))
        mask = tf.sequence_mask(tokens.row_lengths(), tf.shape(words)[1])

        def ids(lookup, strings):
            # A real token spelled like the padding token reads as unknown, not as padding.
            return tf.where(mask, tf.maximum(tf.cast(lookup(strings), tf.int32), 1), 0)

        result = {"token_ids": ids(self.lookup, words)}
        if "pretrained_ids" in self.inputs:
            result["pretrained_ids"] = ids(self.pretrained_lookup, tf.strings.lower(words, encoding="utf-8"))
        if "shape_ids" in self.inputs:
            result["shape_ids"] = tf.where(mask, word_shape_ids(words), 0)
        if "pos_ids" in self.inputs:
            result["pos_ids"] = tf.where(mask, self.pos_tagger(words), 0)
        if "char_ids" in self.inputs:
            chars = tf.strings.unicode_split(words, "UTF-8", errors="replace")[:, :, :MAX_WORD_CHARS]
            char_ids = tf.ragged.map_flat_values(lambda c: tf.cast(self.char_lookup(c), tf.int32), chars)
            width = tf.maximum(char_ids.bounding_shape(out_type=tf.int64)[-1], 1)
            result["char_ids"] = char_ids.to_tensor(0, shape=tf.stack(
                [tf.cast(batch, tf.int64), tf.cast(tf.shape(words)[1], tf.int64), width]))
        return result


class WordPieces:
    """BERT inputs: `piece_ids` [batch, pieces] ([CLS] ... [SEP], 0 padding) and
    `word_pieces` [batch, n], the piece index that represents each word (-1 on padding).

    Args:
        tokenizer: a keras-hub `BertTokenizer` (any BERT preset's).
        word_piece: `"first"` or `"last"` sub-token of each word. `"last"` suits
            the partial-match protocol, whose annotated word is an entity's last.
        max_pieces: the backbone's maximum sequence length; longer inputs are cut
            and words past the cut point at the last kept piece (`words_read` counts
            the words before the cut: prediction reads only those, and says the
            sentence was truncated).
    """

    padding_values = {"piece_ids": 0, "word_pieces": -1}
    padded_shapes = {"piece_ids": [None], "word_pieces": [None]}
    word_inputs = ("word_pieces",)  # Inputs with one entry per word.

    def __init__(self, tokenizer, word_piece: str = "last", max_pieces: int = 512):
        if word_piece not in WORD_PIECES:
            raise ValueError(f"word_piece must be one of {WORD_PIECES}, got {word_piece!r}.")
        self.tokenizer = tokenizer
        if not tokenizer.built:
            tokenizer.build(None)  # SavedModel export needs built layers.
        self.word_piece = word_piece
        self.max_pieces = max_pieces
        self._cls = tokenizer.cls_token_id
        self._sep = tokenizer.sep_token_id
        self._unk = tokenizer.token_to_id(tokenizer.oov_token)
        # keras-hub tokenizers return Python lists when run eagerly; a graph keeps tensors.
        self._featurize = tf.function(self._featurize, input_signature=[TOKENS_SPEC])
        self._words_read = tf.function(self._count_words_read, input_signature=[TOKENS_SPEC])

    @property
    def layers(self):
        return [self.tokenizer]

    def __call__(self, tokens: tf.RaggedTensor) -> dict:
        return self._featurize(tokens)

    def words_read(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        """How many words of each sentence of `tokens` the encoder reads, int32 [batch]: those whose piece
        (`word_piece`) lies within the backbone's `max_pieces` (the others would share the last piece's features)."""
        return self._words_read(tokens)

    def _count_words_read(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        _, position = self._word_positions(tokens)
        fits = tf.cast(position <= self.max_pieces - 2, tf.int32)
        return tf.reduce_sum(tf.RaggedTensor.from_row_lengths(fits, tokens.row_lengths()), axis=1)

    def _word_positions(self, tokens: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """The word pieces of each word of `tokens` ([words, (k)]; a word that gives none reads as [UNK]), and
        the index of the piece that represents it in its sentence's input (after [CLS]), before any cut."""
        pieces = tf.cast(self.tokenizer.tokenize(tokens.flat_values), tf.int32)  # [words, (k)]
        counts = tf.cast(pieces.row_lengths(), tf.int32)
        with_unk = tf.concat([pieces, tf.RaggedTensor.from_tensor(tf.fill([tf.shape(counts)[0], 1], self._unk))], 1)
        keep = tf.ragged.range(with_unk.row_lengths()) < tf.cast(tf.maximum(counts, 1), tf.int64)[:, None]
        pieces = tf.ragged.boolean_mask(with_unk, keep)
        counts = tf.cast(pieces.row_lengths(), tf.int32)

        ends = tf.cumsum(counts)
        before_word = tf.concat([[0], ends], 0)  # Pieces before each word of the batch.
        before_sentence = tf.gather(before_word, tf.cast(tokens.row_starts(), tf.int32))
        end = ends - tf.gather(before_sentence, tf.cast(tokens.value_rowids(), tf.int32))
        return pieces, 1 + (end - 1 if self.word_piece == "last" else end - counts)

    def _featurize(self, tokens: tf.RaggedTensor) -> dict:
        batch = tokens.nrows(out_type=tf.int32)
        pieces, position = self._word_positions(tokens)
        position = tf.minimum(position, self.max_pieces - 2)
        word_pieces = tf.RaggedTensor.from_row_lengths(position, tokens.row_lengths())
        word_pieces = word_pieces.to_tensor(default_value=-1, shape=tf.stack([batch, padded_width(tokens)]))

        sentence_pieces = tf.RaggedTensor.from_row_lengths(pieces, tokens.row_lengths()).merge_dims(1, 2)
        sentence_pieces = sentence_pieces[:, : self.max_pieces - 2]
        piece_ids = tf.concat(
            [tf.fill([batch, 1], self._cls), sentence_pieces.to_tensor(0), tf.zeros([batch, 1], tf.int32)], 1
        )
        # [SEP] right after each sentence's last piece.
        sep_at = tf.cast(sentence_pieces.row_lengths(), tf.int32) + 1
        piece_ids = tf.tensor_scatter_nd_update(
            piece_ids, tf.stack([tf.range(batch), sep_at], 1), tf.fill([batch], self._sep)
        )
        return {"piece_ids": piece_ids, "word_pieces": word_pieces}


def preset_tokenizer(preset: str):
    """Returns the keras-hub `BertTokenizer` of a BERT preset, normalising text as its checkpoint was trained.

    keras-hub reads only `do_lower_case` of a Hugging Face model folder (`tokenizer_config.json`), so an uncased
    model such as all-MiniLM-L6-v2 would keep accents and read `José` as `[UNK]`. There, as in Hugging Face's
    `BertTokenizer`, accents are stripped as `strip_accents` says, or, where it is null, when the text is lowercased.
    keras-hub lowercases with NFKC case folding, which also folds compatibility characters (`ß` as `ss`, `ﬁ` as
    `fi`) that Hugging Face's tokenizer reads otherwise.

    Args:
        preset: a keras-hub preset name, or a folder (keras-hub's or a Hugging Face model's).
    """
    import keras_hub

    settings = {}
    hugging_face_config = os.path.join(preset, "tokenizer_config.json")
    if os.path.isfile(hugging_face_config):
        with open(hugging_face_config, encoding="utf-8") as f:
            config = json.load(f)
        strip_accents = config.get("strip_accents")
        settings["strip_accents"] = bool(config.get("do_lower_case") if strip_accents is None else strip_accents)
    return keras_hub.models.BertTokenizer.from_preset(preset, **settings)


def preset_max_pieces(preset: str) -> int:
    """The longest input, in word pieces, of a keras-hub preset's backbone (its architecture is built, its weights
    are not read)."""
    import keras_hub

    return keras_hub.models.Backbone.from_preset(preset, load_weights=False).max_sequence_length


def save_tokenizer(tokenizer, directory: str) -> None:
    """Writes a BertTokenizer's word-piece vocabulary, casing and accent stripping to `directory`."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(tokenizer.get_vocabulary()) + "\n")
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump({"lowercase": tokenizer.lowercase, "strip_accents": tokenizer.strip_accents}, f)


def load_tokenizer(directory: str):
    """Reads a BertTokenizer written by `save_tokenizer` (one saved without `strip_accents` keeps accents, as it
    was trained)."""
    import keras_hub

    with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
        settings = json.load(f)
    return keras_hub.models.BertTokenizer(vocabulary=os.path.join(directory, "vocab.txt"), **settings)
