"""InteractionLayer: fuses relation and entity predictions into an interaction signal (eqs. 1-3)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rin_keras")
class InteractionLayer(keras.layers.Layer):
    """Computes the interaction signal x from the current predictions.

    y^_t(w) = max over real partner words w' of p(<w, t, w'>), and
    x = ReLU(W_a [y^ ⊕ y- ⊕ h] + b_a). The layer reads the largest relation
    logit over the partner words: sigmoid is monotonic, so y^ is its sigmoid,
    and only `[batch, n, l]` sigmoids are computed instead of one per pair.
    Each of the three parts can be left out (the ablations of Table 5); a part
    left out may be given as None. Rows of padded tokens are 0.

    Args:
        units: int. The size of x.
        use_relation_input: bool. Feed y^ (relation predictions).
        use_entity_input: bool. Feed y- (entity tag probabilities).
        use_hidden_input: bool. Feed h (the encoder states).
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        best_logits: `[batch, n, l]`, each word's largest pair logit over its
            real partner words, per relation
            (`PairwiseRelationHead(..., output="best_logits")`); any value, -inf
            included, on padded rows.
        entity_probs: `[batch, n, tags]` tag probabilities y-.
        hidden: `[batch, n, d]` encoder states H.
        token_mask: optional bool `[batch, n]`, True on real tokens.

    Returns:
        `[batch, n, units]`.

    Example:
    >>> layer = InteractionLayer(units=4)
    >>> tuple(layer(np.zeros((2, 5, 3)), np.ones((2, 5, 5)), np.ones((2, 5, 6))).shape)
    (2, 5, 4)

    Reference:
        Sun et al., EMNLP 2020, eqs. 1-3.
    """

    def __init__(
        self,
        units,
        use_relation_input=True,
        use_entity_input=True,
        use_hidden_input=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not (use_relation_input or use_entity_input or use_hidden_input):
            raise ValueError("InteractionLayer needs at least one of its three inputs.")
        self.units = units
        self.use_relation_input = use_relation_input
        self.use_entity_input = use_entity_input
        self.use_hidden_input = use_hidden_input

    def _read(self, best_logits, entity_probs, hidden) -> list:
        """The inputs (or their shapes) that the layer reads, in order.

        Raises:
            ValueError: one it reads is None.
        """
        read = {"best_logits": (self.use_relation_input, best_logits), "entity_probs": (self.use_entity_input,
                entity_probs), "hidden": (self.use_hidden_input, hidden)}
        missing = [name for name, (used, value) in read.items() if used and value is None]
        if missing:
            raise ValueError(f"InteractionLayer reads {', '.join(missing)}, which is None: give it, or build the "
                             "layer without it (use_relation_input, use_entity_input, use_hidden_input).")
        return [value for used, value in read.values() if used]

    def build(self, best_logits_shape=None, entity_probs_shape=None, hidden_shape=None, token_mask_shape=None):
        width = sum(shape[-1] for shape in self._read(best_logits_shape, entity_probs_shape, hidden_shape))
        self.kernel = self.add_weight(name="kernel", shape=(width, self.units))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, best_logits, entity_probs, hidden, token_mask=None):
        parts = self._read(best_logits, entity_probs, hidden)
        if self.use_relation_input:  # y^ = the sigmoid of the largest logit, in float32.
            parts[0] = ops.sigmoid(ops.cast(best_logits, "float32"))
        parts = [ops.cast(part, self.compute_dtype) for part in parts]
        outputs = ops.relu(ops.matmul(ops.concatenate(parts, axis=-1), self.kernel) + self.bias)
        if token_mask is not None:
            outputs = outputs * ops.cast(token_mask, self.compute_dtype)[:, :, None]
        return outputs

    def compute_output_shape(self, best_logits_shape=None, entity_probs_shape=None, hidden_shape=None,
                             token_mask_shape=None):
        given = next(shape for shape in (hidden_shape, best_logits_shape, entity_probs_shape) if shape is not None)
        return (*given[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_relation_input": self.use_relation_input,
                "use_entity_input": self.use_entity_input,
                "use_hidden_input": self.use_hidden_input,
            }
        )
        return config
