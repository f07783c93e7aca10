"""A local stand-in for `tensorflow_model_server`: gRPC PredictionService and REST predict.

TF Serving itself cannot be installed on our machines (see docs/serving.md for
the real docker command). This server speaks the same protocols for the same
export, so clients, tests and benchmarks run unchanged against either:

    python -m serving.server --model_base_path=serving_models/rin --model_name=rin

- gRPC (default 127.0.0.1:8500): `Predict` and `GetModelMetadata` of
  `tensorflow.serving.PredictionService`.
- REST (default 127.0.0.1:8501): `POST /v1/models/<name>[/versions/<v>]:predict`
  with `{"instances": [...]}` (row format) or `{"inputs": ...}` (columnar), and
  `GET /v1/models/<name>` for the version status.

Like TF Serving it serves the newest version under the base path, polls for
newer ones, and replays `assets.extra/tf_serving_warmup_requests` on load.
Every bad request gets an error status (INVALID_ARGUMENT, NOT_FOUND, ...);
nothing a client sends stops the server. Large requests are run in chunks of
`--max_batch_size` sentences to bound memory.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import threading
from http import HTTPStatus, server as http_server

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops of BERT-encoder exports)
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from serving import contract


class RequestError(Exception):
    """A request the server refuses, with the gRPC status it answers."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class ServedModel:
    """The newest SavedModel version under a TF Serving base path.

    Args:
        base_path: folder of numbered version folders.
        name: the model name clients ask for.
        max_batch_size: sentences per signature call; larger requests are chunked.
    """

    def __init__(self, base_path: str, name: str = "rin", max_batch_size: int = 64):
        self.base_path = base_path
        self.name = name
        self.max_batch_size = max_batch_size
        self.version = None
        self._loaded = None
        self._signature_defs = None
        self._lock = threading.Lock()
        if not self.refresh():
            raise FileNotFoundError(f"No numbered SavedModel version under {base_path!r}.")

    def refresh(self) -> bool:
        """Loads the newest version if it is newer than the served one; returns whether one is served."""
        available = contract.versions(self.base_path)
        if available and available[-1] != self.version:
            version = available[-1]
            path = os.path.join(self.base_path, str(version))
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
            logging.info("Serving %s version %d from %s", self.name, version, path)
        return self.version is not None

    def signature_defs(self):
        with self._lock:
            return self._signature_defs

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray], version: int | None = None) -> dict:
        """Runs a signature on NumPy inputs, chunked by `max_batch_size`.

        Raises:
            RequestError: unknown version or signature, or inputs that do not fit it.
        """
        with self._lock:
            loaded, signature_defs, served = self._loaded, self._signature_defs, self.version
        if version is not None and version != served:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"Version {version} of {self.name} is not served (serving {served}).")
        signature_name = signature_name or contract.SENTENCES_SIGNATURE
        if signature_name not in signature_defs:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unknown signature {signature_name!r}; the model has {sorted(signature_defs)}.",
            )
        expected = signature_defs[signature_name].inputs
        if set(inputs) != set(expected):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Signature {signature_name!r} takes inputs {sorted(expected)}, got {sorted(inputs)}.",
            )
        for key, value in inputs.items():
            rank = len(expected[key].tensor_shape.dim)
            if value.dtype.kind not in "SOU" or value.ndim != rank:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Input {key!r} must be a rank-{rank} string tensor, got {value.dtype} of shape {value.shape}.",
                )
        function = loaded.signatures[signature_name]
        size = len(next(iter(inputs.values())))
        chunks = []
        for begin in range(0, max(size, 1), self.max_batch_size):
            chunk = {k: tf.constant(v[begin:begin + self.max_batch_size], tf.string) for k, v in inputs.items()}
            try:
                chunks.append({k: v.numpy() for k, v in function(**chunk).items()})
            except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0]) from error
        return _concatenate(chunks)


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
    """gRPC `tensorflow.serving.PredictionService` over a `ServedModel`."""

    def __init__(self, model: ServedModel):
        self.model = model

    def _check_name(self, spec, context):
        if spec.name != self.model.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: model {spec.name!r}.")
        return spec.version.value if spec.HasField("version") else None

    def Predict(self, request, context):
        version = self._check_name(request.model_spec, context)
        try:
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            outputs = self.model.predict(request.model_spec.signature_name, inputs, version)
        except RequestError as error:
            context.abort(error.code, str(error))
        except (TypeError, ValueError) as error:  # Tensor protos that do not parse.
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Malformed input tensor: {error}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = self.model.version
        response.model_spec.signature_name = request.model_spec.signature_name or contract.SENTENCES_SIGNATURE
        for key, value in outputs.items():
            if not request.output_filter or key in request.output_filter:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        self._check_name(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be ['signature_def'].")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model.name
        response.model_spec.version.value = self.model.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.model.signature_defs().items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signature_map)
        return response


_REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict)?$")


