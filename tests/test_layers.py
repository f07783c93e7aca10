"""Each layer against a NumPy reference of its equation, padding invariance, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rin_keras.layers import BiLSTMEncoder, GRUUpdater, InteractionLayer, PairwiseRelationHead, WordFeatures

from layer_testing import run_layer_test


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x):
    return np.maximum(x, 0.0)


def _max_rel_error(actual, expected):
    """Norm-wise relative error, max |actual - expected| / max |expected|.

    (Element-wise ratios are meaningless where an output is ~0 after cancellation.)
    """
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def _mask(lengths, width):
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


def test_pairwise_relation_head_matches_numpy(rng):
    head = PairwiseRelationHead(num_relations=3, hidden_dim=5)
    h = rng.normal(size=(2, 4, 6)).astype("float32")
    mask = _mask([4, 2], 4)
    out = keras.ops.convert_to_numpy(head(h, token_mask=mask))
    ws, wo, b, wp, bp = (keras.ops.convert_to_numpy(w) for w in (
        head.subject_kernel, head.object_kernel, head.pair_bias, head.output_kernel, head.output_bias))
    expected = np.zeros((2, 4, 4, 3), "float32")
    for k in range(2):
        for i in range(4):
            for j in range(4):
                if mask[k, i] and mask[k, j]:
                    m = _relu(np.concatenate([h[k, i], h[k, j]]) @ np.concatenate([ws, wo]) + b)
                    expected[k, i, j] = _sigmoid(m @ wp + bp)
    assert out.shape == (2, 4, 4, 3)
    assert np.all(out[1, 2:] == 0) and np.all(out[1, :, 2:] == 0)
    assert _max_rel_error(out[expected > 0], expected[expected > 0]) < 1e-5
    # The largest logit over real partners, per word and relation: its sigmoid is the largest probability.
    best = keras.ops.convert_to_numpy(head(h, token_mask=mask, output="best_logits"))
    assert best.shape == (2, 4, 3)
    for k, i in zip(*np.nonzero(mask)):
        np.testing.assert_allclose(_sigmoid(best[k, i]), expected[k, i][mask[k]].max(axis=0), rtol=1e-5)
    # Padding anywhere (before the words, between them): the max is over the real partners still.
    holes = np.array([[False, True, False, True], [False, False, True, True]])
    best = keras.ops.convert_to_numpy(head(h, token_mask=holes, output="best_logits"))
    every = keras.ops.convert_to_numpy(head(h, output="logits"))
    for k, i in zip(*np.nonzero(holes)):
        np.testing.assert_allclose(best[k, i], every[k, i][holes[k]].max(axis=0), rtol=1e-5)
    # Every cell's logit, padding not masked.
    logits = keras.ops.convert_to_numpy(head(h, token_mask=mask, output="logits"))
    assert logits.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(_sigmoid(logits)[expected > 0], out[expected > 0], rtol=1e-5)
    with pytest.raises(ValueError, match="output must be one of"):
        head(h, output="probs")


@pytest.mark.parametrize("flags", [(True, True, True), (False, True, True), (True, False, True), (True, True, False)])
def test_interaction_layer_matches_numpy(rng, flags):
    layer = InteractionLayer(7, *flags)
    best = rng.normal(size=(2, 4, 3)).astype("float32")
    best[1, 0, 1] = -np.inf  # No real partner: y^ = 0.
    y = rng.uniform(size=(2, 4, 5)).astype("float32")
    h = rng.normal(size=(2, 4, 6)).astype("float32")
    mask = _mask([4, 3], 4)
    out = keras.ops.convert_to_numpy(layer(best, y, h, token_mask=mask))
    w, b = keras.ops.convert_to_numpy(layer.kernel), keras.ops.convert_to_numpy(layer.bias)
    parts = [_sigmoid(best), y, h]
    expected = _relu(np.concatenate([x for x, use in zip(parts, flags) if use], -1) @ w + b) * mask[..., None]
    assert _max_rel_error(out, expected) < 1e-5
    # The part left out may be None, in a fresh layer too.
    given = [x if use else None for x, use in zip((best, y, h), flags)]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(*given, token_mask=mask)), out)
    fresh = InteractionLayer(7, *flags)
    assert tuple(fresh(*given, token_mask=mask).shape) == (2, 4, 7)


def test_interaction_layer_needs_an_input():
    with pytest.raises(ValueError, match="at least one"):
        InteractionLayer(4, False, False, False)
    with pytest.raises(ValueError, match="reads entity_probs, which is None"):
        InteractionLayer(4)(np.zeros((2, 5, 3)), None, np.zeros((2, 5, 6)))


def test_gru_updater_matches_equations(rng):
    layer = GRUUpdater("gru")
    h = rng.normal(size=(2, 4, 5)).astype("float32")
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(h, x))
    w = {v.name: keras.ops.convert_to_numpy(v) for v in layer.weights}
    hx = np.concatenate([h, x], -1)
    z = _sigmoid(hx @ w["update_kernel"] + w["update_bias"])
    u = _sigmoid(hx @ w["reset_kernel"] + w["reset_bias"])
    cand = np.tanh(np.concatenate([u * h, x], -1) @ w["candidate_kernel"] + w["candidate_bias"])
    assert _max_rel_error(out, (1 - z) * h + z * cand) < 1e-5


def test_rnn_and_linear_updaters(rng):
    h = rng.normal(size=(2, 4, 5)).astype("float32")
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    rnn = GRUUpdater("rnn")
    out = keras.ops.convert_to_numpy(rnn(h, x))
    w = {v.name: keras.ops.convert_to_numpy(v) for v in rnn.weights}
    expected = np.tanh(np.concatenate([h, x], -1) @ w["candidate_kernel"] + w["candidate_bias"])
    assert _max_rel_error(out, expected) < 1e-5
    linear = GRUUpdater("linear")
    out = keras.ops.convert_to_numpy(linear(h))
    w = {v.name: keras.ops.convert_to_numpy(v) for v in linear.weights}
    assert _max_rel_error(out, h @ w["kernel"] + w["bias"]) < 1e-5
    with pytest.raises(ValueError, match="mode"):
        GRUUpdater("lstm")


def test_encoder_padding_invariance(rng):
    encoder = BiLSTMEncoder(vocab_size=20, word_dim=6, lstm_units=4, input_dropout=0.1)
    ids = rng.integers(2, 20, size=(2, 5)).astype("int32")
    padded = np.concatenate([ids, np.zeros((2, 3), "int32")], axis=1)
    short = keras.ops.convert_to_numpy(encoder(ids))
    long = keras.ops.convert_to_numpy(encoder(padded))
    np.testing.assert_allclose(long[:, :5], short, atol=1e-6)
    assert np.all(long[:, 5:] == 0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares gradients with tf.GradientTape")
def test_fused_encoder_matches_the_keras_bilstm(rng):
    encoder = BiLSTMEncoder(vocab_size=20, word_dim=6, lstm_units=4, input_dropout=0.0)
    ids = rng.integers(1, 20, size=(3, 7)).astype("int32")
    ids[1, 4:] = 0
    ids[2, 1:] = 0
    mask = ids != 0
    weights = tf.random.normal([3, 7, 8])
    with tf.GradientTape(persistent=True) as tape:
        fused = encoder(ids)
        reference = encoder.bilstm(encoder.embedding(ids), mask=mask)  # The Keras loop over time steps.
        reference = tf.where(mask[..., None], reference, 0.0)
        fused_loss, reference_loss = tf.reduce_sum(fused * weights), tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), atol=1e-6)
    for variable in encoder.trainable_variables:
        np.testing.assert_allclose(
            tf.convert_to_tensor(tape.gradient(fused_loss, variable)).numpy(),
            tf.convert_to_tensor(tape.gradient(reference_loss, variable)).numpy(),
            atol=1e-5, err_msg=variable.path,
        )


def _assert_matches_the_keras_bilstm(encoder, rng):
    """`encoder` (JAX) gives the Keras masked BiLSTM's states and gradients, on sentences of 7, 4 and 1 words."""
    import jax

    ids = rng.integers(1, 20, size=(3, 7)).astype("int32")
    ids[1, 4:] = 0
    ids[2, 1:] = 0
    reference = BiLSTMEncoder(vocab_size=20, word_dim=6, lstm_units=4, input_dropout=0.0, fused=False)
    encoder.build(ids.shape)
    reference.build(ids.shape)
    reference.set_weights(encoder.get_weights())
    weights = rng.normal(size=(3, 7, 8)).astype("float32")

    def loss(values, layer):
        states, _ = layer.stateless_call(values, [v.value for v in layer.non_trainable_variables], ids)
        return (states * weights).sum(), states

    values = [v.value for v in encoder.trainable_variables]
    (_, states), grads = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)(values, encoder)
    (_, expected), expected_grads = jax.value_and_grad(loss, has_aux=True)(values, reference)
    assert np.abs(np.asarray(expected)).max() > 0.01  # Not all zero.
    np.testing.assert_allclose(states, expected, atol=1e-6)
    for variable, grad, expected_grad in zip(encoder.trainable_variables, grads, expected_grads):
        np.testing.assert_allclose(grad, expected_grad, atol=1e-5, err_msg=variable.path)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the one-scan path is JAX's")
