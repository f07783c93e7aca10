"""Runs the rin-keras pipeline end to end on this machine (Beam DirectRunner for the data stages).

    python -m pipelines.local_runner --dataset=webnlg --pipeline_root=pipeline_runs/webnlg

DAG: ExampleGen -> StatisticsGen
               \\-> Trainer -> Evaluator -> Pusher -> BulkInferrer

Each component writes `<pipeline_root>/<Component>/<fingerprint>/`; a rerun skips
components whose config and inputs did not change and continues after the last
finished one. Flags this runner does not know go to Beam, e.g.
`--direct_num_workers=2 --direct_running_mode=multi_processing`, or
`--runner=FlinkRunner --flink_master=...` (see docs/pipeline.md).
"""

from __future__ import annotations

import dataclasses
import json
import os

from absl import app, flags, logging
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.artifacts import Artifact, run_component
from pipelines.components import bulk_inferrer, evaluator, example_gen, pusher, statistics_gen, trainer
from rin_keras.config import DATASETS, VARIANTS

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


FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_enum("dataset", "webnlg", list(DATASETS), "Benchmark.")
    flags.DEFINE_enum("variant", "partial", list(VARIANTS), "Entity annotation.")
    flags.DEFINE_string("pipeline_root", None, "Artifact folder (default pipeline_runs/<dataset>_<variant>).")
    flags.DEFINE_string("serving_base", None, "Pusher's TF Serving base path (default <pipeline_root>/serving/rin).")
    flags.DEFINE_string("data_dir", None, "Manual folder of the published data (default $RIN_DATA_DIR or ../shared/data).")
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps prepared datasets.")
    flags.DEFINE_integer("num_shards", 1, "TFRecord shards per split.")
    flags.DEFINE_integer("rounds", None, "Interaction rounds K (dataset default when unset).")
    flags.DEFINE_integer("epochs", None, "Maximum training epochs (dataset default when unset).")
    flags.DEFINE_integer("patience", 30, "Early-stopping patience.")
    flags.DEFINE_integer("max_train_sentences", None, "Train on the first N sentences only.")
    flags.DEFINE_float("min_partial_f1", 50.0, "Evaluator value threshold (dev partial F1, percent).")
    flags.DEFINE_float("max_f1_drop", 1.0, "Evaluator change threshold (points below the last blessed model).")
    flags.DEFINE_string("inference_input", None, "BulkInferrer input files (default: the test sentences).")


def config_from_flags() -> PipelineConfig:
    root = FLAGS.pipeline_root or os.path.join("pipeline_runs", f"{FLAGS.dataset}_{FLAGS.variant}")
    hyperparameters = {k: FLAGS[k].value for k in ("rounds", "epochs") if FLAGS[k].value is not None}
    return PipelineConfig(
        pipeline_root=root,
        example_gen=example_gen.Config(FLAGS.dataset, FLAGS.variant, FLAGS.data_dir, FLAGS.tfds_data_dir,
                                       FLAGS.num_shards),
        trainer=trainer.Config(hyperparameters, patience=FLAGS.patience, max_train_sentences=FLAGS.max_train_sentences),
        evaluator=evaluator.Config(FLAGS.min_partial_f1, FLAGS.max_f1_drop),
        pusher=pusher.Config(FLAGS.serving_base or os.path.join(root, "serving", "rin")),
        bulk_inferrer=bulk_inferrer.Config(FLAGS.inference_input),
    )


def main(argv):
    artifacts = run_pipeline(config_from_flags(), [arg for arg in argv[1:] if arg != "--"])
    for name, artifact in artifacts.items():
        print(f"{name:<14} {artifact.uri}  {json.dumps(artifact.properties, default=str)}")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=lambda argv: FLAGS(argv, known_only=True))
