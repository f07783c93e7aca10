"""Inputs that must not take a process down: huge sentences and requests, large documents, slow clients.

Each runs against a separate process (the server, or a script calling the Python
API and the export signatures) whose address space is capped once the model is
loaded, and whose peak resident memory is measured around each input.
"""

import gzip
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf

from rin_keras import demo, export
from rin_keras.data.vocab import Vocabulary
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor
from serving import client, web

from conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 12
SENTENCE = "Alan Bean was born in Wheeler, Texas."
MILLION_TOKENS = " ".join(["Texas"] * 1_000_000)
HEADROOM = 3 << 30  # Address space a process may add to what it holds once loaded.
MB = 1 << 20


def _extractor():
    """A tiny untrained extractor whose relation head fires on most pairs."""
    keras.utils.set_random_seed(0)
    vocab = Vocabulary.build([SENTENCE.replace(",", " ,").split()], ["birthPlace", "country"])
    config = tiny_config(vocab_size=vocab.vocab_size, num_relations=vocab.num_relations, max_length=MAX_LENGTH)
    model = build_rin(config)
    head = model.get_layer("relation_head")
    head.output_kernel.assign(np.random.default_rng(0).normal(0, 100, head.output_kernel.shape).astype("float32"))
    return RINTripleExtractor(model, RINPreprocessor.from_config_and_vocabulary(config, vocab), threshold=0.6)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    extractor = _extractor()
    path = extractor.save_to_preset(str(root / "run"))
    version = export.export_version(extractor, str(root / "models"), 1)
    return {"extractor": extractor, "keras": path, "base": str(root / "models"), "version": version}


def _status(pid) -> dict:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f) if v.strip().endswith("kB")}


def _cap_and_reset_peak(pid):
    """Caps the process's address space at what it has plus `HEADROOM`; resets its peak RSS; returns its RSS."""
    size = _status(pid)["VmSize"] + HEADROOM
    resource.prlimit(pid, resource.RLIMIT_AS, (size, size))
    return _reset_peak(pid)


def _reset_peak(pid) -> int:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # Resets VmHWM (peak RSS) to the current RSS.
    return _status(pid)["VmRSS"]


def _added_peak(pid, before: int) -> int:
    return _status(pid)["VmHWM"] - before


PROBE = textwrap.dedent("""
    import json, os, sys, time
    import tensorflow as tf
    from rin_keras.triple_extractor import RINTripleExtractor

    extractor = RINTripleExtractor.from_preset(sys.argv[1])
    signatures = tf.saved_model.load(sys.argv[2]).signatures
    million = " ".join(["Texas"] * 1_000_000)
    fifty_mb = ("Alan Bean was born in Wheeler, Texas " * 1_400_000)[: 50 << 20]
    document = "Alan Bean was born in Wheeler, Texas. He flew to the Moon. " * 5_000
    million_tokens = [["Texas"] * 1_000_000]
    cases = {
        "predict_million_tokens": lambda: extractor.predict_detailed([million])[0]["truncated"],
        "predict_fifty_mb": lambda: extractor.predict_detailed([fifty_mb])[0]["truncated"],
        "signature_million_tokens": lambda: bool(signatures["serving_default"](
            sentences=tf.constant([million]))["truncated"][0]),
        "signature_fifty_mb": lambda: bool(signatures["serving_default"](
            sentences=tf.constant([fifty_mb]))["truncated"][0]),
        "tokens_signature_million_tokens": lambda: bool(signatures["serve_tokens"](
            tokens=tf.constant(million_tokens))["truncated"][0]),
        "predict_documents": lambda: len(extractor.predict_documents([document])[0]["sentences"]),
    }
    extractor.predict_documents([million[:1000]]), signatures["serving_default"](sentences=tf.constant(["a b"]))
    print("ready", flush=True)
    for name, case in cases.items():
        sys.stdin.readline()  # The test resets the peak RSS.
        began = time.time()
        print(json.dumps({"case": name, "result": case(), "seconds": time.time() - began}), flush=True)
""")