@pytest.mark.parametrize("unroll", [1, 3, None])
def test_jax_scan_encoder_matches_the_keras_bilstm(rng, unroll):
    """Both directions in one scan, the backward one within each sentence's length (3 steps an iteration: 7 steps
    leave a remainder; `None`: the backend's default)."""
    _assert_matches_the_keras_bilstm(
        BiLSTMEncoder(vocab_size=20, word_dim=6, lstm_units=4, input_dropout=0.0, scan_unroll=unroll), rng)


def test_head_and_interaction_padding_invariance(rng):
    head = PairwiseRelationHead(3, 5)
    layer = InteractionLayer(4)
    h = rng.normal(size=(1, 3, 6)).astype("float32")
    h_padded = np.concatenate([h, rng.normal(size=(1, 2, 6)).astype("float32")], axis=1)  # garbage in padding
    results = []
    for features, mask in ((h, _mask([3], 3)), (h_padded, _mask([3], 5))):
        p = head(features, token_mask=mask)
        best = head(features, token_mask=mask, output="best_logits")
        y = np.full((1, features.shape[1], 5), 0.2, "float32")
        x = layer(best, y, features, token_mask=mask)
        results.append((keras.ops.convert_to_numpy(p), keras.ops.convert_to_numpy(x)))
    np.testing.assert_allclose(results[1][0][:, :3, :3], results[0][0], atol=1e-6)
    np.testing.assert_allclose(results[1][1][:, :3], results[0][1], atol=1e-6)


