"""A local stand-in for `tensorflow_model_server`: gRPC PredictionService and REST predict.

`tensorflow_model_server` has no PyPI package; where it and Docker are not at hand
(docs/serving.md gives the Docker command), this server speaks the same protocols
for the same export, so clients, tests and benchmarks run unchanged against either:

    python -m serving.server --model_base_path=serving_models/rin --model_name=rin

- gRPC (default 127.0.0.1:8500): `Predict` and `GetModelMetadata` of
  `tensorflow.serving.PredictionService`, and `GetModelStatus` of
  `tensorflow.serving.ModelService`.
- REST (default 127.0.0.1:8501): `POST /v1/models/<name>[/versions/<v>]:predict`
  with `{"instances": [...]}` (row format) or `{"inputs": ...}` (columnar), where
  a string may also be sent as `{"b64": "<base64>"}`; `GET /v1/models/<name>` for
  the version status and `GET /v1/models/<name>/metadata` for the signatures
  (both also under `/versions/<v>`).

Like TF Serving it serves the newest version under the base path, polls for
newer ones, and replays `assets.extra/tf_serving_warmup_requests` on load; a
version that fails to load is tried `--max_num_load_retries` more times, a
minute apart, then given up while the served one goes on. On SIGTERM or Ctrl-C it
answers the requests in progress (up to `--shutdown_grace_seconds`), then exits.
Every bad request gets an error status (INVALID_ARGUMENT, NOT_FOUND, ...);
nothing a client sends stops the server:

- a request of more than `--max_request_sentences` sentences or
  `--max_request_bytes` bytes of text is refused (INVALID_ARGUMENT / 400,
  naming the limit) before any work, and a REST body with more JSON values than
  those limits need before it is parsed; every input is checked on what the
  request declares (names, rows, rank, shape) before an array is built from
  it (a few bytes of proto can declare billions of copies of its last value);
- the model reads each sentence's first `max_length` tokens only, so time and
  memory do not grow with a sentence's length beyond reading it;
- requests run in chunks of `--max_batch_size` sentences, and one whose client
  has left (cancelled, past its deadline, connection closed) stops at the next;
  with `--enable_batching` (TF Serving's flag) the chunks of concurrent requests
  share model calls of up to `--max_batch_size` sentences (`RequestBatcher`);
- REST connections cost no thread (`serving.web`): slow or idle clients are
  closed after `--rest_read_timeout` seconds and cannot stall the others.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Callable

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops every export's tokeniser uses)
from absl import logging
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from serving import contract, web

MAX_REQUEST_SENTENCES = 4096  # Default limits of one request.
MAX_REQUEST_BYTES = 16 << 20
# What gRPC Predicts waiting or running may hold at once, estimated from their strings (`check_protos`): a parsed
# request holds each string's text and ~41 bytes beside it (20 million empty strings took 825 MB).
MAX_PENDING_BYTES = 1 << 30
STRING_OVERHEAD_BYTES = 48
MAX_LOAD_RETRIES = 5  # TF Serving's defaults (--max_num_load_retries, --load_retry_interval_micros).
LOAD_RETRY_SECONDS = 60.0
# gRPC threads beyond `max_pending`: GetModelStatus and GetModelMetadata are answered while Predicts wait or run.
SERVICE_THREADS = 4


class RequestError(Exception):
    """A request the server refuses, with the gRPC status it answers."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(_clip(message))
        self.code = code


def _clip(message: str, limit: int = 1000) -> str:
    """A message cut to `limit` characters: messages that quote a request stay within gRPC's status metadata."""
    return message if len(message) <= limit else message[:limit] + "..."


