"""The assembled RIN model: outputs, variants, saving, mixed precision, training."""

import os

import keras
import numpy as np
import pytest
from conftest import gpu_benchmark, random_token_ids, tiny_config

from rin_keras import RINConfig
from rin_keras.data import numpy_batches
from rin_keras.decoding import TAGS, cells_from_logits
from rin_keras.metrics import PartialMatchF1
from rin_keras.model import RINModel, build_rin, tag_softmax


def _batch(rng, lengths=(5, 3), width=6, num_relations=3):
    ids = random_token_ids(rng, lengths, width)
    tags = rng.integers(0, 5, size=ids.shape).astype("int32")
    relations = (rng.uniform(size=(len(lengths), width, width, num_relations)) < 0.1).astype("float32")
    for i, n in enumerate(lengths):
        tags[i, n:] = -1
        relations[i, n:] = -1
        relations[i, :, n:] = -1
    return {"token_ids": ids}, {"entity_tags": tags, "relations": relations}


def test_outputs_and_padding_invariance(rng):
    model = build_rin(tiny_config())
    ids = random_token_ids(rng, [4], 4)
    padded = np.concatenate([ids, np.zeros((1, 3), "int32")], axis=1)
    short, long = model({"token_ids": ids}), model({"token_ids": padded})
    assert long["entity_tags"].shape == (1, 7, 5) and long["relations"].shape == (1, 7, 7, 3)
    np.testing.assert_allclose(long["relations"][:, :4, :4], short["relations"], atol=1e-5)
    np.testing.assert_allclose(long["entity_tags"][:, :4], short["entity_tags"], atol=1e-5)
    assert np.all(keras.ops.convert_to_numpy(long["relations"])[:, 4:] == 0)


def test_split_at_encoder_gives_the_models_outputs_on_any_chunk(rng):
    model = build_rin(tiny_config())
    ids = random_token_ids(rng, [6, 2, 4], 6)
    expected = model({"token_ids": ids})
    encode, interact = model.split_at_encoder()
    hidden = encode({"token_ids": ids})
    assert not set(map(id, interact.weights)) - set(map(id, model.weights))  # Shared, not copied.
    rows = [2, 1]  # A chunk of the encoded batch, cut to its longest sentence.
    chunk = interact([keras.ops.convert_to_tensor(ids[rows, :4]), keras.ops.take(hidden, rows, axis=0)[:, :4]])
    np.testing.assert_allclose(chunk["relations"], keras.ops.take(expected["relations"], rows, axis=0)[:, :4, :4],
                               atol=1e-6)
    np.testing.assert_allclose(chunk["entity_tags"], keras.ops.take(expected["entity_tags"], rows, axis=0)[:, :4],
                               atol=1e-6)
    # The final relation head's logits instead of its probabilities, for in-graph thresholding.
    _, interact_logits = model.split_at_encoder(relation_logits=True)
    logits = interact_logits([keras.ops.convert_to_tensor(ids), hidden])["relation_logits"]
    real = keras.ops.convert_to_numpy(expected["relations"]) > 0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))[real],
                               keras.ops.convert_to_numpy(expected["relations"])[real], rtol=1e-6)


@pytest.mark.parametrize(
    "overrides,layers",
    [
        ({"rounds": 0}, {"relation_features"}),
        ({"rounds": 0, "task_features": False}, set()),
        ({"rounds": 1, "updater": "linear"}, {"relation_updater"}),
        ({"rounds": 3, "updater": "rnn", "use_hidden_input": False}, {"interaction", "relation_updater"}),
    ],
)
def test_variants_build(rng, overrides, layers):
    model = build_rin(tiny_config(**overrides))
    names = {layer.name for layer in model.layers}
    assert layers <= names
    if overrides.get("updater") == "linear" or overrides.get("rounds") == 0:
        assert "interaction" not in names
    if overrides.get("task_features") is False:
        assert {"relation_features", "entity_features"}.isdisjoint(names)
    if overrides.get("use_hidden_input") is False:  # y^ (one per relation) and y- (one per tag) only.
        assert model.get_layer("interaction").kernel.shape[0] == model.config.num_relations + len(TAGS)
    out = model({"token_ids": random_token_ids(rng, [3], 3)})
    assert out["relations"].shape == (1, 3, 3, 3)


def test_parameters_are_shared_across_rounds():
    counts = {k: build_rin(tiny_config(rounds=k)).count_params() for k in (1, 4)}
    assert counts[1] == counts[4]