class _RestHandler(http_server.BaseHTTPRequestHandler):
    """TF Serving's REST predict API (row and columnar formats)."""

    model: ServedModel = None

    def log_message(self, format, *args):  # noqa: A002  (BaseHTTPRequestHandler's signature)
        logging.debug("REST %s", format % args)

    def _reply(self, status: HTTPStatus, body: dict):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _match(self):
        match = _REST_PATH.match(self.path)
        if not match or match["name"] != self.model.name:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"Servable not found for request: {self.path}"})
            return None
        return match

    def do_GET(self):
        if self._match():
            self._reply(HTTPStatus.OK, {"model_version_status": [
                {"version": str(self.model.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]})

    def do_POST(self):
        match = self._match()
        if not match:
            return
        if not match["verb"]:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "Only :predict is served."})
            return
        try:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length).decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            signature_name = body.get("signature_name", contract.SENTENCES_SIGNATURE)
            row_format = "instances" in body
            inputs = _rest_inputs(body, self.model.signature_defs().get(signature_name))
            version = int(match["version"]) if match["version"] else None
            outputs = self.model.predict(signature_name, inputs, version)
        except RequestError as error:
            status = HTTPStatus.NOT_FOUND if error.code == grpc.StatusCode.NOT_FOUND else HTTPStatus.BAD_REQUEST
            self._reply(status, {"error": str(error)})
            return
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"Malformed request: {error}"})
            return
        outputs = {k: _json_value(v) for k, v in outputs.items()}
        if row_format:
            rows = len(next(iter(outputs.values())))
            self._reply(HTTPStatus.OK, {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(rows)]})
        else:
            self._reply(HTTPStatus.OK, {"outputs": outputs})


def _rest_inputs(body: dict, signature_def) -> dict[str, np.ndarray]:
    """Reads `instances` (rows) or `inputs` (columns) of a REST request as NumPy inputs."""
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("give exactly one of 'instances' and 'inputs'")
    if signature_def is None:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"Unknown signature {body.get('signature_name')!r}.")
    names = list(signature_def.inputs)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list):
            raise ValueError("'instances' must be a list")
        if rows and all(isinstance(r, dict) for r in rows):
            columns = {k: [r.get(k) for r in rows] for k in {k for r in rows for k in r}}
        elif len(names) == 1:
            columns = {names[0]: rows}
        else:
            raise ValueError("instances must be objects keyed by input name")
    else:
        columns = body["inputs"] if isinstance(body["inputs"], dict) else {names[0]: body["inputs"]}
    return {key: _string_array(value) for key, value in columns.items()}


def _string_array(value) -> np.ndarray:
    """A nested list of strings as a NumPy bytes array; anything else is rejected."""
    array = np.array(value, dtype=object)
    if array.size and not all(isinstance(v, str) for v in array.flat):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "inputs must be strings")
    return np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array) if array.size else array


def _json_value(array: np.ndarray):
    if array.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])(array).tolist()
    return array.tolist()


class ModelServer:
    """gRPC and REST servers over one `ServedModel`, with a version-polling thread.

    Args:
        model: the served model.
        host: interface to bind (127.0.0.1: local only).
        grpc_port: 0 picks a free port.
        rest_port: 0 picks a free port; None serves no REST.
        poll_seconds: how often to look for a newer version (0: never).
    """

    def __init__(self, model: ServedModel, host: str = "127.0.0.1", grpc_port: int = 8500,
                 rest_port: int | None = 8501, poll_seconds: float = 2.0):
        self.model = model
        self._grpc = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4), options=[
            ("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 256 << 20),
        ])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(model), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"{host}:{grpc_port}")
        self._rest = None
        if rest_port is not None:
            handler = type("Handler", (_RestHandler,), {"model": model})
            self._rest = http_server.ThreadingHTTPServer((host, rest_port), handler)
            self.rest_port = self._rest.server_address[1]
        self._stop = threading.Event()
        self._poll_seconds = poll_seconds

    def start(self) -> "ModelServer":
        self._grpc.start()
        if self._rest:
            threading.Thread(target=self._rest.serve_forever, daemon=True).start()
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
        self._stop.set()
        if self._rest:
            self._rest.shutdown()
            self._rest.server_close()
        self._grpc.stop(grace=1).wait()

    def wait(self):
        self._grpc.wait_for_termination()


def main(argv):
    del argv
    from absl import flags

    FLAGS = flags.FLAGS
    model = ServedModel(FLAGS.model_base_path, FLAGS.model_name, FLAGS.max_batch_size)
    server = ModelServer(model, FLAGS.host, FLAGS.port, FLAGS.rest_api_port or None,
                         FLAGS.file_system_poll_wait_seconds).start()
    print(f"Serving {model.name} version {model.version}: gRPC {FLAGS.host}:{server.grpc_port}"
          + (f", REST http://{FLAGS.host}:{server.rest_port}" if FLAGS.rest_api_port else ""), flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("model_base_path", "serving_models/rin", "Folder of numbered SavedModel versions.")
    flags.DEFINE_string("model_name", "rin", "Model name clients ask for.")
    flags.DEFINE_string("host", "127.0.0.1", "Interface to bind; 0.0.0.0 to serve other machines.")
    flags.DEFINE_integer("port", 8500, "gRPC port.")
    flags.DEFINE_integer("rest_api_port", 8501, "REST port (0: no REST).")
    flags.DEFINE_integer("max_batch_size", 64, "Sentences per model call; larger requests are chunked.")
    flags.DEFINE_float("file_system_poll_wait_seconds", 2.0, "Seconds between looks for a newer version (0: never).")
    app.run(main)