class ServedModel:
    """The newest SavedModel version under a TF Serving base path.

    Args:
        base_path: folder of numbered version folders.
        name: the model name clients ask for.
        max_batch_size: sentences per signature call; larger requests are chunked.
        max_request_sentences: most sentences (rows) in one request.
        max_request_bytes: most bytes of text (all input strings together) in one request.
        max_load_retries: loads of a version that failed to load tried again, `load_retry_seconds` apart (a
            folder still being copied); after those the version is given up until its folder is removed.
        load_retry_seconds: seconds between two loads of one version.
        batching: whether the chunks of concurrent requests share model calls (`RequestBatcher`).
        batch_timeout_seconds: with `batching`, how long a call waits for more sentences once one request's are
            queued (0: it takes those queued when the previous call ends).
    """

    def __init__(self, base_path: str, name: str = "rin", max_batch_size: int = 64,
                 max_request_sentences: int = MAX_REQUEST_SENTENCES, max_request_bytes: int = MAX_REQUEST_BYTES,
                 max_load_retries: int = MAX_LOAD_RETRIES, load_retry_seconds: float = LOAD_RETRY_SECONDS,
                 batching: bool = False, batch_timeout_seconds: float = 0.0):
        self.base_path = base_path
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_request_sentences = max_request_sentences
        self.max_request_bytes = max_request_bytes
        self.max_load_retries = max_load_retries
        self.load_retry_seconds = load_retry_seconds
        self.version = None
        self._served_identity = None  # `_folder_identity` of the served version when it was loaded.
        self._loaded = None
        self._signature_defs = None
        self._failed_loads = {}  # Version -> (loads that failed, when the last one failed, its error).
        self._lock = threading.Lock()
        self._batcher = RequestBatcher(max_batch_size, batch_timeout_seconds) if batching else None
        available = contract.versions(base_path)
        if not available:
            raise FileNotFoundError(f"No numbered SavedModel version under {base_path!r}.")
        # The newest version that loads; a newer one that does not (a folder being copied) is tried again later.
        for version in reversed(available):
            try:
                self._load(version)
                break
            except Exception as error:
                message = self._failed_load(version, error)
                logging.error("Version %d of %s did not load (%s).", version, name, message)
        else:
            raise OSError(f"No version under {base_path!r} loads; version {available[-1]}: "
                          f"{self._failed_loads[available[-1]][2]}")

    def refresh(self) -> bool:
        """Loads the newest version if it is not the served one, or if its folder holds another export since it was
        loaded (removed and written again under the same number); returns whether one is served.

        A version that fails to load is tried again `max_load_retries` times, then left for the served one (TF
        Serving's policy): a broken folder costs a few loads, not one every poll.

        Raises:
            Exception: the newest version failed to load (it is tried again on a later call).
        """
        available = contract.versions(self.base_path)
        with self._lock:
            self._failed_loads = {v: failed for v, failed in self._failed_loads.items() if v in available}
        available = [v for v in available if self._failed_loads.get(v, (0,))[0] <= self.max_load_retries]
        replaced = bool(available) and available[-1] == self.version and self._folder_identity(
            self.version) not in (None, self._served_identity)
        if available and (available[-1] != self.version or replaced):
            version = available[-1]
            failures, failed_at, _ = self._failed_loads.get(version, (0, None, ""))
            if failed_at is None or time.monotonic() >= failed_at + self.load_retry_seconds:
                try:
                    self._load(version)
                except Exception as error:
                    self._failed_load(version, error)
                    if failures + 1 > self.max_load_retries:
                        logging.error("Gave up loading version %d of %s after %d tries; serving version %s.",
                                      version, self.name, failures + 1, self.version)
                    raise
        return self.version is not None

    def _failed_load(self, version: int, error: Exception) -> str:
        """Counts a load of `version` that failed with `error`; returns the error's first line."""
        message = _clip((str(error).strip().splitlines() or [type(error).__name__])[0])
        with self._lock:
            failures = self._failed_loads.get(version, (0,))[0]
            self._failed_loads[version] = (failures + 1, time.monotonic(), message)
        return message

    def version_status(self, version: int | None = None) -> list[dict]:
        """TF Serving's `model_version_status`, newest first: the served version, and versions that failed to load
        (`LOADING` while they will be tried again, `END` once given up), with their error; or of `version` alone.

        Raises:
            RequestError: (NOT_FOUND) `version` is neither served nor failed to load.
        """
        with self._lock:
            failed, served = dict(self._failed_loads), self.version
        status = [{"version": str(served), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
        for failed_version, (failures, _, message) in failed.items():
            status.append({"version": str(failed_version),
                           "state": "LOADING" if failures <= self.max_load_retries else "END",
                           "status": {"error_code": "UNKNOWN", "error_message": message}})
        if version is not None:
            status = [s for s in status if s["version"] == str(version)]
            if not status:
                raise RequestError(grpc.StatusCode.NOT_FOUND,
                                   f"Version {version} of {self.name} is not served (serving {served}).")
        return sorted(status, key=lambda s: -int(s["version"]))

    def metadata(self, version: int | None = None) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """TF Serving's `GetModelMetadataResponse` of the served version: its signature defs, packed.

        Raises:
            RequestError: (NOT_FOUND) `version` is not the served one.
        """
        with self._lock:
            served, signature_defs = self.version, self._signature_defs
        if version is not None and version != served:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Version {version} of {self.name} is not served (serving {served}).")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = served
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def _load(self, version: int) -> None:
        """Loads a version, replays its warm-up requests, and serves it."""
        path = os.path.join(self.base_path, str(version))
        identity = self._folder_identity(version)
        loaded = tf.saved_model.load(path)
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        signature_defs = {
            k: v for k, v in proto.meta_graphs[0].signature_def.items() if not k.startswith("__")
        }
        _replay_warmup(loaded, path)
        with self._lock:
            self._loaded, self._signature_defs, self.version = loaded, signature_defs, version
            self._served_identity = identity
            self._failed_loads.pop(version, None)  # Tried while its folder was being written.
        logging.info("Serving %s version %d from %s", self.name, version, path)

    def _folder_identity(self, version: int) -> tuple | None:
        """What tells a version folder's export from another put under the same number since: its
        `saved_model.pb`'s inode, size and modification time (None while it has none)."""
        try:
            stat = os.stat(os.path.join(self.base_path, str(version), "saved_model.pb"))
        except OSError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def signature_defs(self):
        with self._lock:
            return self._signature_defs

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray], version: int | None = None,
                is_wanted: Callable[[], bool] | None = None) -> tuple[dict, int]:
        """Runs a signature on NumPy inputs, chunked by `max_batch_size`; returns its outputs and the version that
        computed them (a newer one may be served by the time they are answered).

        Args:
            signature_name: the signature to run (default `serving_default`).
            inputs: its inputs by name.
            version: the version the request names, if any.
            is_wanted: asked before each chunk; once it returns False (the client left or its deadline passed)
                the request stops there, so an abandoned request does not hold a worker to its end.

        Raises:
            RequestError: unknown version or signature, inputs that do not fit it, or (CANCELLED) a request
                no longer wanted.
        """
        with self._lock:
            loaded, served = self._loaded, self.version
        if version is not None and version != served:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Version {version} of {self.name} is not served (serving {served}).")
        signature_name = signature_name or contract.SENTENCES_SIGNATURE
        ranks = self.signature_ranks(signature_name, inputs)
        for key, value in inputs.items():
            rank = ranks[key]
            if value.dtype.kind not in "SOU" or value.ndim != rank:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Input {key!r} must be a rank-{rank} string tensor, got {value.dtype} of shape {value.shape}.",
                )
        self._check_size(inputs)
        function = loaded.signatures[signature_name]
        size = len(next(iter(inputs.values())))
        chunks = []
        for begin in range(0, max(size, 1), self.max_batch_size):
            if is_wanted is not None and not is_wanted():
                logging.info("Stopped a request after %d of %d sentences: its client left.", begin, size)
                raise RequestError(grpc.StatusCode.CANCELLED,
                                   f"The client left; the request stopped after {begin} of {size} sentences.")
            chunk = {k: v[begin:begin + self.max_batch_size] for k, v in inputs.items()}
            try:
                chunks.append(self._batcher.run(function, chunk) if self._batcher and size else _call(function, chunk))
            except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0]) from error
        return _concatenate(chunks), served

    def signature_ranks(self, signature_name: str, names=None) -> dict[str, int]:
        """The rank of each input of a signature, once a request's input names (if given) are checked against them.

        Raises:
            RequestError: an unknown signature, or input names other than the signature's.
        """
        signature_defs = self.signature_defs()
        signature_name = signature_name or contract.SENTENCES_SIGNATURE
        if signature_name not in signature_defs:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Unknown signature {signature_name!r}; the model has {sorted(signature_defs)}.")
        expected = signature_defs[signature_name].inputs
        if names is not None and set(names) != set(expected):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Signature {signature_name!r} takes inputs {sorted(expected)}, got {sorted(names)}.")
        return {key: len(spec.tensor_shape.dim) for key, spec in expected.items()}

    def check_protos(self, signature_name: str, protos) -> int:
        """Checks a gRPC request's tensor protos before any array is built from them; returns the memory the parsed
        request holds, estimated (`STRING_OVERHEAD_BYTES` a string beside its text).

        A proto may declare more elements than it carries, and TensorFlow repeats its last value for the rest:
        39 bytes can declare a billion strings. Names, dtype, rank, the declared shape and the text are checked,
        and a proto must carry one string per element of its shape (as `tf.make_tensor_proto` writes them), so
        that no request builds more than it sent (`arrays_from_protos`).

        Raises:
            RequestError: inputs that do not fit the signature, or a request over the limits.
        """
        ranks = self.signature_ranks(signature_name, protos.keys())
        rows, size, strings = 0, 0, 0
        for key, proto in protos.items():
            dims = [d.size for d in proto.tensor_shape.dim]
            if proto.dtype != types_pb2.DT_STRING or len(dims) != ranks[key]:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Input {key!r} must be a rank-{ranks[key]} string tensor, got "
                                   f"{tf.dtypes.as_dtype(proto.dtype).name} of rank {len(dims)}.")
            if any(d < 0 for d in dims):
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"Input {key!r} has a negative dimension {dims}.")
            rows = max(rows, dims[0] if dims else 1)
            self.check_limits(rows, size)
            if max(dims, default=0) > self.max_request_bytes:  # Each string counts at least one byte.
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Input {key!r} has shape {dims}; no dimension may exceed "
                                   f"{self.max_request_bytes} (--max_request_bytes).")
            values = proto.string_val
            self.check_limits(rows, size + max(math.prod(dims), len(values)))  # Each string counts a byte or more.
            if len(values) != math.prod(dims):
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Input {key!r} declares shape {dims} ({math.prod(dims)} strings) and carries "
                                   f"{len(values)}; send every string.")
            size += _texts_size(values)
            strings += len(values)
            self.check_limits(rows, size)
        return size + STRING_OVERHEAD_BYTES * strings

    @staticmethod
    def arrays_from_protos(protos) -> dict[str, np.ndarray]:
        """The NumPy inputs of tensor protos that `check_protos` accepted."""
        return {key: tf.make_ndarray(proto) for key, proto in protos.items()}

    def _check_size(self, inputs: dict[str, np.ndarray]) -> None:
        """Refuses NumPy inputs over the limits (see `check_limits`)."""
        rows = max((len(value) if value.ndim else 1) for value in inputs.values())
        self.check_limits(rows, sum(_texts_size(value.ravel().tolist()) for value in inputs.values()))

    def check_limits(self, rows: int, size: int) -> None:
        """Refuses a request of more than `max_request_sentences` rows or `max_request_bytes` of text, where
        each string counts at least one byte."""
        if rows > self.max_request_sentences:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"The request has {rows} sentences; this server takes up to "
                               f"{self.max_request_sentences} (--max_request_sentences).")
        if size > self.max_request_bytes:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"The request has {size} bytes of text; this server takes up to "
                               f"{self.max_request_bytes} (--max_request_bytes).")


