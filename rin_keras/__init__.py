"""rin-keras: joint entity and relation extraction with the Recurrent Interaction Network."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from rin_keras.config import RINConfig  # noqa: E402
from rin_keras.model import RINModel, build_rin  # noqa: E402  (registers the layers for loading)

__version__ = "0.1.0"
__all__ = ["RINConfig", "RINModel", "build_rin"]

# The text side (tokeniser, lookups, tf.data) is TensorFlow; the network also runs on other Keras backends
# (e.g. benchmarks/gpu_throughput.py on JAX, where TensorFlow is not installed).
if os.environ["KERAS_BACKEND"] == "tensorflow":
    from rin_keras.preprocessor import RINPreprocessor  # noqa: E402
    from rin_keras.triple_extractor import RINTripleExtractor  # noqa: E402

    __all__ += ["RINPreprocessor", "RINTripleExtractor"]
