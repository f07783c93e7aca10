"""Serving figures for trained models: SavedModel throughput, gRPC latency, and export agreement.

    python benchmarks/serving_latency.py --model_dir=runs/webnlg_partial_k3
    python benchmarks/serving_latency.py --model_dir=runs/with_features,runs/without_features

Several models (comma-separated) are measured one after the other in one process, so their figures compare.
For each:

1. Exports the model (temporary base path) and checks that the exported
   `serving_default` signature gives the same triples as the in-process
   `RINTripleExtractor` on every WebNLG dev sentence.
2. Raw-text throughput of the SavedModel signature at batch 1 and 64 on the
   test sentences (without a test split: the first held-out split, or dev),
   and its in-process one-sentence latency (the floor under any server's);
   then that of `RINTripleExtractor.predict` at batch 64 (the Python path).
3. Time and added peak resident memory of one `serving_default` call and one
   `RINTripleExtractor.predict` call on one sentence of 100, 10,000 and 1,000,000
   tokens (both read only the first `max_length`).
4. Starts `serving.server` in a separate process and measures p50/p99 latency of
   one-sentence gRPC requests.

`--profile_batches=N` also traces N batch-64 calls after step 2 and prints where the CPU's op time went
(`op_profile.py`): in the pair rounds, the encoder, the word features or the text side, and by op type.

With `--lengths_only`, only step 3 runs (no data needed).

`--predict_only` instead times `RINTripleExtractor.predict` of each `--model_dir` at batch 64 on the WebNLG\* test
sentences and on the raw `webnlg_ood_dev` sentences (`--rounds` passes each) and its first call; to compare two
versions of the code, run it from each checkout in turn (`PYTHONPATH=<checkout>`):

    python benchmarks/serving_latency.py --model_dir=runs/webnlg_partial_k3 --predict_only

`--saved_models=DIR,DIR` instead times SavedModels already exported (version folders, e.g. one exported by an
earlier version of the code and one by this one) at batch 64 on the WebNLG\* test sentences, in alternating rounds
in this process, and prints each one's median rate:

    python benchmarks/serving_latency.py --saved_models=old_export/1,new_export/1

`--concurrent_clients=N` with one `--saved_models` folder instead starts `serving.server` on its base path twice,
with and without `--enable_batching` (both `--workers=N`), and sends the WebNLG\* test sentences one a gRPC request
from N client threads, in alternating rounds; it prints each server's sentences/s and request latency:

    python benchmarks/serving_latency.py --saved_models=export/1 --concurrent_clients=16
"""

import atexit
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops of exports, as serving.server does)
from absl import app, flags

from rin_keras import cli, export
from rin_keras.data.corpus import Corpus
from rin_keras.triple_extractor import RINTripleExtractor, artifact_file
from serving.contract import triples_from_outputs
from serving.client import GrpcClient
from tfds_builders import casrel

from op_profile import print_op_time  # This script's folder.

FLAGS = flags.FLAGS
flags.DEFINE_list("model_dir", None, "Training output folders or extractor .keras files, comma-separated.")
flags.DEFINE_list("saved_models", None, "Instead: exported SavedModel version folders to time at batch 64 in "
                  "alternating rounds.")
flags.DEFINE_integer("rounds", 6, "With --saved_models: timed rounds of each; with --predict_only: passes.", lower_bound=1)
flags.DEFINE_integer("requests", 500, "Timed one-sentence gRPC requests.", lower_bound=1)
flags.DEFINE_string("tfds_data_dir", None, "TFDS data folder.")
flags.DEFINE_bool("lengths_only", False, "Only time and measure memory by sentence length.")
flags.DEFINE_bool("predict_only", False, "Only time RINTripleExtractor.predict at batch 64 (--rounds passes).")
flags.DEFINE_integer("profile_batches", 0, "Also trace this many batch-64 calls and print op time by part of the "
                     "serving graph and op type.")
flags.DEFINE_integer("concurrent_clients", 0, "With one --saved_models folder: instead, client threads sending "
                     "one sentence a request to serving.server with and without --enable_batching.", lower_bound=0)
flags.register_validator("model_dir", lambda value: value or FLAGS.saved_models,
                          "--model_dir or --saved_models is required.")
cli.register_path_check("model_dir", artifact_file)
cli.register_path_check("saved_models", lambda path: cli.existing_file(os.path.join(path, "saved_model.pb")))


def _sentences(corpus, split):
    return [" ".join(t.decode("utf-8") for t in x["tokens"]) for x in corpus.examples(split)]


def _latencies_ms(call, sentences, count):
    """p50 and p99 of `call([sentence])` over `count` one-sentence requests, in ms."""
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        call([sentences[i % len(sentences)]])
        latencies.append(time.perf_counter() - start)
    return np.percentile(latencies, [50, 99]) * 1000


def _rate(function, sentences, batch_size):
    start = time.perf_counter()
    for begin in range(0, len(sentences), batch_size):
        function(sentences=tf.constant(sentences[begin:begin + batch_size]))
    return len(sentences) / (time.perf_counter() - start)


