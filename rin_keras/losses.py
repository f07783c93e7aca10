"""Losses of eqs. 12-14, over real tokens only.

Targets mark padded tokens and cells with -1. Each loss returns the per-sentence
SUM over its real cells (eq. 14 sums, it does not average), and Keras' default
reduction then averages over the sentences of the batch. So the total is eq. 14
divided by the batch size, whatever the sentence lengths.
"""

import keras
from keras import ops

_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="rin_keras")
class MaskedTagCrossEntropy(keras.losses.Loss):
    """Token cross-entropy of BIESO tag probabilities, summed over real tokens (eq. 12).

    `y_true`: int `[batch, n]` tag ids, -1 on padding. `y_pred`: `[batch, n, tags]` probabilities.
    """

    def __init__(self, name="masked_tag_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        real = ops.greater_equal(y_true, 0)
        picked = ops.take_along_axis(
            ops.cast(y_pred, "float32"), ops.expand_dims(ops.maximum(y_true, 0), -1), axis=-1
        )[..., 0]
        losses = -ops.log(ops.clip(picked, _EPSILON, 1.0))
        return ops.sum(ops.where(real, losses, 0.0), axis=-1)


@keras.saving.register_keras_serializable(package="rin_keras")
class MaskedPairwiseBinaryCrossEntropy(keras.losses.Loss):
    """Binary cross-entropy of every (word, word, relation) cell, summed over real cells (eq. 13).

    `y_true`: `[batch, n, n, l]` 0/1, -1 where a word is padding. `y_pred`: probabilities.
    """

    def __init__(self, name="masked_pairwise_binary_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        # The probability given to the true label, so one log per cell instead of two.
        likelihood = ops.where(ops.greater(y_true, 0.5), y_pred, 1.0 - y_pred)
        losses = -ops.log(ops.clip(likelihood, _EPSILON, 1.0))
        losses = ops.where(ops.greater_equal(y_true, 0.0), losses, 0.0)
        return ops.sum(losses, axis=(1, 2, 3))
