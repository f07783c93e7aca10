"""Word features beyond the train vocabulary: a frozen pretrained table, word shape, part of speech and
characters."""

import keras
import numpy as np
from keras import ops

# The layers run on any Keras backend, so they import nothing of the TensorFlow text side; a test checks the sizes.
NUM_SHAPES = 8  # Padding plus the classes of `rin_keras.data.features.WORD_SHAPES`.
NUM_POS_TAGS = 46  # Padding plus the tags of `rin_keras.data.pos.TAGS`.


@keras.saving.register_keras_serializable(package="rin_keras")
class WordFeatures(keras.layers.Layer):
    """Represents words that the train vocabulary has never seen.

    Concatenates, per word, whichever of these are enabled:
    - a frozen pretrained vector (e.g. GloVe) looked up by the lower-cased word,
      so a word unseen in train keeps its pretrained meaning; with
      `pretrained_int8`, the table is kept as int8 with a scale per row
      (Keras's int8 `Embedding`: a quarter of the float32 size);
    - an embedding of the word's shape (Title, UPPER, lower, digits, ...);
    - an embedding of its part-of-speech tag (the paper's POS input; `rin_keras.data.pos`);
    - a character CNN (Ma and Hovy, 2016): character embeddings, a width-3
      convolution and a max over the word's characters.

    Args:
        pretrained_rows: int. Rows of the pretrained table (its words + 2); 0 disables it.
        pretrained_dim: int. Size of the pretrained vectors.
        shape_dim: int. Size of the word-shape embedding; 0 disables it.
        num_chars: int. Character ids (the train characters + 2); 0 disables the CNN.
        char_dim: int. Size of the character embeddings and of the CNN output.
        pretrained_int8: bool. Keep the pretrained table as int8 with a scale per row.
        pos_dim: int. Size of the part-of-speech tag embedding; 0 disables it.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: dict with `pretrained_ids` int `[batch, n]`, `shape_ids` int
            `[batch, n]`, `pos_ids` int `[batch, n]` and `char_ids` int
            `[batch, n, chars]` (0 padding), as enabled.

    Returns:
        `[batch, n, output_dim]`.

    Example:
    >>> layer = WordFeatures(shape_dim=4, num_chars=10, char_dim=6)
    >>> tuple(layer({"shape_ids": np.array([[2, 1]]), "char_ids": np.array([[[2, 3], [4, 0]]])}).shape)
    (1, 2, 10)
    """

    def __init__(self, pretrained_rows=0, pretrained_dim=0, shape_dim=0, num_chars=0, char_dim=0,
                 pretrained_int8=False, pos_dim=0, **kwargs):
        super().__init__(**kwargs)
        self.pretrained_rows = pretrained_rows
        self.pretrained_dim = pretrained_dim
        self.shape_dim = shape_dim
        self.num_chars = num_chars
        self.char_dim = char_dim
        self.pretrained_int8 = pretrained_int8
        self.pos_dim = pos_dim
        self.pretrained = self.shapes = self.pos = self.chars = self.char_conv = None
        if pretrained_rows:
            policy = self.dtype_policy
            if pretrained_int8:
                # Keras's int8 layers compute in float32 or bfloat16, not float16: under a float16 policy the
                # table's rows come out in float32 and are cast like the others (`call`).
                source = "float32" if policy.compute_dtype == "float16" else policy.name
                policy = keras.dtype_policies.get(f"int8_from_{source}")
            self.pretrained = keras.layers.Embedding(
                pretrained_rows, pretrained_dim, trainable=False, dtype=policy, name="pretrained"
            )
        if shape_dim:
            self.shapes = keras.layers.Embedding(NUM_SHAPES, shape_dim, dtype=self.dtype_policy, name="word_shape")
        if pos_dim:
            self.pos = keras.layers.Embedding(NUM_POS_TAGS, pos_dim, dtype=self.dtype_policy, name="pos_tag")
        if num_chars:
            self.chars = keras.layers.Embedding(num_chars, char_dim, dtype=self.dtype_policy, name="char_embedding")
            self.char_conv = keras.layers.Conv1D(
                char_dim, 3, padding="same", activation="relu", dtype=self.dtype_policy, name="char_cnn"
            )

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model inputs this layer reads."""
        return tuple(name for name, layer in (("pretrained_ids", self.pretrained), ("shape_ids", self.shapes),
                                              ("pos_ids", self.pos), ("char_ids", self.chars)) if layer is not None)

    @property
    def output_dim(self) -> int:
        return (self.pretrained_dim if self.pretrained_rows else 0) + self.shape_dim + self.pos_dim + (
            self.char_dim if self.num_chars else 0)

    def build(self, inputs_shape):
        if self.pretrained is not None:
            self.pretrained.build(inputs_shape["pretrained_ids"])
        if self.shapes is not None:
            self.shapes.build(inputs_shape["shape_ids"])
        if self.pos is not None:
            self.pos.build(inputs_shape["pos_ids"])
        if self.chars is not None:
            self.chars.build(inputs_shape["char_ids"])
            self.char_conv.build((None, None, self.char_dim))

    def call(self, inputs):
        parts = []
        if self.pretrained is not None:
            # Keras's int8 table divides by a float32 scale: back to this layer's compute dtype.
            parts.append(ops.cast(self.pretrained(inputs["pretrained_ids"]), self.compute_dtype))
        if self.shapes is not None:
            parts.append(self.shapes(inputs["shape_ids"]))
        if self.pos is not None:
            parts.append(self.pos(inputs["pos_ids"]))
        if self.chars is not None:
            char_ids = inputs["char_ids"]
            batch, words, chars = ops.shape(char_ids)[0], ops.shape(char_ids)[1], ops.shape(char_ids)[2]
            real = ops.not_equal(ops.reshape(char_ids, (-1, chars)), 0)[:, :, None]
            # Padding characters embed as 0, as the convolution's own padding does, so that a word's
            # feature does not depend on how wide the batch's longest word made the padding.
            embedded = self.chars(ops.reshape(char_ids, (-1, chars)))  # [batch * n, chars, d]
            embedded = ops.where(real, embedded, ops.zeros_like(embedded))
            convolved = self.char_conv(embedded)
            # Max over real characters; a word with none (padding) gives 0.
            floor = ops.cast(-1e4, convolved.dtype)
            pooled = ops.max(ops.where(real, convolved, floor), axis=1)
            pooled = ops.where(ops.any(real, axis=1), pooled, ops.zeros_like(pooled))
            parts.append(ops.reshape(pooled, (batch, words, self.char_dim)))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def set_pretrained_vectors(self, vectors):
        """Copies `[pretrained_rows - 2, pretrained_dim]` vectors into the frozen table (rows 0, 1 stay 0).

        With `pretrained_int8`, each row is stored as int8 scaled by 127 / its largest absolute value.
        """
        if tuple(vectors.shape) != (self.pretrained_rows - 2, self.pretrained_dim):
            raise ValueError(f"Pretrained vectors of shape {tuple(vectors.shape)} do not fit "
                             f"({self.pretrained_rows - 2}, {self.pretrained_dim}).")
        table = np.concatenate([np.zeros((2, self.pretrained_dim), "float32"), np.asarray(vectors, "float32")])
        if self.pretrained_int8:
            values, scale = keras.quantizers.abs_max_quantize(table, axis=-1, to_numpy=True)
            self.pretrained.embeddings.assign(values)
            self.pretrained.embeddings_scale.assign(scale[:, 0])
        else:
            self.pretrained.embeddings.assign(ops.cast(table, self.pretrained.embeddings.dtype))

    def pretrained_vectors(self) -> np.ndarray:
        """The `[pretrained_rows - 2, pretrained_dim]` float32 vectors the table holds (int8 ones scaled back)."""
        table = self.pretrained(np.arange(2, self.pretrained_rows))
        return np.asarray(ops.convert_to_numpy(ops.cast(table, "float32")))

    def compute_output_shape(self, inputs_shape):
        first = inputs_shape[self.input_names[0]]
        return (first[0], first[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "pretrained_rows": self.pretrained_rows,
            "pretrained_dim": self.pretrained_dim,
            "shape_dim": self.shape_dim,
            "num_chars": self.num_chars,
            "char_dim": self.char_dim,
            "pretrained_int8": self.pretrained_int8,
            "pos_dim": self.pos_dim,
        })
        return config