def _text_size(item) -> int:
    """The bytes a string counts toward `max_request_bytes`: its length, at least 1."""
    return max(len(item), 1) if isinstance(item, (bytes, str)) else 1


def _texts_size(items) -> int:
    """The sum of `_text_size` over a sequence, counted in C (a request's millions of tokens took seconds of the
    interpreter, holding back the other requests); an item that has a length but is no string (a list in a REST
    request) counts its length, at least 1."""
    try:
        return sum(map(len, items)) + len(items) - sum(map(bool, items))  # An empty item counts 1.
    except TypeError:  # An item without a length (a number in a REST request) counts 1.
        return sum(_text_size(item) for item in items)


def _concatenate(chunks: list[dict]) -> dict:
    """Joins per-chunk outputs along the batch, padding the triple axis to the longest."""
    if len(chunks) == 1:
        return chunks[0]
    joined = {}
    for key, first in chunks[0].items():
        if first.ndim == 1:
            joined[key] = np.concatenate([c[key] for c in chunks])
            continue
        width = max(c[key].shape[1] for c in chunks)
        fill = b"" if first.dtype.kind in "SO" else 0
        joined[key] = np.concatenate([
            np.pad(c[key], [(0, 0), (0, width - c[key].shape[1])] + [(0, 0)] * (first.ndim - 2), constant_values=fill)
            for c in chunks
        ])
    return joined


