"""Data-parallel training on several devices, processes or machines, through Keras 3's `keras.distribution`.

`rin_keras.train --strategy=data_parallel` (KERAS_BACKEND=jax) replicates the model on every device of every
worker; each step trains on one global batch of `batch_size` sentences, split across the workers, with the same
loss and update as one process training on that batch. Every worker runs the same command with its own
`--worker_index`; the first worker (0) is the chief: it coordinates the cluster at `--coordinator_address` and alone
writes the run's folder. The others take the same steps (so every collective operation, saving included, runs on
all) but write to a temporary copy of the chief's run state, so the model folder must be one that all workers see
(a shared disk or GCS):

    KERAS_BACKEND=jax python -m rin_keras.train --dataset=webnlg --model_dir=/shared/run --strategy=data_parallel \\
        --num_workers=2 --worker_index=0 --coordinator_address=10.0.0.1:23456     # on 10.0.0.1
    ... the same with --worker_index=1                                             # on the second machine

A worker that does not join (not started, or started with another `--coordinator_address` or `--num_workers`)
stops the others once JAX's coordination service gives up waiting for it (5 minutes), with a fatal error that
Python cannot catch (`DEADLINE_EXCEEDED` ... `Terminating process`); each worker logs whom it waits for first.

(TensorFlow's `MultiWorkerMirroredStrategy` cannot run Keras 3's `fit`: keras-team/keras#20585.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import traceback

import keras
from absl import logging

from rin_keras.triple_extractor import CHECKPOINT_FILE

# What a worker other than the chief copies of the chief's run folder: what resuming and model selection read.
_RUN_STATE = ("vocab", "backup", "history.csv", CHECKPOINT_FILE)


class ClusterMismatchError(ValueError):
    """Workers of one run that were started with different settings."""


class ClusterStartError(RuntimeError):
    """The chief could not start the cluster's coordination service at its address."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where this worker stands in a data-parallel run.

    Attributes:
        num_workers: processes (one per machine, usually) that train together.
        worker_index: this worker's place among them, 0 for the chief.
        coordinator_address: `host:port` where the chief coordinates the others (needed for two or more workers).
    """

    num_workers: int = 1
    worker_index: int = 0
    coordinator_address: str | None = None

    def __post_init__(self):
        if self.num_workers < 1 or not 0 <= self.worker_index < self.num_workers:
            raise ValueError(f"worker_index must be in [0, num_workers): got {self.worker_index} of "
                             f"{self.num_workers} workers.")
        if self.num_workers > 1 and not self.coordinator_address:
            raise ValueError("Two or more workers need the chief's coordinator_address (host:port).")

    @property
    def is_chief(self) -> bool:
        """Whether this worker writes the run's files."""
        return self.worker_index == 0

    def check_strategy(self, strategy: str) -> None:
        """Raises ValueError unless `rin_keras.train` can run this cluster with the strategy called `strategy`."""
        if strategy == "data_parallel" and keras.backend.backend() != "jax":
            raise ValueError("Data-parallel training runs on the JAX backend: set KERAS_BACKEND=jax.")
        if strategy != "data_parallel" and self.num_workers > 1:
            raise ValueError(f"Several workers train together with --strategy=data_parallel, not {strategy!r}.")

    def start(self) -> None:
        """Joins the cluster and makes every model built afterwards data-parallel over all its devices."""
        self.check_strategy("data_parallel")
        if self.num_workers > 1:
            import jax

            # CPU devices exchange gradients through Gloo (GPUs and TPUs use their own collectives).
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            # JAX's preemption service would take SIGTERM for a sync point that training never asks about, and a
            # worker told to stop would go on: it stops as a single process does.
            jax.config.update("jax_enable_preemption_service", False)
            logging.info("Worker %d of %d: waiting for every worker at %s (JAX stops this process after 5 minutes "
                         "if one does not join).", self.worker_index, self.num_workers, self.coordinator_address)
            if self.is_chief:
                self._check_port_free()
            keras.distribution.initialize(self.coordinator_address, self.num_workers, self.worker_index)
        # Each worker feeds its own slice of every batch (`shard_batches`), so Keras must not shard again.
        keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))

    def _check_port_free(self) -> None:
        """Raises `ClusterStartError` where the chief's port is taken: JAX's coordination service, which listens on
        it on every interface, would end the process without a word on the port (or crash)."""
        port = int(self.coordinator_address.rsplit(":", 1)[1])
        try:
            if socket.has_dualstack_ipv6():
                probe = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
            else:
                probe = socket.create_server(("", port))
            probe.close()
        except OSError as error:
            raise ClusterStartError(
                f"the chief cannot listen on port {port} of {self.coordinator_address} ({error.strerror}): is it "
                "taken, by another run's chief? Give every worker a free port of the chief's machine in "
                "--coordinator_address.") from error

    @contextlib.contextmanager
    def ends_at_once_on_failure(self):
        """Ends this worker's process at once when what runs inside fails or is stopped (Ctrl-C), with its
        message (or traceback) and exit status 1. At exit Python runs JAX's distributed shutdown, which waits for
        every worker, and a failed worker's peers never reach it: after Ctrl-C on the chief, both workers hung."""
        if self.num_workers == 1:
            yield
            return
        try:
            yield
        except SystemExit as stop:
            if not stop.code:
                raise
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
            _exit_now(stop.code if isinstance(stop.code, int) else 1)
        except BaseException:
            traceback.print_exc()
            _exit_now(1)

    def scratch_dir(self, model_dir: str) -> str:
        """This worker's temporary folder for the run in `model_dir` (see `worker_dir`)."""
        digest = hashlib.sha256(os.path.abspath(model_dir).encode("utf-8")).hexdigest()[:12]
        return os.path.join(tempfile.gettempdir(), f"rin_keras_worker{self.worker_index}_{digest}")

    def worker_dir(self, model_dir: str) -> str:
        """Returns `scratch_dir(model_dir)`, made afresh, holding what a resumed run reads of the chief's
        `model_dir`. The run removes it when it ends; a worker killed outright leaves it for its next start to
        replace."""
        scratch = self.scratch_dir(model_dir)
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
        for name in _RUN_STATE:
            source = os.path.join(model_dir, name)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(scratch, name))
            elif os.path.exists(source):
                shutil.copy(source, scratch)
        logging.info("Worker %d writes to %s (removed at the end), from the chief's state in %s.", self.worker_index,
                     scratch, model_dir)
        return scratch

    def check_same_settings(self, settings: dict) -> None:
        """Raises `ClusterMismatchError` on every worker unless all train with the same `settings` (the command's
        hyper-parameters): workers that differ would fail at a later collective step, or train apart silently."""
        if self.num_workers == 1:
            return
        import numpy as np
        from jax.experimental import multihost_utils

        text = json.dumps(settings, sort_keys=True, default=str)
        digest = np.frombuffer(hashlib.sha256(text.encode("utf-8")).digest(), np.uint8)
        digests = np.asarray(multihost_utils.process_allgather(digest))
        differ = [index for index, other in enumerate(digests) if not np.array_equal(other, digests[0])]
        if differ:
            logging.info("This worker's settings: %s", text)
            raise ClusterMismatchError(
                f"worker{'s' * (len(differ) > 1)} {', '.join(map(str, differ))} of {self.num_workers} train with other "
                "settings than the chief (worker 0): run every worker with the same flags but --worker_index (each "
                "logs its settings).")

    def barrier(self, name: str) -> None:
        """Waits until every worker has reached the barrier called `name`."""
        if self.num_workers > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)

    def share_chief_weights(self, model: keras.Model) -> None:
        """Sets every worker's `model` weights to the chief's (word vectors trained by each worker may differ)."""
        if self.num_workers > 1:
            from jax.experimental import multihost_utils

            model.set_weights(list(multihost_utils.broadcast_one_to_all(model.get_weights())))


SINGLE_PROCESS = Cluster()


def _exit_now(status: int) -> None:
    """Ends the process with `status` once its output is written, without Python's exit handlers."""
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
