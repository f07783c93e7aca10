"""Adam with a smaller step for some variables: a pretrained backbone fine-tuned beside new layers."""

import keras


@keras.saving.register_keras_serializable(package="rin_keras")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose learning rate is scaled down for the variables marked slow.

    RIN's interaction layers start from random weights and a BERT-family encoder
    from pretraining, which a smaller step keeps closer to what it learned
    (discriminative fine-tuning, Howard and Ruder 2018; for MiniLM on WebNLG it
    measured worse, docs/results.md). The learning rate (and any schedule set on
    it) is the new layers'; the slow variables take `slow_fraction` of it.

    Args:
        slow_fraction: the slow variables' share of the learning rate, in (0, 1].
        **kwargs: passed to `keras.optimizers.Adam`.

    Example:

    >>> slow, fast = keras.Variable([1.0]), keras.Variable([1.0])
    >>> optimizer = LayerwiseAdam(learning_rate=0.1, slow_fraction=0.25)
    >>> optimizer.slow_down([slow])
    >>> optimizer.apply([np.array([1.0]), np.array([1.0])], [slow, fast])
    >>> print(np.round([slow.numpy()[0], fast.numpy()[0]], 3))
    [0.975 0.9  ]
    """

    def __init__(self, slow_fraction=1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < slow_fraction <= 1.0:
            raise ValueError(f"slow_fraction must be in (0, 1], got {slow_fraction}.")
        self.slow_fraction = slow_fraction
        self._slow_keys = set()

    def slow_down(self, variables):
        """Marks `variables` to learn at `slow_fraction` of the rate; call it before the first step."""
        if self.built:
            raise ValueError("slow_down() must be called before the optimizer is built (its first step).")
        self._slow_keys = {self._var_key(variable) for variable in variables}

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._slow_keys:
            learning_rate = learning_rate * self.slow_fraction
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "slow_fraction": self.slow_fraction}
