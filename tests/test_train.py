"""The training CLI end to end on the dummy corpus: outputs, resume, and the real-data builders."""

import csv
import json
import logging as python_logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from unittest import mock

import keras
import pytest
from absl import flags, logging
from absl.testing import flagsaver
from tensorflow.python.data.ops import iterator_ops

from rin_keras import RINConfig, callbacks, files, train
from rin_keras.data import embeddings
from rin_keras.data.corpus import Corpus
from rin_keras.data.vocab import Vocabulary
from rin_keras.triple_extractor import RINTripleExtractor
from tfds_builders import testing

from conftest import write_tiny_vectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(word_dim=8, lstm_units=4, hidden_dim=8, rounds=1, batch_size=4, epochs=1)
# For tests of the training loop (dev scores scripted): the plain BiLSTM, which builds and trains faster.
NO_WORD_FEATURES = dict(pretrained_dim=0, char_dim=0, shape_dim=0, unknown_word_rate=0.0, entity_substitution_rate=0.0)


def _train(model_dir, tfds_dir, patience=30, max_train_sentences=None, **overrides):
    """Trains with the default features (unseen-word features on), a tiny pretrained table for GloVe."""
    config = RINConfig.for_dataset("webnlg", variant="exact", **{**TINY, **overrides})
    vectors = write_tiny_vectors(os.path.join(os.path.dirname(str(model_dir)), "vectors.txt"))
    with testing.dummy_checksums("webnlg"):
        return train.train(
            config, str(model_dir), data_dir=testing.dummy_dir("webnlg"), tfds_data_dir=str(tfds_dir),
            patience=patience, pretrained_source=vectors, max_train_sentences=max_train_sentences,
        )


