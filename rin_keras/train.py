"""Train RIN: `python -m rin_keras.train --dataset=webnlg`, or on your own folder with `--dataset_dir`.

The dev split selects the model (after every epoch: partial-match F1 for
--variant=partial, exact-match F1 for --variant=exact); the test split is only
reported. Everything goes to --model_dir:

    extractor.keras              the trained artifact: preprocessor + best network + threshold
                                 (`RINTripleExtractor.from_preset(model_dir)`), written at the end
    config.json, vocab/          the run's hyper-parameters and train-split vocabulary
    best.keras                   the network of the best epoch on dev, as training selects it
    backup/                      BackupAndRestore state until results.json is written: rerun the same
                                 command to resume (or, once the last epoch has ended, to score it)
    history.csv, dev_f1.png      per-epoch losses and dev scores, and their plot
    logs/                        TensorBoard
    results.json                 test P/R/F1 (partial, exact, text) and NER F1

A folder holding a finished run, or an unfinished run of another network, is refused: nothing is trained over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging
from tfds_builders import casrel
from tfds_builders.casrel_folder import casrel_folder_dataset_builder

from rin_keras import cli
from rin_keras.callbacks import (
    BackupError, DevEvaluation, EpochEndWrites, HistoryLogger, ProgressLog, ResumedEarlyStopping, ResumedLearningRate,
    ResumedReduceLROnPlateau, RunBackup, cosine_learning_rate, dev_scores_so_far, history_rows,
)
from rin_keras.config import BENCHMARKS, RINConfig, flag_fields
from rin_keras.data import embeddings, features, pos
from rin_keras.data.corpus import Corpus
from rin_keras.data.dataset import DEFAULT_BUCKET_BOUNDARIES, make_dataset
from rin_keras.data.substitution import EntitySubstitutes
from rin_keras.data.vocab import Vocabulary
from rin_keras.data_parallel import SINGLE_PROCESS, Cluster, ClusterMismatchError, ClusterStartError
from rin_keras.evaluate import evaluate_split, format_table, scoring_batches, train_relations
from rin_keras.files import write_atomically
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import ARTIFACT_FILE, CHECKPOINT_FILE, RINTripleExtractor

FLAGS = flags.FLAGS
_DEFINE_BY_TYPE = {"bool": flags.DEFINE_bool, "int": flags.DEFINE_integer, "float": flags.DEFINE_float,
                   "str": flags.DEFINE_string}
# The BiLSTM's word features, which the BERT encoder (reading word pieces) leaves out.
_BILSTM_FLAGS = ("unknown_word_rate", "shape_dim", "pos_dim", "char_dim")
_ROUND_FLAGS = ("updater", "use_relation_input", "use_entity_input", "use_hidden_input")
FLAGS_REFERENCE = "docs/flags.md"
BACKUP_DIR = "backup"  # Under the run folder: the last epoch's weights and state, until the run is finished.
# Files of a run that a --model_dir holding no run (no config.json) must not have: the run would replace them.
RUN_FILES = ("history.csv", CHECKPOINT_FILE, ARTIFACT_FILE, "results.json")
DATA_FILE = "data.txt"  # Under the run folder: what the run trains on, so that a resume on other data is refused.


_RECIPE_FLAGS = {field.name for field in flag_fields() if field.metadata["recipe"]}


def define_config_flags(flag_values=flags.FLAGS) -> None:
    """Defines a flag for each of `RINConfig`'s `flag_fields`, with its type, default and help."""
    for field in flag_fields():
        default = None if field.metadata["recipe"] else field.default
        if field.metadata["choices"]:
            flags.DEFINE_enum(field.name, default, list(field.metadata["choices"]), field.metadata["help"],
                              flag_values=flag_values)
        else:
            _DEFINE_BY_TYPE[field.type](field.name, default, field.metadata["help"], flag_values=flag_values)


def config_flag_values(flag_values=flags.FLAGS) -> dict:
    """The `RINConfig` fields that the flags of `define_config_flags` and `define_input_flags` give a value: those
    set, and the defaults of all but the recipe fields (whose defaults depend on the dataset and encoder);
    `--pretrained_vectors=none` sets `pretrained_dim` 0, and a BERT encoder drops the BiLSTM's word features. Flags
    that the model would not read (the BiLSTM's with a BERT encoder, the rounds' with `--rounds=0`) are named in a
    warning."""
    fields = {f.name: flag_values[f.name].value for f in flag_fields() if flag_values[f.name].value is not None}
    if flag_values.pretrained_vectors == "none":
        fields["pretrained_dim"] = 0
    if flag_values.encoder == "bert":
        ignored = [f"--{name}" for name in _BILSTM_FLAGS if flag_values[name].present]
        if ignored:
            logging.warning("%s: features of the BiLSTM encoder, which --encoder=bert does not read (it reads word "
                            "pieces): ignored.", ", ".join(ignored))
        for name in _BILSTM_FLAGS:
            fields.pop(name, None)
    if flag_values.rounds == 0:
        ignored = [f"--{name}" for name in _ROUND_FLAGS if flag_values[name].present]
        if ignored:
            logging.warning("%s: settings of the interaction rounds, which --rounds=0 leaves out: no effect.",
                            ", ".join(ignored))
    return fields


