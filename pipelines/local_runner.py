"""Runs the rin-keras pipeline (`pipelines.rin_pipeline`) on this machine (Beam DirectRunner for the data stages).

    python -m pipelines.local_runner --dataset=webnlg --pipeline_root=pipeline_runs/webnlg

Flags this runner does not know go to Beam, e.g.
`--direct_num_workers=2 --direct_running_mode=multi_processing`, or
`--runner=FlinkRunner --flink_master=...` (see docs/pipeline.md).
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from pipelines.components import bulk_inferrer, evaluator, example_gen, pusher, trainer
from pipelines.rin_pipeline import PipelineConfig, run_pipeline
from rin_keras.config import BENCHMARKS, VARIANTS

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_enum("dataset", "webnlg", list(BENCHMARKS), "Benchmark.")
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
