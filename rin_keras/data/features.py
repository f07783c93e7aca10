"""Model inputs from whitespace tokens, for each encoder: word ids, or word pieces aligned to words.

A featurizer maps a ragged `[batch, (n)]` batch of token strings to the model's
dense input dict. Training (`pipeline.make_dataset`), `predict.Extractor` and
the exported SavedModel all call the same featurizer, so they agree exactly.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from rin_keras.config import RINConfig
from rin_keras.data.vocab import Vocabulary

TOKENIZER_DIR = "tokenizer"


def padded_width(tokens: tf.RaggedTensor) -> tf.Tensor:
    """Padded word count of a batch: its longest sentence, and at least 1."""
    return tf.maximum(tf.reduce_max(tf.concat([tf.cast(tokens.row_lengths(), tf.int32), [0]], 0)), 1)


class WordIds:
    """`{"token_ids": [batch, n]}` from the word vocabulary (0 padding, 1 unknown).

    Args:
        vocab: the train-split vocabulary.
    """

    padding_values = {"token_ids": 0}
    word_inputs = ("token_ids",)  # Inputs with one entry per word.

    def __init__(self, vocab: Vocabulary):
        self.lookup = vocab.word_lookup()
        self.lookup(tf.constant([""]))  # Builds the layer (SavedModel export needs built layers).

    @property
    def layers(self):
        return [self.lookup]

    def __call__(self, tokens: tf.RaggedTensor) -> dict:
        batch = tokens.nrows(out_type=tf.int32)
        words = tokens.to_tensor(default_value="", shape=tf.stack([batch, padded_width(tokens)]))
        mask = tf.sequence_mask(tokens.row_lengths(), tf.shape(words)[1])
        # A real token spelled like the padding token reads as unknown, not as padding.
        return {"token_ids": tf.where(mask, tf.maximum(tf.cast(self.lookup(words), tf.int32), 1), 0)}


class WordPieces:
    """BERT inputs: `piece_ids` [batch, pieces] ([CLS] ... [SEP], 0 padding) and
    `word_pieces` [batch, n], the piece index that represents each word (-1 on padding).

    Args:
        tokenizer: a keras-hub `BertTokenizer` (any BERT preset's).
        word_piece: `"first"` or `"last"` sub-token of each word. `"last"` suits
            the partial-match protocol, whose annotated word is an entity's last.
        max_pieces: the backbone's maximum sequence length; longer inputs are cut
            and words past the cut point at the last kept piece.
    """

    padding_values = {"piece_ids": 0, "word_pieces": -1}
    word_inputs = ("word_pieces",)  # Inputs with one entry per word.

    def __init__(self, tokenizer, word_piece: str = "last", max_pieces: int = 512):
        if word_piece not in ("first", "last"):
            raise ValueError(f"word_piece must be 'first' or 'last', got {word_piece!r}.")
        self.tokenizer = tokenizer
        if not tokenizer.built:
            tokenizer.build(None)  # SavedModel export needs built layers.
        self.word_piece = word_piece
        self.max_pieces = max_pieces
        self._cls = tokenizer.cls_token_id
        self._sep = tokenizer.sep_token_id
        self._unk = tokenizer.token_to_id(tokenizer.oov_token)
        # keras-hub tokenizers return Python lists when run eagerly; a graph keeps tensors.
        self._featurize = tf.function(
            self._featurize, input_signature=[tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)]
        )

    @property
    def layers(self):
        return [self.tokenizer]

    def __call__(self, tokens: tf.RaggedTensor) -> dict:
        return self._featurize(tokens)

    def _featurize(self, tokens: tf.RaggedTensor) -> dict:
        batch = tokens.nrows(out_type=tf.int32)
        pieces = tf.cast(self.tokenizer.tokenize(tokens.flat_values), tf.int32)  # [words, (k)]
        # A word that gives no piece (control characters only) reads as [UNK].
        counts = tf.cast(pieces.row_lengths(), tf.int32)
        with_unk = tf.concat([pieces, tf.RaggedTensor.from_tensor(tf.fill([tf.shape(counts)[0], 1], self._unk))], 1)
        keep = tf.ragged.range(with_unk.row_lengths()) < tf.cast(tf.maximum(counts, 1), tf.int64)[:, None]
        pieces = tf.ragged.boolean_mask(with_unk, keep)
        counts = tf.cast(pieces.row_lengths(), tf.int32)

        # Piece index of each word within its sentence, after [CLS].
        ends = tf.cumsum(counts)
        before_word = tf.concat([[0], ends], 0)  # Pieces before each word of the batch.
        before_sentence = tf.gather(before_word, tf.cast(tokens.row_starts(), tf.int32))
        end = ends - tf.gather(before_sentence, tf.cast(tokens.value_rowids(), tf.int32))
        position = 1 + (end - 1 if self.word_piece == "last" else end - counts)
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


def save_tokenizer(tokenizer, directory: str) -> None:
    """Writes a BertTokenizer's word-piece vocabulary and casing to `directory`."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(tokenizer.get_vocabulary()) + "\n")
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump({"lowercase": tokenizer.lowercase}, f)


def load_tokenizer(directory: str):
    """Reads a BertTokenizer written by `save_tokenizer`."""
    import keras_hub

    with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
        settings = json.load(f)
    return keras_hub.models.BertTokenizer(vocabulary=os.path.join(directory, "vocab.txt"), **settings)


def featurizer_for(config: RINConfig, vocab: Vocabulary, model_dir: str | None = None):
    """Returns the featurizer of `config.encoder`.

    For `bert`, the tokenizer is read from `<model_dir>/tokenizer/` (written by
    training, so inference needs no preset) when it exists, else from `config.preset`.
    """
    if config.encoder == "bilstm":
        return WordIds(vocab)
    saved = os.path.join(model_dir, TOKENIZER_DIR) if model_dir else None
    if saved and os.path.exists(saved):
        return WordPieces(load_tokenizer(saved), config.word_piece)
    import keras_hub

    return WordPieces(keras_hub.models.BertTokenizer.from_preset(config.preset), config.word_piece)