def _call(function, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A signature's NumPy outputs for NumPy string inputs."""
    return {k: v.numpy() for k, v in function(**{k: tf.constant(v, tf.string) for k, v in inputs.items()}).items()}


@dataclasses.dataclass
class _Chunk:
    """One request's chunk, waiting for a `RequestBatcher` call."""

    function: Callable
    inputs: dict[str, np.ndarray]
    rows: int
    width: int  # Tokens a row (`serve_tokens`), 1 for sentences.
    queued: float  # `time.monotonic()` when it was queued.
    future: concurrent.futures.Future


class RequestBatcher:
    """Runs the chunks of concurrent requests as shared signature calls: TF Serving's `--enable_batching`.

    One call of 32 sentences takes about a third of the time of 32 calls of one (the encoder and the pair rounds
    work on whole batches), so many clients sending a sentence or two each are answered faster, and more evenly,
    when their requests are read together. One thread makes the calls: each takes, in arrival order, the queued
    chunks of the same signature of the same version, up to `max_batch_size` sentences, and each request gets its
    own rows back, as its own call would have answered them (triples padded to its own longest row). Token rows are
    padded to the call's widest, so a chunk joins a call only where that costs at most `MAX_PADDING` times the cells
    of the chunks themselves (past `FREE_CELLS`): one very wide request does not make the others' calls wide. A
    shared call that fails is made again for each chunk alone, so one bad request fails only itself.

    Args:
        max_batch_size: most sentences in one call.
        timeout_seconds: how long the oldest queued chunk waits for more sentences to join its call (TF Serving's
            `batch_timeout_micros`); 0 takes those queued when the previous call ends.
    """

    MAX_PADDING = 4
    FREE_CELLS = 64 * 128  # A call of 64 rows of 128 tokens joins whatever its widths.

    def __init__(self, max_batch_size: int, timeout_seconds: float = 0.0):
        self.max_batch_size = max_batch_size
        self.timeout_seconds = timeout_seconds
        self._queue = collections.deque()  # `_Chunk`s in arrival order.
        self._ready = threading.Condition()
        self._thread = None

    def run(self, function, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`function`'s outputs for `inputs` (at most `max_batch_size` rows, at least one), computed in a shared call.

        Raises:
            what the call raises for these inputs alone.
        """
        first = next(iter(inputs.values()))
        chunk = _Chunk(function, inputs, len(first), first.shape[1] if first.ndim == 2 else 1, time.monotonic(),
                       concurrent.futures.Future())
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="RequestBatcher", daemon=True)
                self._thread.start()
            self._queue.append(chunk)
            self._ready.notify()
        return chunk.future.result()

    def _serve(self) -> None:
        while True:
            chunks = self._next_batch()
            try:
                self._answer(chunks)
            except BaseException as error:  # Never a request left waiting, whatever went wrong.
                for chunk in chunks:
                    if not chunk.future.done():
                        chunk.future.set_exception(error)

    @staticmethod
    def _answer(chunks: list[_Chunk]) -> None:
        try:
            outputs = _call(chunks[0].function, _join_rows([chunk.inputs for chunk in chunks]))
        except Exception:  # Each chunk again on its own: only the one at fault fails.
            for chunk in chunks:
                try:
                    chunk.future.set_result(_call(chunk.function, chunk.inputs))
                except Exception as error:
                    chunk.future.set_exception(error)
            return
        begin = 0
        for chunk in chunks:
            chunk.future.set_result(_own_rows(outputs, begin, begin + chunk.rows))
            begin += chunk.rows

    def _next_batch(self) -> list[_Chunk]:
        """Waits for a queued chunk; takes it and, `timeout_seconds` after it was queued at most, those that join
        its call."""
        with self._ready:
            while not self._queue:
                self._ready.wait()
            deadline = self._queue[0].queued + self.timeout_seconds
            while sum(chunk.rows for chunk in self._queue) < self.max_batch_size and time.monotonic() < deadline:
                self._ready.wait(deadline - time.monotonic())
            first = self._queue.popleft()
            chunks, kept = [first], collections.deque()
            rows, width, cells = first.rows, first.width, first.rows * first.width
            while self._queue:
                chunk = self._queue.popleft()
                joined_rows, joined_width = rows + chunk.rows, max(width, chunk.width)
                if (chunk.function is first.function and joined_rows <= self.max_batch_size
                        and joined_rows * joined_width <= max(self.MAX_PADDING * (cells + chunk.rows * chunk.width),
                                                              self.FREE_CELLS)):
                    chunks.append(chunk)
                    rows, width, cells = joined_rows, joined_width, cells + chunk.rows * chunk.width
                else:
                    kept.append(chunk)
            self._queue.extendleft(reversed(kept))
            return chunks


def _join_rows(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The inputs of several chunks as one batch; tokens (rank 2) padded with "" to the widest."""
    joined = {}
    for key in parts[0]:
        arrays = [np.asarray(part[key], dtype=object) for part in parts]
        if arrays[0].ndim == 2:
            width = max(a.shape[1] for a in arrays)
            arrays = [np.pad(a, [(0, 0), (0, width - a.shape[1])], constant_values=b"") for a in arrays]
        joined[key] = np.concatenate(arrays)
    return joined


def _own_rows(outputs: dict[str, np.ndarray], begin: int, end: int) -> dict[str, np.ndarray]:
    """Rows `begin:end` of a shared call's outputs, triples padded to their own longest row, as their own call."""
    rows = {k: v[begin:end] for k, v in outputs.items()}
    width = int(rows["num_triples"].max(initial=0)) if "num_triples" in rows else None
    return {k: v[:, :width] if v.ndim >= 2 else v for k, v in rows.items()}


def _replay_warmup(loaded, path: str) -> None:
    """Runs the export's warm-up requests, as TF Serving does on load."""
    warmup = os.path.join(path, contract.WARMUP_FILE)
    if not os.path.exists(warmup):
        return
    for record in tf.data.TFRecordDataset(warmup).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name or contract.SENTENCES_SIGNATURE]
        signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """gRPC `tensorflow.serving.PredictionService` over a `ServedModel`.

    Args:
        model: the served model.
        workers: Predicts run at once; more wait (each in a gRPC thread of its own, so that metadata and status
            calls are answered meanwhile).
        max_pending: Predicts that may wait or run at once; more are refused (RESOURCE_EXHAUSTED).
        max_pending_bytes: memory that the Predicts waiting or running may hold at once (`check_protos`'s
            estimate); a request that would pass it is refused (RESOURCE_EXHAUSTED), unless none other is in
            progress. Requests over the limits are refused before they wait.
    """

    def __init__(self, model: ServedModel, workers: int = 4, max_pending: int = 64,
                 max_pending_bytes: int = MAX_PENDING_BYTES):
        self.model = model
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self._running = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self._pending = self._held = 0

    @contextlib.contextmanager
    def _worker(self, context, cost: int):
        """Holds one of the `workers` for a Predict that holds `cost` bytes, once it is admitted: fewer than
        `max_pending` wait or run, and their bytes with its own stay within `max_pending_bytes`."""
        with self._lock:
            admitted = self._pending < self.max_pending and (
                not self._pending or self._held + cost <= self.max_pending_bytes)
            if admitted:
                self._pending += 1
                self._held += cost
            pending, held = self._pending, self._held
        if not admitted:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"The server is busy ({pending} requests in progress, holding ~{held >> 20} MiB of "
                          f"{self.max_pending_bytes >> 20} MiB (--max_pending_mb); this one ~{cost >> 20} MiB); "
                          "retry later.")
        try:
            with self._running:
                yield
        finally:
            with self._lock:
                self._pending -= 1
                self._held -= cost

    def _unimplemented(self, request, context):
        """The methods of the service that this server does not answer: UNIMPLEMENTED, without grpcio's ERROR
        traceback in the log for each call."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "This server answers Predict and GetModelMetadata.")

    Classify = Regress = MultiInference = _unimplemented

    def Predict(self, request, context):
        version = _requested_version(self.model, request, context)
        try:
            cost = self.model.check_protos(request.model_spec.signature_name, request.inputs)
            with self._worker(context, cost):
                inputs = self.model.arrays_from_protos(request.inputs)
                outputs, served = self.model.predict(request.model_spec.signature_name, inputs, version,
                                                     context.is_active)
            unknown = set(request.output_filter) - set(outputs)
            if unknown:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"output_filter names {sorted(unknown)}; "
                                   f"the signature's outputs are {sorted(outputs)}.")
        except RequestError as error:
            context.abort(error.code, str(error))
        except (TypeError, ValueError) as error:  # Tensor protos that do not parse.
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _clip(f"Malformed input tensor: {error}"))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = served
        response.model_spec.signature_name = request.model_spec.signature_name or contract.SENTENCES_SIGNATURE
        for key, value in outputs.items():
            if not request.output_filter or key in request.output_filter:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        version = _requested_version(self.model, request, context)
        try:
            response = self.model.metadata(version)
        except RequestError as error:
            context.abort(error.code, str(error))
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be ['signature_def'].")
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """gRPC `tensorflow.serving.ModelService` over a `ServedModel`: the status of its versions."""

    def __init__(self, model: ServedModel):
        self.model = model

    def GetModelStatus(self, request, context):
        """The status `GET /v1/models/<name>[/versions/<v>]` gives, as a `GetModelStatusResponse`."""
        version = _status_version(self.model, request, context)
        try:
            status = self.model.version_status(version)
        except RequestError as error:
            context.abort(error.code, str(error))
        return json_format.ParseDict({"model_version_status": status}, get_model_status_pb2.GetModelStatusResponse())

    def HandleReloadConfigRequest(self, request, context):
        """UNIMPLEMENTED (the served model is the command line's), without grpcio's ERROR traceback in the log."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "This server answers GetModelStatus; it serves the model its "
                                                     "command line names.")


