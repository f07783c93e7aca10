"""rin-keras: joint entity and relation extraction with the Recurrent Interaction Network."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from rin_keras.config import RINConfig  # noqa: E402

__version__ = "0.1.0"
__all__ = ["RINConfig"]