def define_input_flags(flag_values=flags.FLAGS) -> None:
    """Defines the flags of the word vectors and of the dtype policy (the pipeline's runner takes them too)."""
    flags.DEFINE_string(
        "word_vectors", "word2vec", "word2vec (trained on the train split, cached), random, or a GloVe-style text file.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "pretrained_vectors", "glove",
        "Frozen pretrained word features (BiLSTM): glove (400k-word GloVe 6B 50-d, shipped offline), "
        "none, or a GloVe-style text file (its words looked up lower-cased). Words unseen in train keep their "
        "pretrained vectors.",
        flag_values=flag_values,
    )
    cli.register_path_check("word_vectors", vectors_file_check(("word2vec", "random")), flag_values)
    cli.register_path_check("pretrained_vectors", vectors_file_check(("glove", "none")), flag_values)
    flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"], "Keras dtype policy.",
                      flag_values=flag_values)


def define_flags():
    """Defines the command-line flags: RINConfig's (`define_config_flags`), the word vectors' and dtype policy's
    (`define_input_flags`), the data's and the run's."""
    define_config_flags()
    define_input_flags()
    flags.DEFINE_enum("dataset", "webnlg", list(BENCHMARKS), "Benchmark to train on.")
    flags.DEFINE_string(
        "dataset_dir", None,
        "Train on this folder of your own annotated sentences instead of --dataset: train/val/test splits as CasRel "
        "JSON (tokenised) or JSON lines (raw text); see docs/custom_data.md.",
    )
    cli.register_path_check("dataset_dir", check_dataset_dir)
    flags.DEFINE_integer("patience", 30, "Stop after this many epochs without a better dev F1.", lower_bound=1)
    flags.DEFINE_string("model_dir", None, "Output folder (default runs/<dataset>_<variant>[_heldout]_k<rounds>).")
    cli.register_path_check("model_dir", cli.folder_to_write)
    flags.DEFINE_string("data_dir", None, "Manual folder of the published data (default $RIN_DATA_DIR or ../shared/data).")
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps prepared datasets (TFDS default).")
    flags.DEFINE_enum(
        "strategy", "default", ["default", "mirrored", "tpu", "data_parallel"],
        "default, mirrored or tpu: a tf.distribute strategy (TensorFlow backend). data_parallel: keras.distribution's "
        "DataParallel over every device of --num_workers workers (KERAS_BACKEND=jax; rin_keras/data_parallel.py)."
    )
    flags.DEFINE_integer("num_workers", 1, "--strategy=data_parallel: processes (machines) that train together.")
    flags.DEFINE_integer("worker_index", 0, "--strategy=data_parallel: this worker's index, 0 for the chief.")
    flags.DEFINE_string("coordinator_address", None, "--strategy=data_parallel: the chief's host:port.")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (pads batches to bucket edges, as the JAX "
                      "backend always does: it compiles once per batch shape).")
    flags.DEFINE_bool("bucketing", True, "Batch sentences of similar length together.")
    flags.DEFINE_integer("max_train_sentences", None,
                         "Use only N train sentences: the first in the stored order, a fixed subset (smoke tests; "
                         "the vocabulary, word2vec vectors and entity stand-ins still come from the whole split; all "
                         "of it where it holds fewer).",
                         lower_bound=1)


def vectors_file_check(keywords: tuple[str, ...]):
    """Returns the `cli.register_path_check` check of a word vectors flag: one of `keywords`, or a file."""

    def check(value: str) -> None:
        if value not in keywords and (not os.path.exists(value) or os.path.isdir(value)):  # A pipe is read too.
            what = f"{value} is a folder" if os.path.isdir(value) else f"no file {value}"
            raise FileNotFoundError(f"{what}: name {' or '.join(keywords)}, or a GloVe-style text file.")

    return check


def flags_reference() -> str:
    """Every flag `define_flags` defines, as the markdown table of `FLAGS_REFERENCE` (a test keeps it current)."""
    rows = []
    for flag in sorted(FLAGS.get_flags_for_module(__name__), key=lambda f: f.name):
        if flag.default is None:
            default = ("required with `--encoder=bert`" if flag.name == "preset" else
                       "by dataset and encoder" if flag.name in _RECIPE_FLAGS else "")
        else:
            default = f"`{flag.default}`"
        rows.append(f"| `--{flag.name}` | {default} | {flag.help.replace('|', '/')} |")
    return "\n".join([
        "# Flags of `python -m rin_keras.train`", "",
        "Generated from the code (`RINConfig` and `rin_keras.train.define_flags`):", "",
        "    python -c \"from rin_keras import train; train.define_flags(); print(train.flags_reference())\" "
        f"> {FLAGS_REFERENCE}", "",
        "| flag | default | what |", "| --- | --- | --- |", *rows, "",
        "## Defaults by dataset and encoder", "",
        "What a flag marked \"by dataset and encoder\" is when it is not given (`RINConfig.for_dataset`; a folder of "
        "your own data, `--dataset_dir`, trains exact match; \"-\": not read by that encoder):", "",
        *_recipe_defaults_table()])