def _floats(rng, *shape):
    return rng.normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "layer_cls,init_kwargs,call_kwargs,output_shape,trains",
    [
        (PairwiseRelationHead, {"num_relations": 3, "hidden_dim": 5},
         lambda rng: {"inputs": _floats(rng, 2, 4, 6), "token_mask": _mask([4, 2], 4)}, (2, 4, 4, 3), True),
        (InteractionLayer, {"units": 4},
         lambda rng: {"best_logits": _floats(rng, 2, 4, 3), "entity_probs": _floats(rng, 2, 4, 5),
                      "hidden": _floats(rng, 2, 4, 6), "token_mask": _mask([4, 3], 4)}, (2, 4, 4), True),
        (InteractionLayer, {"units": 4, "use_entity_input": False},
         lambda rng: {"best_logits": _floats(rng, 2, 4, 3), "entity_probs": _floats(rng, 2, 4, 5),
                      "hidden": _floats(rng, 2, 4, 6)}, (2, 4, 4), True),
        (GRUUpdater, {"mode": "gru"}, lambda rng: {"state": _floats(rng, 2, 4, 5), "interaction": _floats(rng, 2, 4, 3)},
         (2, 4, 5), True),
        (GRUUpdater, {"mode": "rnn"}, lambda rng: {"state": _floats(rng, 2, 4, 5), "interaction": _floats(rng, 2, 4, 3)},
         (2, 4, 5), True),
        (GRUUpdater, {"mode": "linear"}, lambda rng: {"state": _floats(rng, 2, 4, 5)}, (2, 4, 5), True),
        (BiLSTMEncoder, {"vocab_size": 20, "word_dim": 6, "lstm_units": 4},
         lambda rng: {"token_ids": np.array([[3, 5, 7, 0], [2, 9, 0, 0]], "int32")}, (2, 4, 8), True),
        (BiLSTMEncoder, {"vocab_size": 20, "word_dim": 6, "lstm_units": 4, "feature_dim": 3, "unknown_word_rate": 0.2},
         lambda rng: {"token_ids": np.array([[3, 5, 7, 0]], "int32"), "features": _floats(rng, 1, 4, 3)},
         (1, 4, 8), True),
        (WordFeatures, {"shape_dim": 3, "num_chars": 10, "char_dim": 4},
         lambda rng: {"inputs": {"shape_ids": np.array([[2, 1, 0]], "int32"),
                                 "char_ids": np.array([[[2, 3], [4, 0], [0, 0]]], "int32")}}, (1, 3, 7), True),
    ],
    ids=["relation_head", "interaction", "interaction_without_y", "gru", "rnn", "linear", "bilstm",
         "bilstm_with_features", "word_features"],
)
def test_layer_harness(rng, layer_cls, init_kwargs, call_kwargs, output_shape, trains):
    run_layer_test(layer_cls, init_kwargs, call_kwargs(rng), output_shape, trains=trains,
                   float32_outputs=layer_cls is PairwiseRelationHead)


def test_encoder_rejects_an_unknown_kernel():
    with pytest.raises(ValueError, match="fused"):
        BiLSTMEncoder(vocab_size=20, word_dim=6, lstm_units=4, fused="scan")
