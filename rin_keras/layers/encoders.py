"""Sentence encoders that give the shared word states H."""

import keras
from keras import ops


def _in_xla() -> bool:
    """Whether TensorFlow is tracing for XLA (`jit_compile=True`), which has no `BlockLSTM` kernel."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util  # No public equivalent in TF 2.21.

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _lstm_scan(projected, recurrent, unroll):
    """LSTM states `[n, k, batch, units]` of `k` independent LSTMs over `n` time steps (JAX), from their input
    projections (bias included) `projected` `[n, k, batch, 4 * units]` and recurrent kernels `[k, units, 4 * units]`,
    gates in Keras' order (i, f, c, o), zero initial states, `unroll` steps per loop iteration."""
    import jax
    import jax.numpy as jnp

    def step(carry, projected_t):
        h, c = carry
        i, f, g, o = jnp.split(projected_t + jnp.einsum("kbu,kug->kbg", h, recurrent), 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros(recurrent.shape[:1] + projected.shape[2:3] + recurrent.shape[1:2], projected.dtype)
    return jax.lax.scan(step, (zeros, zeros), projected, unroll=unroll)[1]


def _default_scan_unroll() -> int:
    """Time steps per iteration of the JAX scan: 4 on a GPU, where the step is bound by kernel launches (a WebNLG*
    epoch on one H200 took 0.63 s against 0.85 s with 1), else 1."""
    import jax

    return 4 if jax.default_backend() == "gpu" else 1


@keras.saving.register_keras_serializable(package="rin_keras")
class BiLSTMEncoder(keras.layers.Layer):
    """Word embedding, input dropout and a BiLSTM over the real tokens.

    Pretrained vectors are loaded after construction with `set_word_vectors`
    (they stay trainable), so the config stays small.

    The weights are those of the Keras `Bidirectional(LSTM)` it holds, run by a
    fused kernel where one applies, each sentence within its own length (the
    backward direction starts at its last real word):
    - `fused=True` (the default), TensorFlow, float32 or float16, not XLA-compiled:
      one `BlockLSTM` op per direction (one sentence of 57 words in 0.6 ms instead
      of 3.6 ms on 2 CPU cores);
    - `fused=True`, JAX: both directions in one `jax.lax.scan` (the backward one
      over each sentence reversed within its length), the input projections of
      all time steps taken out of the loop as one matrix product, `scan_unroll`
      steps per loop iteration; the Keras layer instead runs one masked scan per
      direction with the projections inside (on one H100 a WebNLG* epoch took
      0.71 s with this path and 1.15 s with the Keras layer).
    Elsewhere (and with `fused=False`, a reference) the Keras layer runs step by step.

    Args:
        vocab_size: int. Number of word ids; id 0 is padding.
        word_dim: int. Word embedding size.
        lstm_units: int. LSTM units per direction (the output is 2 * lstm_units).
        input_dropout: float. Dropout rate on the embeddings.
        feature_dim: int. Size of extra word features (`WordFeatures`) concatenated
            to the word embeddings; 0 when there are none.
        unknown_word_rate: float. In training, each real word reads as `<unk>` (id 1)
            with this probability, so the model learns to read words it has never
            seen from their context and features (Lample et al., 2016).
        fused: bool. Whether to use the fused kernels above where they apply.
        scan_unroll: int or `None`. Time steps per loop iteration of the JAX scan;
            `None`: 4 on a GPU, 1 elsewhere.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        token_ids: int `[batch, n]`, 0 on padding (which follows the real tokens).
        features: float `[batch, n, feature_dim]`, when `feature_dim` > 0.
        training: bool. Whether dropout is active.

    Returns:
        `[batch, n, 2 * lstm_units]`.

    Example:
    >>> encoder = BiLSTMEncoder(vocab_size=10, word_dim=4, lstm_units=3)
    >>> tuple(encoder(np.array([[2, 3, 0]])).shape)
    (1, 3, 6)
    """

    def __init__(self, vocab_size, word_dim=100, lstm_units=50, input_dropout=0.1, feature_dim=0,
                 unknown_word_rate=0.0, fused=True, scan_unroll=None, **kwargs):
        super().__init__(**kwargs)
        if fused not in (True, False):
            raise ValueError(f"fused must be True or False, got {fused!r}.")
        self.vocab_size = vocab_size
        self.word_dim = word_dim
        self.lstm_units = lstm_units
        self.input_dropout = input_dropout
        self.feature_dim = feature_dim
        self.unknown_word_rate = unknown_word_rate
        self.fused = fused
        self.scan_unroll = scan_unroll
        # Seeded from the global seed (`keras.utils.set_random_seed`), as dropout is.
        self.seed_generator = keras.random.SeedGenerator() if unknown_word_rate else None
        self.embedding = keras.layers.Embedding(
            vocab_size, word_dim, dtype=self.dtype_policy, name="word_embedding"
        )
        self.dropout = keras.layers.Dropout(input_dropout, dtype=self.dtype_policy, name="input_dropout")
        self.bilstm = keras.layers.Bidirectional(
            keras.layers.LSTM(lstm_units, return_sequences=True, dtype=self.dtype_policy),
            dtype=self.dtype_policy,
            name="bilstm",
        )

    def build(self, token_ids_shape, features_shape=None):
        self.embedding.build(token_ids_shape)
        self.bilstm.build((*token_ids_shape, self.word_dim + self.feature_dim))

    def call(self, token_ids, features=None, training=False):
        mask = ops.not_equal(token_ids, 0)
        if training and self.unknown_word_rate:
            hidden = keras.random.uniform(ops.shape(token_ids), seed=self.seed_generator) < self.unknown_word_rate
            token_ids = ops.where(hidden & ops.greater(token_ids, 1), ops.ones_like(token_ids), token_ids)
        embedded = self.embedding(token_ids)
        if self.feature_dim:
            embedded = ops.concatenate([embedded, ops.cast(features, embedded.dtype)], axis=-1)
        embedded = self.dropout(embedded, training=training)
        dtype = keras.backend.standardize_dtype(embedded.dtype)
        backend = keras.backend.backend()
        if self.fused and backend == "tensorflow" and dtype in ("float32", "float16") and not _in_xla():
            states = self._fused_bilstm(embedded, mask)
        elif self.fused and backend == "jax":
            states = self._scan_bilstm(embedded, mask)
        else:
            states = self.bilstm(embedded, mask=mask, training=training)
        # A fresh tensor: padded states are exactly 0 and no Keras mask leaks to
        # layers that take the token mask explicitly.
        return ops.where(mask[:, :, None], states, ops.zeros_like(states))

    def _fused_bilstm(self, embedded, mask):
        """`self.bilstm` as two TensorFlow `BlockLSTM` ops; the backward one reads
        each sentence reversed within its own length, as a masked backward LSTM does.

        `BlockLSTM` orders the gates (i, c, f, o) where Keras has (i, f, c, o).
        (`BlockLSTMV2` takes Keras' order, but its registered gradient disagrees
        with the step-by-step LSTM's in TensorFlow 2.21 while `BlockLSTM`'s agrees;
        `tests/test_layers.py` checks both values and gradients.)
        """
        import tensorflow as tf

        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)

        def icfo(gates):
            i, f, c, o = tf.split(gates, 4, axis=-1)
            return tf.concat([i, c, f, o], axis=-1)

        def run(cell, inputs):
            batch, dtype = tf.shape(inputs)[0], inputs.dtype
            zeros = tf.zeros([batch, cell.units], dtype)
            no_peephole = tf.zeros([cell.units], dtype)
            outputs = tf.raw_ops.BlockLSTM(
                seq_len_max=tf.cast(tf.shape(inputs)[1], tf.int64),
                x=tf.transpose(inputs, [1, 0, 2]),
                cs_prev=zeros,
                h_prev=zeros,
                w=icfo(tf.cast(tf.concat([cell.kernel, cell.recurrent_kernel], 0), dtype)),
                wci=no_peephole,
                wcf=no_peephole,
                wco=no_peephole,
                b=icfo(tf.cast(cell.bias, dtype)),
                forget_bias=0.0,
            )
            return tf.transpose(outputs.h, [1, 0, 2])

        forward = run(self.bilstm.forward_layer.cell, embedded)
        reversed_inputs = tf.reverse_sequence(embedded, lengths, seq_axis=1, batch_axis=0)
        backward = tf.reverse_sequence(
            run(self.bilstm.backward_layer.cell, reversed_inputs), lengths, seq_axis=1, batch_axis=0
        )
        return tf.concat([forward, backward], axis=-1)

    def _scan_bilstm(self, embedded, mask):
        """`self.bilstm` as one `jax.lax.scan` over time steps that runs both directions
        (JAX), in the layer's compute dtype as the Keras LSTM does.

        The backward direction reads each sentence reversed within its own length, so
        in both directions the padding comes last and needs no mask inside the loop
        (states past a sentence's end are zeroed by `call`).
        """
        import jax.numpy as jnp

        dtype = embedded.dtype
        lengths = jnp.sum(mask, axis=1, dtype="int32")
        steps = jnp.arange(embedded.shape[1], dtype="int32")[None, :]
        within = jnp.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)[:, :, None]
        cells = (self.bilstm.forward_layer.cell, self.bilstm.backward_layer.cell)
        kernel, recurrent, bias = (jnp.stack([jnp.asarray(getattr(c, name).value, dtype) for c in cells])
                                   for name in ("kernel", "recurrent_kernel", "bias"))
        inputs = jnp.stack([embedded, jnp.take_along_axis(embedded, within, axis=1)])
        projected = jnp.einsum("kbnd,kdg->nkbg", inputs, kernel) + bias[None, :, None, :]
        unroll = self.scan_unroll or _default_scan_unroll()
        states = _lstm_scan(projected, recurrent, unroll)  # [n, 2, batch, units]
        forward, backward = jnp.transpose(states, (1, 2, 0, 3))
        return jnp.concatenate([forward, jnp.take_along_axis(backward, within, axis=1)], axis=-1)

    def set_word_vectors(self, vectors):
        """Copies a `[vocab_size, word_dim]` matrix into the word embedding."""
        if tuple(vectors.shape) != (self.vocab_size, self.word_dim):
            raise ValueError(
                f"Word vectors of shape {tuple(vectors.shape)} do not fit "
                f"({self.vocab_size}, {self.word_dim})."
            )
        self.embedding.embeddings.assign(ops.cast(vectors, self.embedding.embeddings.dtype))

    def compute_output_shape(self, token_ids_shape, features_shape=None):
        return (*token_ids_shape, 2 * self.lstm_units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "word_dim": self.word_dim,
                "lstm_units": self.lstm_units,
                "input_dropout": self.input_dropout,
                "feature_dim": self.feature_dim,
                "unknown_word_rate": self.unknown_word_rate,
                "fused": self.fused,
                "scan_unroll": self.scan_unroll,
            }
        )
        return config


