"""PairwiseRelationHead: relation probabilities for every ordered word pair (eqs. 9-10)."""

import math

import keras
from keras import ops

OUTPUTS = ("probabilities", "logits", "best_logits")


@keras.saving.register_keras_serializable(package="rin_keras")
class PairwiseRelationHead(keras.layers.Layer):
    """Scores every relation for every ordered word pair.

    m_ij = ReLU(W_m h_i + W_r h_j + b_m) and p_ij = sigmoid(W_p m_ij + b_t): the
    projection of the pair's concatenation is computed as a broadcast sum of two
    per-word projections, so no `[n, n, 2d]` tensor is built. Probabilities are
    float32 under any dtype policy; cells touching padding are 0.

    The output bias starts at logit(prior_probability): nearly every cell is
    negative, and starting every cell at 0.5 floods the first steps with huge
    false-positive gradients (the RetinaNet prior initialisation).

    Args:
        num_relations: int. The number of relation types `l`.
        hidden_dim: int. The size of the pair features m.
        prior_probability: float. Initial probability of every cell.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: float tensor `[batch, n, d]`, the relation features H~.
        token_mask: optional bool tensor `[batch, n]`, True on real tokens.
        output: str. What to return:
            - `"probabilities"`: `[batch, n (subject), n (object), l]` float32
              pair probabilities, 0 on cells touching padding.
            - `"logits"`: the same cells' logits `W_p m_ij + b_t` in the compute
              dtype, padding not masked: for callers that threshold them and
              take the sigmoid of the few cells above it (prediction).
            - `"best_logits"`: for each word and relation, the largest logit
              over its real partner words j, `[batch, n, l]` in the compute
              dtype (any value for a sentence without real words).
              The interaction rounds need only that max (y^ is its sigmoid:
              sigmoid is monotonic), and taking it before adding `b_t`
              (max(z + b) = max(z) + b) skips the bias, sigmoid and masking
              passes over every cell.

    Returns:
        The tensor `output` names.

    Example:
    >>> head = PairwiseRelationHead(num_relations=3, hidden_dim=8)
    >>> tuple(head(np.ones((2, 5, 4)), token_mask=np.ones((2, 5), bool)).shape)
    (2, 5, 5, 3)

    Reference:
        Sun et al., Recurrent Interaction Network for Jointly Extracting Entities
        and Classifying Relations, EMNLP 2020, eqs. 9-10.
    """

    def __init__(self, num_relations, hidden_dim, prior_probability=1e-4, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < prior_probability < 1.0:
            raise ValueError(f"prior_probability must be in (0, 1), got {prior_probability}.")
        self.num_relations = num_relations
        self.hidden_dim = hidden_dim
        self.prior_probability = prior_probability

    def build(self, inputs_shape, token_mask_shape=None):
        dim = inputs_shape[-1]
        self.subject_kernel = self.add_weight(name="subject_kernel", shape=(dim, self.hidden_dim))
        self.object_kernel = self.add_weight(name="object_kernel", shape=(dim, self.hidden_dim))
        self.pair_bias = self.add_weight(name="pair_bias", shape=(self.hidden_dim,), initializer="zeros")
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(self.hidden_dim, self.num_relations)
        )
        prior_logit = math.log(self.prior_probability / (1.0 - self.prior_probability))
        self.output_bias = self.add_weight(
            name="output_bias",
            shape=(self.num_relations,),
            initializer=keras.initializers.Constant(prior_logit),
        )

    def call(self, inputs, token_mask=None, output="probabilities"):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        best_logits = output == "best_logits"
        subjects = ops.matmul(inputs, self.subject_kernel)
        objects = ops.matmul(inputs, self.object_kernel) + self.pair_bias
        if best_logits and token_mask is not None:
            # A padded partner reads as the sentence's first real word, so it adds no new value to the max:
            # masking `[batch, n, d]` objects instead of every pair cell.
            real = ops.cast(token_mask, "bool")
            first_real = ops.logical_and(real, ops.cumsum(ops.cast(real, "int32"), axis=1) == 1)  # No argmax: n may be 0.
            anchor = ops.sum(objects * ops.cast(first_real, objects.dtype)[:, :, None], axis=1, keepdims=True)
            objects = ops.where(token_mask[:, :, None], objects, anchor)
        pairs = ops.relu(subjects[:, :, None, :] + objects[:, None, :, :])
        logits = ops.matmul(pairs, self.output_kernel)
        if best_logits:
            return ops.max(logits, axis=2) + self.output_bias
        if output == "logits":
            return logits + self.output_bias
        probabilities = ops.sigmoid(ops.cast(logits + self.output_bias, "float32"))
        if token_mask is not None:
            mask = ops.cast(token_mask, "float32")
            probabilities = probabilities * (mask[:, :, None, None] * mask[:, None, :, None])
        return probabilities

    def compute_output_shape(self, inputs_shape, token_mask_shape=None, output="probabilities"):
        if output == "best_logits":
            return (inputs_shape[0], inputs_shape[1], self.num_relations)
        return (inputs_shape[0], inputs_shape[1], inputs_shape[1], self.num_relations)

    def compute_output_spec(self, inputs, token_mask=None, output="probabilities"):
        dtype = "float32" if output == "probabilities" else self.compute_dtype
        return keras.KerasTensor(self.compute_output_shape(inputs.shape, output=output), dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_relations": self.num_relations,
                "hidden_dim": self.hidden_dim,
                "prior_probability": self.prior_probability,
            }
        )
        return config
