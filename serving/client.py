"""Clients for a rin-keras model behind TF Serving (or `serving.server`), over gRPC and REST.

Both return what `RINTripleExtractor.predict` returns (`serving.contract.triples_from_outputs`):
per sentence, a list of `{"subject", "relation", "object", "score", "subject_span", "object_span",
"subject_char_span", "object_char_span"}`. The client never imports `rin_keras`; the REST
client needs only the standard library and NumPy (the gRPC one imports TensorFlow for its protos).

    python -m serving.client "Alan Bean was born in Wheeler, Texas."
    python -m serving.client --protocol=rest < sentences.txt   # One line a sentence, sent 64 at a time.
    python -m serving.client --signature_name=serve_tokens "Alan Bean was born in Wheeler , Texas ."
    python -m serving.client --status   # The served versions' status, as `GET /v1/models/<name>` gives it.
"""

from __future__ import annotations

import http.client
import itertools
import json
import sys
import urllib.error
import urllib.request

from serving.contract import (
    GRPC_PORT, REST_PORT, SENTENCES_SIGNATURE, SIGNATURE_INPUTS, TOKEN, input_name, json_lines_stdout, open_text,
    pad_tokens, readable_text, split_tokens, triples_from_outputs,
)


class GrpcClient:
    """`PredictionService` client.

    Args:
        target: `host:port` of the gRPC endpoint.
        model_name: the served model's name.
        signature_name: `serving_default` (raw sentences) or `serve_tokens`.
        timeout: seconds per call.
    """

    def __init__(self, target: str = f"localhost:{GRPC_PORT}", model_name: str = "rin",
                 signature_name: str = SENTENCES_SIGNATURE, timeout: float = 10.0):
        self.input_name = input_name(signature_name)
        self.model_name = model_name
        self.signature_name = signature_name
        self.timeout = timeout
        import grpc  # Imported here, with TensorFlow below: a REST caller needs neither.
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 256 << 20)])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def predict_raw(self, inputs: dict) -> dict:
        """Sends `inputs` (name -> strings) and returns the output arrays.

        Raises:
            grpc.RpcError: the server's error status (e.g. INVALID_ARGUMENT).
        """
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = self.signature_name
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=tf.string))
        response = self._stub.Predict(request, timeout=self.timeout)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def predict(self, sentences: list[str]) -> list[list[dict]]:
        """Returns the triples of each sentence (or, with `serve_tokens`, each token list)."""
        return triples_from_outputs(self.predict_outputs(sentences)) if sentences else []

    def predict_outputs(self, sentences: list) -> dict:
        """Returns the signature's output arrays for `sentences` (at least one): the triples' and `truncated`."""
        return self.predict_raw({self.input_name: _as_input(sentences, self.input_name)})

    def signature_defs(self) -> dict:
        """Returns the served model's SignatureDefs by name."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._stub.GetModelMetadata(request, timeout=self.timeout)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return dict(signature_map.signature_def)

    def model_status(self) -> dict:
        """Returns `ModelService.GetModelStatus`'s answer as TF Serving's REST API writes it:
        `{"model_version_status": [{"version", "state", "status"}, ...]}`."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        response = model_service_pb2_grpc.ModelServiceStub(self._channel).GetModelStatus(request, timeout=self.timeout)
        return json_format.MessageToDict(response, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)

    def close(self):
        self._channel.close()