def _recipe_defaults_table() -> list[str]:
    """The recipe flags' defaults as a markdown table: a row per flag, a column per dataset and encoder."""
    columns = {}
    for dataset in (*BENCHMARKS, "custom"):
        for encoder in ("bilstm", "bert"):
            given = {"preset": "any"} if encoder == "bert" else {}  # A required flag of BERT, without a default.
            name = f"{'--dataset_dir' if dataset == 'custom' else dataset}, {encoder}"
            columns[name] = RINConfig.for_dataset(dataset, encoder=encoder, **given)
    rows = ["| flag | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for field in sorted(_RECIPE_FLAGS - {"preset"}):
        values = ["-" if config.encoder == "bert" and field in _BILSTM_FLAGS else f"`{getattr(config, field)}`"
                  for config in columns.values()]
        rows.append(f"| `--{field}` | " + " | ".join(values) + " |")
    return rows


def config_from_flags() -> RINConfig:
    """Returns the RINConfig the flags describe (dataset defaults where a flag is unset)."""
    if FLAGS.encoder == "bert" and not FLAGS.preset:
        raise SystemExit("rin_keras.train: --encoder=bert needs --preset (a keras-hub preset name or a local preset "
                         "folder).")
    if FLAGS.preset and FLAGS.encoder != "bert":
        raise SystemExit(f"rin_keras.train: --preset names the checkpoint of a BERT encoder; add --encoder=bert (this "
                         f"command would train a {FLAGS.encoder}).")
    fields = config_flag_values()
    if FLAGS.dataset_dir:
        if FLAGS["dataset"].present:
            raise SystemExit("rin_keras.train: --dataset and --dataset_dir both name the data to train on: give one "
                             "of them.")
    try:
        dataset = "custom" if FLAGS.dataset_dir else FLAGS.dataset
        return RINConfig.for_dataset(dataset, **fields)
    except ValueError as e:
        raise SystemExit(f"rin_keras.train: {e}") from e


def get_strategy(name: str) -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy called `name` (the default one for `data_parallel`, which is Keras's)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "tpu":
        resolver = tpu_resolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def tpu_resolver() -> tf.distribute.cluster_resolver.TPUClusterResolver:
    """The TPU this process reaches (a Cloud TPU VM's own, or the one `TPU_NAME` names).

    Raises:
        SystemExit: there is none, said in one line.
    """
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver()
    except ValueError as e:  # "Please provide a TPU Name to connect to."
        raise SystemExit(f"rin_keras.train: --strategy=tpu found no TPU ({e}): run it on a Cloud TPU VM, or set "
                         "TPU_NAME to the TPU's name.") from e


def plot_history(history_csv: str, png: str, monitor: str) -> None:
    """Plots dev partial and exact F1 per epoch from the CSV log (`history_rows` by the selecting score `monitor`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = history_rows(history_csv, monitor)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [float(r["val_partial_f1"]) for r in rows], marker="o", label="dev partial F1")
    ax.plot(epochs, [float(r["val_exact_f1"]) for r in rows], marker=".", label="dev exact F1")
    ax.set_xlabel("epoch")
    ax.set_ylabel("F1 (%)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def word_vectors(config: RINConfig, corpus: Corpus, vocab, source: str, cache_dir: str | None) -> np.ndarray | None:
    """Returns the initial word vectors named by `source`, or None for random."""
    if source == "random":
        return None
    if source == "word2vec":
        sentences = [[t.decode("utf-8") for t in x["tokens"]] for x in corpus.examples("train")]
        return embeddings.train_word2vec(sentences, vocab, config.word_dim, cache_dir, config.seed)
    if not os.path.exists(source):
        raise SystemExit(f"rin_keras.train: --word_vectors: no file {source}.")
    return embeddings.load_text_vectors(source, vocab, config.word_dim, config.seed)


def train(config: RINConfig, model_dir: str, *, data_dir=None, dataset_dir=None, tfds_data_dir=None,
          word_vectors_source="word2vec", pretrained_source="glove", patience=30, mixed_precision="none",
          strategy="default", jit_compile=False, bucketing=True, max_train_sentences=None,
          corpus: Corpus | None = None, cluster: Cluster = SINGLE_PROCESS) -> dict:
    """Trains, selects on dev, scores test; returns the results written to results.json.

    Args:
        config: model and training hyper-parameters (vocab_size and num_relations are filled in).
        model_dir: output folder; rerunning with the same folder resumes from the backup.
        data_dir: manual folder of the published data.
        dataset_dir: a user's folder to train on instead of the benchmark (`config.dataset` "custom").
        tfds_data_dir: TFDS data folder.
        word_vectors_source: `"word2vec"`, `"random"` or a text vectors file.
        pretrained_source: for `config.pretrained_dim` > 0 (and a BERT encoder's entity substitution), the
            pretrained table: `"glove"` or a text vectors file (see `embeddings.load_pretrained_table`).
        patience: early-stopping patience in epochs.
        mixed_precision: `"none"`, `"mixed_float16"` or `"mixed_bfloat16"`.
        strategy: tf.distribute strategy name, or `"data_parallel"` (see `rin_keras.data_parallel`).
        jit_compile: XLA-compile the train step, with batches padded to bucket edges (always so on JAX).
        bucketing: bucket train batches by length.
        max_train_sentences: train on the first N sentences of the stored order only.
        corpus: the data (default: `dataset_dir`, else the TFDS builder of `config.dataset` / `config.builder_config`).
        cluster: with `strategy="data_parallel"`, this worker's place among the workers. Every worker takes the
            same steps and returns the same results; only the chief writes to `model_dir`.

    Raises:
        ValueError: the data has no validation split, `cluster` and `strategy` do not go together, or `model_dir`
            holds a finished run or one of another network (`check_run_dir`).
        FileNotFoundError: a benchmark's train or validation file is missing (`Corpus.check_splits`).
    """
    cluster.check_strategy(strategy)
    folder = _folder_of(dataset_dir, corpus)
    data = run_data(config, folder, max_train_sentences)
    check_before_training(config, model_dir, data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                          benchmark=corpus is None and not dataset_dir, data=data)
    if strategy == "data_parallel":
        cluster.start()
        # The data and vector files by their contents: their paths may differ from machine to machine.
        cluster.check_same_settings({"config": dataclasses.asdict(config), "patience": patience,
                                     "mixed_precision": mixed_precision, "jit_compile": jit_compile,
                                     "bucketing": bucketing, "max_train_sentences": max_train_sentences,
                                     "data": folder and casrel_folder_dataset_builder.files_digest(folder),
                                     "vectors": [_file_identity(word_vectors_source),
                                                 _file_identity(pretrained_source)]})
    # Set for the run only: a pipeline scores and exports in the same process afterwards.
    with _global_dtype_policy("float32" if mixed_precision == "none" else mixed_precision), \
            contextlib.ExitStack() as cleanup:
        if not cluster.is_chief:
            # The chief prepares the data and the run folder first; then the others read them.
            cluster.barrier("run_dir")
            model_dir = cluster.worker_dir(model_dir)
            cleanup.callback(shutil.rmtree, model_dir, ignore_errors=True)  # However the run ends.
        corpus = corpus or _open_corpus(config, data_dir, dataset_dir, tfds_data_dir)
        config, preprocessor, pretrained = _prepare_run_dir(config, model_dir, corpus, pretrained_source, data)
        if cluster.is_chief:
            cluster.barrier("run_dir")
        keras.utils.set_random_seed(config.seed)  # After the data preparation, whose draws differ between workers.
        # A run resumed at epoch k shuffles from seed + k: from the seed alone, each resume repeated the first
        # epochs' order.
        train_data = _train_data(config, corpus, preprocessor, _entity_substitution(
            config, corpus, preprocessor.vocabulary, pretrained, pretrained_source), bucketing=bucketing,
            jit_compile=jit_compile, limit=max_train_sentences, cluster=cluster,
            seed=config.seed + RunBackup.saved_epoch(os.path.join(model_dir, BACKUP_DIR)))
        with get_strategy(strategy).scope():
            # Only the chief caches word2vec vectors; the others train their own and take the chief's weights.
            cache_dir = os.path.join(model_dir, "..", ".cache") if cluster.is_chief else None
            model = _build_model(config, corpus, preprocessor, word_vectors_source, pretrained, cache_dir, jit_compile)
        cluster.share_chief_weights(model)
        model.summary(print_fn=logging.info)
        dev_scores = _dev_scorer(config, corpus, preprocessor)
        # The dataset shuffles itself (`make_dataset`); a progress bar in a terminal, else a line an epoch and a
        # progress line a minute.
        in_terminal = sys.stdout.isatty()
        writes = EpochEndWrites()
        fit_callbacks = _callbacks(config, model_dir, dev_scores, patience, cluster.num_workers, writes) + (
            [] if in_terminal else [ProgressLog()])
        # One iterator for the whole run. Given the dataset itself, Keras makes a new iterator each epoch, and tearing
        # the old one down waits for tf.data's autotuning thread: ~11 s of idle CPU in about 4 epochs of 10.
        steps_per_epoch = int(train_data.cardinality())
        backup_dir = os.path.join(model_dir, BACKUP_DIR)
        if RunBackup.training_ended(backup_dir):
            logging.info("%s trained to its end: scoring its best epoch without training again (more epochs train in "
                         "another --model_dir).", model_dir)
        else:
            try:
                model.fit(train_data.repeat(), steps_per_epoch=steps_per_epoch, epochs=config.epochs,
                          callbacks=fit_callbacks, shuffle=False, verbose=1 if in_terminal else 2)
            finally:
                writes.release()
        results = _final_report(config, model_dir, corpus, preprocessor, max_train_sentences)
        # The run is finished (`is_finished_run`) once the backup is gone: renamed away whole, so that a process
        # killed while deleting it leaves no part of it to start the run again from.
        removed = backup_dir + ".removed"
        shutil.rmtree(removed, ignore_errors=True)
        os.replace(backup_dir, removed)
        shutil.rmtree(removed)
        return results


@contextlib.contextmanager
def _global_dtype_policy(name: str):
    """Sets Keras's global dtype policy, and sets the one before it again on leaving."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _train_data(config: RINConfig, corpus: Corpus, preprocessor: RINPreprocessor, substitute, *, bucketing: bool,
                jit_compile: bool, limit: int | None, cluster: Cluster, seed: int) -> tf.data.Dataset:
    """The train batches of this worker (`make_dataset`) shuffled from `seed`, padded to bucket edges where XLA
    compiles."""
    return make_dataset(
        corpus, "train", preprocessor.vocabulary, config.batch_size, training=True, max_length=config.max_length,
        bucket_boundaries=DEFAULT_BUCKET_BOUNDARIES if bucketing else None, seed=seed,
        pad_to_bucket_boundary=jit_compile or keras.backend.backend() == "jax", limit=limit,
        featurizer=preprocessor.featurizer, max_pairs=config.max_batch_pairs, num_shards=cluster.num_workers,
        shard_index=cluster.worker_index, substitute=substitute)


def _dev_scorer(config: RINConfig, corpus: Corpus, preprocessor: RINPreprocessor):
    """Returns `dev_scores(model)`, the dev split's scores of a model, for `DevEvaluation` after every epoch;
    the dev examples are read and batched once and kept in memory."""
    examples = corpus.examples("validation")
    batches = list(scoring_batches(preprocessor, corpus, "validation"))

    def dev_scores(model):
        return evaluate_split(RINTripleExtractor(model, preprocessor, config.threshold), corpus, "validation",
                              batches=batches, examples=examples)

    return dev_scores


def _open_corpus(config: RINConfig, data_dir: str | None, dataset_dir: str | None, tfds_data_dir: str | None):
    """The data of a run: a user's folder, else the builder of `config`; prepared on first use.

    Raises:
        ValueError: it has no validation split.
    """
    corpus = (Corpus.from_folder(dataset_dir, tfds_data_dir) if dataset_dir
              else Corpus.prepare(config.dataset, config.builder_config, tfds_data_dir, data_dir))
    if "validation" not in corpus.splits:
        raise ValueError(f"{corpus.name} has no validation split, which selects the model: add "
                         f"{corpus.split_path('validation')} (a few hundred sentences held out from train).")
    return corpus


def check_dataset_dir(directory: str) -> None:
    """Checks that a folder to train on holds a train and a validation split (`casrel.find_split_files`).

    Raises:
        FileNotFoundError: it does not; ValueError: a split is there twice.
    """
    casrel.find_split_files(directory, required=("train", "validation"))


def run_data(config: RINConfig, dataset_dir: str | None, max_train_sentences: int | None = None) -> str:
    """What a run trains on: `<dataset>/<builder config>`, or a user's folder as `<real path> (files <digest>)`, the
    digest of its files (`casrel_folder_dataset_builder.files_digest`), so that a run is not resumed on the folder
    edited; with `max_train_sentences`, ` (first <N> train sentences)` after it.

    Raises:
        FileNotFoundError: the folder has no train split.
    """
    if dataset_dir:
        folder = os.path.realpath(dataset_dir)
        data = f"{folder} (files {casrel_folder_dataset_builder.files_digest(folder)})"
    else:
        data = f"{config.dataset}/{config.builder_config}"
    return data + (f" (first {max_train_sentences} train sentences)" if max_train_sentences else "")


# `run_data`'s parts; a run of an older version recorded a folder without its files' digest.
_RUN_DATA = re.compile(r"(?P<data>.*?)(?: \(files (?P<digest>[0-9a-f]+)\))?"
                       r"(?: \(first (?P<limit>\d+) train sentences\))?")


def run_data_folder(data: str) -> str:
    """`run_data`'s dataset or folder alone, without its files' digest and train sentence limit."""
    return _RUN_DATA.fullmatch(data)["data"]


def _file_identity(source: str) -> str | list:
    """A vectors source as workers compare it: a name (`glove`), or a file's name and size."""
    return [os.path.basename(source), os.path.getsize(source)] if os.path.isfile(source) else source


def _folder_of(dataset_dir: str | None, corpus: Corpus | None) -> str | None:
    """The user folder a run trains on: `dataset_dir`, or that of a corpus given instead (`Corpus.user_folder`)."""
    return dataset_dir or (corpus.user_folder if corpus is not None else None)


def check_before_training(config: RINConfig, model_dir: str, *, data_dir: str | None, tfds_data_dir: str | None,
                          benchmark: bool, data: str | None = None) -> None:
    """What must hold before anything is built or trained: `check_run_dir`, a BERT encoder's `check_preset`, and
    for a benchmark (`benchmark`), its train and validation splits prepared or published (`Corpus.check_splits`:
    NYT's train files are not public).

    Raises:
        ValueError, FileNotFoundError: the message says what is wrong and what to do.
    """
    check_run_dir(config, model_dir, data)
    if config.encoder == "bert":
        check_preset(config.preset)
    if benchmark:
        Corpus.check_splits(config.dataset, config.builder_config, ("train", "validation"), tfds_data_dir, data_dir)


@functools.cache
def check_preset(preset: str) -> None:
    """Checks that the keras-hub preset of a BERT encoder loads (its tokenizer, and its backbone with the weights),
    before the run folder is written; once a process (the command line checks before `train` checks again).

    Raises:
        ValueError: it does not; the message names it.
    """
    import keras_hub

    try:
        features.preset_tokenizer(preset)
        keras_hub.models.Backbone.from_preset(preset)
    except (ValueError, OSError) as e:
        reason = str(e).strip().split("\n")[0].split(". ")[0].rstrip(".:")  # keras-hub's first sentence.
        raise ValueError(f"--preset={preset} does not load as a keras-hub BERT preset (a preset name, or a folder "
                         f"written by save_to_preset): {reason}.") from e


def is_finished_run(model_dir: str) -> bool:
    """Whether `model_dir` holds a run that trained to its end: its `results.json`, and no `backup/` to resume."""
    return (os.path.exists(os.path.join(model_dir, "results.json"))
            and not os.path.isdir(os.path.join(model_dir, BACKUP_DIR)))


def check_run_dir(config: RINConfig, model_dir: str, data: str | None = None) -> None:
    """Checks that training `config` into `model_dir` loses nothing: the folder holds no run, an unfinished run of
    the same network on the same `data` (`run_data`), which the training resumes (its learning rate, epochs and
    other `TRAINING_FIELDS` may change), or a run that stopped before writing `results.json`, which the training
    redoes.

    Raises:
        ValueError: `model_dir` holds a finished run (`results.json` and no `backup/`), a run on other data, a run
            whose network differs from `config`'s (the message names each difference), or a `config.json` that
            cannot be read.
    """
    config_path = os.path.join(model_dir, "config.json")
    vocab_dir = os.path.join(model_dir, "vocab")
    if is_finished_run(model_dir):
        raise ValueError(f"{model_dir} holds a finished run (its results.json): pass another --model_dir, or delete "
                         "the folder to train it again.")
    data_file = os.path.join(model_dir, DATA_FILE)
    written = [name for name in RUN_FILES if os.path.exists(os.path.join(model_dir, name))]
    if written and not os.path.exists(config_path):
        raise ValueError(f"{model_dir} holds {', '.join(written)} of no run (it has no config.json), which the run "
                         "would replace: pass another --model_dir, or move them.")
    _check_writable(model_dir)
    if data and os.path.exists(data_file):
        with open(data_file, encoding="utf-8") as f:
            trained_on = f.read().strip()
        was, now = _RUN_DATA.fullmatch(trained_on), _RUN_DATA.fullmatch(data)
        if was["data"] != now["data"]:
            raise ValueError(f"{model_dir} holds an unfinished run on {trained_on}, not {data}: pass another "
                             "--model_dir, or the same data to resume it.")
        if was["digest"] and was["digest"] != now["digest"]:
            raise ValueError(f"{model_dir} holds an unfinished run on {was['data']} whose "
                             "files have changed since it started (its vocabulary was made from them): restore "
                             "them to resume it, or pass another --model_dir to train on them as they are.")
        if was["limit"] != now["limit"]:
            def sentences(limit):
                return f"its first {limit} train sentences" if limit else "all its train sentences"

            raise ValueError(f"{model_dir} holds an unfinished run on {sentences(was['limit'])}, not "
                             f"{sentences(now['limit'])}: pass the same --max_train_sentences to resume it, or "
                             "another --model_dir.")
    if not (os.path.exists(config_path) and os.path.exists(os.path.join(vocab_dir, "words.txt"))):
        return
    try:
        stored = RINConfig.load(config_path)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{config_path} cannot be read ({e}): delete the folder {model_dir} to start again.") from e
    # Sized as `_prepare_run_dir` will size it from the run's vocabulary; the pretrained table on or off as asked.
    asked = config.with_vocabulary(Vocabulary.load(vocab_dir), stored.pretrained_dim)
    asked = asked.replace(pretrained_dim=(asked.pretrained_dim or config.pretrained_dim) if config.pretrained_dim else 0)
    asked_fields = asked.network_fields()
    # Sizes of features the stored network does not have (older versions saved other values for them).
    unread = set()
    if stored.encoder == "bert" or not stored.char_dim:
        unread.add("num_chars")
    if stored.encoder == "bert" or not stored.pretrained_dim:
        unread.update(("pretrained_rows", "pretrained_int8"))
    differences = [f"{name} {value} there, {asked_fields[name]} asked" for name, value in stored.network_fields().items()
                   if name not in unread and asked_fields[name] != value]
    if differences:
        raise ValueError(f"{model_dir} holds an unfinished run of another network ({'; '.join(differences)}): "
                         "pass another --model_dir, the same settings to resume it, or delete the folder.")


def _check_writable(model_dir: str) -> None:
    """Raises ValueError, naming the folder, where `model_dir` (or the folder it is to be made in) cannot be written."""
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ValueError(f"--model_dir={model_dir} cannot be written ({existing}: {e.strerror}): pass another "
                         "--model_dir.") from e


def _prepare_run_dir(config: RINConfig, model_dir: str, corpus: Corpus, pretrained_source: str, data: str):
    """Writes (or, resuming, reads) the run's vocabulary and writes its sized `config.json` and `DATA_FILE`.

    Args:
        data: what the run trains on (`run_data`).

    Returns:
        `(config, preprocessor, pretrained)`: the config sized for the vocabulary, the
        run's `RINPreprocessor`, and the pretrained table (None without one).
    """
    os.makedirs(model_dir, exist_ok=True)
    data_file = os.path.join(model_dir, DATA_FILE)
    if not os.path.exists(data_file):  # `check_run_dir` compared one that is there.
        def write(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(data + "\n")

        write_atomically(data_file, write)
    vocab_dir = os.path.join(model_dir, "vocab")
    pretrained_words, pretrained = [], None
    if config.encoder == "bilstm" and config.pretrained_dim:
        pretrained_words, pretrained = embeddings.load_pretrained_table(pretrained_source)
    if os.path.exists(os.path.join(vocab_dir, "words.txt")):
        vocab = Vocabulary.load(vocab_dir)  # Resuming: keep the ids the backup was trained with.
        if vocab.pretrained_words and pretrained is not None and vocab.pretrained_words != pretrained_words:
            raise embeddings.VectorsFileError(
                f"{model_dir} holds an unfinished run whose pretrained table has other words than "
                f"{pretrained_source}'s: pass its --pretrained_vectors to resume it, another --model_dir, or delete "
                "the folder.")
    else:
        vocab = corpus.build_vocabulary().with_pretrained_words(pretrained_words)
        if config.encoder == "bilstm" and config.pos_dim:
            vocab = vocab.with_pos_lexicon(pos.brill_lexicon())
        partial = vocab_dir + ".partial"  # Renamed into place when whole: a stop leaves no vocabulary to resume.
        shutil.rmtree(partial, ignore_errors=True)
        vocab.save(partial)
        shutil.rmtree(vocab_dir, ignore_errors=True)  # One without words.txt holds no vocabulary.
        os.replace(partial, vocab_dir)
    config = config.with_vocabulary(vocab, pretrained.shape[1] if pretrained is not None else 0)
    config_path = os.path.join(model_dir, "config.json")
    if RunBackup.training_ended(os.path.join(model_dir, BACKUP_DIR)) and os.path.exists(config_path):
        trained = RINConfig.load(config_path)  # Scored as it trained: settings asked now train nothing.
        ignored = [f"{name} {value} asked, {getattr(trained, name)} trained" for name, value in
                   dataclasses.asdict(config).items() if getattr(trained, name) != value]
        if ignored:
            logging.warning("%s trained to its end: its settings are kept (%s); train in another --model_dir to "
                            "apply them.", model_dir, "; ".join(ignored))
        config = trained
    else:
        config.save(config_path)
    bert_tokenizer = None
    if config.encoder == "bert":
        # The tokenizer goes with the model, so inference needs no preset.
        bert_tokenizer = features.preset_tokenizer(config.preset)
    return config, RINPreprocessor.from_config_and_vocabulary(config, vocab, bert_tokenizer), pretrained


def _entity_substitution(config: RINConfig, corpus: Corpus, vocab: Vocabulary, pretrained, pretrained_source: str):
    """The entity substitution of `config` for `make_dataset` (None when its rate is 0)."""
    substitutes = _entity_substitutes(config, corpus, vocab, pretrained, pretrained_source)
    if substitutes is None:
        return None
    return substitutes.substituter(config.entity_substitution_rate, config.entity_substitution_unrelated_share)


def _entity_substitutes(config: RINConfig, corpus: Corpus, vocab: Vocabulary, pretrained, pretrained_source: str):
    """The stand-ins of the train entity words for `config.entity_substitution_rate` (None when it is 0), from the
    BiLSTM's pretrained table, or for a BERT encoder from the table `pretrained_source` names."""
    if not config.entity_substitution_rate:
        return None
    if config.encoder == "bilstm":
        table = vocab.pretrained_words, pretrained
    elif pretrained_source == "none":
        raise ValueError("entity_substitution_rate draws stand-ins from a pretrained table: set pretrained_source.")
    else:
        table = embeddings.load_pretrained_table(pretrained_source)
    return EntitySubstitutes.from_train_split(corpus, *table, k=config.entity_substitution_neighbours)


def _build_model(config: RINConfig, corpus: Corpus, preprocessor: RINPreprocessor, word_vectors_source: str,
                 pretrained, cache_dir: str | None, jit_compile: bool):
    """Returns the compiled model with its initial word vectors (word2vec cached in `cache_dir`) and frozen
    pretrained table set."""
    model = build_rin(config)
    if jit_compile:
        model.compile(jit_compile=True)
    if config.encoder == "bilstm":
        vectors = word_vectors(config, corpus, preprocessor.vocabulary, word_vectors_source, cache_dir)
        if vectors is not None:
            model.encoder.set_word_vectors(vectors)
        if pretrained is not None:
            model.word_features.set_pretrained_vectors(pretrained)
    return model


def _callbacks(config: RINConfig, model_dir: str, dev_scores, patience: int, num_workers: int = 1,
               writes: EpochEndWrites | None = None) -> list:
    """Dev scoring, model selection into best.keras, early stopping, the learning rate, logs and backup.

    A resumed run picks model selection up where it stopped: best.keras is only
    replaced by a better epoch, and the patience counts the epochs in history.csv.
    With `writes`, Ctrl-C is held back from best.keras to the backup (`EpochEndWrites`).
    """
    history_csv = os.path.join(model_dir, "history.csv")
    backup_dir = os.path.join(model_dir, BACKUP_DIR)
    if not os.path.exists(backup_dir) and os.path.exists(history_csv):
        os.remove(history_csv)  # A finished earlier run: start its history afresh.
    best_path = os.path.join(model_dir, CHECKPOINT_FILE)
    monitor = selection_metric(config)
    past_scores = dev_scores_so_far(history_csv, monitor)
    if past_scores:
        _check_best_model(best_path, len(past_scores), RunBackup.training_ended(backup_dir))
    # An epoch logged after the backup's last one is trained again: the plateau counts leave it out, while
    # best.keras, saved before the epoch was logged, may hold it.
    counted = dev_scores_so_far(history_csv, monitor, before_epoch=RunBackup.saved_epoch(backup_dir))
    checkpoint = keras.callbacks.ModelCheckpoint(best_path, monitor=monitor, mode="max", save_best_only=True,
                                                 initial_value_threshold=max(past_scores, default=None))
    callbacks = [
        DevEvaluation(dev_scores, config.variant),
        checkpoint,
        ResumedEarlyStopping(counted, monitor=monitor, mode="max", patience=patience),
        HistoryLogger(history_csv, append=True),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), write_graph=False),
        RunBackup(backup_dir, num_workers),
    ]
    # Learning-rate callbacks go before HistoryLogger, so history.csv logs the rate.
    if config.lr_decay_factor < 1.0:
        callbacks.insert(1, ResumedReduceLROnPlateau(
            counted, monitor=monitor, mode="max", factor=config.lr_decay_factor, patience=config.lr_decay_patience,
            min_delta=0.0, verbose=1,
        ))
    elif config.lr_schedule == "cosine":
        callbacks.insert(1, cosine_learning_rate(config.learning_rate, config.epochs, config.lr_final_fraction))
    else:
        callbacks.append(ResumedLearningRate(config.learning_rate))
    if writes is not None:
        callbacks.insert(callbacks.index(checkpoint), writes.first)
        callbacks.append(writes.last)
    return callbacks


def _check_best_model(best_path: str, epochs: int, training_ended: bool) -> None:
    """Checks that the `best.keras` of a run whose history.csv logs `epochs` epochs is whole (its zip members read
    back with their checksums), before a resumed run trains on or, where its training ended, is scored.

    Raises:
        BackupError: it is missing or damaged; the message says how to go on.
    """
    try:
        with zipfile.ZipFile(best_path) as archive:
            damaged = archive.testzip()
        reason = f"its member {damaged} is damaged" if damaged else None
    except (OSError, zipfile.BadZipFile) as error:
        reason = str(error)
    if reason:
        folder = os.path.dirname(best_path)
        lost = f"{best_path} cannot be read ({reason}), so the best of the {epochs} epochs history.csv logs is lost"
        if training_ended:
            raise BackupError(f"{lost}, and the run has trained all its epochs: delete the folder to train it again.")
        raise BackupError(f"{lost}: delete best.keras and history.csv in {folder} to go on from the backup and "
                          "choose among the epochs to come, or delete the folder to train again.")


def _final_report(config: RINConfig, model_dir: str, corpus: Corpus, preprocessor: RINPreprocessor,
                  max_train_sentences: int | None) -> dict:
    """Plots the history, writes extractor.keras from the best epoch, scores dev and test into results.json."""
    history_csv = os.path.join(model_dir, "history.csv")
    monitor = selection_metric(config)
    plot_history(history_csv, os.path.join(model_dir, "dev_f1.png"), monitor)
    best = RINTripleExtractor(keras.saving.load_model(os.path.join(model_dir, CHECKPOINT_FILE), compile=False),
                              preprocessor, config.threshold)
    best.save_to_preset(model_dir)
    results = {
        "dataset": corpus.name,
        "config": config.__dict__,
        "train_seconds": round(_train_seconds(history_csv, monitor), 1),
        "best_epoch": _best_epoch(history_rows(history_csv, monitor), monitor),
    }
    seen = train_relations(corpus, max_train_sentences)
    results["validation"] = evaluate_split(best, corpus, "validation", seen_relations=seen)
    scored = [split for split in corpus.splits if split not in ("train", "validation")]  # Test, held-out splits.
    for split in scored:
        results[split] = evaluate_split(best, corpus, split, seen_relations=seen)

    def write_results(path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)

    write_atomically(os.path.join(model_dir, "results.json"), write_results)
    for split in scored or ["validation"]:  # A user folder may have no test split.
        print(f"\n{split.capitalize()} scores of the best dev epoch ({results['best_epoch']}) on {corpus.name}:")
        print(format_table(results[split]))
    return results


def selection_metric(config: RINConfig) -> str:
    """The dev score that selects the model: the F1 the variant is judged by (partial or exact match)."""
    return f"val_{config.variant}_f1"


def _train_seconds(history_csv: str, monitor: str) -> float:
    """Wall time of the run's epochs, dev scoring included, across resumed runs (0 for untimed rows).

    An epoch trained again after a stop counts once (`history_rows`).
    """
    return sum(float(r.get("epoch_seconds") or 0) for r in history_rows(history_csv, monitor))


def _best_epoch(rows: list[dict], monitor: str) -> int:
    """The 1-based epoch of the `history_rows` row of the best `monitor` score (the first of equals, as
    ModelCheckpoint keeps it)."""
    return 1 + int(max(rows, key=lambda row: float(row[monitor]))["epoch"])


def default_model_dir(config: RINConfig, dataset_dir: str | None = None) -> str:
    """`runs/<dataset>_<variant>[_heldout]_k<rounds>`, the dataset named by its folder for a user's data."""
    name = os.path.basename(os.path.normpath(dataset_dir)) if dataset_dir else config.dataset
    return os.path.join("runs", f"{name}_{config.builder_config}_k{config.rounds}")


def main(argv):
    if len(argv) > 1:
        raise SystemExit(f"rin_keras.train: unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    try:
        cluster = Cluster(FLAGS.num_workers, FLAGS.worker_index, FLAGS.coordinator_address)
        cluster.check_strategy(FLAGS.strategy)
    except ValueError as e:
        raise SystemExit(f"rin_keras.train: {e}") from e
    with cluster.ends_at_once_on_failure():
        _train_from_flags(config, cluster)


def _train_from_flags(config: RINConfig, cluster: Cluster) -> None:
    """`main` once the cluster's flags are read: checks the run, trains it, and ends in one line what to mend."""
    if FLAGS.strategy == "tpu":
        tpu_resolver()  # Before the data is built: a machine without a TPU is told at once.
    model_dir = FLAGS.model_dir or default_model_dir(config, FLAGS.dataset_dir)
    try:
        check_before_training(config, model_dir, data_dir=FLAGS.data_dir, tfds_data_dir=FLAGS.tfds_data_dir,
                              benchmark=not FLAGS.dataset_dir,
                              data=run_data(config, FLAGS.dataset_dir, FLAGS.max_train_sentences))
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"rin_keras.train: {e}")
    try:
        train(
            config, model_dir, data_dir=FLAGS.data_dir, dataset_dir=FLAGS.dataset_dir,
            tfds_data_dir=FLAGS.tfds_data_dir, word_vectors_source=FLAGS.word_vectors,
            pretrained_source=FLAGS.pretrained_vectors, patience=FLAGS.patience, mixed_precision=FLAGS.mixed_precision,
            strategy=FLAGS.strategy, jit_compile=FLAGS.jit_compile, bucketing=FLAGS.bucketing,
            max_train_sentences=FLAGS.max_train_sentences, cluster=cluster,
        )
    except (casrel.DataError, BackupError, embeddings.VectorsFileError, ClusterMismatchError,
            ClusterStartError) as e:  # What to mend.
        sys.exit(f"rin_keras.train: {e}")
    except KeyboardInterrupt:
        backup_dir = os.path.join(model_dir, BACKUP_DIR)
        if RunBackup.training_ended(backup_dir):
            what = "The training had ended: the same command scores its best epoch without training again."
        elif os.path.isdir(backup_dir):
            what = f"Run the same command again to resume after the last epoch saved in {backup_dir}."
        else:
            what = "Nothing was backed up to resume from: the same command starts the run again."
        sys.exit(f"rin_keras.train: interrupted. {what}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
