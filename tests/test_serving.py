"""Predict API, SavedModel export and the gRPC / REST server and clients, end to end."""

import base64
import concurrent.futures
import contextlib
import gzip
import importlib.util
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from unittest import mock

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from rin_keras import export, predict
from rin_keras.data.vocab import Vocabulary
from rin_keras.decoding import span_starts, tags_to_spans
from rin_keras.model import build_rin
from rin_keras.data import features
from rin_keras.data.tokenizer import tokenize
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor, split_pretokenized
from serving import client, contract, server
from serving.contract import triples_from_outputs

from conftest import assert_same_triples, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "Alan Bean was born in Wheeler , Texas . the of and a to is".split()
MAX_LENGTH = 12
SENTENCES = [
    "Alan Bean was born in Wheeler , Texas .",
    "the Bean  of\tWheeler is a Texas",
    "unknown words only",
    "Alan",
    "a " * 30,  # Truncated to MAX_LENGTH.
]
RAW_SENTENCES = [
    "Alan Bean was born in Wheeler, Texas.",
    'Suárez\'s "Bean" of 東京, Texas 🚀 (Wheeler).',
    "  Texas   Bean  ",
]
PRETRAINED = ["alan", "bean", "texas", "suárez", "東京", "wheeler", "obama"]
POS_LEXICON = {"was": "VBD", "born": "VBN", "in": "IN", "the": "DT", "of": "IN", "and": "CC", "a": "DT", ",": ","}


def _spread_model(vocab, seed=0):
    """A tiny untrained model with every word feature (part-of-speech tags included), whose relation head
    fires on about half the cells, with varied tags."""
    keras.utils.set_random_seed(seed)
    config = tiny_config(vocab_size=vocab.vocab_size, num_relations=vocab.num_relations, shape_dim=3, char_dim=4,
                         num_chars=len(vocab.chars) + 2, pretrained_dim=5, pretrained_rows=len(PRETRAINED) + 2,
                         pos_dim=3, unknown_word_rate=0.1)
    model = build_rin(config)
    rng = np.random.default_rng(seed)
    model.word_features.set_pretrained_vectors(rng.normal(0, 1, (len(PRETRAINED), 5)).astype("float32"))
    head = model.get_layer("relation_head")
    head.output_kernel.assign(rng.normal(0, 3, head.output_kernel.shape).astype("float32"))
    ner = model.get_layer("ner_head")
    ner.kernel.assign(rng.normal(0, 3, ner.kernel.shape).astype("float32"))
    words = [list(rng.choice(vocab.words[1:] + PRETRAINED, 10)) for _ in range(8)]
    inputs = RINPreprocessor.from_config_and_vocabulary(config, vocab).featurize(tf.ragged.constant(words))
    probs = model.predict_on_batch({k: v.numpy() for k, v in inputs.items()})
    logits = np.log(probs["relations"]) - np.log1p(-probs["relations"])
    head.output_bias.assign(head.output_bias.numpy() - np.median(logits, axis=(0, 1, 2)))
    return model


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A training folder of the old layout, its RINTripleExtractor, and version 1 exported under a base path."""
    root = tmp_path_factory.mktemp("serving")
    vocab = Vocabulary(["<pad>", "<unk>"] + WORDS, ["birthPlace", "location", "country"], sorted(set("".join(WORDS))),
                       PRETRAINED, POS_LEXICON)
    model = _spread_model(vocab, seed=3)  # A draw whose relation head fires on SENTENCES at 0.5 and at 0.7 too.
    model_dir = root / "run"
    os.makedirs(model_dir)
    model.save(model_dir / "best.keras")
    model.config.replace(max_length=MAX_LENGTH).save(str(model_dir / "config.json"))
    vocab.save(str(model_dir / "vocab"))
    extractor = RINTripleExtractor.from_preset(str(model_dir))
    base = root / "models"
    path = export.export_version(extractor, str(base))
    return {"model_dir": model_dir, "extractor": extractor, "base": base, "path": path, "vocab": vocab}


def test_pretokenized_text_splits_on_ascii_whitespace_like_tf():
    text = "a  b\tc\nd\x0be\x0cf\rg\x1ch\xa0i\u2003j"
    tokens = split_pretokenized(text)
    assert [t.text for t in tokens] == [t.decode() for t in tf.strings.split(text).numpy()]
    assert all(text[t.start:t.end] == t.text for t in tokens)
    assert [t.text for t in split_pretokenized(b"ab\xff c")] == ["ab\ufffd", "c"]
    assert split_pretokenized("  ") == []
    assert contract.split_tokens(text) == [t.text for t in tokens]  # What serving.client sends to serve_tokens.


def _check_char_spans(sentences, results):
    """Every triple's character spans cover its tokens in the original sentence, and the entity is that text."""
    checked = 0
    for sentence, result in zip(sentences, results):
        for triple in result["triples"]:
            for role in ("subject", "object"):
                start, end = triple[f"{role}_span"]
                char_start, char_end = triple[f"{role}_char_span"]
                assert (char_start, char_end) == (result["token_spans"][start][0], result["token_spans"][end - 1][1])
                words = sentence[char_start:char_end]
                assert triple[role] == words
                first, last = result["tokens"][start], result["tokens"][end - 1]
                assert words.startswith(first if first not in ("``", "''") else '"')
                assert words.endswith(last if last not in ("``", "''") else '"')
                checked += 1
    return checked


def test_extractor_char_spans_index_the_raw_sentence(served):
    results = served["extractor"].predict_detailed(RAW_SENTENCES)
    assert _check_char_spans(RAW_SENTENCES, results) > 10
    assert results[1]["tokens"][:4] == ["Suárez", "'s", "``", "Bean"]


def test_pretokenized_input_reads_tokens_as_given(served):
    extractor = served["extractor"]
    tokens = [s.split() for s in SENTENCES]
    results = extractor.predict_tokens(tokens)
    assert [r["tokens"] for r in results] == [t[:MAX_LENGTH] for t in tokens]
    assert _check_char_spans([" ".join(t) for t in tokens], results) > 10
    # Benchmark-style text reads the same through the raw-text tokeniser.
    assert_same_triples([r["triples"] for r in extractor.predict_detailed([" ".join(t) for t in tokens[:1]])],
                        [r["triples"] for r in results[:1]])


def test_documents_give_sentence_indices_and_document_offsets(served):
    document = "Alan Bean was born in Wheeler, Texas. Dr. Bean moved to the U.S. in 1969.  Texas Bean Alan."
    [result] = served["extractor"].predict_documents([document])
    assert len(result["sentences"]) == 3
    sentences = [document[s:e] for s, e in result["sentences"]]
    assert sentences[1].startswith("Dr. Bean")
    per_sentence = served["extractor"].predict(sentences)
    assert len(result["triples"]) == sum(len(t) for t in per_sentence) > 0
    for triple in result["triples"]:
        offset = result["sentences"][triple["sentence"]][0]
        start, end = triple["subject_char_span"]
        assert document[start:end] == sentences[triple["sentence"]][start - offset:end - offset]
        assert document[start:end] == triple["subject"]
    assert served["extractor"].predict_documents(["", "   "]) == [{"sentences": [], "triples": [], "truncated": []}] * 2