def _requested_version(model: ServedModel, request, context) -> int | None:
    """The version a Predict or GetModelMetadata request's `model_spec` names, if any, once the spec is checked in
    TF Serving's order: none, or no model name, is INVALID_ARGUMENT; so is a version label, for any model (labels
    come from a TF Serving model config, which this server has not); another model's name NOT_FOUND."""
    spec = _model_spec(request, context)
    if not spec.name:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
    if spec.WhichOneof("version_choice") == "version_label":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, _unknown_label(spec.version_label))
    return _version_of_this_model(model, spec, context)


def _status_version(model: ServedModel, request, context) -> int | None:
    """The version a GetModelStatus request's `model_spec` names, if any. TF Serving reads only its name and
    version there: a version label is ignored, and no name is another model's (NOT_FOUND)."""
    return _version_of_this_model(model, _model_spec(request, context), context)


def _model_spec(request, context):
    if not request.HasField("model_spec"):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    return request.model_spec


def _version_of_this_model(model: ServedModel, spec, context) -> int | None:
    if spec.name != model.name:
        context.abort(grpc.StatusCode.NOT_FOUND, _clip(f"Servable not found for request: model {spec.name!r}."))
    return spec.version.value if spec.HasField("version") else None


def _unknown_label(label: str) -> str:
    return _clip(f"Unrecognized servable version label: {label}")


async def _rest_status(model: "ServedModel", server: web.WebServer, request) -> dict:
    """`GET /v1/models/<name>[/versions/<v>|/labels/<label>]`: the status of the served version and of versions
    that failed to load (`ServedModel.version_status`), or of the version asked (a label is ignored, as TF
    Serving's GetModelStatus ignores it)."""
    _check_rest_name(model, request)
    try:
        return {"model_version_status": model.version_status(_rest_version(request))}
    except RequestError as error:
        raise web.RequestRefused(404, str(error)) from error


