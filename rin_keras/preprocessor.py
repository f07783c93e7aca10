"""RINPreprocessor: raw text to model inputs, saved with the model.

The keras-hub split: a preprocessor layer owns everything between a string and
the model's input tensors (tokenisation with character offsets, the vocabulary
or word pieces, the unseen-word features' inputs, truncation), and a task model
(`rin_keras.triple_extractor.RINTripleExtractor`) holds it beside the network.
Saved inside a `.keras` file, its vocabulary travels as assets.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from rin_keras.config import RINConfig
from rin_keras.data import features
from rin_keras.data.tokenizer import RINTokenizer, Token, keep_tensorflow_tensors, tokenize_with_offsets
from rin_keras.data.vocab import Vocabulary


@keras.saving.register_keras_serializable(package="rin_keras")
class RINPreprocessor(keras.layers.Layer):
    """Raw sentences to RIN model inputs.

    Args:
        vocabulary: the train-split `Vocabulary` (relation names always; words,
            characters and pretrained words for the BiLSTM encoder). None when
            loading: the saved assets set it.
        encoder: `"bilstm"` (word ids) or `"bert"` (word pieces).
        word_feature_inputs: the BiLSTM's unseen-word inputs
            (`RINConfig.word_feature_inputs`).
        word_piece: for `bert`, the sub-token that stands for a word.
        bert_tokenizer: for `bert`, the keras-hub `BertTokenizer`; None when
            loading (the saved assets set it).
        max_length: tokens kept per sentence.
        max_pieces: for `bert`, the backbone's longest input in word pieces (its
            `max_sequence_length`): words past it are not read.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        sentences: tf.string `[batch]` raw sentences.

    Returns:
        the model's input dict (see `rin_keras.data.features`).

    Example (a tiny vocabulary):
    >>> vocab = Vocabulary(["<pad>", "<unk>", "Bean", "Texas"], ["birthPlace"])
    >>> preprocessor = RINPreprocessor(vocab)
    >>> preprocessor(tf.constant(["Bean, Texas."]))["token_ids"].numpy().tolist()
    [[2, 1, 3, 1]]
    """

    def __init__(self, vocabulary: Vocabulary | None = None, encoder: str = "bilstm",
                 word_feature_inputs: tuple[str, ...] = (), word_piece: str = "last", bert_tokenizer=None,
                 max_length: int = 100, max_pieces: int = 512, **kwargs):
        super().__init__(**kwargs)
        keep_tensorflow_tensors(self)
        if encoder not in ("bilstm", "bert"):
            raise ValueError(f"encoder must be 'bilstm' or 'bert', got {encoder!r}.")
        self.encoder = encoder
        self.word_feature_inputs = tuple(word_feature_inputs)
        self.word_piece = word_piece
        self.max_length = max_length
        self.max_pieces = max_pieces
        self.tokenizer = RINTokenizer(name="tokenizer")
        self.tokenizer(tf.constant([""]))  # Builds the layer (SavedModel export needs built layers).
        self._vocabulary = None
        self._bert_tokenizer = None  # Kept off Keras tracking: its vocabulary is saved with ours.
        self._featurizer = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, bert_tokenizer)
        self.built = True

    @classmethod
    def from_config_and_vocabulary(cls, config: RINConfig, vocabulary: Vocabulary, bert_tokenizer=None,
                                   max_pieces: int | None = None) -> "RINPreprocessor":
        """Returns the preprocessor of a model trained with `config` on `vocabulary`.

        For `bert`, `bert_tokenizer` and `max_pieces` default to those of `config.preset`.
        """
        if config.encoder == "bert":
            if bert_tokenizer is None:
                bert_tokenizer = features.preset_tokenizer(config.preset)
            if max_pieces is None:
                max_pieces = features.preset_max_pieces(config.preset)
        return cls(vocabulary, config.encoder, config.word_feature_inputs, config.word_piece, bert_tokenizer,
                   config.max_length, max_pieces or 512)

    def set_max_pieces(self, max_pieces: int) -> None:
        """Sets `max_pieces` (for `bert`: the backbone's input length), remaking the featurizer if it has one."""
        if max_pieces != self.max_pieces:
            self.max_pieces = max_pieces
            if self._featurizer is not None:
                self.set_vocabulary(self._vocabulary, self._bert_tokenizer)

    @property
    def read_limit(self) -> str:
        """What of a sentence the model reads: `"100 tokens"`, and for `bert` its word pieces."""
        pieces = f" and {self.max_pieces - 2} word pieces" if self.encoder == "bert" else ""
        return f"{self.max_length} tokens{pieces}"

    def set_vocabulary(self, vocabulary: Vocabulary, bert_tokenizer=None) -> None:
        """Sets the vocabulary (and for `bert` the tokenizer) and makes the featurizer."""
        if self.encoder == "bert":
            if bert_tokenizer is None:
                raise ValueError("encoder='bert' needs its BertTokenizer.")
            self._featurizer = features.WordPieces(bert_tokenizer, self.word_piece, self.max_pieces)
        else:
            self._featurizer = features.WordIds(vocabulary, self.word_feature_inputs)
        self._vocabulary = vocabulary
        self._bert_tokenizer = bert_tokenizer

    @property
    def vocabulary(self) -> Vocabulary:
        self._check_ready()
        return self._vocabulary

    @property
    def relation_names(self) -> list[str]:
        return self.vocabulary.relations

    @property
    def featurizer(self):
        """The tokens-to-inputs featurizer (`features.WordIds` or `features.WordPieces`)."""
        self._check_ready()
        return self._featurizer

    @featurizer.setter
    def featurizer(self, featurizer):
        """Replaces the featurizer (an ablation that changes what the model reads does)."""
        self._check_ready()
        self._featurizer = featurizer

    @property
    def lookup_layers(self) -> list:
        """Every layer the in-graph path runs (a SavedModel export must track them)."""
        return [self.tokenizer, *self.featurizer.layers]

    def split(self, text: str) -> list[Token]:
        """Returns the first `max_length + 1` tokens of a raw sentence with their character offsets (the
        Python twin of `tokenizer`); one more than the model reads tells that the sentence was truncated."""
        return tokenize_with_offsets(text, self.max_length + 1)

    def featurize(self, tokens: tf.RaggedTensor) -> dict:
        """Returns the model inputs of a ragged `[batch, (n)]` tf.string batch of tokens, cut to `max_length`."""
        return self.featurizer(tokens[:, : self.max_length])

    def call(self, sentences):
        tokens, _, _ = self.tokenizer(sentences, self.max_length)
        return self.featurize(tokens)

    def _check_ready(self):
        if self._featurizer is None:
            raise ValueError("This RINPreprocessor has no vocabulary yet: pass `vocabulary` or load a saved one.")

    def save_assets(self, dir_path):
        self.vocabulary.save(dir_path)
        if self._bert_tokenizer is not None:
            features.save_tokenizer(self._bert_tokenizer, os.path.join(dir_path, features.TOKENIZER_DIR))

    def load_assets(self, dir_path):
        tokenizer_dir = os.path.join(dir_path, features.TOKENIZER_DIR)
        bert_tokenizer = features.load_tokenizer(tokenizer_dir) if self.encoder == "bert" else None
        self.set_vocabulary(Vocabulary.load(dir_path), bert_tokenizer)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": self.encoder,
            "word_feature_inputs": list(self.word_feature_inputs),
            "word_piece": self.word_piece,
            "max_length": self.max_length,
            "max_pieces": self.max_pieces,
        }