def test_in_graph_span_starts_are_those_of_tags_to_spans(rng):
    tags = rng.integers(0, 5, size=(200, 9)).astype("int32")
    starts = export.TripleGraph._span_starts(tf.constant(tags)).numpy()
    for row, row_starts in zip(tags, starts):
        spans = {end - 1: start for start, end in tags_to_spans(row)}
        assert [spans.get(i, i) for i in range(len(row))] == row_starts.tolist() == span_starts(row).tolist()
    assert any(end - start > 2 for row in tags for start, end in tags_to_spans(row))  # Multi-word spans too.


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7, 1.0])
def test_in_graph_thresholding_gives_the_extractors_triples(served, threshold):
    extractor = served["extractor"]
    extractor.threshold = threshold
    try:
        graph = export.TripleGraph(extractor)
        tokens = [tokenize(s) for s in SENTENCES]
        outputs = tf.function(graph.from_padded_tokens)(tf.constant(client._as_input(tokens, "tokens")))
        expected = [r["triples"] for r in extractor.predict_tokens(tokens)]
        words = [sentence[: extractor.max_length] for sentence in tokens]
        python_cells, graph_cells = extractor._python_cells(words), extractor._graph_cells(words)
    finally:
        extractor.threshold = 0.5
    assert threshold == 1.0 or sum(map(len, expected)) > 5
    assert_same_triples(triples_from_outputs({k: v.numpy() for k, v in outputs.items()}), expected)
    # predict's path on other backends (NumPy) finds the same cells as its path on TensorFlow (the graph's).
    for found, cells in zip(graph_cells, python_cells, strict=True):
        assert {k: v.tolist() for k, v in found.items() if k != "scores"} == {
            k: v.tolist() for k, v in cells.items() if k != "scores"}
        np.testing.assert_allclose(found["scores"], cells["scores"], rtol=1e-6)


def test_export_layout_and_signatures(served):
    assert served["path"] == os.path.join(served["base"], "1")
    assert os.path.exists(os.path.join(served["path"], "saved_model.pb"))
    assert os.path.exists(os.path.join(served["path"], contract.WARMUP_FILE))
    loaded = tf.saved_model.load(served["path"])
    assert set(loaded.signatures) == {"serving_default", "serve_tokens"}
    assert set(loaded.signatures["serving_default"].structured_outputs) == set(contract.OUTPUTS)
    with pytest.raises(FileExistsError):
        export.export_version(served["extractor"], str(served["base"]), version=1)


def test_signature_agrees_with_extractor(served):
    loaded = tf.saved_model.load(served["path"])
    outputs = loaded.signatures["serving_default"](sentences=tf.constant(SENTENCES))
    expected = served["extractor"].predict_detailed(SENTENCES)
    assert sum(len(r["triples"]) for r in expected) > 50  # The comparison covers many triples.
    assert_same_triples(triples_from_outputs({k: v.numpy() for k, v in outputs.items()}), [r["triples"] for r in expected])
    assert outputs["truncated"].numpy().tolist() == [r["truncated"] for r in expected] == [False] * 4 + [True]
    assert outputs["num_tokens"].numpy().tolist() == [len(r["tokens"]) for r in expected]

    raw = loaded.signatures["serving_default"](sentences=tf.constant(RAW_SENTENCES))
    assert_same_triples(triples_from_outputs({k: v.numpy() for k, v in raw.items()}),
                        served["extractor"].predict(RAW_SENTENCES))

    tokens = [tokenize(s) for s in SENTENCES]
    padded = client._as_input(tokens, "tokens")
    token_outputs = loaded.signatures["serve_tokens"](tokens=tf.constant(padded))
    assert_same_triples(triples_from_outputs({k: v.numpy() for k, v in token_outputs.items()}),
                        [r["triples"] for r in served["extractor"].predict_tokens(tokens)])


def test_signature_handles_bad_input(served):
    signature = tf.saved_model.load(served["path"]).signatures["serving_default"]
    bad = [b"", b"   \t ", " ".join(["Texas"] * 10_000).encode(), b"Alan \xff\xfe Bean", b"Alan\x00\x07 Bean \x1b[0m"]
    outputs = signature(sentences=tf.constant(bad))
    assert outputs["num_tokens"].numpy().tolist() == [0, 0, MAX_LENGTH, 3, 6]
    assert outputs["truncated"].numpy().tolist() == [False, False, True, False, False]
    assert outputs["num_triples"].numpy()[:2].tolist() == [0, 0]
    expected = served["extractor"].predict([s.decode("utf-8", errors="replace") for s in bad])
    assert_same_triples(triples_from_outputs({k: v.numpy() for k, v in outputs.items()}), expected)
    many = signature(sentences=tf.constant(["Alan Bean was born in Texas ."] * 1000))
    assert many["num_triples"].shape == (1000,)
    assert len(set(many["num_triples"].numpy().tolist())) == 1
    empty = signature(sentences=tf.constant([], tf.string))
    assert empty["num_triples"].shape == (0,)
    # Pre-tokenised: invalid UTF-8 reads as U+FFFD and "" anywhere is padding, as predict_tokens reads them.
    rows = [[b"\x80\x80", b"Alan", b"Bean", b"Texas"], [b"Alan", b"", b"\xff\xfe", b"Bean"]]
    tokens = tf.saved_model.load(served["path"]).signatures["serve_tokens"](tokens=tf.constant(rows))
    expected = served["extractor"].predict_tokens(rows)
    assert [r["tokens"] for r in expected] == [["\ufffd\ufffd", "Alan", "Bean", "Texas"],
                                               ["Alan", "\ufffd\ufffd", "Bean"]]
    assert tokens["num_tokens"].numpy().tolist() == [4, 3]
    assert_same_triples(triples_from_outputs({k: v.numpy() for k, v in tokens.items()}),
                        [r["triples"] for r in expected])
    assert sum(len(r["triples"]) for r in expected) > 5 and _check_char_spans(
        [" ".join(r["tokens"]) for r in expected], expected) > 5


@pytest.fixture(scope="module")
def running(served):
    model = server.ServedModel(str(served["base"]), "rin", max_batch_size=64)
    instance = server.ModelServer(model, grpc_port=0, rest_port=0, poll_seconds=0).start()
    yield instance
    instance.stop()


def test_grpc_and_rest_clients_match_in_process_predictions(served, running):
    expected = served["extractor"].predict(SENTENCES)
    grpc_client = client.GrpcClient(f"127.0.0.1:{running.grpc_port}")
    assert_same_triples(grpc_client.predict(SENTENCES), expected)
    tokens = [tokenize(s) for s in SENTENCES]
    assert_same_triples(client.GrpcClient(f"127.0.0.1:{running.grpc_port}", signature_name="serve_tokens").predict(
        tokens), [r["triples"] for r in served["extractor"].predict_tokens(tokens)])
    raw = served["extractor"].predict_detailed(RAW_SENTENCES)
    for answer in (grpc_client.predict(RAW_SENTENCES),
                   client.RestClient(f"http://127.0.0.1:{running.rest_port}").predict(RAW_SENTENCES)):
        assert_same_triples(answer, [r["triples"] for r in raw])
        assert _check_char_spans(RAW_SENTENCES, [{**r, "triples": a} for r, a in zip(raw, answer)]) > 10
    assert set(grpc_client.signature_defs()) == {"serving_default", "serve_tokens"}
    assert_same_triples(client.RestClient(f"http://127.0.0.1:{running.rest_port}").predict(SENTENCES), expected)
    for signature in ("serving_default", "serve_tokens"):  # No sentences, no request.
        assert client.GrpcClient(f"127.0.0.1:{running.grpc_port}", signature_name=signature).predict([]) == []
        assert client.RestClient(f"http://127.0.0.1:{running.rest_port}", signature_name=signature).predict([]) == []


