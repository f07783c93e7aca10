"""Runs the rin-keras pipeline (`pipelines.rin_pipeline`) on this machine (Beam DirectRunner for the data stages).

    python -m pipelines.local_runner --dataset=webnlg --lr_schedule=cosine --epochs=44

The Trainer takes the model and training flags of `python -m rin_keras.train` (`--variant`, `--rounds`,
`--epochs`, `--lr_schedule`, `--heldout_categories`, `--word_vectors`, `--pretrained_vectors`,
`--mixed_precision`, ...: docs/flags.md); unset ones keep the dataset's defaults. The splits to train on and
`--inference_input` are checked before any work.

Flags this runner does not know go to Beam, e.g.
`--direct_num_workers=2 --direct_running_mode=multi_processing`, or
`--runner=FlinkRunner --flink_master=...` (see docs/pipeline.md); a flag that
neither reads (a typo, `--dataset_dir`) stops the runner before any work, where
Beam would drop it with a warning.
"""

from __future__ import annotations

import argparse
import json
import os

from absl import app, flags
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.artifacts import CorruptRecordError
from pipelines.components import bulk_inferrer, evaluator, example_gen, pusher, trainer
from pipelines.rin_pipeline import PipelineConfig, run_pipeline
from rin_keras import train
from rin_keras.config import BENCHMARKS, RINConfig
from rin_keras.data.corpus import Corpus

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """Defines the runner's flags: the data's, `rin_keras.train`'s model and training flags, the pipeline's."""
    values = {"flag_values": flag_values}
    flags.DEFINE_enum("dataset", "webnlg", list(BENCHMARKS), "Benchmark.", **values)
    train.define_config_flags(flag_values)
    train.define_input_flags(flag_values)
    flags.DEFINE_string("pipeline_root", None, "Artifact folder (default pipeline_runs/<dataset>_<variant>[_heldout]).",
                        **values)
    flags.DEFINE_string("serving_base", None, "Pusher's TF Serving base path (default <pipeline_root>/serving/rin).",
                        **values)
    flags.DEFINE_string("data_dir", None, "Manual folder of the published data (default $RIN_DATA_DIR or "
                        "../shared/data).", **values)
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps prepared datasets.", **values)
    flags.DEFINE_integer("num_shards", 1, "TFRecord shards per split.", lower_bound=1, **values)
    flags.DEFINE_integer("patience", 30, "Early-stopping patience.", lower_bound=1, **values)
    flags.DEFINE_integer("max_train_sentences", None, "Train on N sentences only: the first in the stored order.",
                         lower_bound=1, **values)
    flags.DEFINE_float("min_partial_f1", 50.0, "Evaluator value threshold (dev partial F1, percent).",
                       lower_bound=0.0, upper_bound=100.0, **values)
    flags.DEFINE_float("max_f1_drop", 1.0, "Evaluator change threshold (points below the last blessed model).",
                       lower_bound=0.0, **values)
    flags.DEFINE_string("inference_input", None, "BulkInferrer input files (default: the test sentences).", **values)


def config_from_flags(flag_values=FLAGS) -> PipelineConfig:
    """The `PipelineConfig` the flags describe; the Trainer's hyperparameters are the model and training flags set."""
    hyperparameters = train.config_flag_values(flag_values)
    asked = RINConfig.for_dataset(flag_values.dataset, **hyperparameters)  # Checks them too.
    builder_config = asked.builder_config
    for name in list(hyperparameters):  # A flag set to what the others give anyway (the dataset's default) is left out,
        rest = {key: value for key, value in hyperparameters.items() if key != name}  # so the model is the same.
        if RINConfig.for_dataset(flag_values.dataset, **rest) == asked:
            hyperparameters = rest
    hyperparameters.pop("variant", None)  # ExampleGen's.
    root = flag_values.pipeline_root or os.path.join("pipeline_runs", f"{flag_values.dataset}_{builder_config}")
    return PipelineConfig(
        pipeline_root=root,
        example_gen=example_gen.Config(flag_values.dataset, builder_config, flag_values.data_dir,
                                       flag_values.tfds_data_dir, flag_values.num_shards),
        trainer=trainer.Config(hyperparameters, word_vectors=flag_values.word_vectors,
                               pretrained_vectors=flag_values.pretrained_vectors,
                               mixed_precision=flag_values.mixed_precision, patience=flag_values.patience,
                               max_train_sentences=flag_values.max_train_sentences),
        evaluator=evaluator.Config(flag_values.min_partial_f1, flag_values.max_f1_drop),
        pusher=pusher.Config(flag_values.serving_base or os.path.join(root, "serving", "rin")),
        bulk_inferrer=bulk_inferrer.Config(flag_values.inference_input),
    )


def unknown_to_beam(args: list[str]) -> list[str]:
    """The arguments among `args` that no Beam pipeline option reads (Beam would discard them).

    Raises:
        ValueError: an option's value that Beam refuses (`--direct_num_workers=two`), with argparse's reason.
    """
    parsers = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)  # Beam's parser of every option.
    parser = parsers[0]
    parser.exit_on_error = False
    try:
        return parser.parse_known_args(args)[1]
    except argparse.ArgumentError as e:
        raise ValueError(f"Beam option {e}") from e


def check_inputs(config: PipelineConfig) -> None:
    """Checks, before any work, that the output folders are not files, that the data has the splits to train on and
    that `--inference_input` matches files that read as texts (`bulk_inferrer.input_files`).

    Raises:
        ValueError: `--pipeline_root` or `--serving_base` is a file.
        FileNotFoundError: a split's published file is missing (the message names it), or no input file matches.
        rin_keras.predict.InputError: an input file is not texts, named with its line.
    """
    for flag, path in (("--pipeline_root", config.pipeline_root), ("--serving_base", config.pusher.serving_base)):
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"{flag}={path} is a file: name a folder (made where missing).")
    data = config.example_gen
    Corpus.check_splits(data.dataset, data.builder_config, ("train", "validation"), data.tfds_data_dir, data.data_dir)
    if config.bulk_inferrer.input_pattern:
        bulk_inferrer.input_files(config.bulk_inferrer.input_pattern)


def main(argv):
    beam_args = [arg for arg in argv[1:] if arg != "--"]
    try:
        unknown = unknown_to_beam(beam_args)
    except ValueError as e:
        raise SystemExit(f"pipelines.local_runner: {e}") from e
    if unknown:
        hint = (" The pipeline runs on a benchmark (--dataset); train on a folder of your own data with "
                "`python -m rin_keras.train --dataset_dir=...`." if any(a.startswith("--dataset_dir") for a in unknown)
                else "")
        raise SystemExit(f"pipelines.local_runner: {' '.join(unknown)}: neither a flag of this runner (--helpfull) "
                         f"nor a Beam pipeline option.{hint}")
    try:
        config = config_from_flags(FLAGS)
        check_inputs(config)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"pipelines.local_runner: {e}") from e
    try:
        artifacts = run_pipeline(config, beam_args)
    except CorruptRecordError as e:
        raise SystemExit(f"pipelines.local_runner: {e}") from e
    for name, artifact in artifacts.items():
        print(f"{name:<14} {artifact.uri}  {json.dumps(artifact.properties, default=str)}")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=lambda argv: FLAGS(argv, known_only=True))
