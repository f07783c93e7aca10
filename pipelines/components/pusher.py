"""Pusher: exports a blessed model into the next version folder of a TF Serving base path.

The version folder is written under a temporary name and renamed when complete
(`rin_keras.export.export_version`), so a running server never loads half of it.
"""

from __future__ import annotations

import dataclasses
import os

from rin_keras import export
from rin_keras.triple_extractor import RINTripleExtractor


@dataclasses.dataclass
class Config:
    """Pusher settings.

    Attributes:
        serving_base: TF Serving base path (versions go below it).
        model_name: model name in the warm-up requests.
    """

    serving_base: str = "serving_models/rin"
    model_name: str = "rin"


def run(config: Config, model_dir: str, blessed: bool, output_dir: str) -> dict:
    """Pushes when blessed; returns `pushed` and the version and path written."""
    if not blessed:
        return {"pushed": False}
    path = export.export_version(RINTripleExtractor.from_preset(model_dir), config.serving_base,
                                 model_name=config.model_name)
    with open(os.path.join(output_dir, "pushed_path.txt"), "w", encoding="utf-8") as f:
        f.write(path + "\n")
    return {"pushed": True, "version": int(os.path.basename(path)), "path": os.path.abspath(path)}