def test_client_command_line_picks_the_protocols_port_and_reports_errors_in_one_line(served, running):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def client_cli(*args):
        return subprocess.run([sys.executable, "-m", "serving.client", *args, SENTENCES[0]],
                              capture_output=True, text=True, cwd=REPO, env=env, timeout=120)

    expected = served["extractor"].predict(SENTENCES[:1])
    for protocol, port in (("grpc", running.grpc_port), ("rest", running.rest_port)):
        answer = client_cli(f"--protocol={protocol}", f"--port={port}", "--host=127.0.0.1")
        assert answer.returncode == 0, answer.stderr
        assert_same_triples([json.loads(answer.stdout)["triples"]], expected)
    # Nothing listens on 127.0.0.2 (the test servers bind 127.0.0.1): each protocol's default port, one line.
    for protocol, address in (("rest", "127.0.0.2:8501"), ("grpc", "127.0.0.2:8500")):
        answer = client_cli(f"--protocol={protocol}", "--host=127.0.0.2")
        assert answer.returncode == 1 and address in answer.stderr and "Traceback" not in answer.stderr
    answer = client_cli("--protocol=grpc", f"--port={running.grpc_port}", "--host=127.0.0.1", "--model_name=other")
    assert answer.returncode == 1 and "NOT_FOUND" in answer.stderr and "Traceback" not in answer.stderr


def test_client_prints_what_predict_prints_of_pretokenized_lines_and_long_ones(served, running):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    lines = ["  Alan  Bean was born in\tWheeler , Texas .", " ".join(SENTENCES[0].split() * 4), SENTENCES[1]]

    def run(*command):
        done = subprocess.run([sys.executable, "-m", *command], input="\n".join(lines) + "\n", capture_output=True,
                              text=True, cwd=REPO, env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line) for line in done.stdout.splitlines()], done.stderr

    client = ["serving.client", "--protocol=rest", "--host=127.0.0.1", f"--port={running.rest_port}"]
    predicted, _ = run("rin_keras.predict", f"--model_dir={served['model_dir']}", "--pretokenized")
    printed, warned = run(*client, "--signature_name=serve_tokens")
    assert [(p["text"], p["truncated"]) for p in printed] == [(p["text"], p["truncated"]) for p in predicted]
    assert [p["truncated"] for p in printed] == [False, True, False] and "1 sentence(s) were longer" in warned
    assert sum(len(p["triples"]) for p in printed) > 0
    for mine, theirs in zip(printed, predicted):
        assert_same_triples([mine["triples"]], [theirs["triples"]])
        for triple in mine["triples"]:  # Spans index the line as given, as predict's do.
            for entity in ("subject", "object"):
                start, end = triple[f"{entity}_char_span"]
                assert mine["text"][start:end] == triple[entity]
    raw, _ = run(*client)
    assert [p["truncated"] for p in raw] == [p["truncated"] for p in run("rin_keras.predict", f"--model_dir="
                                                                          f"{served['model_dir']}")[0]]
    for flag in ("--signature_name=serve_text", "--timeout=-1", "--port=99999"):
        done = subprocess.run([sys.executable, "-m", *client[:-1], flag, "x"], capture_output=True, text=True,
                              cwd=REPO, env=env, timeout=120)
        assert done.returncode == 1 and "Traceback" not in done.stderr and "Flags parsing error" in done.stderr


def test_client_sends_standard_input_in_requests_of_batch_size_lines(served, running):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    lines = SENTENCES[:3] + ["x" * 300] + SENTENCES[3:4]

    def client_cli(batch_size):
        return subprocess.run([sys.executable, "-m", "serving.client", "--protocol=rest", "--host=127.0.0.1",
                               f"--port={running.rest_port}", f"--batch_size={batch_size}"],
                              input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=REPO, env=env,
                              timeout=120)

    model = running.model
    limits = model.max_request_sentences, model.max_request_bytes
    try:
        model.max_request_sentences = 2  # More lines than one request may hold.
        answer = client_cli(2)
        assert answer.returncode == 0, answer.stderr
        printed = [json.loads(line) for line in answer.stdout.splitlines()]
        assert [p["text"] for p in printed] == lines
        assert_same_triples([p["triples"] for p in printed], served["extractor"].predict(lines))
        answer = client_cli(3)
        assert answer.returncode == 1 and answer.stdout == "" and "(--max_request_sentences)" in answer.stderr
        assert "(sentences 1-3; none was answered)" in answer.stderr
        model.max_request_bytes = 200  # The long line's request is refused; the one before is answered.
        answer = client_cli(2)
        assert answer.returncode == 1 and "Traceback" not in answer.stderr
        assert [json.loads(line)["text"] for line in answer.stdout.splitlines()] == lines[:2]
        assert "(sentences 3-4; those before are answered above)" in answer.stderr
    finally:
        model.max_request_sentences, model.max_request_bytes = limits


def _words_as_triples(sentences):
    """A stand-in signature: each word of a sentence is one of its triples; a sentence "boom" fails the call."""
    texts = sentences.numpy().tolist()
    if b"boom" in texts:
        raise tf.errors.InvalidArgumentError(None, None, "boom")
    words = [t.split() for t in texts]
    width = max(map(len, words), default=0)
    return {"subjects": tf.constant([w + [b""] * (width - len(w)) for w in words], tf.string, [len(words), width]),
            "num_triples": tf.constant([len(w) for w in words], tf.int32)}


def _queued_behind_a_held_call(batcher, threads, entered, gate):
    """Runs `threads`, each sending one request to `batcher`: the first one's call holds the batcher (it sets
    `entered`, then waits for `gate`) while the others queue, in order."""
    threads[0].start()
    assert entered.wait(timeout=60)
    for i, thread in enumerate(threads[1:], 1):
        thread.start()
        while len(batcher._queue) < i:
            time.sleep(0.01)
    gate.set()
    for thread in threads:
        thread.join(timeout=60)


def test_request_batcher_shares_calls_and_answers_each_request_as_its_own_call():
    calls, entered, gate = [], threading.Event(), threading.Event()

    def function(sentences):
        entered.set()
        gate.wait()  # The first call holds the batcher until the others are queued.
        calls.append(len(sentences))
        return _words_as_triples(sentences)

    batcher = server.RequestBatcher(max_batch_size=4)
    requests = [["a"], ["b c d", "e"], ["f g"], ["h"], ["i j", "k", "l"], ["boom"], ["m"]]
    answers, errors = {}, {}

    def send(i):
        try:
            answers[i] = batcher.run(function, {"sentences": np.array([t.encode() for t in requests[i]], object)})
        except tf.errors.InvalidArgumentError as error:
            errors[i] = error

    _queued_behind_a_held_call(batcher, [threading.Thread(target=send, args=(i,)) for i in range(len(requests))],
                               entered, gate)
    for i, sentences in enumerate(requests):
        if i in answers:
            own = {k: v.numpy() for k, v in _words_as_triples(tf.constant([t.encode() for t in sentences])).items()}
            assert answers[i]["subjects"].shape == own["subjects"].shape  # Padded to its own longest row.
            assert (answers[i]["subjects"] == own["subjects"]).all()
            assert (answers[i]["num_triples"] == own["num_triples"]).all()
    assert set(errors) == {5} and len(answers) == len(requests) - 1  # Only the bad request failed.
    # [a], then [b c d, e] [f g] [h] shared, [i j, k, l] [boom] shared and failed, each alone, then [m].
    assert calls == [1, 4, 4, 3, 1, 1]


