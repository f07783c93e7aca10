"""Pusher: exports a blessed model into the next version folder of a TF Serving base path.

The version folder is written under a temporary name and renamed when complete
(`rin_keras.export.export_version`), so a running server never loads half of it.
The version folder's path is written into the component's output folder before the
export: a run stopped after the rename, before the pipeline recorded the push,
finds that folder on the rerun and does not push the same model again, where the
folder is this model's export (`serving.contract.export_source`), not one that
another pipeline pushed under that number meanwhile.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable

from rin_keras import export
from serving import contract
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
    """Pushes when blessed, unless a version folder holds this model's export already (the model is not pushed
    again as a newer version); returns `pushed` and the version and path."""
    if not blessed:
        return {"pushed": False}
    record = os.path.join(output_dir, "pushed_path.txt")
    if os.path.exists(record):  # A push of this model that stopped before the pipeline recorded it.
        with open(record, encoding="utf-8") as f:
            path = f.read().strip()
        if holds_model(path, model_dir):
            return _pushed(path)
    versions = contract.versions(config.serving_base)
    digest = functools.cache(lambda: export.model_digest(model_dir))
    for version in versions:  # Pushed before (blessed again under other thresholds, or by the root elsewhere).
        path = os.path.abspath(os.path.join(config.serving_base, str(version)))
        if _exported_from(path, model_dir, digest):
            return _pushed(path)
    version = contract.next_version(config.serving_base)
    path = os.path.abspath(os.path.join(config.serving_base, str(version)))
    with open(record, "w", encoding="utf-8") as f:
        f.write(path + "\n")
    export.export_version(RINTripleExtractor.from_preset(model_dir), config.serving_base, version,
                          model_name=config.model_name, source=model_dir)
    return _pushed(path)


def holds_model(path: str, model_dir: str) -> bool:
    """Whether the version folder `path` is there and holds the export of `model_dir` (`_exported_from`; an export
    written before exports named their source counts as it)."""
    return os.path.isdir(path) and (contract.export_source(path) is None or
                                    _exported_from(path, model_dir, lambda: export.model_digest(model_dir)))


def _exported_from(path: str, model_dir: str, model_digest: Callable[[], str]) -> bool:
    """Whether the version folder `path` was exported from `model_dir`: its `contract.SOURCE_FILE` names that
    folder, or the sha256 of its model file (`model_digest()`), as when the pipeline root is reached by another
    path since (a link, a copy, another mount)."""
    if contract.export_source(path) == os.path.abspath(model_dir):
        return True
    recorded = contract.export_source_digest(path)
    return recorded is not None and recorded == model_digest()


def still_pushed(artifact, model_dir: str) -> bool:
    """Whether a Pusher artifact of the model in `model_dir` still holds: no push, or its version folder still
    holds that model (a version folder removed, or taken by another model since, is pushed again)."""
    return not artifact.properties["pushed"] or holds_model(artifact.properties["path"], model_dir)


def _pushed(path: str) -> dict:
    return {"pushed": True, "version": int(os.path.basename(path)), "path": path}