class RestClient:
    """TF Serving REST predict client (row format).

    Args:
        url: base URL of the REST endpoint.
        model_name: the served model's name.
        signature_name: `serving_default` or `serve_tokens`.
        timeout: seconds per call.
    """

    def __init__(self, url: str = f"http://localhost:{REST_PORT}", model_name: str = "rin",
                 signature_name: str = SENTENCES_SIGNATURE, timeout: float = 10.0):
        self.input_name = input_name(signature_name)
        self.model_url = f"{url.rstrip('/')}/v1/models/{model_name}"
        self.endpoint = self.model_url + ":predict"
        self.signature_name = signature_name
        self.timeout = timeout

    def predict(self, sentences: list) -> list[list[dict]]:
        """Returns the triples of each sentence.

        Raises:
            RuntimeError: the server answered with an error; its message is kept.
            ConnectionError: no server answered at the URL.
        """
        return triples_from_outputs(self.predict_outputs(sentences)) if sentences else []

    def predict_outputs(self, sentences: list) -> dict:
        """Returns the signature's outputs for `sentences` (at least one), as JSON lists: the triples' and
        `truncated`.

        Raises:
            RuntimeError: the server answered with an error; its message is kept.
            ConnectionError: no server answered at the URL.
        """
        body = {"signature_name": self.signature_name,
                "inputs": {self.input_name: _as_input(sentences, self.input_name)}}
        request = urllib.request.Request(
            self.endpoint, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}
        )
        return self._answer(request)["outputs"]

    def model_status(self) -> dict:
        """Returns `GET /v1/models/<name>`: `{"model_version_status": [{"version", "state", "status"}, ...]}`.

        Raises:
            RuntimeError: the server answered with an error; its message is kept.
            ConnectionError: no server answered at the URL.
        """
        return self._answer(urllib.request.Request(self.model_url))

    def _answer(self, request: urllib.request.Request) -> dict:
        """The JSON the server answers to `request`."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"HTTP {error.code}: {error.read().decode('utf-8', 'replace')}") from error
        except (OSError, http.client.HTTPException) as error:  # No server there, or not a REST one.
            reason = getattr(error, "reason", None) or repr(error)
            raise ConnectionError(f"no REST answer from {request.full_url}: {reason}") from error


def _as_input(sentences: list, name: str) -> list:
    """Pads token lists with "" for `serve_tokens`; sentences pass through. (No token lists make no rank-2 input,
    so the clients answer an empty request themselves.)"""
    return list(sentences) if name == input_name(SENTENCES_SIGNATURE) else pad_tokens(sentences)


def _batches(items, size: int):
    """Yields lists of up to `size` consecutive items, reading `items` only as far as the next list."""
    items = iter(items)
    while batch := list(itertools.islice(items, size)):
        yield batch


def _as_written(triples: list[dict], line: str) -> list[dict]:
    """The triples of a pre-tokenised `line` (`serve_tokens`, whose character spans index its tokens joined by single
    spaces) with character spans into the line itself, and their entities as it writes them, as
    `rin_keras.predict --pretokenized` gives them."""
    tokens = [(match.start(), match.end()) for match in TOKEN.finditer(line)]
    rebased = []
    for triple in triples:
        triple = dict(triple)
        for entity in ("subject", "object"):
            first, end = triple[f"{entity}_span"]
            start, stop = tokens[first][0], tokens[end - 1][1]
            triple[entity], triple[f"{entity}_char_span"] = line[start:stop], [start, stop]
        rebased.append(triple)
    return rebased


def main(argv):
    from absl import flags

    FLAGS = flags.FLAGS
    # Invalid UTF-8 (and an argument's lone surrogates) read as U+FFFD, as rin_keras.predict reads it.
    sentences = (readable_text(s) for s in argv[1:]) if argv[1:] else (
        line.rstrip("\r\n") for line in open_text(None))
    if FLAGS.protocol == "grpc":
        import grpc

        port = FLAGS.port or GRPC_PORT
        client = GrpcClient(f"{FLAGS.host}:{port}", FLAGS.model_name, FLAGS.signature_name, FLAGS.timeout)
        errors = grpc.RpcError
    else:
        port = FLAGS.port or REST_PORT
        client = RestClient(f"http://{FLAGS.host}:{port}", FLAGS.model_name, FLAGS.signature_name, FLAGS.timeout)
        errors = (RuntimeError, ConnectionError)

    def fail(error, where=""):
        if FLAGS.protocol == "grpc":
            error = f"{error.code().name} from {FLAGS.host}:{port}: {error.details()}"
        sys.exit(f"serving.client: {error}{where}")

    if FLAGS.status:
        try:
            print(json.dumps(client.model_status()))
        except errors as error:
            fail(error)
        return
    answered = truncated = 0
    tokens = FLAGS.signature_name != SENTENCES_SIGNATURE
    with json_lines_stdout() as out:
        for batch in _batches(sentences, FLAGS.batch_size):
            try:
                outputs = client.predict_outputs([split_tokens(s) for s in batch] if tokens else batch)
            except errors as error:
                fail(error, f" (sentences {answered + 1}-{answered + len(batch)}"
                     + ("; those before are answered above)" if answered else "; none was answered)"))
            for sentence, triples, cut in zip(batch, triples_from_outputs(outputs), outputs["truncated"]):
                record = {"text": sentence, "triples": _as_written(triples, sentence) if tokens else triples,
                          "truncated": bool(cut)}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")  # As rin_keras.predict writes it.
                truncated += bool(cut)
            out.flush()  # Each request's answers as they come, for a reader at the other end of a pipe.
            answered += len(batch)
    if truncated:
        print(f"serving.client: {truncated} sentence(s) were longer than the model reads and were cut "
              "(\"truncated\": true).", file=sys.stderr)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], f"gRPC (port {GRPC_PORT}) or REST (port {REST_PORT}).")
    flags.DEFINE_string("host", "localhost", "Server host.")
    flags.DEFINE_integer("port", None, f"Server port (default: {GRPC_PORT} for gRPC, {REST_PORT} for REST).",
                         lower_bound=1, upper_bound=65535)
    flags.DEFINE_string("model_name", "rin", "Served model name.")
    flags.DEFINE_enum("signature_name", SENTENCES_SIGNATURE, sorted(SIGNATURE_INPUTS),
                      "serving_default (raw sentences) or serve_tokens (pre-tokenised, whitespace-separated; the "
                      "spans printed index each line as given).")
    flags.DEFINE_integer("batch_size", 64, "Sentences per request: standard input is sent this many lines at a "
                         "time, and each request's answers are printed before the next is sent.", lower_bound=1)
    flags.DEFINE_float("timeout", 10.0, "Seconds per request.", lower_bound=0.0)
    flags.DEFINE_bool("status", False, "Print the served model's version status instead of predicting.")
    app.run(main)