def test_request_batcher_leaves_a_very_wide_token_request_to_a_call_of_its_own():
    shapes, entered, gate = [], threading.Event(), threading.Event()

    def function(tokens):
        entered.set()
        gate.wait()
        shapes.append(tuple(tokens.shape))
        return {"num_triples": tf.zeros([tokens.shape[0]], tf.int32)}

    batcher = server.RequestBatcher(max_batch_size=64)
    requests = [np.full((1, 1), b"a", object), np.full((4, 4), b"a", object), np.full((1, 100_000), b"a", object),
                np.full((4, 6), b"a", object), np.full((2, 3), b"a", object)]
    _queued_behind_a_held_call(batcher, [threading.Thread(target=batcher.run, args=(function, {"tokens": r}))
                                         for r in requests], entered, gate)
    assert shapes == [(1, 1), (10, 6), (1, 100_000)]  # Not 10 rows padded to 100,000 tokens.


def test_request_batcher_timeout_counts_from_when_a_chunk_was_queued():
    calls = []

    def function(sentences):
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(1.0)
        return {"num_triples": tf.zeros([len(sentences)], tf.int32)}

    batcher = server.RequestBatcher(max_batch_size=64, timeout_seconds=0.8)
    one = {"sentences": np.array([b"a"], object)}
    first = threading.Thread(target=batcher.run, args=(function, one))
    first.start()  # Its call starts 0.8 s after it was queued and runs 1 s.
    time.sleep(0.9)
    queued = time.monotonic()
    batcher.run(function, one)  # Queued during the first call: its own 0.8 s are over when that call ends,
    first.join()
    assert calls[1] - queued < 1.3  # ~0.9 s after it was queued, not the first call's end plus 0.8 s (~1.7 s).


def test_batching_server_answers_concurrent_requests_as_a_plain_one(served):
    model = server.ServedModel(str(served["base"]), "rin", max_batch_size=8, batching=True)
    instance = server.ModelServer(model, grpc_port=0, rest_port=0, poll_seconds=0, workers=16).start()
    try:
        sentences = SENTENCES + RAW_SENTENCES
        expected = served["extractor"].predict_detailed(sentences)
        grpc_client = client.GrpcClient(f"127.0.0.1:{instance.grpc_port}", timeout=120)
        tokens_client = client.GrpcClient(f"127.0.0.1:{instance.grpc_port}", signature_name="serve_tokens",
                                          timeout=120)
        rest_client = client.RestClient(f"http://127.0.0.1:{instance.rest_port}", timeout=120)
        jobs = [(grpc_client, [s]) for s in sentences] + [(rest_client, [s]) for s in sentences]
        jobs += [(grpc_client, sentences[:3]), (tokens_client, [tokenize(s) for s in SENTENCES])]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda job: job[0].predict(job[1]), jobs))
        by_sentence = dict(zip(sentences, (r["triples"] for r in expected)))
        for (sender, sent), answer in zip(jobs, answers):
            if sender is tokens_client:
                assert_same_triples(answer, [r["triples"] for r in served["extractor"].predict_tokens(sent)])
            else:
                assert_same_triples(answer, [by_sentence[s] for s in sent])
    finally:
        instance.stop()


def _raw_request(running, inputs, model_name="rin", signature="serving_default", output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    request.output_filter.extend(output_filter)
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}")
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


@pytest.mark.parametrize(
    "inputs, model_name, signature, code",
    [
        ({"text": tf.make_tensor_proto(["Alan Bean"])}, "rin", "serving_default", grpc.StatusCode.INVALID_ARGUMENT),
        ({"sentences": tf.make_tensor_proto([1, 2], dtype=tf.int32)}, "rin", "serving_default", grpc.StatusCode.INVALID_ARGUMENT),
        ({"sentences": tf.make_tensor_proto([["a", "b"]])}, "rin", "serving_default", grpc.StatusCode.INVALID_ARGUMENT),
        ({"sentences": tf.make_tensor_proto(["Alan"])}, "other", "serving_default", grpc.StatusCode.NOT_FOUND),
        ({"sentences": tf.make_tensor_proto(["Alan"])}, "rin", "nope", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_grpc_bad_requests_get_a_status_and_serving_goes_on(running, inputs, model_name, signature, code):
    with pytest.raises(grpc.RpcError) as error:
        _raw_request(running, inputs, model_name, signature)
    assert error.value.code() == code
    response = _raw_request(running, {"sentences": tf.make_tensor_proto(["Alan Bean was born in Texas ."])})
    assert tf.make_ndarray(response.outputs["num_tokens"]).tolist() == [7]


def test_grpc_methods_not_served_answer_unimplemented_without_a_traceback(running, caplog):
    from tensorflow_serving.apis import classification_pb2

    with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(
                classification_pb2.ClassificationRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED and "answers Predict" in error.value.details()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_grpc_output_filter_keeps_the_outputs_named_and_refuses_unknown_names(running):
    sentences = {"sentences": tf.make_tensor_proto(["Alan Bean was born in Texas ."])}
    response = _raw_request(running, sentences, output_filter=["num_tokens", "subjects"])
    assert set(response.outputs) == {"num_tokens", "subjects"}
    with pytest.raises(grpc.RpcError, match="output_filter names \\['nope'\\]") as error:
        _raw_request(running, sentences, output_filter=["num_tokens", "nope"])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_large_and_odd_batches(served, running):
    grpc_client = client.GrpcClient(f"127.0.0.1:{running.grpc_port}", timeout=120)
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(1000)]
    assert_same_triples(grpc_client.predict(sentences), served["extractor"].predict(sentences))
    outputs = grpc_client.predict_raw({"sentences": [b"\xff\xfe", b"", b"Alan\x00 Bean", " ".join(["a"] * 10_000)]})
    assert outputs["num_tokens"].tolist() == [1, 0, 2, MAX_LENGTH]
    assert outputs["truncated"].tolist() == [False, False, False, True]


def _rest_json(url, body, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, body, headers or {}), timeout=60) as response:
        return json.loads(response.read())


def test_rest_bad_requests(running, caplog):
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{running.rest_port}/v1/models/rin:predict"
    # Not HTTP at all (a gRPC client's HTTP/2 preface and settings frame): refused, logged in one warning line.
    with socket.create_connection(("127.0.0.1", running.rest_port), timeout=30) as connection:
        connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        answer = connection.recv(1024)
        assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records and all(r.levelname == "WARNING" and r.exc_info is None for r in records)
    for body, status in ((b"{not json", 400), (b'{"instances": [1, 2]}', 400), (b'{"inputs": {"x": ["a"]}}', 400),
                         (b'{"instances": ["a"], "inputs": ["b"]}', 400)):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(url, body), timeout=30)
        assert error.value.code == status
        assert "error" in json.loads(error.value.read())
    for rows, message in (([{"sentences": "a"}, "b"], "instance 1 is not an object keyed by input name and instance 0 "
                                                      "is one"),
                          (["a", {"sentences": "b"}], "instance 1 is an object keyed by input name and instance 0 is "
                                                      "not one")):
        assert _rest(running, "/v1/models/rin:predict", {"instances": rows}) == (400, {
            "error": f"Malformed request: {message}: give every instance alike"})
    # A body that its Content-Encoding does not decode, or in one not read.
    for body, encoding, status, message in (
            (b"not gzip", "gzip", 400, "The request body could not be read: it is not gzip data."),
            (gzip.compress(b'{"instances": ["Alan Bean"]}')[:-12], "gzip", 400,
             "The request body could not be read: its gzip data is cut short."),
            (b"{}", "br", 415, "Content-Encoding 'br' is not read; send the body as it is, or in gzip, x-gzip, "
                               "deflate.")):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Encoding": encoding}), timeout=30)
        assert error.value.code == status and json.loads(error.value.read())["error"] == message
    # A gzip or deflate body reads as the same JSON.
    instances = json.dumps({"instances": ["Alan Bean was born in Texas ."]}).encode()
    plain = _rest_json(url, instances)
    for body, encoding in ((gzip.compress(instances), "gzip"), (zlib.compress(instances), "deflate")):
        assert _rest_json(url, body, {"Content-Encoding": encoding}) == plain
    # Another model; the status of a version not served (GET).
    for wrong, body in ((url.replace("/rin:", "/other:"), b"{}"), (url.replace(":predict", "/versions/7"), None)):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(wrong, body), timeout=30)
        assert error.value.code == 404
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    good = urllib.request.Request(url, json.dumps({"instances": ["Alan Bean"]}).encode())
    with urllib.request.urlopen(good, timeout=30) as response:
        assert json.load(response)["predictions"][0]["num_tokens"] == 2


