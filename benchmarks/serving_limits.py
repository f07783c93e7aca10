"""What requests that test the limits of `serving.server` (the local TF Serving stand-in) cost it.

    python -m rin_keras.export --model_dir=runs/webnlg_partial_k3 --export_dir=/tmp/rin_limits --version=1
    python benchmarks/serving_limits.py --model_base_path=/tmp/rin_limits

Starts `python -m serving.server` on the export (free ports; memory read from /proc, so Linux) and, one after
another:

- `empty lists`: POSTs a REST `:predict` body of --body_mib MiB of empty lists (`{"instances": [[],[],...]}`),
  which the server refuses before parsing it: the seconds to the answer, and the growth of its peak RSS (VmHWM);
- `gzip`: POSTs --gzip_bodies gzip bodies at once, each inflating to --gzip_mib MiB of spaces (past the body
  limit), while another client sends one sentence every 0.1 s: the seconds until every body is refused, that
  client's slowest answer, and the server's peak RSS;
- `long word`: one gRPC Predict of a sentence that is a single word of --word_mib MiB, and one of as many bytes of
  two-letter words;
- `SIGTERM`: a REST request of --sigterm_sentences sentences of 27 words, and SIGTERM --sigterm_after seconds
  later (the server runs with --shutdown_grace_seconds): the seconds from the signal to the exit, and the client's
  status;
- `memory per version`: in this process, the export loaded --loads times by `serving.server.ServedModel`: the
  resident memory after each load, after `gc.collect()` and glibc's `malloc_trim`.
"""

import concurrent.futures
import ctypes
import gc
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from serving import contract  # noqa: E402
from serving.client import GrpcClient  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_base_path", None, "An export's base path (folders of numbered versions).", required=True)
flags.DEFINE_float("body_mib", 24, "MiB of the empty-lists REST body.", lower_bound=0.001)
flags.DEFINE_integer("gzip_bodies", 10, "gzip bodies sent at once.", lower_bound=1)
flags.DEFINE_integer("gzip_mib", 1024, "MiB of spaces each gzip body inflates to.", lower_bound=1)
flags.DEFINE_float("word_mib", 4, "MiB of the one-word sentence (and of the sentence of two-letter words).",
                   lower_bound=0.001)
flags.DEFINE_integer("sigterm_sentences", 4096, "Sentences of the request in flight at SIGTERM.", lower_bound=1)
flags.DEFINE_float("sigterm_after", 1.0, "Seconds between that request and SIGTERM.", lower_bound=0)
flags.DEFINE_float("shutdown_grace_seconds", 2.0, "The server's --shutdown_grace_seconds (shorter than the "
                   "request, so that the request is cut short).", lower_bound=0)
flags.DEFINE_integer("loads", 8, "Loads of the export in this process, for the memory a version keeps (0: skip).",
                     lower_bound=0)