async def _rest_metadata(model: "ServedModel", server: web.WebServer, request) -> dict:
    """`GET /v1/models/<name>[/versions/<v>]/metadata`: `ServedModel.metadata` in TF Serving's JSON form, the
    signature defs unpacked."""
    _check_rest_name(model, request)
    try:
        response = model.metadata(_rest_version(request))
    except RequestError as error:
        raise web.RequestRefused(404, str(error)) from error
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {"model_spec": _proto_json(response.model_spec), "metadata": {"signature_def": _proto_json(signature_map)}}


def _proto_json(message) -> dict:
    """A proto as TF Serving's REST API writes it: field names as in the proto, fields left at their default too."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _rest_version(request) -> int | None:
    """The version a REST path names, if any (a number of more digits than a version has: none served, 404)."""
    if "version" not in request.match_info:
        return None
    try:
        return int(request.match_info["version"])
    except ValueError as error:  # More digits than int() reads.
        raise web.RequestRefused(404, "No such version is served.") from error


async def _rest_predict(model: "ServedModel", server: web.WebServer, request) -> dict:
    """`POST /v1/models/<name>[/versions/<v>]:predict`: TF Serving's row and columnar formats."""
    _check_rest_name(model, request)
    if not request.match_info.get("verb"):
        raise web.RequestRefused(400, "Only :predict is served.")
    version = _rest_version(request)
    body = await server.read_body(request)

    def is_wanted() -> bool:  # Read from the worker thread: the connection is still open, the server not stopped.
        return request.transport is not None and not request.transport.is_closing() and server.wants_work()

    try:
        return await server.run(_predict_json, model, body, version, is_wanted)
    except RequestError as error:
        raise web.RequestRefused(404 if error.code == grpc.StatusCode.NOT_FOUND else 400, str(error)) from error
    # RecursionError: JSON nested deeper than Python's parser goes.
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError) as error:
        raise web.RequestRefused(400, f"Malformed request: {error}") from error


async def _rest_label(server: web.WebServer, request) -> dict:
    """`POST /v1/models/<name>/labels/<label>:predict` and `GET .../metadata`: 400 for any model, as TF Serving
    answers a label its model config lacks (this server has none). The status under a label is the model's
    (`_rest_status`: TF Serving ignores the label there)."""
    raise web.RequestRefused(400, _unknown_label(request.match_info["label"]))


def _check_rest_name(model: "ServedModel", request) -> None:
    if request.match_info["name"] != model.name:
        raise web.RequestRefused(404, f"Servable not found for request: {request.path}")


def _predict_json(model: "ServedModel", body: bytes, version: int | None, is_wanted: Callable[[], bool]) -> dict:
    """Answers a REST predict body (JSON bytes) as TF Serving does: `predictions` (rows) or `outputs`."""
    _check_json_values(model, body)
    body = json.loads(body.decode("utf-8"))
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    signature_name = body.get("signature_name", contract.SENTENCES_SIGNATURE)
    if not isinstance(signature_name, str):
        raise ValueError("'signature_name' must be a string")
    inputs = _rest_inputs(model, signature_name, body)
    outputs, _ = model.predict(signature_name, inputs, version, is_wanted)
    outputs = {k: _json_value(v) for k, v in outputs.items()}
    if "instances" in body:
        rows = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(rows)]}
    return {"outputs": outputs}


def _check_json_values(model: "ServedModel", body: bytes) -> None:
    """Refuses, before parsing, a body that holds more JSON values than a request within the limits needs.

    Python's parser takes up to ~30 times a body's size in memory (`[[],[],...]`: 700 MB for 24 MiB), so the
    values are counted first, as the `[`, `{` and `,` of the body (those inside strings too): at most 128 a
    sentence of `max_request_sentences` and one per 8 bytes of `max_request_bytes` (2.6 million by default; a
    body of empty lists at that limit takes +100 MB to parse). Within the other limits, text with up to a comma every
    8 bytes passes, and so do tokens, 128 a sentence (64 as `{"b64": ...}` objects; the model reads 100) and one
    more per 8 bytes of text.
    """
    limit = 128 * model.max_request_sentences + model.max_request_bytes // 8
    values = body.count(b"[") + body.count(b"{") + body.count(b",")
    if values > limit:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"The request body holds {values} JSON values ('[', '{{' and ','); this server reads up "
                           f"to {limit} (128 per --max_request_sentences, one per 8 bytes of --max_request_bytes).")


def _rest_inputs(model: "ServedModel", signature_name: str, body: dict) -> dict[str, np.ndarray]:
    """Reads `instances` (rows) or `inputs` (columns) of a REST request as NumPy inputs.

    Input names, row counts and nesting are checked before any array is built.
    """
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("give exactly one of 'instances' and 'inputs'")
    ranks = model.signature_ranks(signature_name)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list):
            raise ValueError("'instances' must be a list")
        model.check_limits(len(rows), len(rows))
        objects = [isinstance(r, dict) and not _is_b64(r) for r in rows]
        if rows and all(objects):
            model.signature_ranks(signature_name, set().union(*rows))
            columns = {k: [r.get(k) for r in rows] for k in ranks}
        elif any(objects):
            raise ValueError(f"instance {objects.index(not objects[0])} is {'not ' * objects[0]}an object keyed by "
                             f"input name and instance 0 is {'not ' * (not objects[0])}one: give every instance alike")
        elif len(ranks) == 1:
            columns = {next(iter(ranks)): rows}
        else:
            raise ValueError("instances must be objects keyed by input name")
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict) or _is_b64(columns):  # The one input's value.
            columns = {next(iter(ranks)): columns}
        model.signature_ranks(signature_name, columns)
        for value in columns.values():
            if isinstance(value, list):
                model.check_limits(len(value), len(value))
    return {key: _string_array(value, ranks[key]) for key, value in columns.items()}