def _rest(running, path, body=None):
    """The HTTP status and JSON answer of a REST request to the test server (a POST of `body` as JSON if given)."""
    request = urllib.request.Request(f"http://127.0.0.1:{running.rest_port}{path}",
                                     None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _b64(text: str | bytes) -> dict:
    return {"b64": base64.b64encode(text.encode() if isinstance(text, str) else text).decode()}


def test_rest_b64_values_read_as_the_bytes_they_encode(served, running, monkeypatch, caplog):
    url = "/v1/models/rin:predict"
    encoded = [_b64(s) for s in RAW_SENTENCES]
    rows, columns = _rest(running, url, {"instances": RAW_SENTENCES}), _rest(running, url, {"inputs": RAW_SENTENCES})
    assert_same_triples(triples_from_outputs(columns[1]["outputs"]), served["extractor"].predict(RAW_SENTENCES))
    assert _rest(running, url, {"instances": encoded}) == rows
    assert _rest(running, url, {"instances": [{"sentences": e} for e in encoded]}) == rows
    assert _rest(running, url, {"inputs": encoded}) == columns
    assert _rest(running, url, {"inputs": {"sentences": encoded[:1] + RAW_SENTENCES[1:]}}) == columns
    tokens = client._as_input([tokenize(s) for s in SENTENCES], "tokens")
    encoded_tokens = [[_b64(t) for t in row] for row in tokens]
    assert (_rest(running, url, {"signature_name": "serve_tokens", "inputs": encoded_tokens})
            == _rest(running, url, {"signature_name": "serve_tokens", "inputs": tokens}))
    # As TF Serving reads base64: line-wrapped (ASCII whitespace skipped), the padding optional.
    long_sentences = RAW_SENTENCES + [" ".join(RAW_SENTENCES)]
    wrapped = [{"b64": base64.encodebytes(s.encode()).decode().rstrip("=\n")} for s in long_sentences]
    assert "\n" in wrapped[-1]["b64"]
    assert _rest(running, url, {"inputs": wrapped}) == _rest(running, url, {"inputs": long_sentences})
    # Bytes that are not UTF-8, which a JSON string cannot carry, read as the gRPC path reads them.
    status, answer = _rest(running, url, {"instances": [_b64(b"Alan \xff\xfe Bean")]})
    assert status == 200 and answer["predictions"][0]["num_tokens"] == 3
    not_b64 = 'must be {"b64": "<base64 text>"}; got one with keys '
    for value, reason in (({"b64": "not base64!"}, "Unable to base64 decode a 'b64' value: Only base64 data"),
                          ({"b64": "YQ="}, "Unable to base64 decode a 'b64' value: Incorrect padding"),
                          ({"b64": "YQ==", "x": "y"}, not_b64 + "['b64', 'x']"),
                          ({"b64": 7}, not_b64 + "['b64']")):
        for body in ({"inputs": {"sentences": [value]}}, {"instances": [{"sentences": value}]}):
            status, answer = _rest(running, url, body)
            assert status == 400 and reason in answer["error"] and "\n" not in answer["error"], answer
    # The text limit counts the decoded bytes, not the base64 text.
    monkeypatch.setattr(running.model, "max_request_bytes", 64)
    assert _rest(running, url, {"inputs": [_b64("a" * 60)]})[0] == 200
    assert _rest(running, url, {"instances": [_b64("a" * 40), _b64("b" * 25)]}) == (400, {
        "error": "The request has 65 bytes of text; this server takes up to 64 (--max_request_bytes)."})
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_rest_metadata_gives_get_model_metadata_as_tf_serving_writes_it(running):
    status, metadata = _rest(running, "/v1/models/rin/metadata")
    assert status == 200, metadata
    assert metadata["model_spec"] == {"name": "rin", "version": "1", "signature_name": ""}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    sentences = signatures["serving_default"]["inputs"]["sentences"]
    assert sentences["dtype"] == "DT_STRING" and [d["size"] for d in sentences["tensor_shape"]["dim"]] == ["-1"]
    assert set(signatures["serving_default"]["outputs"]) == set(contract.OUTPUTS)
    assert signatures["serve_tokens"]["inputs"]["tokens"]["dtype"] == "DT_STRING"
    parsed = {name: json_format.ParseDict(value, meta_graph_pb2.SignatureDef()) for name, value in signatures.items()}
    assert parsed == client.GrpcClient(f"127.0.0.1:{running.grpc_port}").signature_defs()  # GetModelMetadata's.
    assert _rest(running, "/v1/models/rin/versions/1/metadata") == (200, metadata)
    assert _rest(running, "/v1/models/rin/versions/7/metadata") == (404, {
        "error": "Version 7 of rin is not served (serving 1)."})
    assert _rest(running, "/v1/models/other/metadata")[0] == 404


def test_grpc_model_status_gives_the_rest_status_and_reload_config_is_unimplemented(running, caplog):
    def model_status(name, version=None):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        return stub.GetModelStatus(request, timeout=30)

    with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        for version in (None, 1):
            [status] = model_status("rin", version).model_version_status
            assert (status.version, status.state) == (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
            assert (status.status.error_code, status.status.error_message) == (0, "")  # OK
        for name, version in (("rin", 7), ("other", None)):
            with pytest.raises(grpc.RpcError) as error:
                model_status(name, version)
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as error:
            stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=30)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    # The clients give what GET /v1/models/rin gives, over either protocol.
    rest_status = _rest(running, "/v1/models/rin")[1]
    assert client.GrpcClient(f"127.0.0.1:{running.grpc_port}").model_status() == rest_status
    assert client.RestClient(f"http://127.0.0.1:{running.rest_port}").model_status() == rest_status
    printed = subprocess.run([sys.executable, "-m", "serving.client", "--protocol=rest", "--host=127.0.0.1",
                              f"--port={running.rest_port}", "--status"],
                             capture_output=True, text=True, cwd=REPO, timeout=120, check=True).stdout
    assert json.loads(printed) == rest_status


def test_model_specs_are_checked_as_tf_serving_checks_them(running, caplog):
    def call(method, spec):
        """`method`'s answer to a request with `spec` as its model_spec (None: no model_spec): (code, details)."""
        request = {"Predict": predict_pb2.PredictRequest(),
                   "GetModelMetadata": get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"]),
                   "GetModelStatus": get_model_status_pb2.GetModelStatusRequest()}[method]
        if method == "Predict":
            request.inputs["sentences"].CopyFrom(tf.make_tensor_proto(["Alan Bean"]))
        if spec is not None:
            request.model_spec.CopyFrom(spec)
        try:
            getattr(models if method == "GetModelStatus" else predictions, method)(request, timeout=30)
        except grpc.RpcError as error:
            return error.code(), error.details()
        return grpc.StatusCode.OK, None

    invalid, not_found, ok = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OK
    unknown_label = (invalid, "Unrecognized servable version label: stable")
    with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        for method in ("Predict", "GetModelMetadata", "GetModelStatus"):
            assert call(method, None) == (invalid, "Missing ModelSpec")
            assert call(method, model_pb2.ModelSpec(name="rin")) == (ok, None)
        # Predict and metadata resolve a label before the model (TF Serving's ServerCore); the status reads only
        # the name and version.
        for method in ("Predict", "GetModelMetadata"):
            assert call(method, model_pb2.ModelSpec()) == (invalid, "ModelSpec has no name specified.")
            assert call(method, model_pb2.ModelSpec(name="rin", version_label="stable")) == unknown_label
            assert call(method, model_pb2.ModelSpec(name="other", version_label="stable")) == unknown_label
        assert call("GetModelStatus", model_pb2.ModelSpec())[0] == not_found
        assert call("GetModelStatus", model_pb2.ModelSpec(name="rin", version_label="stable")) == (ok, None)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    # REST names a label in the path: the same answers.
    for path, body in (("/v1/models/rin/labels/stable:predict", {"instances": ["Alan Bean"]}),
                       ("/v1/models/other/labels/stable:predict", {"instances": ["Alan Bean"]}),
                       ("/v1/models/rin/labels/stable/metadata", None)):
        assert _rest(running, path, body) == (400, {"error": "Unrecognized servable version label: stable"})
    assert _rest(running, "/v1/models/rin/labels/stable") == _rest(running, "/v1/models/rin")
    assert _rest(running, "/v1/models/other/labels/stable")[0] == 404


def test_a_request_over_the_limits_is_refused_before_it_waits_and_waiting_requests_hold_bounded_memory(served):
    model = server.ServedModel(str(served["base"]), "rin", max_request_sentences=4)
    servicer = server.PredictionServicer(model, workers=1, max_pending=8, max_pending_bytes=2000)

    class Client:
        def is_active(self):
            return True

        def abort(self, code, details):
            raise grpc.RpcError(code, details)

    def request(sentences):
        message = predict_pb2.PredictRequest()
        message.model_spec.name = "rin"
        message.inputs["sentences"].CopyFrom(tf.make_tensor_proto(sentences))
        return message

    def status_of(message):
        answers = []

        def call():
            try:
                answers.append(servicer.Predict(message, Client()))
            except grpc.RpcError as error:
                answers.append(error.args[0])

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        thread.join(60)
        return answers[0] if answers else "still waiting"

    long = ["Alan Bean was born in Texas " + "x" * 600 + " ."] * 3  # ~1,900 bytes with its strings' overhead
    with servicer._worker(Client(), 200):  # The one worker is busy.
        assert status_of(request(["Alan Bean ."] * 5)) == grpc.StatusCode.INVALID_ARGUMENT  # 5 sentences of 4.
        assert status_of(request(long)) == grpc.StatusCode.RESOURCE_EXHAUSTED  # 200 + ~1,900 bytes of 2,000.
    answer = status_of(request(long))  # Alone, it is taken whatever it holds.
    assert tf.make_ndarray(answer.outputs["num_tokens"]).tolist() == [8] * 3
    assert servicer._pending == servicer._held == 0


def test_a_request_whose_client_left_stops_at_the_next_chunk(served, running):
    model = server.ServedModel(str(served["base"]), "rin", max_batch_size=2)
    sentences = {"sentences": np.array([b"Alan Bean was born in Texas ."] * 10, dtype=object)}
    answers = iter([True, True, False])
    with pytest.raises(server.RequestError, match="stopped after 4 of 10 sentences") as error:
        model.predict("serving_default", sentences, is_wanted=lambda: next(answers))
    assert error.value.code == grpc.StatusCode.CANCELLED

    class GoneClient:  # A gRPC context whose client has left.
        def is_active(self):
            return False

        def abort(self, code, details):
            raise grpc.RpcError(code, details)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "rin"
    request.inputs["sentences"].CopyFrom(tf.make_tensor_proto(["Alan Bean was born in Texas ."]))
    with pytest.raises(grpc.RpcError) as error:
        server.PredictionServicer(model).Predict(request, GoneClient())
    assert error.value.args[0] == grpc.StatusCode.CANCELLED
    # REST: a client that closes its connection while its request runs.
    seen, started, closed = [], threading.Event(), threading.Event()
    original = running.model.predict

    def predict_after_the_client_left(*args):
        started.set()
        closed.wait(30)
        time.sleep(0.5)
        seen.append(args[-1]())
        return original(*args)

    running.model.predict = predict_after_the_client_left
    try:
        body = json.dumps({"instances": ["Alan Bean was born in Texas ."] * 100}).encode()
        sock = socket.create_connection(("127.0.0.1", running.rest_port))
        sock.sendall(b"POST /v1/models/rin:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        assert started.wait(60)
        sock.close()
        closed.set()
        for _ in range(100):
            if seen:
                break
            time.sleep(0.1)
    finally:
        running.model.predict = original
    assert seen == [False]
    assert client.RestClient(f"http://127.0.0.1:{running.rest_port}").predict(["Alan Bean"])  # Still serving.


def test_grpc_status_and_metadata_are_answered_while_predicts_wait_or_run(served):
    model = server.ServedModel(str(served["base"]), "rin")
    instance = server.ModelServer(model, grpc_port=0, rest_port=None, poll_seconds=0, workers=1, max_pending=2)
    instance.start()
    gate, started, original = threading.Event(), threading.Event(), model.predict

    def held_predict(*args):
        started.set()
        gate.wait(60)
        return original(*args)

    model.predict = held_predict
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "rin"
    request.inputs["sentences"].CopyFrom(tf.make_tensor_proto(["Alan Bean was born in Texas ."]))
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "rin"
    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata_request.model_spec.name = "rin"
    try:
        with grpc.insecure_channel(f"127.0.0.1:{instance.grpc_port}") as channel:
            predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            running_call = predict_stub.Predict.future(request, timeout=60)
            assert started.wait(60)
            waiting_call = predict_stub.Predict.future(request, timeout=60)  # Waits for the one worker.
            time.sleep(0.5)
            with pytest.raises(grpc.RpcError) as error:  # A third: more than max_pending.
                predict_stub.Predict(request, timeout=30)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "2 requests in progress" in error.value.details()
            for _ in range(2 * server.SERVICE_THREADS):
                [status] = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                    status_request, timeout=5).model_version_status
                assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
                assert predict_stub.GetModelMetadata(metadata_request, timeout=5).model_spec.version.value == 1
            gate.set()
            expected = served["extractor"].predict(["Alan Bean was born in Texas ."])
            for call in (running_call, waiting_call):
                outputs = {key: tf.make_ndarray(value) for key, value in call.result().outputs.items()}
                assert_same_triples(triples_from_outputs(outputs), expected)
    finally:
        gate.set()
        model.predict = original
        instance.stop()


def test_server_picks_up_a_new_version(served, tmp_path):
    base = tmp_path / "models"
    extractor = served["extractor"]
    export.export_version(extractor, str(base))
    model = server.ServedModel(str(base))
    assert model.version == 1
    newer = RINTripleExtractor(_spread_model(served["vocab"], seed=1), extractor.preprocessor)
    assert export.export_version(newer, str(base)).endswith("2")
    assert not any(name.startswith(".tmp") for name in os.listdir(base))
    model.refresh()
    assert model.version == 2
    # Requests now run the new model, whose triples differ from the first one's.
    outputs, version = model.predict(contract.SENTENCES_SIGNATURE, {"sentences": np.array(RAW_SENTENCES, object)})
    assert version == 2
    assert_same_triples(triples_from_outputs(outputs), newer.predict(RAW_SENTENCES))
    assert newer.predict(RAW_SENTENCES) != extractor.predict(RAW_SENTENCES)
    # Version 2 removed and another export written under its number: the server loads it, once.
    shutil.rmtree(base / "2")
    export.export_version(extractor, str(base), 2)
    loads = []
    with mock.patch.object(model, "_load", side_effect=lambda version: (loads.append(version),
                                                                        server.ServedModel._load(model, version))):
        model.refresh()
        model.refresh()
    assert loads == [2]
    outputs, _ = model.predict(contract.SENTENCES_SIGNATURE, {"sentences": np.array(RAW_SENTENCES, object)})
    assert_same_triples(triples_from_outputs(outputs), extractor.predict(RAW_SENTENCES))


def test_a_version_that_fails_to_load_is_tried_again_a_few_times_then_left(served, tmp_path):
    base = tmp_path / "models"
    export.export_version(served["extractor"], str(base))
    model = server.ServedModel(str(base), max_load_retries=2, load_retry_seconds=3600.0)
    for name in ("02", "\u00b2", "\u0663", ".tmp-7"):  # Not version folders: ignored.
        (base / name).mkdir()
    (base / "3").write_text("a file, not a folder")
    (base / "2").mkdir()  # A version still being copied: no saved_model.pb yet.
    assert contract.versions(str(base)) == [1, 2]
    loads, load = [], server.ServedModel._load

    def counted_load(self, version):
        loads.append(version)
        return load(self, version)

    with mock.patch.object(server.ServedModel, "_load", counted_load):
        with pytest.raises(OSError, match="does not exist"):
            model.refresh()
        assert model.refresh() and loads == [2]  # Not again within the retry interval.
        assert [(s["version"], s["state"]) for s in model.version_status()] == [("2", "LOADING"), ("1", "AVAILABLE")]
        model.load_retry_seconds = 0.0
        for _ in range(4):
            with contextlib.suppress(OSError):
                model.refresh()
        assert loads == [2, 2, 2] and model.version == 1  # The first load and two retries, then left.
        status = model.version_status()
        assert [(s["version"], s["state"]) for s in status] == [("2", "END"), ("1", "AVAILABLE")]
        assert "does not exist" in status[0]["status"]["error_message"]
        # Removed and written again (a new push of version 2): loaded.
        (base / "2").rmdir()
        model.refresh()
        export.export_version(served["extractor"], str(base), version=2)
        model.refresh()
    assert model.version == 2 and loads == [2, 2, 2, 2]
    assert [s["state"] for s in model.version_status()] == ["AVAILABLE"]
    # A version that loads on a retry (its folder was being copied) is listed once, as served.
    (base / "3").unlink()
    (base / "3").mkdir()
    model.load_retry_seconds = 0.0
    with pytest.raises(OSError, match="does not exist"):
        model.refresh()
    shutil.copytree(base / "1", base / "3", dirs_exist_ok=True)
    model.refresh()
    assert model.version == 3
    assert [(s["version"], s["state"]) for s in model.version_status()] == [("3", "AVAILABLE")]


def test_a_server_starts_on_the_newest_version_that_loads(served, tmp_path):
    base = tmp_path / "models"
    export.export_version(served["extractor"], str(base))
    (base / "2").mkdir()  # Being copied, or broken: tried again later, as a running server does.
    model = server.ServedModel(str(base))
    assert [(s["version"], s["state"]) for s in model.version_status()] == [("2", "LOADING"), ("1", "AVAILABLE")]
    (tmp_path / "broken" / "1").mkdir(parents=True)
    with pytest.raises(OSError, match=r"No version under .*broken' loads; version 1: .*does not exist"):
        server.ServedModel(str(tmp_path / "broken"))


def test_a_port_in_use_is_refused_in_one_line(running):
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{running.grpc_port} for gRPC"):
        server.ModelServer(running.model, grpc_port=running.grpc_port, rest_port=None)
    second = server.ModelServer(running.model, grpc_port=0, rest_port=running.rest_port, poll_seconds=0)
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{running.rest_port} for HTTP: Address already "):
        second.start()


def test_grpc_answers_name_the_version_that_computed_them(running):
    predict_, model = running.model.predict, running.model

    def swapped_while_running(*args, **kwargs):  # A newer version is served by the time the answer is sent.
        outputs, version = predict_(*args, **kwargs)
        model.version = version + 1
        return outputs, version

    served_version = model.version
    try:
        with mock.patch.object(model, "predict", side_effect=swapped_while_running):
            response = _raw_request(running, {"sentences": tf.make_tensor_proto(SENTENCES[:1])})
    finally:
        model.version = served_version
    assert response.model_spec.version.value == served_version


def test_command_lines_read_text_that_is_not_utf_8_as_u_fffd(served, tmp_path, running):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "Alan \\ud800 Bean"}\n{"text": "ok"}\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}", f"--input={texts}",
         f"--output={tmp_path / 'out.jsonl'}"], capture_output=True, text=True, cwd=REPO, env=env)
    assert run.returncode == 0, run.stderr
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in written] == ["Alan \ufffd Bean", "ok"]
    stdin = "Alan Bean was born in Wheeler , Texas .\r\nA \xff b\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    for command in (["rin_keras.predict", f"--model_dir={served['model_dir']}"],
                    ["serving.client", "--protocol=rest", f"--port={running.rest_port}", "--host=127.0.0.1"]):
        run = subprocess.run([sys.executable, "-m", *command], input=stdin, capture_output=True, cwd=REPO, env=env)
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        answers = [json.loads(line) for line in run.stdout.decode("utf-8").splitlines()]
        assert [a["text"] for a in answers] == ["Alan Bean was born in Wheeler , Texas .", "A \ufffd b"]
    run = subprocess.run([sys.executable, "-m", "rin_keras.export", f"--model_dir={served['model_dir']}",
                          f"--export_dir={texts}"], capture_output=True, text=True, cwd=REPO, env=env)
    assert run.returncode == 1 and "texts.jsonl is a file; name a folder" in run.stderr and "Traceback" not in run.stderr