def _graph_part(op_name: str) -> str:
    """The part of the serving graph an op belongs to: the pair rounds (a loop over length-sorted chunks), the
    encoder, the word features, or the text side (tokeniser, lookups, decoding)."""
    if "/while/" in op_name:
        return "pair rounds"
    for part in ("encoder", "word_features"):
        if f"/{part}" in op_name:
            return part
    return "text and decoding"


def _memory(field: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _cost(call) -> tuple[float, float]:
    """Seconds and added peak RSS (MB) of `call()`; the peak is reset first (Linux /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _memory("VmRSS")
    start = time.perf_counter()
    call()
    return time.perf_counter() - start, (_memory("VmHWM") - before) / (1 << 20)


def _print_costs_by_length(extractor, signature):
    """Prints the time and added peak RSS of one call on one sentence of each length."""
    longest = " ".join(["Texas"] * extractor.max_length)  # Traces the longest shapes first.
    signature(sentences=tf.constant([longest]))
    extractor.predict([longest])
    for tokens in (100, 10_000, 1_000_000):
        sentence = " ".join(["Texas"] * tokens)
        for name, call in (("serving_default", lambda: signature(sentences=tf.constant([sentence]))),
                           ("predict", lambda: extractor.predict([sentence]))):
            seconds, added = _cost(call)
            print(f"{name}, one sentence of {tokens} tokens ({len(sentence)} bytes): {seconds * 1000:.0f} ms, "
                  f"peak RSS +{added:.0f} MB")


def main(argv):
    del argv
    if FLAGS.saved_models and FLAGS.concurrent_clients:
        if len(FLAGS.saved_models) != 1:
            sys.exit("--concurrent_clients times one --saved_models folder.")
        _compare_batching(FLAGS.saved_models[0], FLAGS.concurrent_clients)
        return
    if FLAGS.saved_models:
        _compare_saved_models(FLAGS.saved_models)
        return
    for model_dir in FLAGS.model_dir:
        print(f"== {model_dir}")
        if FLAGS.predict_only:
            _time_predict(model_dir)
        else:
            _report(model_dir)


def _time_predict(model_dir: str) -> None:
    """Prints the batch-64 rate of `RINTripleExtractor.predict` on WebNLG* test and raw `webnlg_ood_dev`
    sentences, and the time of its first call (which traces)."""
    extractor = RINTripleExtractor.from_preset(model_dir)
    start = time.perf_counter()
    extractor.predict(["Alan Bean was born in Wheeler, Texas."])
    print(f"first predict call: {time.perf_counter() - start:.2f} s")
    with open(os.path.join(casrel.default_manual_dir(), "webnlg_ood_dev", "raw_val.jsonl"), encoding="utf-8") as f:
        ood = [json.loads(line)["raw_text"] for line in f]
    test = _sentences(Corpus.prepare("webnlg", "partial", FLAGS.tfds_data_dir), "test")
    for name, sentences in (("WebNLG* test", test), ("webnlg_ood_dev raw", ood)):
        rates = []
        for _ in range(FLAGS.rounds):
            start = time.perf_counter()
            extractor.predict(sentences, batch_size=64)
            rates.append(len(sentences) / (time.perf_counter() - start))
        print(f"predict at batch 64 on {name} ({len(sentences)} sentences): median {statistics.median(rates):.0f} "
              f"sentences/s (passes: {', '.join(f'{v:.0f}' for v in rates)})")


def _compare_saved_models(paths: list[str]) -> None:
    """Prints the batch-64 raw-text rate of each SavedModel, timed in alternating rounds."""
    test = _sentences(Corpus.prepare("webnlg", "partial", FLAGS.tfds_data_dir), "test")
    signatures = {path: tf.saved_model.load(path).signatures["serving_default"] for path in paths}
    for signature in signatures.values():
        _rate(signature, test, 64)  # Traces every batch shape.
    rates = {path: [] for path in paths}
    for _ in range(FLAGS.rounds):
        for path, signature in signatures.items():
            rates[path].append(_rate(signature, test, 64))
    for path, values in rates.items():
        print(f"{path}: batch 64 on WebNLG* test, median {statistics.median(values):.0f} sentences/s "
              f"(rounds: {', '.join(f'{v:.0f}' for v in values)})")


def _compare_batching(path: str, clients: int) -> None:
    """Prints the rate and latency of one-sentence gRPC requests from `clients` threads to `serving.server` on
    `path`'s base path, with and without `--enable_batching`, timed in alternating rounds."""
    test = _sentences(Corpus.prepare("webnlg", "partial", FLAGS.tfds_data_dir), "test")
    base = os.path.dirname(os.path.normpath(path))
    servers, results = {}, {}
    try:
        for name, extra in (("without batching", []), ("--enable_batching", ["--enable_batching"])):
            servers[name] = _start_server(base, [f"--workers={clients}", *extra])
            client = GrpcClient(f"127.0.0.1:{servers[name][1]}", timeout=60)
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda s: client.predict([s]), test[:4 * clients]))  # Traces the batch shapes.
            results[name] = (client, [], [])
        for _ in range(FLAGS.rounds):
            for name, (client, rates, latencies) in results.items():
                def timed(sentence, client=client):
                    start = time.perf_counter()
                    client.predict([sentence])
                    return time.perf_counter() - start

                start = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                    latencies.extend(pool.map(timed, test))
                rates.append(len(test) / (time.perf_counter() - start))
        for name, (_, rates, latencies) in results.items():
            p50, p99 = np.percentile(np.asarray(latencies) * 1e3, [50, 99])
            print(f"{name}: {clients} clients, one sentence a request, median {statistics.median(rates):.0f} "
                  f"sentences/s (rounds: {', '.join(f'{v:.0f}' for v in rates)}); latency p50 {p50:.1f} ms, "
                  f"p99 {p99:.1f} ms")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()


