"""GRUUpdater: refines task features from the interaction signal (eqs. 4-7)."""

import keras
from keras import ops

MODES = ("gru", "rnn", "linear")


@keras.saving.register_keras_serializable(package="rin_keras")
class GRUUpdater(keras.layers.Layer):
    """Updates a word's task features h from the interaction signal x.

    `"gru"` is eqs. 4-7: z = σ(W_z [h ⊕ x] + b_z), u = σ(W_u [h ⊕ x] + b_u),
    ȟ = tanh(W_o [(u * h) ⊕ x] + b_o), h' = (1 - z) * h + z * ȟ.
    `"rnn"` is the vanilla RNN updater of Figure 3: h' = tanh(W [h ⊕ x] + b).
    `"linear"` is the plain linear map of Table 5's last row: h' = W h + b
    (x is not used).

    Args:
        mode: str. One of `"gru"`, `"rnn"`, `"linear"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        state: `[batch, n, d]` the task features h.
        interaction: `[batch, n, dx]` the interaction signal x (not for `"linear"`).

    Returns:
        `[batch, n, d]`, the updated features.

    Example:
    >>> updater = GRUUpdater()
    >>> tuple(updater(np.ones((2, 5, 4)), np.ones((2, 5, 3))).shape)
    (2, 5, 4)

    Reference:
        Sun et al., EMNLP 2020, eqs. 4-7.
    """

    def __init__(self, mode="gru", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        self.mode = mode

    def build(self, state_shape, interaction_shape=None):
        dim = state_shape[-1]
        if self.mode == "linear":
            self.kernel = self.add_weight(name="kernel", shape=(dim, dim))
            self.bias = self.add_weight(name="bias", shape=(dim,), initializer="zeros")
            return
        if interaction_shape is None:
            raise ValueError(f"GRUUpdater(mode={self.mode!r}) needs the interaction input.")
        width = dim + interaction_shape[-1]
        names = ("candidate",) if self.mode == "rnn" else ("update", "reset", "candidate")
        for name in names:
            setattr(self, f"{name}_kernel", self.add_weight(name=f"{name}_kernel", shape=(width, dim)))
            setattr(
                self,
                f"{name}_bias",
                self.add_weight(name=f"{name}_bias", shape=(dim,), initializer="zeros"),
            )

    def call(self, state, interaction=None):
        if self.mode == "linear":
            return ops.matmul(state, self.kernel) + self.bias
        both = ops.concatenate([state, interaction], axis=-1)
        if self.mode == "rnn":
            return ops.tanh(ops.matmul(both, self.candidate_kernel) + self.candidate_bias)
        z = ops.sigmoid(ops.matmul(both, self.update_kernel) + self.update_bias)
        u = ops.sigmoid(ops.matmul(both, self.reset_kernel) + self.reset_bias)
        gated = ops.concatenate([u * state, interaction], axis=-1)
        candidate = ops.tanh(ops.matmul(gated, self.candidate_kernel) + self.candidate_bias)
        return (1.0 - z) * state + z * candidate

    def compute_output_shape(self, state_shape, interaction_shape=None):
        return state_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config