def test_python_api_and_export_signatures_survive_huge_inputs(artifacts):
    process = subprocess.Popen([sys.executable, "-c", PROBE, artifacts["keras"], artifacts["version"]], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        before = _cap_and_reset_peak(process.pid)
        results = {}
        for _ in range(6):
            before = _reset_peak(process.pid)
            process.stdin.write("\n")
            process.stdin.flush()
            line = process.stdout.readline()
            assert line, "the probe process died"
            result = json.loads(line)
            results[result["case"]] = (result["result"], _added_peak(process.pid, before) / MB)
    finally:
        process.kill()
        process.wait()
    for name, (result, added_mb) in results.items():
        limit = 200 if "fifty_mb" in name else 100  # The 50 MB string is copied (UTF-8 bytes, a tensor).
        assert added_mb < limit, (name, added_mb)
        assert result == (10_000 if name == "predict_documents" else True), name


@pytest.fixture(scope="module")
def server_process(artifacts):
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", f"--model_base_path={artifacts['base']}", f"--port={ports[0]}",
         f"--rest_api_port={ports[1]}", "--file_system_poll_wait_seconds=0", "--rest_read_timeout=5"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().startswith("Serving rin version 1")
    _cap_and_reset_peak(process.pid)
    yield {"pid": process.pid, "grpc": f"127.0.0.1:{ports[0]}", "rest": f"http://127.0.0.1:{ports[1]}",
           "rest_port": ports[1], "process": process}
    process.kill()
    process.wait()


def _rest_post(url, body: bytes, timeout=60, headers=None):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_server_answers_huge_sentences_truncated_and_refuses_oversized_requests(server_process):
    before = _reset_peak(server_process["pid"])
    grpc_client = client.GrpcClient(server_process["grpc"])
    outputs = grpc_client.predict_raw({"sentences": [MILLION_TOKENS]})
    assert outputs["truncated"].tolist() == [True] and outputs["num_tokens"].tolist() == [MAX_LENGTH]
    with pytest.raises(grpc.RpcError, match="max_request_bytes") as error:
        grpc_client.predict_raw({"sentences": ["x" * (40 << 20)]})
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError, match="max_request_sentences"):
        grpc_client.predict_raw({"sentences": ["a"] * 5000})
    url = server_process["rest"] + "/v1/models/rin:predict"
    status, answer = _rest_post(url, json.dumps({"instances": [MILLION_TOKENS]}).encode())
    assert status == 200 and answer["predictions"][0]["truncated"] is True
    assert _added_peak(server_process["pid"], before) < 200 * MB
    status, answer = _rest_post(url, json.dumps({"instances": ["x" * (50 << 20)]}).encode())
    assert status == 413 and "max_body_bytes" in answer["error"]
    for nested in (b"[" * 100_000, b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        status, answer = _rest_post(url, nested)  # Deeper than Python's JSON parser recurses.
        assert status == 400 and answer["error"].startswith("Malformed request")
    assert grpc_client.predict([SENTENCE]) == client.RestClient(server_process["rest"]).predict([SENTENCE])


def _predict_protos(server_process, inputs: dict, signature="serving_default"):
    """Sends tensor protos as they are, to see what the server makes of their declared shapes."""
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "rin"
    request.model_spec.signature_name = signature
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server_process["grpc"]))
    return stub.Predict(request, timeout=60)


def _declared_proto(dtype, dims, **values):
    proto = tf.make_tensor_proto([], dtype)
    proto.ClearField("tensor_shape")
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    for field, items in values.items():
        getattr(proto, field).extend(items)
    return proto