def test_command_lines_write_utf_8_and_stop_quietly_when_their_reader_leaves(served, tmp_path, running):
    """JSON lines are UTF-8 whatever the locale names, and a reader that leaves (`| head -1`) ends the command with
    status 141, as it ends a Unix filter, not with a traceback."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONIOENCODING": "cp1252"}  # As Windows writes to a file.
    texts = ["Marie Curie was born in Krak\u00f3w.", "\u674e\u767d was born in Suyab \U0001f600."]
    for command in (["rin_keras.predict", f"--model_dir={served['model_dir']}", "--batch_size=1"],
                    ["serving.client", "--protocol=rest", f"--port={running.rest_port}", "--host=127.0.0.1",
                     "--batch_size=1"]):
        run = subprocess.run([sys.executable, "-m", *command, *texts], capture_output=True, cwd=REPO, env=env)
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        assert [json.loads(line)["text"] for line in run.stdout.decode("utf-8").splitlines()] == texts
        with open(tmp_path / "stderr", "w+b") as stderr:
            process = subprocess.Popen([sys.executable, "-m", *command], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=stderr, cwd=REPO, env=env)
            process.stdin.write(b"It was.\n" * 2000)
            process.stdin.close()
            assert json.loads(process.stdout.readline())["text"] == "It was."
            process.stdout.close()
            assert process.wait(timeout=120) == 141
            stderr.seek(0)
            assert b"Traceback" not in stderr.read()


def test_predict_and_export_command_lines(served, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    lines = subprocess.run(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}"],
        input="\n".join(SENTENCES[:2]) + "\n", capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout.splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["text"] for r in results] == SENTENCES[:2]
    assert_same_triples([r["triples"] for r in results], served["extractor"].predict(SENTENCES[:2]))
    documents = tmp_path / "docs.jsonl"
    documents.write_text("".join(json.dumps({"text": t}) + "\n" for t in RAW_SENTENCES[:2]), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}", f"--input={documents}",
         f"--output={tmp_path / 'out.jsonl'}", "--documents"],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    )
    assert "2/2" in run.stderr  # The progress bar.
    whole_output = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    written = [json.loads(line) for line in whole_output.splitlines()]
    assert [r["text"] for r in written] == RAW_SENTENCES[:2]
    expected_documents = served["extractor"].predict_documents(RAW_SENTENCES[:2])
    assert [r["sentences"] for r in written] == [r["sentences"] for r in expected_documents]
    assert_same_triples([r["triples"] for r in written], [r["triples"] for r in expected_documents])
    # Stopped while writing the second result: --resume keeps the first and writes the second.
    first_line = whole_output.splitlines(keepends=True)[0]
    (tmp_path / "out.jsonl").write_text(first_line + '{"text": "Mar', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}", f"--input={documents}",
         f"--output={tmp_path / 'out.jsonl'}", "--documents", "--resume"],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    )
    assert "Resuming after the 1 texts" in run.stderr and "2/2" in run.stderr
    resumed = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert resumed[0] == written[0] and [r["text"] for r in resumed] == RAW_SENTENCES[:2]
    assert_same_triples([r["triples"] for r in resumed], [r["triples"] for r in written])  # Scores as batched.
    # A bad line stops the run there, after the results of the texts before it (in its chunk too) are written;
    # texts cut at max_length are counted in a warning.
    long_text = " ".join(["Alan Bean was born ."] * MAX_LENGTH)
    documents.write_text(json.dumps({"text": long_text}) + '\n{"text": "ok"}\n{"txt": "no"}\n{"text": "x"}\n',
                         encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}", f"--input={documents}",
         f"--output={tmp_path / 'out.jsonl'}"], capture_output=True, text=True, cwd=REPO, env=env)
    assert run.returncode == 1 and "docs.jsonl:3: expected a JSON object with a \"text\" string." in run.stderr
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r["truncated"]) for r in written] == [(long_text, True), ("ok", False)]
    run = subprocess.run(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}", long_text, "ok"],
        capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert f"1 text(s) were longer than the model reads ({MAX_LENGTH} tokens) and were cut" in run.stderr
    documents.write_text('{"text": "ok"}\n{"text": 1}\n', encoding="utf-8")
    texts, _ = predict._inputs(str(documents), [])
    assert next(texts) == "ok"  # Texts come as they are read.
    with pytest.raises(predict.InputError, match="docs.jsonl:2: expected a JSON object with a \"text\" string.$"):
        next(texts)
    out = subprocess.run(
        [sys.executable, "-m", "rin_keras.export", f"--model_dir={served['model_dir']}",
         f"--export_dir={tmp_path / 'models'}", "--version=7"],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout
    assert out.strip().endswith(os.path.join("models", "7"))
    assert os.path.exists(tmp_path / "models" / "7" / "saved_model.pb")
    assert contract.export_source(str(tmp_path / "models" / "7")) == os.path.abspath(served["model_dir"])
    if sys.platform == "linux":  # A folder that cannot be made (even by root): one line.
        run = subprocess.run([sys.executable, "-m", "rin_keras.export", f"--model_dir={served['model_dir']}",
                              "--export_dir=/proc/rin_keras_models"], capture_output=True, text=True, cwd=REPO, env=env)
        assert run.returncode == 1 and "cannot make --export_dir=/proc/rin_keras_models" in run.stderr
        assert "Traceback" not in run.stderr
    if importlib.util.find_spec("jax") is not None:  # Another backend: one line that says which to use.
        run = subprocess.run([sys.executable, "-m", "rin_keras.export", f"--model_dir={served['model_dir']}",
                              f"--export_dir={tmp_path / 'jax'}"], capture_output=True, text=True, cwd=REPO,
                             env={**env, "KERAS_BACKEND": "jax"})
        assert run.returncode == 1 and "KERAS_BACKEND=tensorflow" in run.stderr and "Traceback" not in run.stderr
        assert not os.path.exists(tmp_path / "jax")


def test_predict_command_line_answers_each_chunk_before_its_input_ends(served):
    """Texts are read a chunk (4 x --batch_size) at a time: the first chunk's results come while stdin is open."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rin_keras.predict", f"--model_dir={served['model_dir']}", "--batch_size=1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(5)]
    try:
        process.stdin.write("".join(s + "\n" for s in sentences[:4]))
        process.stdin.flush()
        first = [json.loads(lines.get(timeout=120)) for _ in range(4)]
        assert process.poll() is None
        process.stdin.write(sentences[4] + "\n")
        process.stdin.close()
        last = json.loads(lines.get(timeout=120))
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    results = first + [last]
    assert [r["text"] for r in results] == sentences
    assert_same_triples([r["triples"] for r in results], served["extractor"].predict(sentences))


