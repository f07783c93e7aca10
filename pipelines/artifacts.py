"""Artifact folders with fingerprints: what makes reruns skip finished components.

Each component run writes one folder `<pipeline_root>/<Component>/<fingerprint>/`.
The fingerprint hashes the component's name, its config and the fingerprints of
its input artifacts, so a change anywhere upstream gives new folders downstream
while unchanged components are reused. A run works in `<folder>.partial` and
renames it when `artifact.json` is written. A component that resumes continues
in the `.partial` folder an interrupted run left (the Trainer from its
BackupAndRestore state there, the Pusher from the version it recorded); any
other starts in an empty one, so that nothing a stopped run wrote (a Beam
stage's temporary files) ends up in its artifact. Finished artifacts are never
touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from typing import Callable

from absl import logging

ARTIFACT_FILE = "artifact.json"


class CorruptRecordError(ValueError):
    """A record the pipeline keeps under its root (`artifact.json`, the blessed baseline) does not read."""


def read_record(path: str, fix: str) -> dict:
    """Reads a JSON record of the pipeline root.

    Raises:
        CorruptRecordError: not a JSON object, naming `path` and what to do (`fix`).
    """
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptRecordError(f"{path} does not read ({e}): {fix}") from e
    if not isinstance(record, dict):
        raise CorruptRecordError(f"{path} holds no JSON object: {fix}")
    return record


@dataclasses.dataclass
class Artifact:
    """A finished component output.

    Attributes:
        component: the component that wrote it.
        uri: its folder.
        fingerprint: hash of the component's config and inputs.
        properties: what the component reports (counts, scores, `blessed`, pushed path...).
    """

    component: str
    uri: str
    fingerprint: str
    properties: dict

    def path(self, *parts: str) -> str:
        return os.path.join(self.uri, *parts)

    @classmethod
    def load(cls, uri: str) -> "Artifact":
        """Reads a finished artifact.

        Raises:
            CorruptRecordError: its `artifact.json` does not read, or lacks a field.
        """
        fix = f"remove {uri} to run the component again."
        record = read_record(os.path.join(uri, ARTIFACT_FILE), fix)
        try:
            return cls(record["component"], uri, record["fingerprint"], record["properties"])
        except KeyError as e:
            raise CorruptRecordError(f"{os.path.join(uri, ARTIFACT_FILE)} has no {e}: {fix}") from e


def fingerprint(component: str, config: dict, inputs: dict[str, Artifact]) -> str:
    """Returns the hash identifying a component run."""
    payload = json.dumps(
        {"component": component, "config": config, "inputs": {k: v.fingerprint for k, v in sorted(inputs.items())}},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def run_component(pipeline_root: str, component: str, config: dict, inputs: dict[str, Artifact],
                  executor: Callable[[str], dict], reusable: Callable[[Artifact], bool] | None = None,
                  resumes: bool = False) -> Artifact:
    """Runs `executor(output_dir)` unless an artifact with the same fingerprint exists (and is `reusable`).

    Args:
        pipeline_root: the pipeline's root folder.
        component: component name (the artifact's parent folder).
        config: the component's config, as JSON-able values.
        inputs: input artifacts by name.
        executor: writes the outputs into the folder it is given and returns the properties.
        reusable: whether a finished artifact still holds (what it points to outside the pipeline root may be
            gone); one that does not is removed and the component runs again.
        resumes: whether `executor` continues from what an interrupted run left in the `.partial` folder (else
            that folder is emptied first).

    Returns:
        the (new or reused) artifact.
    """
    key = fingerprint(component, config, inputs)
    uri = os.path.join(pipeline_root, component, key)
    if os.path.exists(os.path.join(uri, ARTIFACT_FILE)):
        artifact = Artifact.load(uri)
        if reusable is None or reusable(artifact):
            logging.info("%s: inputs and config unchanged, reusing %s", component, uri)
            return artifact
        logging.info("%s: %s no longer holds (%s); running again", component, uri, artifact.properties)
        shutil.rmtree(uri)
    work = uri + ".partial"
    if not resumes and os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work, exist_ok=True)
    logging.info("%s: running into %s", component, work)
    start = time.time()
    properties = executor(work) or {}
    record = {
        "component": component,
        "fingerprint": key,
        "config": config,
        "inputs": {k: v.uri for k, v in inputs.items()},
        "properties": properties,
        "seconds": round(time.time() - start, 1),
    }
    with open(os.path.join(work, ARTIFACT_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, default=str)
    os.rename(work, uri)
    logging.info("%s: done in %.1fs", component, record["seconds"])
    return Artifact(component, uri, key, properties)