SENTENCE = "Alan Bean was born in Wheeler , Texas ."
LONG_SENTENCE = " ".join([SENTENCE] * 3)  # 27 words: a request of them takes a while (pairs grow with n^2).


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int | str, field: str) -> int:
    """A memory field of /proc/<pid>/status (`VmHWM`, `VmRSS`) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


class Server:
    """`python -m serving.server` on the base path, with a gRPC and a REST port of its own."""

    def __init__(self, base_path: str):
        self.grpc_port, self.rest_port = _free_port(), _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving.server", f"--model_base_path={base_path}", f"--port={self.grpc_port}",
             f"--rest_api_port={self.rest_port}", f"--shutdown_grace_seconds={FLAGS.shutdown_grace_seconds}",
             "--file_system_poll_wait_seconds=0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        line = self.process.stdout.readline()
        if not line.startswith("Serving"):
            raise SystemExit(f"serving.server did not start on {base_path}: {line or 'no output'}")
        self.grpc = GrpcClient(f"127.0.0.1:{self.grpc_port}", timeout=600)

    def post(self, body: bytes, headers: dict | None = None, timeout: float = 600) -> tuple[int, float]:
        """POSTs a body to `:predict`; returns the status and the seconds to the answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=timeout)
        start = time.perf_counter()
        try:
            connection.request("POST", "/v1/models/rin:predict", body,
                               {"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            response.read()
            return response.status, time.perf_counter() - start
        except (ConnectionError, http.client.HTTPException):  # The server closed the connection (stopping).
            return 0, time.perf_counter() - start
        finally:
            connection.close()

    def peak_mib(self) -> float:
        return _status_kib(self.process.pid, "VmHWM") / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=120)


def empty_lists(server: Server) -> None:
    count = int(FLAGS.body_mib * 2**20) // 3
    body = b'{"instances": [' + b"[]," * (count - 1) + b"[]]}"
    before = server.peak_mib()
    status, seconds = server.post(body)
    print(f"empty lists: a {len(body) / 2**20:.1f} MiB body answered {status} in {seconds:.2f} s; "
          f"server peak RSS +{server.peak_mib() - before:.0f} MiB")


def gzip_bodies(server: Server) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip's header.
    chunk = b" " * 2**20
    body = b"".join(compressor.compress(chunk) for _ in range(FLAGS.gzip_mib)) + compressor.flush()
    before = server.peak_mib()
    slowest, done = [0.0], threading.Event()

    def probe():
        while not done.is_set():
            status, seconds = server.post(json.dumps({"instances": [SENTENCE]}).encode())
            slowest[0] = max(slowest[0], seconds)
            done.wait(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(FLAGS.gzip_bodies) as pool:
        statuses = list(pool.map(lambda _: server.post(body, {"Content-Encoding": "gzip"})[0],
                                 range(FLAGS.gzip_bodies)))
    seconds = time.perf_counter() - start
    done.set()
    prober.join()
    print(f"gzip: {FLAGS.gzip_bodies} bodies of {len(body) / 2**20:.2f} MiB, each {FLAGS.gzip_mib} MiB inflated, "
          f"answered {sorted(set(statuses))} in {seconds:.2f} s; a sentence every 0.1 s meanwhile: slowest answer "
          f"{slowest[0]:.2f} s; server peak RSS {before / 1024:.2f} -> {server.peak_mib() / 1024:.2f} GiB")


def long_word(server: Server) -> None:
    size = int(FLAGS.word_mib * 2**20)
    for name, sentence in (("one word", "a" * size), ("two-letter words", "ab " * (size // 3))):
        start = time.perf_counter()
        server.grpc.predict([sentence])
        print(f"long word: a sentence of {name}, {len(sentence) / 2**20:.1f} MiB, over gRPC in "
              f"{time.perf_counter() - start:.2f} s")


def sigterm(server: Server) -> None:
    body = json.dumps({"instances": [LONG_SENTENCE] * FLAGS.sigterm_sentences}).encode()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(server.post, body)
        time.sleep(FLAGS.sigterm_after)
        signalled = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=600)
        exited = time.perf_counter() - signalled
        status = answer.result()[0]
    print(f"SIGTERM: {FLAGS.sigterm_sentences} sentences in flight, grace {FLAGS.shutdown_grace_seconds} s: the "
          f"process exited {exited:.1f} s after the signal; the client got {status or 'no answer'}")


def memory_per_version(base_path: str) -> None:
    from serving.server import ServedModel

    version = max(contract.versions(base_path))
    trim = ctypes.CDLL("libc.so.6").malloc_trim
    model = ServedModel(base_path)  # Loads the newest version once.
    resident = []
    for _ in range(FLAGS.loads):
        model._load(version)
        gc.collect()
        trim(0)
        resident.append(_status_kib("self", "VmRSS") / 2**20)
    growth = (resident[-1] - resident[0]) / max(len(resident) - 1, 1) * 1024
    print(f"memory per version: {FLAGS.loads} loads in one process, resident "
          f"{', '.join(f'{r:.2f}' for r in resident)} GiB (~{growth:.0f} MiB a load)")


def main(argv):
    del argv
    if not contract.versions(FLAGS.model_base_path):
        raise app.UsageError(f"{FLAGS.model_base_path} holds no numbered version folder (rin_keras.export writes "
                             "one).")
    server = Server(FLAGS.model_base_path)
    try:
        empty_lists(server)
        gzip_bodies(server)
        long_word(server)
        sigterm(server)
    finally:
        server.stop()
    if FLAGS.loads:
        memory_per_version(FLAGS.model_base_path)


if __name__ == "__main__":
    app.run(main)