def test_keras_save_and_load_give_identical_outputs(rng, tmp_path):
    model = build_rin(tiny_config())
    inputs, _ = _batch(rng)
    path = tmp_path / "rin.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects
    assert isinstance(restored, RINModel)
    for key in ("entity_tags", "relations"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model(inputs)[key]), keras.ops.convert_to_numpy(restored(inputs)[key])
        )


def test_a_saved_trained_model_loads_compiled_with_its_optimizer_state(rng, tmp_path):
    """As Keras models do: `load_model` of a checkpoint resumes `fit` or runs `evaluate` as saved."""
    inputs, targets = _batch(rng)
    model = build_rin(tiny_config())
    model.fit(inputs, targets, epochs=2, verbose=0)
    custom = build_rin(tiny_config())
    custom.compile(optimizer=keras.optimizers.SGD(0.5), metrics={"relations": [PartialMatchF1(0.3)]})
    custom.fit(inputs, targets, epochs=1, verbose=0)
    for trained in (model, custom):
        trained.save(tmp_path / "rin.keras")
        restored = keras.saving.load_model(tmp_path / "rin.keras")
        assert restored.compiled and type(restored.optimizer) is type(trained.optimizer)
        assert int(restored.optimizer.iterations) == int(trained.optimizer.iterations) > 0
        for saved, loaded in zip(trained.optimizer.variables, restored.optimizer.variables):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(loaded))
        assert restored.evaluate(inputs, targets, verbose=0, return_dict=True).keys() == trained.evaluate(
            inputs, targets, verbose=0, return_dict=True).keys()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_heads(rng, policy):
    keras.mixed_precision.set_global_policy(policy)
    model = build_rin(tiny_config())
    # Logits near 0, not at the prior's -9.2, where bfloat16's step (1/16) leaves one to three distinct values.
    head = model.get_layer("relation_head")
    head.output_bias.assign(np.zeros(head.output_bias.shape, "float32"))
    inputs, targets = _batch(rng)
    outputs = model(inputs)
    assert outputs["relations"].dtype == "float32" and outputs["entity_tags"].dtype == "float32"
    assert model.get_layer("encoder").compute_dtype == policy.split("_")[1]
    # Prediction's logits are in the compute dtype; thresholded, they give the probabilities' cells.
    encode, interact = model.split_at_encoder(relation_logits=True)
    logits = interact([keras.ops.convert_to_tensor(inputs["token_ids"]), encode(inputs)])["relation_logits"]
    logits = keras.ops.convert_to_numpy(logits)
    assert logits.dtype == policy.split("_")[1]
    probs = keras.ops.convert_to_numpy(outputs["relations"])
    values = np.unique(probs[probs > 0])  # A threshold between two of them: none is within rounding of it.
    threshold = float(values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    cells, _ = cells_from_logits(logits, (inputs["token_ids"] != 0).sum(axis=1), threshold)
    assert len(cells) > 5
    np.testing.assert_array_equal(cells, np.argwhere(probs >= threshold))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # float16 starts from a large loss scale that halves on every overflowing step.
    history = model.fit(inputs, targets, epochs=30, batch_size=2, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_one_training_step_reduces_the_loss(rng):
    model = build_rin(tiny_config())
    inputs, targets = _batch(rng)
    before = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    model.train_on_batch(inputs, targets)
    after = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    assert after < before


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="takes gradients with tf.GradientTape")
def test_relation_head_trains_through_its_final_call_only(rng):
    """The interaction rounds read y^ as an input: no gradient flows back through it into the relation head."""
    import tensorflow as tf

    model = build_rin(tiny_config())
    inputs, _ = _batch(rng)
    head = model.get_layer("relation_head").trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(inputs)
        tags, relations = tf.reduce_sum(outputs["entity_tags"]), tf.reduce_sum(outputs["relations"])
    assert all(gradient is None for gradient in tape.gradient(tags, head))
    assert all(gradient is not None for gradient in tape.gradient(relations, head))
    interaction = model.get_layer("interaction").trainable_weights
    assert all(gradient is not None for gradient in tape.gradient(relations, interaction))


def test_train_batch_f1_is_opt_in(rng):
    """The default compile counts no pair cells; the partial-match metric reports when asked for."""
    model = build_rin(tiny_config())
    inputs, targets = _batch(rng)
    assert "relations_partial_f1" not in model.train_on_batch(inputs, targets, return_dict=True)
    model.compile(metrics={"relations": [PartialMatchF1()]})
    f1 = model.train_on_batch(inputs, targets, return_dict=True)["relations_partial_f1"]
    assert 0.0 <= float(f1) <= 1.0


def test_xla_compiled_training_step_reduces_the_loss(rng):
    """`train --jit_compile`: XLA has no kernel for TensorFlow's fused BlockLSTM, so the encoder must not use it there."""
    model = build_rin(tiny_config())
    model.compile(jit_compile=True)
    inputs, targets = _batch(rng)
    before = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    model.train_on_batch(inputs, targets)
    after = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    assert after < before


def test_configs_saved_with_retired_options_off_load_and_on_refuse():
    saved = {**tiny_config().__dict__, "relation_name_embeddings": False, "lr_backbone_fraction": 1.0}
    assert RINConfig.from_dict(saved) == tiny_config()
    with pytest.raises(ValueError, match="piece_mask_rate"):
        RINConfig.from_dict({**saved, "piece_mask_rate": 0.15})


def test_config_must_name_vocabulary_and_relations():
    with pytest.raises(ValueError, match="vocab_size"):
        RINModel(tiny_config(vocab_size=0))
    with pytest.raises(TypeError, match="must be a RINConfig .* got NoneType"):
        build_rin(None)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the GPU benchmark's scorer is JAX code")
def test_gpu_benchmark_scores_as_the_decoder(rng):
    """benchmarks/gpu_throughput.py scores on the device: the F1 of `decode_triples` and `score_sets`."""
    from rin_keras import metrics
    from rin_keras.decoding import decode_triples

    bench = gpu_benchmark()
    model = build_rin(tiny_config())
    examples = []
    for length in (2, 5, 3, 7, 4, 6):
        relations = np.stack([rng.integers(0, length, 3), rng.integers(0, length, 3), rng.integers(0, 3, 3)], 1)
        examples.append({"token_ids": rng.integers(2, 20, length).astype("int32"), "tags": np.zeros(length, "int32"),
                         "relations": relations.astype("int32"), "length": length})
    inputs, _ = numpy_batches.pad_batch(examples, 7, 3)
    probabilities = keras.ops.convert_to_numpy(model(inputs)["relations"])
    threshold = float(np.median(probabilities[probabilities > 0]))  # Some cells above it, some below.
    gold, predicted = [], []
    for row, x in enumerate(examples):
        triples = decode_triples(np.zeros(7, "int32"), probabilities[row], x["length"], threshold)
        predicted.append({(t.subject_head, t.relation, t.object_head) for t in triples})
        gold.append({(int(s), int(r), int(o)) for s, o, r in x["relations"]})
    expected = metrics.score_sets(gold, predicted)["f1"]
    edges = numpy_batches.bucket_edges([4], [x["length"] for x in examples])
    scorer = bench.Scorer(model, examples, edges, 3, -1, threshold, batch_size=4)
    assert 0 < expected < 100 and sum(map(len, predicted)) > 0
    assert scorer.f1() == pytest.approx(expected, abs=1e-9)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the GPU benchmark's compile-ahead is JAX code")
def test_gpu_benchmark_compiles_ahead_what_fit_and_the_scorer_run(rng, tmp_path):
    """benchmarks/gpu_throughput.py's `compile_ahead` compiles the train step of every bucket edge and the scorer's
    shapes in threads; `fit` and the scorer then run those programs without compiling, and train as without it."""
    import jax

    bench = gpu_benchmark()
    examples = []
    for length in (2, 3, 3, 5, 6, 6, 4, 2):
        relations = np.stack([rng.integers(0, length, 2), rng.integers(0, length, 2), rng.integers(0, 3, 2)], 1)
        examples.append({"token_ids": rng.integers(2, 20, length).astype("int32"), "tags": rng.integers(0, 5, length),
                         "relations": relations.astype("int32"), "length": length})
    edges = numpy_batches.bucket_edges([4], [x["length"] for x in examples])  # Two buckets: 2-3 and 4-6 words.

    def train(ahead: bool):
        keras.utils.set_random_seed(3)
        model = build_rin(tiny_config())
        batches = bench.DeviceBatches(examples, edges, 3, -1)
        scorer = bench.Scorer(model, examples, edges, 3, -1, 0.5, batch_size=3)
        result = bench.compile_ahead(model, batches, 2, [scorer, scorer], threads=3) if ahead else {}
        history = model.fit(batches.epochs(2, np.random.default_rng(0)), epochs=2, steps_per_epoch=batches.steps(2),
                            verbose=0)
        return result, history.history["loss"], scorer.f1()

    saved = {name: getattr(jax.config, name) for name in ("jax_compilation_cache_dir",
                                                           "jax_persistent_cache_min_compile_time_secs",
                                                           "jax_persistent_cache_min_entry_size_bytes")}
    compiles = bench.CompileLog()
    try:
        bench.enable_compilation_cache(str(tmp_path / "cache"))
        result, losses, f1 = train(ahead=True)
    finally:
        from jax.experimental.compilation_cache import compilation_cache

        compiles.close()
        for name, value in saved.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()
    assert result["programs"] == 2 + 2  # Train steps of two edges; the scorer's two chunk widths, once each.
    names = [name for name, _ in compiles.compiles]
    assert names.count("jit(train_step)") == 2  # Ahead only: `fit` calls the same jitted step.
    assert compiles.hits == 0
    assert names.count("jit(counts)") == 2  # Ahead only: the scorer's calls reuse them.
    _, expected_losses, expected_f1 = train(ahead=False)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-6)
    assert f1 == expected_f1


