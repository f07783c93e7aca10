"""The rin-keras pipeline: its components, their settings and the DAG that joins them.

DAG: ExampleGen -> StatisticsGen
               \\-> Trainer -> Evaluator -> Pusher -> BulkInferrer

Each component writes `<pipeline_root>/<Component>/<fingerprint>/`; a rerun skips
components whose config and inputs did not change and continues after the last
finished one. `pipelines.local_runner` runs it on this machine.
"""

from __future__ import annotations

import dataclasses
import json
import os

from absl import logging
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.artifacts import Artifact, run_component
from pipelines.components import bulk_inferrer, evaluator, example_gen, pusher, statistics_gen, trainer


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

    def component(name, settings, inputs, executor):
        return run_component(root, name, dataclasses.asdict(settings), inputs, executor)

    examples = component("ExampleGen", config.example_gen, {},
                         lambda out: example_gen.run(config.example_gen, out, options))
    statistics = component("StatisticsGen", config.statistics_gen, {"examples": examples},
                           lambda out: statistics_gen.run(config.statistics_gen, examples.uri, out, options))
    model = component("Trainer", config.trainer, {"examples": examples},
                      lambda out: trainer.run(config.trainer, examples.uri, out))

    baseline_path = os.path.join(root, BASELINE_FILE)
    baseline = _read_json(baseline_path)
    evaluator_config = dataclasses.replace(
        config.evaluator, baseline_f1=baseline["partial_f1"] if baseline and baseline["model"] != model.uri else None
    )
    evaluation = component("Evaluator", evaluator_config, {"examples": examples, "model": model},
                           lambda out: evaluator.run(evaluator_config, examples.uri, model.uri, out))
    if evaluation.properties["blessed"]:
        with open(baseline_path, "w", encoding="utf-8") as f:
            json.dump({"model": model.uri, "partial_f1": evaluation.properties["partial_f1"]}, f)
    pushed = component("Pusher", config.pusher, {"model": model, "blessing": evaluation},
                       lambda out: pusher.run(config.pusher, model.uri, evaluation.properties["blessed"], out))
    artifacts = {"ExampleGen": examples, "StatisticsGen": statistics, "Trainer": model,
                 "Evaluator": evaluation, "Pusher": pushed}
    if not pushed.properties["pushed"]:
        logging.warning("Model not blessed (%s): no push, no bulk inference.", "; ".join(evaluation.properties["reasons"]))
        return artifacts
    artifacts["BulkInferrer"] = component(
        "BulkInferrer", config.bulk_inferrer, {"pushed": pushed, "examples": examples},
        lambda out: bulk_inferrer.run(config.bulk_inferrer, pushed.properties["path"],
                                      os.path.join(examples.uri, "text", "test.txt"), out, options),
    )
    return artifacts


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