def _string_array(value, rank: int) -> np.ndarray:
    """Nested lists of strings (or `{"b64": ...}` objects), `rank` deep and of equal lengths, as a NumPy bytes
    array; anything else is refused (checked level by level before NumPy reads it)."""
    refused = RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"inputs must be strings in lists nested {rank} deep, of equal lengths")
    level = [value]
    for _ in range(rank):
        if not all(isinstance(v, list) for v in level):
            raise refused
        level = [item for v in level for item in v]
    if not all(isinstance(v, (str, dict)) for v in level):
        raise refused
    strings = [_string_bytes(v) for v in level]
    array = np.array(value, dtype=object)
    if array.ndim != rank:
        raise refused
    return np.array(strings, dtype=object).reshape(array.shape)


def _is_b64(value) -> bool:
    """Whether a JSON value is TF Serving's form of binary data: an object whose one key is "b64", a string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


_ASCII_WHITESPACE = str.maketrans("", "", " \t\n\v\f\r")


def _string_bytes(value: str | dict) -> bytes:
    """A JSON string as UTF-8, or the bytes a `{"b64": "<base64>"}` object encodes.

    The base64 text is read as TF Serving's decoder (Abseil's) reads it: RFC 4648's standard alphabet, ASCII
    whitespace skipped (line-wrapped base64), the padding optional but, where given, correct.

    Raises:
        RequestError: another object, or one whose text is not base64.
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if not _is_b64(value):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "An object among the inputs must be "
                           f'{{"b64": "<base64 text>"}}; got one with keys {sorted(value)}.')
    text = value["b64"].translate(_ASCII_WHITESPACE)
    if "=" not in text:
        text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as error:  # binascii.Error, or text that is not ASCII.
        message = f"Unable to base64 decode a 'b64' value: {error}."
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, message) from error


def _json_value(array: np.ndarray):
    if array.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])(array).tolist()
    return array.tolist()


_MODEL_PATH = "/v1/models/{name:[^/:]+}"
_VERSION_PATH = _MODEL_PATH + "/versions/{version:[0-9]+}"
_LABEL_PATH = _MODEL_PATH + "/labels/{label:[^/:]+}"
_VERB = "{verb:(?::predict)?}"


class ModelServer:
    """gRPC and REST servers over one `ServedModel`, with a version-polling thread.

    Args:
        model: the served model.
        host: interface to bind (127.0.0.1: local only).
        grpc_port: 0 picks a free port.
        rest_port: 0 picks a free port; None serves no REST.
        poll_seconds: how often to look for a newer version (0: never).
        workers: requests run at once (per protocol); more wait. Status and metadata requests do not wait for them.
        max_pending: requests that may wait or run at once (per protocol); more are refused
            (gRPC RESOURCE_EXHAUSTED, REST 503).
        max_pending_bytes: memory that gRPC requests waiting or running may hold (`PredictionServicer`).
        rest_read_timeout: seconds a REST client may take to send its request (and stay idle).
        shutdown_grace: seconds `stop` waits for the requests in progress to be answered.
    """

    def __init__(self, model: ServedModel, host: str = "127.0.0.1", grpc_port: int = contract.GRPC_PORT,
                 rest_port: int | None = contract.REST_PORT, poll_seconds: float = 2.0, workers: int = 4,
                 max_pending: int = 64, rest_read_timeout: float = 30.0, shutdown_grace: float = 1.0,
                 max_pending_bytes: int = MAX_PENDING_BYTES):
        self.model = model
        self.shutdown_grace = shutdown_grace
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=max_pending + SERVICE_THREADS),
            maximum_concurrent_rpcs=max_pending + SERVICE_THREADS,
            # Not SO_REUSEPORT (grpcio's default): a second server on a port in use must fail, not share its requests.
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 256 << 20),
                     ("grpc.so_reuseport", 0)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(model, workers, max_pending, max_pending_bytes), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(model), self._grpc)
        try:
            self.grpc_port = self._grpc.add_insecure_port(f"{host}:{grpc_port}")
        except RuntimeError as error:  # grpcio's "Failed to bind to address".
            raise OSError(f"cannot listen on {host}:{grpc_port} for gRPC: the port is in use or the address is not "
                          "this machine's.") from error
        self._rest = None
        if rest_port is not None:
            status, predict = functools.partial(_rest_status, model), functools.partial(_rest_predict, model)
            metadata = functools.partial(_rest_metadata, model)
            routes = [("GET", path, status) for path in (_MODEL_PATH, _VERSION_PATH)]
            routes += [("GET", path + "/metadata", metadata) for path in (_MODEL_PATH, _VERSION_PATH)]
            routes += [("POST", path + _VERB, predict) for path in (_MODEL_PATH, _VERSION_PATH)]
            routes += [("GET", _LABEL_PATH, status), ("GET", _LABEL_PATH + "/metadata", _rest_label),
                       ("POST", _LABEL_PATH + _VERB, _rest_label)]
            # Room for JSON's quoting and escapes; the text limit applies after parsing.
            self._rest = web.WebServer(routes, host, rest_port, max_body_bytes=2 * model.max_request_bytes + (1 << 20),
                                       read_timeout=rest_read_timeout, workers=workers, max_pending=max_pending,
                                       shutdown_grace=shutdown_grace)
        self._stop = threading.Event()
        self._poll_seconds = poll_seconds

    @property
    def rest_port(self) -> int | None:
        return self._rest.port if self._rest else None

    def start(self) -> "ModelServer":
        """Starts serving.

        Raises:
            OSError: the REST port cannot be listened on (the gRPC server is stopped again).
        """
        self._grpc.start()
        if self._rest:
            try:
                self._rest.start()
            except OSError:
                self._grpc.stop(None)
                raise
        if self._poll_seconds:
            threading.Thread(target=self._poll, daemon=True).start()
        return self

    def _poll(self):
        while not self._stop.wait(self._poll_seconds):
            try:
                self.model.refresh()
            except Exception:  # A broken new version must not stop serving the current one.
                logging.exception("Could not load a new version from %s", self.model.base_path)

    def stop(self):
        """Takes no new requests and answers those in progress, on both protocols, for up to `shutdown_grace`
        seconds (gRPC cancels the rest then)."""
        self._stop.set()
        grpc_stopped = self._grpc.stop(grace=self.shutdown_grace)  # Returns at once; drains beside REST.
        if self._rest:
            self._rest.stop()
        grpc_stopped.wait()

    def wait(self):
        self._grpc.wait_for_termination()