def test_tag_softmax_is_keras_softmax_and_stable():
    logits = np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32")
    logits[0, 0] = [1000.0, 999.0, -1000.0, 0.0, 3.0]  # exp overflows without the max subtracted
    probabilities = keras.ops.convert_to_numpy(tag_softmax(logits))
    np.testing.assert_allclose(probabilities, keras.ops.convert_to_numpy(keras.ops.softmax(logits)), atol=1e-6)
    assert np.isfinite(probabilities).all()
    model = build_rin(tiny_config())
    assert model.get_layer("entity_tags").activation is tag_softmax


def test_config_fields_of_another_kind_are_refused_by_name(tmp_path):
    for fields, message in ((dict(hidden_dim="8"), "hidden_dim must be an integer, got '8'"),
                            (dict(learning_rate="1e-3"), "learning_rate must be a number, got '1e-3'"),
                            (dict(heldout_categories="yes"), "heldout_categories must be a bool, got 'yes'"),
                            (dict(dataset=None), "dataset must be a string, got None"),
                            (dict(hidden_dim=True), "hidden_dim must be an integer, got True"),
                            (dict(threshold=np.True_), "threshold must be a number, got ")):
        with pytest.raises(TypeError, match=f"^{message}"):
            RINConfig(**fields)
    # NumPy and Python numbers, read as Python's, which Keras layers and JSON take.
    config = RINConfig(vocab_size=np.int64(20), num_relations=3, hidden_dim=np.int64(8), learning_rate=1,
                       threshold=np.float32(0.25), heldout_categories=0, task_features=np.True_)
    assert [type(getattr(config, name)) for name in ("hidden_dim", "learning_rate", "threshold", "task_features")] == [
        int, float, float, bool]
    assert config.hidden_dim == 8 and config.learning_rate == 1 and config.threshold == 0.25
    config.save(str(tmp_path / "config.json"))  # JSON writes Python numbers only.
    assert RINConfig.load(str(tmp_path / "config.json")) == config
    build_rin(config)