def test_server_checks_what_a_tensor_proto_declares_before_building_it(server_process):
    before = _reset_peak(server_process["pid"])
    alan = _declared_proto(tf.string, [1], string_val=[b"Alan"])
    # Each is small; built as TensorFlow builds a proto (its last value repeated), or its dimensions multiplied
    # out one by one, each would take gigabytes or minutes. A proto must carry every value its shape declares.
    for inputs, signature, match in (
        ({"sentences": _declared_proto(tf.string, [10**9], string_val=[b"Alan"])}, "serving_default",
         "max_request_sentences"),
        ({"tokens": _declared_proto(tf.string, [1000, 20_000], string_val=[b"Alan"])}, "serve_tokens",
         "max_request_bytes"),
        ({"tokens": _declared_proto(tf.string, [1000, 20_000])}, "serve_tokens", "max_request_bytes"),
        ({"tokens": _declared_proto(tf.string, [0, 2**59])}, "serve_tokens", "no dimension may exceed"),
        ({"sentences": _declared_proto(tf.float32, [10**9], float_val=[1.0])}, "serving_default", "rank-1 string"),
        ({"sentences": _declared_proto(tf.string, [-1], string_val=[b"Alan"])}, "serving_default",
         "negative dimension"),
        ({"sentences": _declared_proto(tf.string, [2**62] * 40_000)}, "serving_default", "rank-1 string"),
        ({f"x{i}": alan for i in range(20_000)}, "serving_default", "takes inputs"),
        ({"sentences": alan}, "x" * 100_000, "Unknown signature"),
        ({"tokens": _declared_proto(tf.string, [4096, 4096], string_val=[b"a"])}, "serve_tokens",
         r"declares shape \[4096, 4096\] \(16777216 strings\) and carries 1; send every string"),
        ({"sentences": _declared_proto(tf.string, [1], string_val=[b"a"] * 100_000)}, "serving_default",
         "carries 100000"),
    ):
        with pytest.raises(grpc.RpcError, match=match) as error:
            _predict_protos(server_process, inputs, signature)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # Long messages are cut to fit the status.
    assert _added_peak(server_process["pid"], before) < 100 * MB
    response = _predict_protos(server_process, {"sentences": _declared_proto(tf.string, [2], string_val=[
        SENTENCE.encode(), b"Alan"])})
    assert tf.make_ndarray(response.outputs["num_tokens"]).tolist() == [9, 1]
    assert server_process["process"].poll() is None


def test_server_checks_rest_names_rows_and_nesting_before_building_arrays(server_process):
    before = _reset_peak(server_process["pid"])
    url = server_process["rest"] + "/v1/models/rin:predict"
    for body, match in (
        ({"instances": [{str(i): ""} for i in range(20_000)]}, "max_request_sentences"),
        ({"instances": [{str(i): ""} for i in range(4_000)]}, "takes inputs"),  # A column per key, built, is n^2.
        ({"instances": [""] * 5_000}, "max_request_sentences"),
        ({"inputs": {str(i): [""] for i in range(200_000)}}, "takes inputs"),
        ({"inputs": {"sentences": [""] * 5_000}}, "max_request_sentences"),
        ({"instances": [json.loads("[" * 50 + '"a"' + "]" * 50)]}, "nested 1 deep"),
        ({"signature_name": "serve_tokens", "instances": [["a"], ["b", "c"]]}, "of equal lengths"),
        ({"instances": ["\ud800"]}, "Malformed request"),  # A lone surrogate: no UTF-8 text holds one.
        ({"instances": [[]] * 2_000_000}, "JSON values"),  # 8 MB that Python's parser would make 130 MB of lists.
    ):
        status, answer = _rest_post(url, json.dumps(body).encode())
        assert status == 400 and match in answer["error"], (status, answer["error"][:200])
    for route in ("", "/metadata"):  # A version of more digits than int() reads.
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{server_process['rest']}/v1/models/rin/versions/1{'0' * 5000}{route}", timeout=30)
        assert error.value.code == 404 and "No such version" in json.loads(error.value.read())["error"]
    assert _added_peak(server_process["pid"], before) < 200 * MB
    assert client.RestClient(server_process["rest"]).predict([SENTENCE]) == client.GrpcClient(
        server_process["grpc"]).predict([SENTENCE])