def main(argv):
    del argv
    from absl import flags

    FLAGS = flags.FLAGS
    try:
        model = ServedModel(FLAGS.model_base_path, FLAGS.model_name, FLAGS.max_batch_size,
                            FLAGS.max_request_sentences, FLAGS.max_request_bytes, FLAGS.max_num_load_retries,
                            FLAGS.load_retry_interval_micros / 1e6, FLAGS.enable_batching,
                            FLAGS.batch_timeout_micros / 1e6)
        server = ModelServer(model, FLAGS.host, FLAGS.port, FLAGS.rest_api_port or None,
                             FLAGS.file_system_poll_wait_seconds, FLAGS.workers, FLAGS.max_pending_requests,
                             FLAGS.rest_read_timeout, FLAGS.shutdown_grace_seconds,
                             FLAGS.max_pending_mb << 20).start()
    except OSError as error:  # No version loads, or a port in use.
        sys.exit(f"serving.server: {error}")
    print(f"Serving {model.name} version {model.version}: gRPC {FLAGS.host}:{server.grpc_port}"
          + (f", REST http://{FLAGS.host}:{server.rest_port}" if FLAGS.rest_api_port else ""), flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # As Ctrl-C: `docker stop`, Kubernetes.
    try:
        server.wait()
    except KeyboardInterrupt:
        for stop_signal in (signal.SIGINT, signal.SIGTERM):  # A second signal must not cut the stop short.
            signal.signal(stop_signal, signal.SIG_IGN)
        print(f"Stopping: no new requests; answering those in progress (up to {FLAGS.shutdown_grace_seconds} s).",
              flush=True)
        server.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("model_base_path", "serving_models/rin", "Folder of numbered SavedModel versions.")
    flags.register_validator("model_base_path", contract.versions,
                             "no numbered SavedModel version there (python -m rin_keras.export writes them).")
    flags.DEFINE_string("model_name", "rin", "Model name clients ask for.")
    flags.DEFINE_string("host", "127.0.0.1", "Interface to bind; 0.0.0.0 to serve other machines.")
    flags.DEFINE_integer("port", contract.GRPC_PORT, "gRPC port (0: any free port, printed at start).", lower_bound=0,
                         upper_bound=65535)
    flags.DEFINE_integer("rest_api_port", contract.REST_PORT, "REST port (0: no REST).", lower_bound=0,
                         upper_bound=65535)
    flags.DEFINE_integer("max_batch_size", 64, "Sentences per model call; larger requests are chunked.",
                         lower_bound=1)
    flags.DEFINE_bool("enable_batching", False, "Concurrent requests share model calls of up to --max_batch_size "
                      "sentences (TF Serving's flag): more throughput and a shorter tail for many small concurrent "
                      "requests; raise --workers with it, as each waiting request holds a worker.")
    flags.DEFINE_integer("batch_timeout_micros", 0, "With --enable_batching, microseconds the oldest queued request "
                         "waits for more sentences to share its call (0: a call takes those queued when the previous "
                         "call ends).", lower_bound=0)
    flags.DEFINE_integer("max_request_sentences", MAX_REQUEST_SENTENCES, "Most sentences in one request.")
    flags.DEFINE_integer("max_request_bytes", MAX_REQUEST_BYTES, "Most bytes of text in one request.")
    flags.DEFINE_integer("workers", 4, "Requests run at once, per protocol.")
    flags.DEFINE_integer("max_pending_requests", 64,
                         "Requests waiting or running at once, per protocol; more are refused (busy).")
    flags.DEFINE_integer("max_pending_mb", MAX_PENDING_BYTES >> 20,
                         "MiB that gRPC requests waiting or running may hold (estimated from their strings); one that "
                         "would pass it is refused (busy) unless none other is in progress.", lower_bound=1)
    flags.DEFINE_float("rest_read_timeout", 30.0, "Seconds a REST client may take to send a request or stay idle.")
    flags.DEFINE_float("file_system_poll_wait_seconds", 2.0, "Seconds between looks for a newer version (0: never).")
    flags.DEFINE_float("shutdown_grace_seconds", 25.0, "On SIGTERM or Ctrl-C, seconds to answer the requests in "
                       "progress while no new ones are taken (below Kubernetes' 30 s).", lower_bound=0)
    flags.DEFINE_integer("max_num_load_retries", MAX_LOAD_RETRIES,
                         "Loads of a version that failed to load tried again before it is given up.", lower_bound=0)
    flags.DEFINE_integer("load_retry_interval_micros", int(LOAD_RETRY_SECONDS * 1e6),
                         "Microseconds between two loads of a version (TF Serving's flag).", lower_bound=0)
    app.run(main)