class _Records(python_logging.Handler):
    """Keeps the records that reach a logger."""

    def __init__(self):
        super().__init__(python_logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _script_dev_f1(scores):
    """A DevEvaluation.on_epoch_end that logs scores[epoch] as every dev P/R/F1."""

    def scripted_scores(self, epoch, logs=None):
        for name in ("partial", "exact"):
            logs.update({f"val_{name}_{m}": scores[epoch] for m in ("precision", "recall", "f1")})

    return scripted_scores


class _Killed(Exception):
    pass


def _dying_in_third_epoch(on_epoch_end):
    """Wraps a DevEvaluation.on_epoch_end to raise in the third epoch, before its backup, as a kill -9 would."""

    def wrapped(self, epoch, logs=None):
        if epoch == 2:
            raise _Killed()
        on_epoch_end(self, epoch, logs)

    return wrapped


def test_one_epoch_writes_every_output_and_no_warning(tmp_path, capfd):
    absl_records, verbosity = _Records(), logging.get_verbosity()
    logging.get_absl_logger().addHandler(absl_records)
    logging.set_verbosity(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = _train(tmp_path / "run", tmp_path / "tfds", max_train_sentences=5)
    finally:
        logging.get_absl_logger().removeHandler(absl_records)
        logging.set_verbosity(verbosity)
    # Neither Keras (shuffle passed for a tf.data dataset; an epoch of unknown length "ran out of data"), nor
    # TensorFlow (a cache left unfinished by a `take`), nor TFDS's per-read INFO lines.
    keras_warnings = [str(w.message) for w in caught if "keras" in w.filename]
    assert not [m for m in keras_warnings if "shuffle" in m or "ran out of data" in m], keras_warnings
    assert "did not fully read the dataset being cached" not in capfd.readouterr().err
    assert any("train: 5 sentences" in r.getMessage() for r in absl_records.records)  # Our INFO lines pass.
    tfds_lines = [r.getMessage() for r in absl_records.records if "tensorflow_datasets" in r.pathname]
    assert not [m for m in tfds_lines if m.startswith(("Constructing tf.data", "Creating a tf.data", "Reusing"))]
    for name in ("best.keras", "config.json", "vocab/words.txt", "history.csv", "dev_f1.png", "results.json"):
        assert os.path.exists(tmp_path / "run" / name), name
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    config = RINConfig.load(str(tmp_path / "run" / "config.json"))
    assert (config.pretrained_dim, config.pretrained_rows, config.shape_dim, config.char_dim) == (4, 10, 8, 50)
    assert config.unknown_word_rate == 0.15 and config.num_chars > 20
    assert config.entity_substitution_rate == 0.5  # The exact variant's.
    assert os.path.exists(tmp_path / "run" / "vocab" / "pretrained_words.txt")
    assert saved["test"]["partial"]["gold"] == results["test"]["partial"]["gold"] == 2
    assert set(saved["test"]) >= {"partial", "exact", "text", "ner"}
    assert saved["best_epoch"] == 1
    # The finished run is not trained over, by the API or the command.
    with pytest.raises(ValueError, match="holds a finished run"):
        _train(tmp_path / "run", tmp_path / "tfds", max_train_sentences=5)
    command = subprocess.run([sys.executable, "-m", "rin_keras.train", f"--model_dir={tmp_path / 'run'}"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert command.returncode == 1 and "Traceback" not in command.stderr
    assert f"{tmp_path / 'run'} holds a finished run" in command.stderr


def test_one_train_iterator_serves_every_epoch_and_dev_batches_are_made_once(tmp_path):
    # Given a dataset, Keras makes a new iterator of it every epoch, and dropping the old one waits on tf.data's
    # autotuning thread (seconds of idle CPU); train's batches are read through one iterator for the whole run.
    # The dev batches are read and featurized once and kept for every epoch's scoring.
    train_iterators, scoring_iterators = [], []
    owned_init = iterator_ops.OwnedIterator.__init__

    def counting_init(self, dataset=None, *args, **kwargs):
        spec = getattr(dataset, "element_spec", None)
        if isinstance(spec, tuple) and "relations" in spec[1]:
            (scoring_iterators if "index" in spec[1] else train_iterators).append(dataset)
        owned_init(self, dataset, *args, **kwargs)

    with mock.patch.object(iterator_ops.OwnedIterator, "__init__", counting_init):
        _train(tmp_path / "run", tmp_path / "tfds", max_train_sentences=6, epochs=3, **NO_WORD_FEATURES)
    with open(tmp_path / "run" / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert len(train_iterators) == 1
    assert len(scoring_iterators) == 3  # The dev batches, made once for every epoch; then the final dev and test.


def test_run_folder_checks_what_a_rerun_would_lose_or_mix(tmp_path):
    vocab = Vocabulary.build([["Alan", "Bean", "was", "born"]], ["birthPlace"])
    asked = RINConfig.for_dataset("webnlg", variant="exact", **{**TINY, **NO_WORD_FEATURES})
    run = tmp_path / "run"
    vocab.save(str(run / "vocab"))
    stored = asked.with_vocabulary(vocab, 0)
    stored.save(str(run / "config.json"))
    train.check_run_dir(asked, str(run))  # The same network: resumed.
    train.check_run_dir(asked.replace(epochs=9, learning_rate=5e-4), str(run))  # How it trains may change.
    with pytest.raises(ValueError, match=r"another network \(char_dim 0 there, 50 asked\)"):
        train.check_run_dir(asked.replace(char_dim=50), str(run))
    with pytest.raises(ValueError, match=r"another network \(pretrained_dim 0 there, 50 asked\)"):
        train.check_run_dir(asked.replace(pretrained_dim=50), str(run))
    # A config.json of an older version: sizes of features its network does not have are not compared.
    old = json.loads((run / "config.json").read_text())
    del old["pretrained_int8"]
    old["num_chars"] = 0
    (run / "config.json").write_text(json.dumps(old))
    train.check_run_dir(asked, str(run))
    (run / "config.json").write_text("{")
    with pytest.raises(ValueError, match="config.json cannot be read"):
        train.check_run_dir(asked, str(run))
    stored.save(str(run / "config.json"))
    # A run on a user's folder resumes on that folder only.
    (run / train.DATA_FILE).write_text(str(tmp_path / "mine") + "\n")
    train.check_run_dir(asked, str(run), str(tmp_path / "mine"))
    with pytest.raises(ValueError, match=r"holds an unfinished run on .*mine, not .*other: pass another --model_dir"):
        train.check_run_dir(asked, str(run), str(tmp_path / "other"))
    (run / "extractor.keras").write_bytes(b"")  # Stopped while scoring dev and test: trained again.
    train.check_run_dir(asked, str(run))
    (run / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="holds a finished run"):
        train.check_run_dir(asked, str(run))
    # A folder holding a run's files but no run: they are not replaced.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "history.csv").write_text("my,own,data\n")
    with pytest.raises(ValueError, match=r"mine holds history.csv of no run \(it has no config.json\)"):
        train.check_run_dir(asked, str(other))
    # A folder that cannot be written (as an immutable one, even for root), before any data is read.
    with mock.patch.object(train.tempfile, "TemporaryFile", side_effect=PermissionError(1, "Operation not permitted")):
        with pytest.raises(ValueError, match=r"--model_dir=.*new/run cannot be written \(.*: Operation not "
                                             r"permitted\)"):
            train.check_run_dir(asked, str(tmp_path / "new" / "run"))


def test_a_run_names_a_folder_it_trains_on_by_its_real_path_and_files(tmp_path):
    shutil.copytree(os.path.join(REPO, "tests", "data", "custom_jsonl"), tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    config = RINConfig.for_dataset("webnlg")
    data = train.run_data(config, str(tmp_path / "data"))
    assert train.run_data(config, str(tmp_path / "link")) == data
    assert re.fullmatch(re.escape(str((tmp_path / "data").resolve())) + r" \(files [0-9a-f]{12}\)", data)
    assert train.run_data(config, None) == "webnlg/partial"
    # An unfinished run on the folder is not resumed on the folder edited, whose examples its vocabulary lacks.
    run = tmp_path / "run"
    run.mkdir()
    (run / train.DATA_FILE).write_text(data + "\n")
    train.check_run_dir(config, str(run), data)
    with open(tmp_path / "data" / "train.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "Zog lives in Quux.", "triple_list": [["Zog", "livesIn", "Quux"]]}) + "\n")
    edited = train.run_data(config, str(tmp_path / "data"))
    assert edited != data
    with pytest.raises(ValueError, match=r"run on .*data whose files have changed since it started"):
        train.check_run_dir(config, str(run), edited)
    # A run of an older version recorded the folder only: resumed.
    (run / train.DATA_FILE).write_text(str((tmp_path / "data").resolve()) + "\n")
    train.check_run_dir(config, str(run), edited)
    # A run on the first N train sentences resumes on as many.
    (run / train.DATA_FILE).write_text(train.run_data(config, None, 200) + "\n")
    assert train.run_data_folder(train.run_data(config, str(tmp_path / "data"), 200)) == str(
        (tmp_path / "data").resolve())
    train.check_run_dir(config, str(run), "webnlg/partial (first 200 train sentences)")
    for other, asked in ((40, "its first 40 train sentences"), (None, "all its train sentences")):
        with pytest.raises(ValueError, match=rf"run on its first 200 train sentences, not {asked}: pass the same "
                                             r"--max_train_sentences to resume it"):
            train.check_run_dir(config, str(run), train.run_data(config, None, other))
    # A folder given as a corpus (`train.train(corpus=...)`) is that folder too.
    corpus = Corpus.from_folder(os.path.join(REPO, "tests", "data", "custom_jsonl"), str(tmp_path / "tfds"))
    assert train._folder_of(None, corpus) == corpus.user_folder == os.path.join(REPO, "tests", "data", "custom_jsonl")


def test_the_variants_f1_selects_the_model(tmp_path):
    scripted = [{"partial": 50.0, "exact": 10.0}, {"partial": 10.0, "exact": 40.0}, {"partial": 60.0, "exact": 5.0}]

    def scripted_scores(self, epoch, logs=None):
        for name, f1 in scripted[epoch].items():
            logs.update({f"val_{name}_precision": f1, f"val_{name}_recall": f1, f"val_{name}_f1": f1})

    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", scripted_scores):
        results = _train(tmp_path / "run", tmp_path / "tfds", epochs=3, **NO_WORD_FEATURES)
    assert results["best_epoch"] == 2  # An exact-match run is chosen on dev exact F1, not partial.


def test_ctrl_c_during_an_atomic_write_takes_effect_once_the_file_is_in_place(tmp_path):
    path = tmp_path / "latest.weights.h5"

    def write(temporary):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while a backup is being written.
        time.sleep(0.1)
        with open(temporary, "w") as f:
            f.write("whole")

    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's, as in a command run in a shell.
    try:
        with pytest.raises(KeyboardInterrupt):
            files.write_atomically(str(path), write)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert path.read_text() == "whole" and os.listdir(tmp_path) == [path.name]


def test_cosine_schedule_and_plateau_decay_exclude_each_other():
    with pytest.raises(ValueError, match="cannot be combined"):
        RINConfig(lr_schedule="cosine", lr_decay_factor=0.5)


def test_rerun_resumes_from_the_backup_on_the_cosine_schedule(tmp_path):
    die_in_third_epoch = _dying_in_third_epoch(callbacks.DevEvaluation.on_epoch_end)
    cosine = dict(epochs=5, lr_schedule="cosine", lr_final_fraction=0.1)
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", die_in_third_epoch):
        with pytest.raises(_Killed):
            _train(tmp_path / "run", tmp_path / "tfds", **cosine)
    assert os.path.isdir(tmp_path / "run" / "backup")
    results = _train(tmp_path / "run", tmp_path / "tfds", **cosine)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4"]  # resumed at epoch 3; epochs 1-2 not repeated
    seconds = [float(r["epoch_seconds"]) for r in rows]
    assert min(seconds) > 0 and results["train_seconds"] == pytest.approx(sum(seconds), abs=0.1)  # both runs' epochs
    assert not os.path.exists(tmp_path / "run" / "backup")
    # 1e-3 * (0.1 + 0.9 * (1 + cos(pi * e / 4)) / 2) for e = 0..4; epochs 3-5 after the resume.
    rates = [float(r["learning_rate"]) for r in rows]
    assert rates == pytest.approx([1e-3, 8.682e-4, 5.5e-4, 2.318e-4, 1e-4], rel=1e-3)


def test_a_resumed_run_trains_at_the_learning_rate_it_asks(tmp_path):
    rates = []

    def recording(on_epoch_end):
        def wrapped(self, epoch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
            on_epoch_end(self, epoch, logs)
        return wrapped

    dying = recording(_dying_in_third_epoch(callbacks.DevEvaluation.on_epoch_end))
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", dying):
        with pytest.raises(_Killed):
            _train(tmp_path / "run", tmp_path / "tfds", epochs=3, learning_rate=1e-3)
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", recording(callbacks.DevEvaluation.on_epoch_end)):
        _train(tmp_path / "run", tmp_path / "tfds", epochs=3, learning_rate=5e-3)
    # The backup restores the optimizer with the first run's rate; the rerun's epoch 3 trains at its own.
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-3])


def test_a_stop_while_the_vocabulary_is_written_leaves_none_and_the_rerun_starts_the_run(tmp_path):
    def stopping(self, directory):  # The first file written, then Ctrl-C.
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "words.txt"), "w", encoding="utf-8") as f:
            f.write("Alan\n")
        raise KeyboardInterrupt

    with mock.patch.object(Vocabulary, "save", stopping), pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "run", tmp_path / "tfds", epochs=1)
    assert not os.path.exists(tmp_path / "run" / "vocab")
    _train(tmp_path / "run", tmp_path / "tfds", epochs=1)
    assert Vocabulary.load(str(tmp_path / "run" / "vocab")).pretrained_words


def _stopped_while_writing(write, call: int):
    """Wraps a Keras file writer: its `call`-th use writes the start of a file and stops, as Ctrl-C mid-write does."""
    calls = []

    def wrapped(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) == call:
            with open(filepath, "wb") as f:
                f.write(b"\x89HDF\r\n\x1a\n")
            raise KeyboardInterrupt
        return write(self, filepath, *args, **kwargs)

    return wrapped


def test_a_stop_while_saving_leaves_the_last_whole_backup_and_best_model(tmp_path):
    run, tfds = tmp_path / "run", tmp_path / "tfds"
    three = dict(epochs=3, **NO_WORD_FEATURES)
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", _script_dev_f1([60.0, 70.0, 80.0])):
        # Stopped while backing up epoch 2 (after best.keras took it): the backup of epoch 1 stays whole.
        with mock.patch.object(keras.Model, "save_weights", _stopped_while_writing(keras.Model.save_weights, 2)):
            with pytest.raises(KeyboardInterrupt):
                _train(run, tfds, **three)
        assert sorted(os.listdir(run / "backup")) == ["latest.weights.h5", "training_metadata.json"]
        # Resumed at epoch 2, then stopped while epoch 3 (a new best) was written to best.keras: epoch 2's stays.
        with mock.patch.object(keras.Model, "save", _stopped_while_writing(keras.Model.save, 1)):
            with pytest.raises(KeyboardInterrupt):
                _train(run, tfds, **three)
        assert not [name for name in os.listdir(run) if name.startswith(".tmp-")]
        assert RINTripleExtractor.from_checkpoint(str(run)).predict(["Alan Bean was born in Texas ."]) is not None
        results = _train(run, tfds, **three)
    assert results["best_epoch"] == 3
    with open(run / "history.csv") as f:
        # The epoch stopped in its backup logged its row and ran again; the one stopped in best.keras, before its row.
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1", "1", "2"]


def test_a_run_stopped_while_backing_up_counts_patience_and_plateaus_as_if_not_stopped(tmp_path):
    settings = dict(epochs=8, patience=3, lr_decay_factor=0.5, lr_decay_patience=2, **NO_WORD_FEATURES)

    def epochs_and_rates(run):
        rows = callbacks.history_rows(str(run / "history.csv"), "val_exact_f1")
        return [r["epoch"] for r in rows], [float(r["learning_rate"]) for r in rows]

    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", _script_dev_f1([60.0, 50.0, 40.0, 30.0, 20.0,
                                                                                    10.0, 5.0, 1.0])):
        _train(tmp_path / "whole", tmp_path / "tfds", **settings)
        # Stopped while backing up epoch 2, after history.csv logged it: the rerun trains epoch 2 again.
        with mock.patch.object(keras.Model, "save_weights", _stopped_while_writing(keras.Model.save_weights, 2)):
            with pytest.raises(KeyboardInterrupt):
                _train(tmp_path / "stopped", tmp_path / "tfds", **settings)
        with mock.patch.object(train, "_train_data", side_effect=train._train_data) as train_data:
            _train(tmp_path / "stopped", tmp_path / "tfds", **settings)
    whole, stopped = epochs_and_rates(tmp_path / "whole"), epochs_and_rates(tmp_path / "stopped")
    assert stopped[0] == whole[0] == ["0", "1", "2", "3"]  # Early stopping after the same epoch.
    assert stopped[1] == pytest.approx(whole[1])
    # The resumed run does not repeat the first epoch's batch order: it shuffles from the seed and its epoch.
    assert train_data.call_args.kwargs["seed"] == RINConfig().seed + 1


