"""A shared layer-test harness, in the spirit of keras-hub's `TestCase.run_layer_test`.

`run_layer_test` checks, for one layer and one set of call arguments: the eager
output shape, the symbolic call (a functional model built on `keras.Input`s),
the serialization round trip (same config, same outputs with the same weights),
one training step through a functional model (the trainable weights move, the
loss is finite), and each mixed-precision policy (float32 variables, finite
outputs of the policy's compute dtype, or float32 where the layer says so).
"""

from __future__ import annotations

import keras
import numpy as np

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _outputs(result) -> list:
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _symbolic(values: dict) -> dict:
    """`keras.Input`s named and shaped like the (possibly nested) NumPy `values`."""
    return {name: _symbolic(value) if isinstance(value, dict) else
            keras.Input(shape=value.shape[1:], batch_size=value.shape[0], dtype=str(value.dtype), name=name)
            for name, value in values.items()}


def run_layer_test(layer_cls, init_kwargs: dict, call_kwargs: dict, expected_output_shape, *,
                   trains: bool = True, mixed_precision: bool = True, float32_outputs: bool = False,
                   atol: float = 1e-6) -> None:
    """Runs the checks of the module docstring.

    Args:
        layer_cls: the layer class.
        init_kwargs: its constructor arguments.
        call_kwargs: NumPy call arguments by name, possibly nested in dicts (the layer is called with keywords).
        expected_output_shape: the output's shape (a tuple), or a list of shapes.
        trains: run the training step (False for layers without trainable weights).
        mixed_precision: run the mixed-precision checks.
        float32_outputs: the layer's float outputs are float32 under any policy (else its compute dtype).
        atol: tolerance of the round-trip comparison.
    """
    expected = expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape]

    # Eager call.
    layer = layer_cls(**init_kwargs)
    eager = _outputs(layer(**call_kwargs))
    assert [tuple(o.shape) for o in eager] == [tuple(s) for s in expected]

    # Symbolic call: the functional model gives the eager outputs.
    inputs = _symbolic(call_kwargs)
    symbolic = _outputs(layer(**inputs))
    assert [tuple(o.shape) for o in symbolic] == [tuple(s) for s in expected]
    model = keras.Model(inputs, symbolic)
    for got, want in zip(_outputs(model(call_kwargs)), eager):
        np.testing.assert_allclose(_numpy(got), _numpy(want), atol=atol)

    # Serialization round trip.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert restored.get_config() == layer.get_config()
    restored(**call_kwargs)
    restored.set_weights(layer.get_weights())
    for got, want in zip(_outputs(restored(**call_kwargs)), eager):
        np.testing.assert_allclose(_numpy(got), _numpy(want), atol=atol)

    # One training step.
    if trains:
        assert layer.trainable_weights, "A layer that trains needs trainable weights."
        before = [_numpy(w).copy() for w in layer.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=["mse"] * len(eager))
        targets = [np.ones(tuple(s), "float32") for s in expected]
        loss = model.train_on_batch(call_kwargs, targets if len(targets) > 1 else targets[0])
        assert np.all(np.isfinite(loss))
        assert any(not np.array_equal(b, _numpy(w)) for b, w in zip(before, layer.trainable_weights))

    # Mixed precision, per layer.
    if mixed_precision:
        for policy in MIXED_POLICIES:
            mixed = layer_cls(**init_kwargs, dtype=policy)
            outputs = _outputs(mixed(**call_kwargs))
            compute = keras.mixed_precision.DTypePolicy(policy).compute_dtype
            for output in outputs:
                if "float" in str(output.dtype):
                    assert keras.backend.standardize_dtype(output.dtype) == ("float32" if float32_outputs else compute)
                    assert np.all(np.isfinite(_numpy(keras.ops.cast(output, "float32"))))
            assert all(w.dtype == "float32" for w in mixed.weights if "float" in str(w.dtype))
