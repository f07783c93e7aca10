"""Data-parallel training (`rin_keras.data_parallel`): batch sharding, the cluster settings, and two worker processes
on 127.0.0.1 (JAX backend, Gloo between CPU processes) that train as one process would and resume after a kill."""

import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import flagsaver

from rin_keras import train
from rin_keras.data.corpus import Corpus
from rin_keras.data.dataset import shard_batches
from rin_keras.data_parallel import Cluster

from conftest import write_tiny_vectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The default model of a user's folder (exact variant: pretrained, shape and character word features, entity
# substitution), made tiny.
TINY_RUN = [
    "--dataset_dir=tests/data/custom_jsonl", "--word_vectors=random", "--word_dim=8", "--lstm_units=4",
    "--hidden_dim=8", "--char_dim=4", "--shape_dim=2", "--rounds=1", "--batch_size=4", "--patience=1000",
]
# Train entity words and words like them, for the stand-ins of entity substitution.
WORDS = ("alan", "bean", "wheeler", "texas", "ohio", "marie", "curie", "warsaw", "vienna", "paris", "rome", "lyon",
         "poland", "france", "italy", "austria", "enrico", "fermi", "niels", "bohr", "born", "in", "was", "the")
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (pip install jax)")


def test_each_worker_gets_its_equal_slice_of_every_batch():
    rows = tf.data.Dataset.range(11).map(lambda i: ({"token_ids": tf.fill([3], i)}, {"entity_tags": tf.fill([3], i)}))
    batches = rows.batch(5)  # Batches of 5, 5 and 1 sentences.
    slices = [[(x["token_ids"][:, 0].numpy().tolist(), y["entity_tags"][:, 0].numpy().tolist())
               for x, y in shard_batches(batches, 2, index)] for index in (0, 1)]
    assert slices[0] == [([0, 1], [0, 1]), ([5, 6], [5, 6])]
    assert slices[1] == [([2, 3], [2, 3]), ([7, 8], [7, 8])]  # Rows 4 and 9 and the batch of one sit out.
    assert shard_batches(batches, 1, 0) is batches


def test_a_workers_scratch_copy_is_its_own_for_a_run_and_replaced_by_its_next_start(tmp_path):
    run = tmp_path / "run"
    (run / "vocab").mkdir(parents=True)
    (run / "vocab" / "words.txt").write_text("alan\n")
    (run / "history.csv").write_text("epoch\n0\n")
    worker = Cluster(2, 1, "127.0.0.1:1234")
    scratch = worker.worker_dir(str(run))
    try:
        open(os.path.join(scratch, "left_by_a_killed_worker"), "w").close()
        assert worker.worker_dir(str(run)) == scratch == worker.scratch_dir(str(run))  # The same run, the same
        assert sorted(os.listdir(scratch)) == ["history.csv", "vocab"]  # folder, fresh from the chief's state.
        assert Cluster(3, 2, "127.0.0.1:1234").scratch_dir(str(run)) != scratch  # Another worker's.
        assert worker.scratch_dir(str(tmp_path / "other_run")) != scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_cluster_settings_are_checked():
    with pytest.raises(ValueError, match="worker_index"):
        Cluster(num_workers=2, worker_index=2, coordinator_address="127.0.0.1:1234")
    with pytest.raises(ValueError, match="coordinator_address"):
        Cluster(num_workers=2, worker_index=1)
    assert Cluster().is_chief and not Cluster(2, 1, "127.0.0.1:1234").is_chief


@pytest.mark.parametrize("flags, message", [
    (dict(num_workers=2, worker_index=0, coordinator_address="127.0.0.1:1234"), "--strategy=data_parallel"),
    (dict(num_workers=2, worker_index=3, coordinator_address="127.0.0.1:1234", strategy="data_parallel"),
     "worker_index"),
    (dict(strategy="data_parallel"), "KERAS_BACKEND=jax"),
    (dict(strategy="tpu"), "--strategy=tpu found no TPU"),
])
def test_cli_rejects_bad_cluster_flags(flags, message):
    train.define_flags() if "dataset" not in train.FLAGS else None
    train.FLAGS(["prog"])
    with flagsaver.flagsaver(**flags), pytest.raises(SystemExit, match=message):
        train.main(["prog"])


@needs_jax
def test_a_chief_whose_port_is_taken_names_it_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "rin_keras.train", *TINY_RUN, "--pretrained_vectors=none",
                              f"--model_dir={tmp_path / 'run'}", f"--tfds_data_dir={tmp_path / 'tfds'}",
                              "--strategy=data_parallel", "--num_workers=2", "--worker_index=0",
                              f"--coordinator_address={address}"], cwd=REPO, capture_output=True, text=True,
                             timeout=300, env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert f"rin_keras.train: the chief cannot listen on port {port} of {address} (" in run.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model_dir, tfds_dir, log_path, epochs, *cluster_flags):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    vectors = write_tiny_vectors(os.path.join(os.path.dirname(log_path), "vectors.txt"), WORDS)
    command = [sys.executable, "-m", "rin_keras.train", *TINY_RUN, f"--pretrained_vectors={vectors}",
               f"--model_dir={model_dir}", f"--tfds_data_dir={tfds_dir}", f"--epochs={epochs}", *cluster_flags]
    with open(log_path, "w") as log:  # Ctrl-C as at a terminal (pytest-xdist's workers ignore it, and children inherit).
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _start_workers(model_dir, tfds_dir, logs, epochs):
    address = f"--coordinator_address=127.0.0.1:{_free_port()}"
    return [_start(model_dir, tfds_dir, logs[i], epochs, "--strategy=data_parallel", "--num_workers=2",
                   f"--worker_index={i}", address) for i in range(2)]


