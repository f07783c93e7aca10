"""Every `>>>` example in a docstring runs and prints what it shows."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

MODULES = [
    "rin_keras.model",
    "rin_keras.preprocessor",
    "rin_keras.triple_extractor",
    "rin_keras.data.tokenizer",
    "rin_keras.layers.encoders",
    "rin_keras.layers.gru_updater",
    "rin_keras.layers.interaction",
    "rin_keras.layers.pairwise_relation_head",
    "rin_keras.layers.word_features",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    keras.utils.set_random_seed(0)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    examples = 0
    for test in finder.find(module, globs={**vars(module), "np": np, "tf": tf, "keras": keras}):
        examples += len(test.examples)
        runner.run(test)
    assert examples, f"{name} has no docstring example: take it off MODULES."
    assert runner.failures == 0, f"{runner.failures} failed docstring example(s) in {name} (see the output above)."
