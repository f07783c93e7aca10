"""The rin-keras pipeline: its components, their settings and the DAG that joins them.

DAG: ExampleGen -> StatisticsGen
               \\-> Trainer -> Evaluator -> Pusher -> BulkInferrer

Each component writes `<pipeline_root>/<Component>/<fingerprint>/`; a rerun skips
components whose config and inputs did not change and continues after the last
finished one. The fingerprints also cover what a component reads from outside the
pipeline: ExampleGen the published split files present, BulkInferrer its input
files. `pipelines.local_runner` runs it on this machine.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os

from absl import logging
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.artifacts import Artifact, read_record, run_component
from pipelines.components import bulk_inferrer, evaluator, example_gen, pusher, statistics_gen, trainer
from rin_keras.files import write_atomically


BASELINE_FILE = "blessed_baseline.json"


@dataclasses.dataclass
class PipelineConfig:
    """All component settings of one pipeline."""

    pipeline_root: str
    example_gen: example_gen.Config = dataclasses.field(default_factory=example_gen.Config)
    statistics_gen: statistics_gen.Config = dataclasses.field(default_factory=statistics_gen.Config)
    trainer: trainer.Config = dataclasses.field(default_factory=trainer.Config)
    evaluator: evaluator.Config = dataclasses.field(default_factory=evaluator.Config)
    pusher: pusher.Config = dataclasses.field(default_factory=pusher.Config)
    bulk_inferrer: bulk_inferrer.Config = dataclasses.field(default_factory=bulk_inferrer.Config)


def run_pipeline(config: PipelineConfig, beam_args: list[str] | None = None) -> dict[str, Artifact]:
    """Runs (or reuses) every component; returns their artifacts by component name."""
    root = config.pipeline_root
    os.makedirs(root, exist_ok=True)
    options = PipelineOptions(beam_args or [])

    def component(name, settings, inputs, executor, read=None, reusable=None, resumes=False):
        # `read`: what the component reads from outside the pipeline, hashed with its settings; a setting of where
        # files are (`LOCATIONS`) is not.
        fields = {key: value for key, value in dataclasses.asdict(settings).items()
                  if key not in getattr(settings, "LOCATIONS", ())}
        return run_component(root, name, {**fields, **(read or {})}, inputs, executor, reusable, resumes)

    examples = component("ExampleGen", config.example_gen, {},
                         lambda out: example_gen.run(config.example_gen, out, options),
                         example_gen.outside_inputs(config.example_gen))
    statistics = component("StatisticsGen", config.statistics_gen, {"examples": examples},
                           lambda out: statistics_gen.run(config.statistics_gen, examples.uri, out, options))
    vector_files = [stamp for source in (config.trainer.word_vectors, config.trainer.pretrained_vectors)
                    if os.path.isfile(source) for stamp in _file_stamps(glob.escape(source))]
    model = component("Trainer", config.trainer, {"examples": examples},
                      lambda out: trainer.run(config.trainer, examples.uri, out),
                      {"vector_files": vector_files} if vector_files else None, resumes=True)

    baseline_path = os.path.join(root, BASELINE_FILE)
    baseline = _read_json(baseline_path)
    # The last blessed model other than this one (a model is known by its Trainer fingerprint; files written before
    # it was recorded hold the folder only): where this model is the last blessed, the one it was held against.
    baseline_f1 = None
    if baseline:
        is_this_model = baseline.get("fingerprint", baseline["model"]) in (model.fingerprint, model.uri)
        baseline_f1 = baseline.get("previous_partial_f1") if is_this_model else baseline["partial_f1"]
    evaluated = []

    def evaluate(out):
        evaluated.append(out)
        properties = evaluator.run(config.evaluator, examples.uri, model.uri, out, baseline_f1)
        if properties["blessed"]:  # Before the evaluation is recorded: a stop between the two evaluates again.
            record = {"model": model.uri, "fingerprint": model.fingerprint, "partial_f1": properties["partial_f1"],
                      "previous_partial_f1": baseline_f1}
            write_atomically(baseline_path, lambda path: _write_json(path, record))
        return properties

    # A reused evaluation (an older model's) moves no baseline.
    evaluation = component("Evaluator", config.evaluator, {"examples": examples, "model": model}, evaluate)
    # A reused evaluation was blessed against the baseline of its day: the push holds it against today's, so that an
    # older command cannot push its model over a better one blessed since. The refusals are part of the Pusher's
    # fingerprint: once they change, it decides again.
    refusals = (evaluation.properties["reasons"] if evaluated or not evaluation.properties["blessed"] else
                evaluator.blessing_refusals(config.evaluator, evaluation.properties["partial_f1"], baseline_f1))
    pushed = component("Pusher", config.pusher, {"model": model, "blessing": evaluation},
                       lambda out: pusher.run(config.pusher, model.uri, not refusals, out), {"refusals": refusals},
                       reusable=lambda artifact: pusher.still_pushed(artifact, model.uri), resumes=True)
    artifacts = {"ExampleGen": examples, "StatisticsGen": statistics, "Trainer": model,
                 "Evaluator": evaluation, "Pusher": pushed}
    if not pushed.properties["pushed"]:
        logging.warning("Model not blessed (%s): no push, no bulk inference.", "; ".join(refusals))
        return artifacts
    default_input = os.path.join(examples.uri, "text", "test.txt")
    # Known by the model and its serving version, not by the Pusher's fingerprint: a push decided again under other
    # thresholds, which leaves the same version, infers nothing again.
    artifacts["BulkInferrer"] = component(
        "BulkInferrer", config.bulk_inferrer, {"model": model, "examples": examples},
        lambda out: bulk_inferrer.run(config.bulk_inferrer, pushed.properties["path"], default_input, out, options),
        {"serving_version": pushed.properties["version"],
         "input_files": _file_stamps(config.bulk_inferrer.input_pattern) if config.bulk_inferrer.input_pattern
         else None},
    )
    return artifacts


def _file_stamps(pattern: str) -> list[tuple[str, int, int]]:
    """(absolute path, size, modification time in ns) of each file `pattern` matches: a changed file changes them."""
    stamps = []
    for path in sorted(glob.glob(pattern)):
        stat = os.stat(path)
        stamps.append((os.path.abspath(path), stat.st_size, stat.st_mtime_ns))
    return stamps


def _write_json(path, record):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)


def _read_json(path):
    if not os.path.exists(path):
        return None
    return read_record(path, "remove it (the next blessed model starts a new baseline) or mend it.")