def test_server_keeps_answering_while_a_thousand_slow_clients_hold_sockets(server_process):
    slow = []
    try:
        for i in range(1000):
            sock = socket.create_connection(("127.0.0.1", server_process["rest_port"]))
            if i % 2:  # Half send a request's headers and the start of its body, then stall.
                sock.sendall(b"POST /v1/models/rin:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            slow.append(sock)
        began = time.time()
        rest = client.RestClient(server_process["rest"]).predict([SENTENCE])
        assert time.time() - began < 10
        assert rest == client.GrpcClient(server_process["grpc"]).predict([SENTENCE])
        slow[1].settimeout(30)
        assert re.match(rb"HTTP/1.1 408", slow[1].recv(100))  # Its body never came: answered after the timeout.
    finally:
        for sock in slow:
            sock.close()
    assert server_process["process"].poll() is None


def test_slow_senders_of_large_bodies_hold_a_bounded_number_of_them_and_small_requests_go_on():
    async def body_size(server, request):
        return {"bytes": len(await server.read_body(request))}

    server = web.WebServer([("POST", "/size", body_size)], max_body_bytes=8 << 20, max_pending=1).start()
    url, large = f"http://127.0.0.1:{server.port}/size", web.SMALL_BODY_BYTES + 1
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
            slow.sendall(b"POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{" % large)
            time.sleep(0.5)
            status, answer = _rest_post(url, b"x" * large)
            assert status == 503 and "1 large request bodies arriving" in answer["error"]
            assert _rest_post(url, b"x" * 100) == (200, {"bytes": 100})
            slow.sendall(b"x" * (large - 1))
            assert slow.recv(100).startswith(b"HTTP/1.1 200")
        assert _rest_post(url, b"x" * large) == (200, {"bytes": large})
    finally:
        server.stop()


def test_demo_refuses_an_oversized_body_before_reading_it_and_outlasts_slow_clients(artifacts):
    server = demo.make_server(artifacts["extractor"], port=0).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /extract HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 52428800\r\n\r\n{\"text\": \"")
            sock.settimeout(30)
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413") and b"max_body_bytes" in answer
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
        try:
            status, answer = _rest_post(f"http://127.0.0.1:{server.port}/extract",
                                        json.dumps({"text": SENTENCE}).encode(), timeout=10)
            assert status == 200 and answer["sentences"] == [[0, len(SENTENCE)]]
            status, answer = _rest_post(f"http://127.0.0.1:{server.port}/extract", b'{"text": "Alan \\ud800 Bean"}')
            assert status == 400 and "not valid Unicode" in answer["error"]
        finally:
            for sock in slow:
                sock.close()
    finally:
        server.stop()


def test_a_stopping_web_server_answers_the_requests_in_progress_and_takes_no_new_ones():
    started = threading.Event()

    async def slow(server, request):
        started.set()
        await server.run(time.sleep, 2)
        return {"done": True}

    server = web.WebServer([("POST", "/slow", slow)], shutdown_grace=30).start()
    url = f"http://127.0.0.1:{server.port}/slow"
    answers, stopped_after = _stopped_during_a_request(server, url, started)
    assert answers == [(200, {"done": True})] and 1 < stopped_after < 30
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, data=b"{}", timeout=5)


def _stopped_during_a_request(server, url, started):
    """Stops `server` once a request to `url` has `started`; returns its answers and the seconds `stop` took."""
    answers = []
    request = threading.Thread(target=lambda: answers.append(_rest_post(url, b"{}")))
    request.start()
    assert started.wait(30)
    begun = time.monotonic()
    server.stop()
    stopped_after = time.monotonic() - begun
    request.join(30)
    return answers, stopped_after


def test_a_stopping_web_server_answers_503_to_what_its_grace_leaves_and_stops_that_work():
    started, steps = threading.Event(), []

    async def endless(server, request):
        def work():
            started.set()
            while server.wants_work():  # As the model's chunks ask.
                steps.append(1)
                time.sleep(0.05)
            return {"done": True}

        return await server.run(work)

    server = web.WebServer([("POST", "/endless", endless)], shutdown_grace=1).start()
    answers, stopped_after = _stopped_during_a_request(server, f"http://127.0.0.1:{server.port}/endless", started)
    assert answers == [(503, {"error": "The server is stopping; retry the request."})]
    assert 1 <= stopped_after < 1 + 2 * web.WebServer.STOP_SECONDS
    taken = len(steps)
    time.sleep(0.3)
    assert len(steps) == taken  # The work stopped.


