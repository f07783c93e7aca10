"""Keras's JAX backend: the layer, model, loss and training-step tests, and the tokeniser, preprocessor and
`RINTripleExtractor` tests (raw text in, triples out; save and load), run again under JAX.

Keras fixes its backend at import, so they run in a child pytest with KERAS_BACKEND=jax (the CPU `jax` wheel).
"""

import importlib.util
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ON_JAX = ["test_layers.py", "test_model.py", "test_losses_metrics.py", "test_tokenizer.py", "test_triple_extractor.py"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (pip install jax)")
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="already on another backend")
def test_network_tests_pass_on_jax():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", *ON_JAX],
        cwd=TESTS, env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, text=True, timeout=1200,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" in summary  # The TensorFlow-only test skips; the rest pass.


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (pip install jax)")
def test_the_network_and_numpy_batches_import_without_tensorflow():
    """A GPU host with JAX but no TensorFlow (benchmarks/gpu_throughput.py) imports the network and the batches."""
    code = ("import sys, rin_keras, rin_keras.layers, rin_keras.data.numpy_batches; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_BACKEND": "jax"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