POOLER_LAYER = "pooled_dense"  # keras-hub's name for BERT's [CLS] pooler.


@keras.saving.register_keras_serializable(package="rin_keras")
class TransformerWordEncoder(keras.layers.Layer):
    """A keras-hub transformer backbone (BERT family) read out at word level.

    Each word is represented by one of its sub-tokens (the featurizer chooses the
    first or last), so the rest of RIN sees word states exactly as from the BiLSTM.

    Args:
        backbone: a keras-hub backbone taking `token_ids`, `padding_mask` (and
            `segment_ids` if it has them) and giving `sequence_output`; or its
            serialized config.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        piece_ids: int `[batch, pieces]`, 0 on padding.
        word_pieces: int `[batch, n]`, the piece index of each word, -1 on padding.
        training: bool. Whether dropout is active.

    Returns:
        `[batch, n, backbone.hidden_dim]`, 0 on padded words.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        # Only word states are read: the pooled [CLS] layer gets no gradient, so it is
        # frozen rather than left for the optimizer to warn about on every run.
        for layer in backbone.layers:
            if layer.name == POOLER_LAYER:
                layer.trainable = False

    def call(self, piece_ids, word_pieces, training=False):
        inputs = {"token_ids": piece_ids, "padding_mask": ops.not_equal(piece_ids, 0)}
        if "segment_ids" in self.backbone.input:
            inputs["segment_ids"] = ops.zeros_like(piece_ids)
        states = self.backbone(inputs, training=training)["sequence_output"]
        mask = ops.greater_equal(word_pieces, 0)
        picked = ops.take_along_axis(states, ops.maximum(word_pieces, 0)[:, :, None], axis=1)
        return ops.where(mask[:, :, None], picked, ops.zeros_like(picked))

    def compute_output_shape(self, piece_ids_shape, word_pieces_shape):
        return (*word_pieces_shape, self.backbone.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config