def test_text_counted_toward_the_limit_is_each_strings_length_at_least_one():
    from serving import server as serving_server

    strings = [b"", b"abc", "d\u00e9", b"", "x" * 10]
    assert serving_server._texts_size(strings) == sum(map(serving_server._text_size, strings)) == 1 + 3 + 2 + 1 + 10
    mixed = [b"ab", 3, None, "", 2.5]  # What a REST body may hold where strings go: each non-string counts 1.
    assert serving_server._texts_size(mixed) == sum(map(serving_server._text_size, mixed)) == 6
    assert serving_server._texts_size([]) == 0


def test_a_small_body_that_inflates_past_the_limit_is_refused_without_inflating_it():
    async def echo(server, request):
        return {"bytes": len(await server.read_body(request))}

    server = web.WebServer([("POST", "/echo", echo)], max_body_bytes=1 << 20).start()
    try:
        url = f"http://127.0.0.1:{server.port}/echo"
        bomb = gzip.compress(b" " * (1 << 28))  # 256 MiB of spaces in 256 KB.
        begun = time.monotonic()
        status, answer = _rest_post(url, bomb, headers={"Content-Encoding": "gzip"})
        assert (status, answer) == (413, {"error": "The request body inflates to more than 1048576 bytes; this "
                                                   "server reads up to that (max_body_bytes)."})
        assert time.monotonic() - begun < 10
        assert _rest_post(url, gzip.compress(b"x" * 1000), headers={"Content-Encoding": "gzip"}) == (200, {"bytes": 1000})
    finally:
        server.stop()


def test_sigterm_stops_the_server_after_answering_the_request_in_progress(server_process):
    """Runs last in this file: it stops the module's server."""
    process, answers, texts = server_process["process"], {}, [" ".join([SENTENCE] * 10)] * 4096
    body = json.dumps({"instances": texts}).encode()
    requests = [
        threading.Thread(target=lambda: answers.setdefault("rest", _rest_post(
            server_process["rest"] + "/v1/models/rin:predict", body, timeout=120))),
        threading.Thread(target=lambda: answers.setdefault("grpc", client.GrpcClient(
            server_process["grpc"], timeout=120).predict(texts))),
    ]
    for request in requests:
        request.start()
    time.sleep(0.5)
    assert all(request.is_alive() for request in requests)  # In progress (each takes seconds on 2 cores).
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)  # Impatient: ignored while the server stops.
    for request in requests:
        request.join(120)
    assert process.wait(timeout=60) == 0
    assert answers["rest"][0] == 200 and len(answers["rest"][1]["predictions"]) == len(answers["grpc"]) == 4096
    assert process.stdout.read().splitlines()[-2:] == [
        "Stopping: no new requests; answering those in progress (up to 25.0 s).", "Stopped."]


def test_the_serving_limits_benchmark_measures_each_request_it_describes(artifacts):
    """`benchmarks/serving_limits.py` at small sizes: each request gets the answer the limits give it."""
    run = subprocess.run(
        [sys.executable, "benchmarks/serving_limits.py", f"--model_base_path={artifacts['base']}",
         "--body_mib=0.05", "--gzip_bodies=2", "--gzip_mib=34", "--word_mib=0.01", "--sigterm_sentences=64",
         "--sigterm_after=0.2", "--shutdown_grace_seconds=0.2", "--loads=2"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"empty lists: a 0\.1 MiB body answered 400 in [\d.]+ s; server peak RSS \+\d+ MiB", lines[0])
    assert re.match(r"gzip: 2 bodies of 0\.0\d MiB, each 34 MiB inflated, answered \[413\] in ", lines[1])
    assert lines[2].startswith("long word: a sentence of one word") and "two-letter words" in lines[3]
    assert re.match(r"SIGTERM: 64 sentences in flight, grace 0\.2 s: the process exited [\d.]+ s after the signal; "
                    r"the client got (200|503)$", lines[4])
    assert re.match(r"memory per version: 2 loads in one process, resident [\d.]+, [\d.]+ GiB", lines[5])