def _finish(process, log_path, timeout=600):
    assert process.wait(timeout=timeout) == 0, open(log_path).read()[-5000:]


def _epoch_lines(log_path) -> list[str]:
    """Each epoch's summary line (its losses, metrics and dev scores), the timing left out."""
    with open(log_path) as f:
        return [re.sub(r"^.*?/step - ", "", line.split(" - epoch_seconds")[0]) for line in f if "/step - " in line]


def _history_losses(model_dir) -> dict[int, float]:
    with open(os.path.join(model_dir, "history.csv")) as f:
        return {int(r["epoch"]): float(r["loss"]) for r in csv.DictReader(f)}


def _backup_epoch(model_dir) -> int:
    try:
        with open(os.path.join(model_dir, "backup", "training_metadata.json")) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError):
        return 0


@needs_jax
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="already on another backend")
@pytest.mark.parametrize("differs", ["epochs", "data"])
def test_workers_started_with_other_settings_stop_before_training(tmp_path, differs):
    tfds_dir = tmp_path / "tfds"
    address = f"--coordinator_address=127.0.0.1:{_free_port()}"
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    other = tmp_path / "edited"  # The folder with a word of its train split changed, under another path.
    shutil.copytree(os.path.join(REPO, "tests", "data", "custom_jsonl"), other)
    (other / "train.jsonl").write_text((other / "train.jsonl").read_text().replace("Alan", "Neil"))
    worker_flags = {"epochs": [[], ["--epochs=3"]], "data": [[], [f"--dataset_dir={other}"]]}[differs]
    workers = [_start(tmp_path / "run", tfds_dir, logs[i], 2, "--strategy=data_parallel", "--num_workers=2",
                      f"--worker_index={i}", address, *worker_flags[i]) for i in range(2)]
    for worker, log in zip(workers, logs):
        assert worker.wait(timeout=300) == 1
        text = open(log).read()
        assert "worker 1 of 2 train with other settings than the chief" in text and "Traceback" not in text
        assert "Epoch 1/" not in text


@needs_jax
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="already on another backend")
def test_two_workers_train_as_one_process_and_resume_after_a_kill(tmp_path):
    epochs = 6
    tfds_dir = tmp_path / "tfds"
    Corpus.from_folder(os.path.join(REPO, TINY_RUN[0].split("=")[1]), str(tfds_dir))  # Prepared once, read by all.
    reference = _start(tmp_path / "one", tfds_dir, tmp_path / "one.log", epochs)  # Beside the workers' first run.

    run = tmp_path / "two"
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    workers = _start_workers(run, tfds_dir, logs, 200)  # Stopped long before its end; resumed with `epochs`.
    deadline = time.time() + 300
    while _backup_epoch(run) < 2 and workers[1].poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert workers[1].poll() is None, "the run ended before the kill: " + open(logs[1]).read()[-3000:]
    workers[0].send_signal(signal.SIGINT)  # Ctrl-C on the chief: it stops, and its peer fails without it; neither
    assert workers[0].wait(timeout=60) == 1  # waits for the other at exit.
    assert "rin_keras.train: interrupted. Run the same command again to resume" in open(logs[0]).read()
    assert workers[1].wait(timeout=60) != 0
    first_run = _history_losses(run)
    assert len(first_run) < epochs and not os.path.exists(run / "results.json")
    _finish(reference, tmp_path / "one.log")

    logs = [tmp_path / "worker0_again.log", tmp_path / "worker1_again.log"]
    workers = _start_workers(run, tfds_dir, logs, epochs)
    for worker, log in zip(workers, logs):
        _finish(worker, log)
    # The workers took the same steps: identical losses and dev scores each epoch, and the same results.
    assert _epoch_lines(logs[0]) == _epoch_lines(logs[1])
    with open(logs[0]) as chief, open(logs[1]) as other:
        tables = [log.read().split("Test scores of the best dev epoch")[-1] for log in (chief, other)]
    assert tables[0] == tables[1] and "partial" in tables[0]
    # The resumed run went on from the backup: every epoch once, the first run's kept.
    history = _history_losses(run)
    assert sorted(history) == list(range(epochs))
    resumed_at = min(int(line.split("/")[0].split()[-1]) for line in open(logs[0]) if line.startswith("Epoch "))
    assert 3 <= resumed_at <= len(first_run) + 1  # Epoch numbers count from 1, history rows from 0.
    assert len(_epoch_lines(logs[0])) == epochs - resumed_at + 1  # The compared lines are every resumed epoch's.
    assert os.path.exists(run / "results.json") and not os.path.exists(run / "backup")
    assert not os.path.exists(Cluster(2, 1, "127.0.0.1:1").scratch_dir(str(run)))  # Worker 1's copy, gone.
    # Before the kill, two workers trained exactly as one process on the same batches.
    one_process = _history_losses(tmp_path / "one")
    for epoch in range(resumed_at - 1):
        np.testing.assert_allclose(history[epoch], one_process[epoch], rtol=1e-4)