def _start_server(base: str, extra_flags: list[str]) -> tuple[subprocess.Popen, str]:
    """Starts `serving.server` on `base` (free ports, no REST); returns the process and its gRPC port."""
    log = tempfile.TemporaryFile("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "serving.server", f"--model_base_path={base}", "--port=0", "--rest_api_port=0",
         *extra_flags], stdout=subprocess.PIPE, stderr=log, text=True,
    )
    started = re.search(r"gRPC [\d.]+:(\d+)", server.stdout.readline())
    if not started:  # The server stopped before serving: its last words say why.
        server.wait()
        log.seek(0)
        raise SystemExit(f"serving.server did not start on {base}: {log.read().strip().splitlines()[-1:]}")
    return server, started.group(1)


def _report(model_dir: str) -> None:
    """Prints the serving figures of one model."""
    extractor = RINTripleExtractor.from_preset(model_dir)
    config = extractor.config
    base = tempfile.mkdtemp(prefix="rin_serving_")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    path = export.export_version(extractor, base, 1)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    _print_costs_by_length(extractor, signature)
    if FLAGS.lengths_only:
        return
    corpus = Corpus.for_model(model_dir, config, FLAGS.tfds_data_dir)

    dev = _sentences(corpus, "validation")
    expected = extractor.predict(dev)
    exported = []
    for begin in range(0, len(dev), 64):
        outputs = signature(sentences=tf.constant(dev[begin:begin + 64]))
        exported.extend(triples_from_outputs({k: v.numpy() for k, v in outputs.items()}))
    key = lambda triples: [(t["subject"], t["relation"], t["object"], tuple(t["subject_span"]),  # noqa: E731
                            tuple(t["object_span"])) for t in triples]
    same = sum(key(a) == key(b) for a, b in zip(exported, expected))
    score_error = max((abs(a["score"] - b["score"]) for x, y in zip(exported, expected) for a, b in zip(x, y)),
                      default=0.0)
    print(f"agreement on {config.dataset} dev: {same}/{len(dev)} sentences give identical triples "
          f"({sum(map(len, expected))} triples; max score difference {score_error:.2e})")

    # Test when the data has it; else (webnlg3 without its test files) the first held-out split, or dev.
    timed = next((split for split in corpus.splits if split not in ("train", "validation")), "validation")
    test = _sentences(corpus, timed)
    print(f"timed on {config.dataset} {timed}")
    _rate(signature, test[:64], 1)  # One pass at batch 1 and one at 64 first: the timed calls find their kernels.
    _rate(signature, test[:64], 64)
    for batch_size, count in ((1, 200), (64, len(test))):
        print(f"SavedModel raw text, batch {batch_size}: {_rate(signature, test[:count], batch_size):.0f} sentences/s")
    extractor.predict(test[:64])  # Traces its first shapes.
    start = time.perf_counter()
    extractor.predict(test, batch_size=64)
    print(f"RINTripleExtractor.predict raw text, batch 64: {len(test) / (time.perf_counter() - start):.0f} sentences/s")
    if FLAGS.profile_batches:
        batches = [tf.constant(test[i:i + 64]) for i in range(0, 64 * FLAGS.profile_batches, 64) if i < len(test)]
        calls = iter(batches)
        print_op_time(lambda: signature(sentences=next(calls)), len(batches), _graph_part, unit="batch")
    p50, p99 = _latencies_ms(lambda s: signature(sentences=tf.constant(s)), test, FLAGS.requests)
    print(f"SavedModel in-process one-sentence calls ({FLAGS.requests}): p50 {p50:.1f} ms, p99 {p99:.1f} ms")

    server, port = _start_server(base, [])
    try:
        client = GrpcClient(f"127.0.0.1:{port}", timeout=30)
        for sentence in test[:20]:
            client.predict([sentence])
        p50, p99 = _latencies_ms(client.predict, test, FLAGS.requests)
        print(f"gRPC one-sentence requests ({FLAGS.requests}): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