@pytest.mark.parametrize("fields, message", [
    (dict(input_dropout=2.0), "input_dropout must be in"), (dict(input_dropout=-0.5), "input_dropout must be in"),
    (dict(vocab_size=-1), "vocab_size must be >= 0"), (dict(num_relations=-3), "num_relations must be >= 0"),
    (dict(learning_rate=float("inf")), "must be finite and > 0"), (dict(clipnorm=float("inf")), "must be finite"),
    (dict(use_relation_input=False, use_entity_input=False, use_hidden_input=False), "read at least one"),
])
def test_config_values_that_no_model_builds_with_are_refused_when_made(fields, message):
    with pytest.raises(ValueError, match=message):
        RINConfig(**fields)
    # Without rounds, or with linear updaters, no interaction layer reads those inputs.
    RINConfig(rounds=0, use_relation_input=False, use_entity_input=False, use_hidden_input=False)
    RINConfig(updater="linear", use_relation_input=False, use_entity_input=False, use_hidden_input=False)


def test_save_errors_name_the_path_given(tmp_path):
    """Not the temporary file beside it that a `.keras` or `.weights.h5` file is written to first."""
    model = build_rin(tiny_config())
    with pytest.raises(ValueError, match=r"weights\.h5") as error:
        model.save_weights(str(tmp_path / "w.h5"))
    assert str(tmp_path / "w.h5") in str(error.value) and ".tmp-" not in str(error.value)
    with pytest.raises(FileNotFoundError) as error:
        model.save(str(tmp_path / "missing" / "m.keras"))
    assert str(tmp_path / "missing") in str(error.value) and ".tmp-" not in str(error.value)
    assert os.listdir(tmp_path) == []