def test_a_backup_epoch_written_in_place_is_never_left_half_written(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    backup = callbacks.RunBackup(str(tmp_path / "backup"))
    backup.set_model(model)
    backup.on_epoch_end(0)
    assert callbacks.RunBackup.saved_epoch(str(tmp_path / "backup")) == 1

    def cut_short(value, f, **kwargs):
        f.write('{"epoch": ')
        raise KeyboardInterrupt

    with mock.patch.object(callbacks.json, "dump", cut_short), pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    assert callbacks.RunBackup.saved_epoch(str(tmp_path / "backup")) == 1
    assert not [name for name in os.listdir(tmp_path / "backup") if name.startswith(".tmp-")]
    (tmp_path / "backup" / "training_metadata.json").write_text("{")
    with pytest.raises(callbacks.BackupError, match="training_metadata.json cannot be read"):
        callbacks.RunBackup.saved_epoch(str(tmp_path / "backup"))
    # config.json too is renamed into place.
    config = RINConfig()
    config.save(str(tmp_path / "config.json"))
    with mock.patch.object(json, "dump", cut_short), pytest.raises(KeyboardInterrupt):
        config.replace(epochs=3).save(str(tmp_path / "config.json"))
    assert RINConfig.load(str(tmp_path / "config.json")) == config


def test_a_history_row_cut_short_is_left_out_and_removed_before_the_rerun_appends(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,val_exact_f1\n0,50\n1,55\n2,5", encoding="utf-8")
    assert callbacks.dev_scores_so_far(str(history), "val_exact_f1") == [50.0, 55.0, 5.0]  # "5" reads as a score.
    history.write_text("epoch,val_exact_f1\n0,50\n1,55\n2,", encoding="utf-8")
    assert callbacks.dev_scores_so_far(str(history), "val_exact_f1") == [50.0, 55.0]
    logger = callbacks.HistoryLogger(str(history), append=True)
    logger.on_train_begin()
    logger.on_epoch_end(2, {"val_exact_f1": 60.0})
    logger.on_train_end()
    assert history.read_text(encoding="utf-8") == "epoch,val_exact_f1\n0,50\n1,55\n2,60.0\n"


def test_a_damaged_best_model_stops_the_resume_before_training(tmp_path):
    run = tmp_path / "run"
    scripted = _script_dev_f1([60.0, 50.0, 40.0, 30.0])
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", _dying_in_third_epoch(scripted)):
        with pytest.raises(_Killed):
            _train(run, tmp_path / "tfds", epochs=4, **NO_WORD_FEATURES)
    content = (run / "best.keras").read_bytes()
    (run / "best.keras").write_bytes(content[:len(content) // 2])
    with mock.patch.object(keras.Model, "fit", side_effect=AssertionError("trained on")), \
            pytest.raises(callbacks.BackupError, match=r"best.keras cannot be read \(.+\), so the best of the 2 epochs "
                                                       r"history.csv logs is lost: delete best.keras and history.csv"):
        _train(run, tmp_path / "tfds", epochs=4, **NO_WORD_FEATURES)
    # A run that trained all its epochs has none to come: it is trained again.
    with pytest.raises(callbacks.BackupError, match=r"lost, and the run has trained all its epochs: delete the folder"):
        train._check_best_model(str(run / "best.keras"), 2, training_ended=True)
    # As the message says: the run goes on from the backup and chooses among the epochs to come.
    (run / "best.keras").unlink()
    (run / "history.csv").unlink()
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", scripted):
        # Epochs 3 and 4 (40, 30) are logged: the best is the third, by its row's epoch.
        assert _train(run, tmp_path / "tfds", epochs=4, **NO_WORD_FEATURES)["best_epoch"] == 3


def test_a_stop_while_scoring_is_finished_by_the_same_command_without_training_again(tmp_path):
    run, tfds = tmp_path / "run", tmp_path / "tfds"
    three = dict(epochs=3, patience=1, **NO_WORD_FEATURES)
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", _script_dev_f1([70.0, 60.0, 50.0])):
        # Early stopping ends the run after epoch 2 of 3; it is stopped while it scores test.
        with mock.patch.object(train, "evaluate_split", side_effect=[{}, KeyboardInterrupt]):
            with pytest.raises(KeyboardInterrupt):
                _train(run, tfds, **three)
    assert callbacks.RunBackup.training_ended(str(run / "backup")) and not os.path.exists(run / "results.json")
    with mock.patch.object(keras.Model, "fit", side_effect=AssertionError("trained again")):
        results = _train(run, tfds, **three)
    assert results["best_epoch"] == 1 and json.loads((run / "results.json").read_text())["test"]
    assert train.is_finished_run(str(run)) and not os.path.exists(run / "backup")
    with open(run / "history.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1"]


def test_a_backup_that_cannot_be_restored_is_reported_in_one_line(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "latest.weights.h5").write_bytes(b"written by something else")
    backup = callbacks.RunBackup(str(tmp_path / "backup"))
    backup.set_model(model)
    with pytest.raises(callbacks.BackupError, match=r"backup cannot be restored \(.+\); delete that folder to train "
                                                    r"this run from its first epoch\.$"):
        backup.on_train_begin()
    # Workers restore a backup together: what fails is first their agreement, not the folder.
    backup = callbacks.RunBackup(str(tmp_path / "backup"), num_workers=2)
    backup.set_model(model)
    with pytest.raises(callbacks.BackupError, match=r"^the 2 workers could not restore .+ together \(.+\): check "
                                                    r"that every worker runs the same command"):
        backup.on_train_begin()


def test_an_interrupted_command_says_how_to_resume(tmp_path):
    train.define_flags() if "dataset" not in train.FLAGS else None
    train.FLAGS(["prog"])

    def stop_message():
        with flagsaver.flagsaver(model_dir=str(tmp_path)), mock.patch.object(train, "check_before_training"):
            with mock.patch.object(train, "train", side_effect=KeyboardInterrupt), pytest.raises(SystemExit) as stop:
                train.main(["prog"])
        return str(stop.value)

    assert stop_message() == ("rin_keras.train: interrupted. Nothing was backed up to resume from: the same command "
                              "starts the run again.")
    os.makedirs(tmp_path / "backup")
    assert stop_message() == (f"rin_keras.train: interrupted. Run the same command again to resume after the last "
                              f"epoch saved in {tmp_path}/backup.")
    (tmp_path / "backup" / callbacks.RunBackup.ENDED_MARKER).write_text("")
    assert stop_message() == ("rin_keras.train: interrupted. The training had ended: the same command scores its best "
                              "epoch without training again.")


def test_resumed_run_keeps_its_best_model_and_patience(tmp_path):
    scripted = _script_dev_f1([60.0, 50.0, 40.0, 30.0, 20.0, 10.0])
    die_in_third_epoch = _dying_in_third_epoch(scripted)
    run = tmp_path / "run"
    decay = dict(epochs=6, patience=3, lr_decay_factor=0.5, lr_decay_patience=1, **NO_WORD_FEATURES)
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", die_in_third_epoch):
        with pytest.raises(_Killed):
            _train(run, tmp_path / "tfds", **decay)
    best_saved_at = os.path.getmtime(run / "best.keras")
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", scripted):
        results = _train(run, tmp_path / "tfds", **decay)
    assert os.path.getmtime(run / "best.keras") == best_saved_at  # the worse resumed epochs did not replace it
    assert results["best_epoch"] == 1
    with open(run / "history.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    # Patience 3 ran out at epoch 4, counting epoch 2 from before the kill; the LR went on halving each epoch (a
    # fresh count would have taken epoch 3 as a new best and kept 5e-4).
    assert rates == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_rerun_with_learning_rate_decay_widens_the_history(tmp_path):
    scripted = _script_dev_f1([60.0, 50.0, 40.0, 30.0])
    die_in_third_epoch = _dying_in_third_epoch(scripted)
    run = tmp_path / "run"
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", die_in_third_epoch):
        with pytest.raises(_Killed):
            _train(run, tmp_path / "tfds", epochs=4, **NO_WORD_FEATURES)  # constant rate: no learning_rate column
    # Resuming may change how the run trains, not the network.
    with pytest.raises(ValueError, match=r"unfinished run of another network \(char_dim 0 there, 50 asked; "
                                         r"rounds 1 there, 2 asked\)"):
        _train(run, tmp_path / "tfds", epochs=4, **{**NO_WORD_FEATURES, "rounds": 2, "char_dim": 50})
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", scripted):
        _train(run, tmp_path / "tfds", epochs=4, lr_decay_factor=0.5, lr_decay_patience=1, **NO_WORD_FEATURES)
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_exact_f1"]) for r in rows] == [60.0, 50.0, 40.0, 30.0]
    assert [r["learning_rate"] for r in rows[:2]] == ["", ""]
    assert float(rows[3]["learning_rate"]) == pytest.approx(5e-4)  # decayed after epoch 3, the second stall


def test_replay_plateau_counts_like_keras():
    assert callbacks.replay_plateau([]) == (None, 0)
    assert callbacks.replay_plateau([1.0, 3.0, 2.0, 2.0]) == (3.0, 2)
    assert callbacks.replay_plateau([1.0, 3.0, 2.0, 2.0, 2.0], reset_after=2) == (3.0, 1)  # decayed after two


@pytest.mark.parametrize("rerun_score,kept", [(57.0, 57.0), (45.0, 55.0)])
def test_an_epoch_logged_twice_counts_once_by_its_better_score(tmp_path, rerun_score, kept):
    # Epoch 1 was logged (55, and best.keras saved), then the run stopped before backing it up: the rerun trained it
    # again, and its checkpoint replaced best.keras only if it scored higher than 55.
    history = tmp_path / "history.csv"
    history.write_text("epoch,epoch_seconds,val_partial_f1,val_exact_f1\n0,10,50,40\n1,12,55,45\n"
                       f"1,11,{rerun_score},47\n2,13,54,46\n", encoding="utf-8")
    rows = callbacks.history_rows(str(history), "val_partial_f1")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert callbacks.dev_scores_so_far(str(history), "val_partial_f1") == [50.0, kept, 54.0]
    assert train._train_seconds(str(history), "val_partial_f1") == (34.0 if kept == 57.0 else 35.0)
    assert train._best_epoch(callbacks.history_rows(str(history), "val_partial_f1"), "val_partial_f1") == 2
    train.plot_history(str(history), str(tmp_path / "dev_f1.png"), "val_partial_f1")
    assert callbacks.history_rows(str(tmp_path / "missing.csv"), "val_partial_f1") == []


def test_dev_line_leads_with_the_score_that_selects_the_model(capsys):
    scores = {"partial": {"precision": 80.0, "recall": 70.0, "f1": 74.67},
              "exact": {"precision": 60.0, "recall": 50.0, "f1": 54.55}}
    for variant, line in (("exact", "epoch 1: dev exact P 60.00 R 50.00 F1 54.55 (partial F1 74.67;"),
                          ("partial", "epoch 1: dev partial P 80.00 R 70.00 F1 74.67 (exact F1 54.55;")):
        dev = callbacks.DevEvaluation(lambda model: scores, variant)
        logs = {}
        dev.on_epoch_begin(0)
        dev.on_epoch_end(0, logs)
        assert line in capsys.readouterr().out and logs["val_exact_f1"] == 54.55


def test_progress_log_reports_steps_rate_and_time_left_once_an_epoch_length_is_known():
    clock = iter(float(t) for t in range(0, 1000, 10))  # Each call: 10 s later.
    progress = callbacks.ProgressLog(every_seconds=25)
    progress.set_params({"epochs": 2, "steps": None})
    lines = []
    with mock.patch.object(callbacks.time, "monotonic", lambda: next(clock)), \
            mock.patch.object(callbacks.logging, "info", lambda fmt, *args: lines.append(fmt % args)):
        for epoch in range(2):
            progress.on_epoch_begin(epoch)  # t=0 (epoch 2: t=70)
            for step in range(6):  # t=10 ... 60: lines at 30 and 60 s
                progress.on_train_batch_end(step, {"loss": 0.5})
            progress.on_epoch_end(epoch)
    assert lines[:2] == ["epoch 1/2: step 3, 0.10 steps/s, loss 0.5000", "epoch 1/2: step 6, 0.10 steps/s, loss 0.5000"]
    assert lines[2] == "epoch 2/2: step 3/6, 0.10 steps/s, loss 0.5000, 0.5 min left in the epoch"
    assert len(lines) == 4


def test_a_run_resumed_with_another_pretrained_table_is_refused(tmp_path):
    _train(tmp_path / "run", tmp_path / "tfds")
    os.remove(tmp_path / "run" / "results.json")  # Stopped before its scores were written: the run is redone.
    other = write_tiny_vectors(tmp_path / "other.txt", words=("mary", "john", "paris", "lived"))
    config = RINConfig.for_dataset("webnlg", variant="exact", **TINY)
    with testing.dummy_checksums("webnlg"), pytest.raises(embeddings.VectorsFileError, match="other words than"):
        train.train(config, str(tmp_path / "run"), data_dir=testing.dummy_dir("webnlg"),
                    tfds_data_dir=str(tmp_path / "tfds"), pretrained_source=other)


def test_webnlg3_trains_on_the_release_xml_and_scores_the_heldout_splits(tmp_path):
    """A tiny run on the webnlg3 dummy release: exact spans, part-of-speech tags, three categories held out and
    scored."""
    config = RINConfig.for_dataset("webnlg3", heldout_categories=True, **{**TINY, "pos_dim": 3})
    assert (config.variant, config.lr_schedule, config.builder_config) == ("exact", "cosine", "exact_heldout")
    vectors = write_tiny_vectors(tmp_path / "vectors.txt")
    results = train.train(config, str(tmp_path / "run"), data_dir=os.path.join(REPO, "tfds_builders", "webnlg3",
                                                                             "dummy_data"),
                          tfds_data_dir=str(tmp_path / "tfds"), pretrained_source=vectors)
    assert {"validation", "test", "heldout_categories", "heldout_entities"} <= set(results)
    assert results["heldout_categories"]["exact"]["gold"] == 3  # Two Politician texts (train, dev), one Artist.
    extractor = RINTripleExtractor.from_preset(str(tmp_path / "run"))
    assert extractor.preprocessor.vocabulary.pos_lexicon["the"] == "DT"  # Brill's lexicon, saved with the model.
    assert extractor.model.word_features.pos.output_dim == 3
    # The network config does not name the held-out data; the run folder's config.json does.
    corpus = Corpus.for_model(str(tmp_path / "run"), RINConfig.for_dataset("webnlg3"), str(tmp_path / "tfds"))
    assert corpus.name == results["dataset"] == "webnlg3/exact_heldout/1.4.0"
    # Held-out scores also count apart the triples of relations that train states.
    seen = {int(r) for x in corpus.examples("train") for r in x["triples"]["relation"]}
    heldout = [int(r) for x in corpus.examples("heldout_categories") for r in x["triples"]["relation"]]
    scores = results["heldout_categories"]["seen_relations"]
    assert scores["partial"]["gold"] == sum(r in seen for r in heldout) < len(heldout)
    assert scores["gold_share"] == pytest.approx(100 * scores["partial"]["gold"] / len(heldout))
    # `evaluate` re-scores a held-out split of the run folder's data.
    out = subprocess.run(
        [sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={tmp_path / 'run'}", "--split=heldout_categories",
         f"--data_dir={os.path.join(REPO, 'tfds_builders', 'webnlg3', 'dummy_data')}",
         f"--tfds_data_dir={tmp_path / 'tfds'}"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True,
    ).stdout
    assert out.startswith("webnlg3/exact_heldout, heldout_categories split, threshold 0.5:\n") and "partial/seen" in out
    saved = json.loads((tmp_path / "run" / "evaluation_heldout_categories.json").read_text())
    assert saved["exact"] == results["heldout_categories"]["exact"]
    with pytest.raises(ValueError, match="webnlg3"):
        RINConfig.for_dataset("webnlg", heldout_categories=True)


def test_default_model_dir_tells_runs_apart():
    assert train.default_model_dir(RINConfig.for_dataset("webnlg")) == os.path.join("runs", "webnlg_partial_k3")
    assert train.default_model_dir(RINConfig.for_dataset("webnlg3", heldout_categories=True)) == os.path.join(
        "runs", "webnlg3_exact_heldout_k3")
    assert train.default_model_dir(RINConfig.for_dataset("webnlg3", encoder="bert", preset="minilm", rounds=2)) == os.path.join(
        "runs", "webnlg3_exact_k2")
    assert train.default_model_dir(RINConfig.for_dataset("custom", variant="exact"), "data/mine/") == os.path.join(
        "runs", "mine_exact_k3")


def test_cli_rejects_bad_flags():
    train.define_flags() if "dataset" not in train.FLAGS else None
    with pytest.raises(flags.IllegalFlagValueError, match="encoder"):
        train.FLAGS(["prog", "--dataset=webnlg", "--encoder=gpt"])
    # From the command line: a usage message, no traceback.
    result = subprocess.run(
        [sys.executable, "-m", "rin_keras.train", "--dataset=webnlg", "--lr_decay_factor=2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0 and "lr_decay_factor must be in (0, 1]" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_checks_the_run_folder_and_vector_files_when_parsed(tmp_path):
    train.define_flags() if "dataset" not in train.FLAGS else None
    (tmp_path / "a_file").write_text("")
    with flagsaver.flagsaver():
        train.FLAGS.unparse_flags()
        with pytest.raises(flags.IllegalFlagValueError, match="a_file is a file; name a folder"):
            train.FLAGS(["prog", f"--model_dir={tmp_path / 'a_file'}"])
        train.FLAGS.unparse_flags()
        for flag, keywords in (("pretrained_vectors", "glove or none"), ("word_vectors", "word2vec or random")):
            with pytest.raises(flags.IllegalFlagValueError, match=f"no file /nonexistent.txt: name {keywords}, or a"):
                train.FLAGS(["prog", f"--{flag}=/nonexistent.txt"])
            train.FLAGS.unparse_flags()
            with pytest.raises(flags.IllegalFlagValueError, match=f"{tmp_path} is a folder: name {keywords}, or a"):
                train.FLAGS(["prog", f"--{flag}={tmp_path}"])
            train.FLAGS.unparse_flags()
        train.FLAGS(["prog", f"--model_dir={tmp_path / 'run'}", "--pretrained_vectors=none",
                     f"--word_vectors={tmp_path / 'a_file'}"])
        train.FLAGS.unparse_flags()
        os.mkfifo(tmp_path / "vectors")  # A pipe, e.g. <(zcat glove.txt.gz), is read as a file.
        train.FLAGS(["prog", f"--pretrained_vectors={tmp_path / 'vectors'}"])


def test_a_preset_that_does_not_load_is_named_before_the_run_folder_is_written(tmp_path):
    config = RINConfig.for_dataset("custom", variant="exact", encoder="bert", preset=str(tmp_path / "nonexistent"),
                                   hidden_dim=8, rounds=1, batch_size=4, epochs=1)
    with pytest.raises(ValueError, match=f"--preset={tmp_path / 'nonexistent'} does not load as a keras-hub BERT "
                                         "preset .*: Unknown preset identifier"):
        train.train(config, str(tmp_path / "run"), dataset_dir=os.path.join(REPO, "tests", "data", "custom_jsonl"),
                    tfds_data_dir=str(tmp_path / "tfds"))
    assert not (tmp_path / "run").exists()


def test_flags_reference_lists_every_flag():
    train.define_flags() if "dataset" not in train.FLAGS else None
    reference = train.flags_reference()
    assert "| `--pos_dim` | `0` |" in reference and "| `--batch_size` | by dataset and encoder |" in reference
    assert "| `--model_dir` |  |" in reference
    with open(os.path.join(REPO, train.FLAGS_REFERENCE), encoding="utf-8") as f:
        assert f.read() == reference + "\n", f"{train.FLAGS_REFERENCE} is stale: regenerate it as its header says."


def test_cli_flags_mirror_the_config():
    train.define_flags() if "dataset" not in train.FLAGS else None
    train.FLAGS(["prog"])
    with flagsaver.flagsaver(rounds=5, updater="rnn", use_entity_input=False, batch_size=7, lr_schedule="cosine"):
        config = train.config_from_flags()
    assert (config.rounds, config.updater, config.use_entity_input, config.batch_size) == (5, "rnn", False, 7)
    assert config.lr_schedule == "cosine"
    assert config.learning_rate == 1e-3
    assert (config.pretrained_dim, config.shape_dim, config.char_dim) == (50, 8, 50)
    assert config.entity_substitution_rate == 0.0
    with flagsaver.flagsaver(pretrained_vectors="none", char_dim=0, unknown_word_rate=0.0):
        config = train.config_from_flags()
    assert (config.pretrained_dim, config.char_dim, config.unknown_word_rate) == (0, 0, 0.0)
    # The exact variant reads GloVe stand-ins of its entities, which need the GloVe table.
    with flagsaver.flagsaver(variant="exact"):
        config = train.config_from_flags()
    assert (config.entity_substitution_rate, config.entity_substitution_unrelated_share) == (0.5, 0.0)
    with flagsaver.flagsaver(variant="exact", entity_substitution_rate=0.3):
        config = train.config_from_flags()
    assert config.entity_substitution_rate == 0.3
    assert config.entity_substitution_neighbours == 20
    with flagsaver.flagsaver(variant="exact", entity_substitution_neighbours=100,
                             entity_substitution_unrelated_share=0.5):
        config = train.config_from_flags()
    assert (config.entity_substitution_neighbours, config.entity_substitution_unrelated_share) == (100, 0.5)
    # A BERT encoder with entity substitution takes half its stand-ins unrelated unless told otherwise.
    with flagsaver.flagsaver(encoder="bert", preset="some/preset"):
        config = train.config_from_flags()
    assert (config.entity_substitution_rate, config.entity_substitution_unrelated_share) == (0.0, 0.0)
    with flagsaver.flagsaver(encoder="bert", preset="some/preset", entity_substitution_rate=0.5):
        assert train.config_from_flags().entity_substitution_unrelated_share == 0.5
    with flagsaver.flagsaver(encoder="bert", preset="some/preset", entity_substitution_rate=0.5,
                             entity_substitution_unrelated_share=0.0):
        assert train.config_from_flags().entity_substitution_unrelated_share == 0.0
    with flagsaver.flagsaver(variant="exact", pretrained_vectors="none"):
        config = train.config_from_flags()
    assert (config.pretrained_dim, config.entity_substitution_rate) == (0, 0.0)
    with flagsaver.flagsaver(pretrained_vectors="none", entity_substitution_rate=0.5):
        with pytest.raises(SystemExit, match="pretrained table"):
            train.config_from_flags()
    with flagsaver.flagsaver(preset="some/preset"):  # Without --encoder=bert it would train a BiLSTM.
        with pytest.raises(SystemExit, match="add --encoder=bert"):
            train.config_from_flags()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(testing.casrel.default_manual_dir()), reason="needs ../shared/data")
@pytest.mark.parametrize(
    "variant,triples,relations", [("partial", (11776, 1118, 1591), 171), ("exact", (11313, 1224, 1607), 216)]
)
def test_real_webnlg_build(tmp_path_factory, variant, triples, relations):
    from rin_keras.data.corpus import Corpus

    corpus = Corpus.prepare("webnlg", variant, str(tmp_path_factory.mktemp("tfds")))
    splits = corpus.builder.info.splits
    assert [splits[s].num_examples for s in ("train", "validation", "test")] == [5019, 500, 703]
    counted = [sum(len(x["triples"]["relation"]) for x in corpus.examples(s)) for s in ("train", "validation", "test")]
    assert tuple(counted) == triples
    assert len(corpus.relation_names) == relations


def test_a_webnlg3_file_that_does_not_read_stops_training_in_one_line(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(testing.dummy_dir("webnlg3"), manual)
    path = manual / "webnlg3" / "en" / "train" / "1triples" / "Astronaut_sample.xml"
    path.write_text(path.read_text(encoding="utf-8")[:300], encoding="utf-8")  # Cut short.
    result = subprocess.run(
        [sys.executable, "-m", "rin_keras.train", "--dataset=webnlg3", f"--data_dir={manual}",
         f"--tfds_data_dir={tmp_path / 'tfds'}", f"--model_dir={tmp_path / 'run'}", "--pretrained_vectors=none"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"rin_keras.train: {path}: not well-formed XML" in result.stderr


def test_ctrl_c_while_best_keras_is_written_stops_the_run_after_the_epochs_backup(tmp_path):
    """The stop lands after history.csv and the backup took the epoch: the rerun neither trains it again nor keeps
    a best.keras whose score history.csv lacks."""
    run, tfds = tmp_path / "run", tmp_path / "tfds"
    saves = []

    def save_with_ctrl_c(self, filepath, *args, **kwargs):
        saves.append(filepath)
        if len(saves) == 2:  # Ctrl-C while epoch 2, a new best, goes to best.keras.
            os.kill(os.getpid(), signal.SIGINT)
        return save(self, filepath, *args, **kwargs)

    save = keras.Model.save
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's, as in a command run in a shell.
    try:
        with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", _script_dev_f1([10.0, 50.0, 20.0, 5.0])), \
                mock.patch.object(keras.Model, "save", save_with_ctrl_c), pytest.raises(KeyboardInterrupt):
            _train(run, tfds, epochs=4, **NO_WORD_FEATURES)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert callbacks.RunBackup.saved_epoch(str(run / "backup")) == 2
    with mock.patch.object(callbacks.DevEvaluation, "on_epoch_end", _script_dev_f1([10.0, 5.0, 8.0, 6.0])):
        results = _train(run, tfds, epochs=4, **NO_WORD_FEATURES)
    with open(run / "history.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1", "2", "3"]
    assert results["best_epoch"] == 2


def test_a_run_trained_to_its_end_is_scored_with_its_own_settings(tmp_path):
    """Stopped while scoring, then run with more epochs: nothing trains, and results.json says what trained."""
    with mock.patch.object(train, "_final_report", side_effect=KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "run", tmp_path / "tfds", epochs=2, **NO_WORD_FEATURES)
    with mock.patch.object(train.logging, "warning") as warning:
        results = _train(tmp_path / "run", tmp_path / "tfds", epochs=5, lr_schedule="cosine", **NO_WORD_FEATURES)
    assert (results["config"]["epochs"], results["config"]["lr_schedule"]) == (2, "constant")
    assert RINConfig.load(str(tmp_path / "run" / "config.json")).epochs == 2
    message = "\n".join(call.args[0] % call.args[1:] for call in warning.call_args_list)
    assert "trained to its end: its settings are kept (lr_schedule cosine asked, constant trained; epochs 5 asked, " \
           "2 trained)" in message


def test_a_run_killed_while_its_backup_is_deleted_is_finished(tmp_path):
    rmtree = shutil.rmtree

    def killed_while_deleting(path, *args, **kwargs):
        if str(path).endswith("backup.removed") and not kwargs.get("ignore_errors"):
            os.remove(os.path.join(path, "latest.weights.h5"))  # Part of it deleted, then the process is killed.
            raise _Killed
        return rmtree(path, *args, **kwargs)

    with mock.patch.object(train.shutil, "rmtree", killed_while_deleting), pytest.raises(_Killed):
        _train(tmp_path / "run", tmp_path / "tfds", epochs=1, **NO_WORD_FEATURES)
    assert train.is_finished_run(str(tmp_path / "run"))
    with pytest.raises(ValueError, match="holds a finished run"):
        _train(tmp_path / "run", tmp_path / "tfds", epochs=1, **NO_WORD_FEATURES)


def test_bilstm_feature_flags_given_with_a_bert_encoder_are_ignored_in_a_warning():
    flag_values = flags.FlagValues()
    train.define_config_flags(flag_values)
    train.define_input_flags(flag_values)
    flag_values(["prog", "--encoder=bert", "--preset=x", "--pos_dim=8", "--char_dim=20"])
    with mock.patch.object(train.logging, "warning") as warning:
        fields = train.config_flag_values(flag_values)
    assert "pos_dim" not in fields and "char_dim" not in fields
    assert warning.call_args.args[0] % warning.call_args.args[1:] == (
        "--pos_dim, --char_dim: features of the BiLSTM encoder, which --encoder=bert does not read (it reads word "
        "pieces): ignored.")
    flag_values(["prog", "--encoder=bilstm", "--pos_dim=8"])
    with mock.patch.object(train.logging, "warning") as warning:
        assert train.config_flag_values(flag_values)["pos_dim"] == 8 and not warning.called


def test_round_flags_given_with_no_rounds_are_named_in_a_warning():
    flag_values = flags.FlagValues()
    train.define_config_flags(flag_values)
    train.define_input_flags(flag_values)
    flag_values(["prog", "--rounds=0", "--updater=linear", "--nouse_entity_input"])
    with mock.patch.object(train.logging, "warning") as warning:
        train.config_flag_values(flag_values)
    assert warning.call_args.args[0] % warning.call_args.args[1:] == (
        "--updater, --use_entity_input: settings of the interaction rounds, which --rounds=0 leaves out: no effect.")
    flag_values(["prog", "--rounds=2", "--updater=linear", "--nouse_entity_input"])
    with mock.patch.object(train.logging, "warning") as warning:
        train.config_flag_values(flag_values)
    assert not warning.called