def test_rest_client_imports_neither_rin_keras_nor_tensorflow():
    code = ("import sys; from serving.client import RestClient; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rin_keras', 'keras', 'tensorflow', 'grpc'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


def test_serving_benchmark_times_saved_models_in_alternating_rounds_and_predict(served, tmp_path):
    copy = shutil.copytree(served["path"], tmp_path / "copy")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # WebNLG* test sentences from the shared data.
    out = subprocess.run(
        [sys.executable, os.path.join("benchmarks", "serving_latency.py"), f"--saved_models={served['path']},{copy}",
         "--rounds=2", f"--tfds_data_dir={tmp_path / 'tfds'}"],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout
    lines = [line for line in out.splitlines() if "median" in line]
    assert [line.split(":")[0] for line in lines] == [str(served["path"]), str(copy)]
    assert all(re.search(r"median \d+ sentences/s \(rounds: \d+, \d+\)$", line) for line in lines)
    out = subprocess.run(
        [sys.executable, os.path.join("benchmarks", "serving_latency.py"), f"--model_dir={served['model_dir']}",
         "--predict_only", "--rounds=2", f"--tfds_data_dir={tmp_path / 'tfds'}"],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout
    assert re.search(r"^first predict call: \d+\.\d\d s$", out, re.M)
    assert re.findall(r"^predict at batch 64 on (.+) \((\d+) sentences\): median \d+ sentences/s \(passes: \d+, \d+\)$",
                      out, re.M) == [("WebNLG* test", "703"), ("webnlg_ood_dev raw", "2136")]
