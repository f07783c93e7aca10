"""Shared fixtures: tiny configs, the dummy corpus, the shared data folder."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# XLA (JAX, and TensorFlow's jit_compile) compiles every shape of these tiny models afresh; unoptimised machine code
# compiles faster and computes the same. Child processes of the tests inherit it.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

from rin_keras import RINConfig  # noqa: E402

# The files that take longest (child processes, trainings), in that order: `--dist loadfile --no-loadscope-reorder`
# (pytest.ini) hands files to the two workers in collection order, so these start first and the short files even
# out the end.
SLOWEST_FILES = ("test_data_parallel.py", "test_jax_backend.py", "test_train.py", "test_tfx_pipeline.py",
                 "test_serving.py", "test_bert_encoder.py", "test_notebook.py", "test_hostile_inputs.py")
SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


def pytest_collection_modifyitems(items):
    """Puts the tests of `SLOWEST_FILES` first, keeping the order within each file."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def gpu_benchmark():
    """benchmarks/gpu_throughput.py as a module (it batches with NumPy where TensorFlow is not installed)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "gpu_throughput.py")
    spec = importlib.util.spec_from_file_location("gpu_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(**overrides) -> RINConfig:
    """A RINConfig small enough for unit tests."""
    base = dict(vocab_size=20, num_relations=3, word_dim=6, lstm_units=4, hidden_dim=8, rounds=2, input_dropout=0.0)
    return RINConfig(**{**base, **overrides})


def random_token_ids(rng, lengths, width, vocab_size=20):
    """Token ids [len(lengths), width] with real ids in [1, vocab) and 0 padding after each length."""
    ids = rng.integers(1, vocab_size, size=(len(lengths), width)).astype("int32")
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    return ids


def assert_same_triples(actual, expected, rtol=1e-5):
    """Per-sentence triple dicts equal, scores to float32 precision."""
    assert len(actual) == len(expected)
    for a_sentence, e_sentence in zip(actual, expected):
        assert [{**t, "score": None} for t in a_sentence] == [{**t, "score": None} for t in e_sentence]
        np.testing.assert_allclose([t["score"] for t in a_sentence], [t["score"] for t in e_sentence], rtol=rtol)


def write_tiny_vectors(path, words=("alan", "bean", "texas", "born", "in", "wheeler", "obama", "honolulu"), dim=4):
    """Writes a GloVe-style text file of a few words (random vectors); returns its path."""
    generator = np.random.default_rng(7)
    with open(path, "w", encoding="utf-8") as f:
        for word in words:
            f.write(" ".join([word, *(f"{v:.4f}" for v in generator.normal(0, 1, dim))]) + "\n")
    return str(path)


@pytest.fixture
def tiny_vectors(tmp_path):
    """A GloVe-style text file of a few words, for the frozen pretrained word features."""
    return write_tiny_vectors(tmp_path / "tiny_vectors.txt")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def keras_defaults():
    """Every test starts with the same random seed and starts and ends with the float32 policy.

    The seed makes a model's initial weights the same on every run and in any test order, so a test that passes
    here passes in CI.
    """
    import keras

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
