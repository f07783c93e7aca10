"""Training throughput of the RIN model on a GPU with the JAX backend, where TensorFlow is not installed.

Two steps, because the text side of rin-keras (tokeniser, lookups, tf.data) is TensorFlow:

1. Here, with TensorFlow: encode WebNLG* with the project's own corpus, vocabulary and
   featurizer (`encode_split`, what training reads), and the initial word2vec vectors:

       python benchmarks/gpu_throughput.py --write_data=gpu_data/webnlg.npz

2. There, with JAX and CUDA (keras travels as a wheel; see docs/results.md for the command):

       KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --data=gpu_data/webnlg.npz \\
           --policies=float32,mixed_float16 --lstms=scan,loop --train_epochs=44

   Each job runs in a fresh process and prints JSON: first a check that the one-scan
   BiLSTM gives the Keras loop's states and gradients; then, per BiLSTM kernel (`--lstms`,
   `--scan_unrolls`), dtype policy and batch size, the seconds spent compiling ahead and in the
   first `fit` epoch, steady-state seconds and sentences/s per epoch (the median of the timed
   epochs), peak device memory and the XLA compiles; `--train_epochs` then trains the project's
   `RINModel` with the cosine schedule in the fastest timed setting (or `--train_setting`),
   printing WebNLG* dev partial F1 after each epoch, and test at each new best dev epoch (counted
   on the device).

   Compiling is most of a short run's time, so by default each job compiles every train-step
   and scoring shape at once in threads before `fit` (`--compile_ahead_threads`; `fit` calls the
   train step so compiled, and the scorers find theirs) with XLA's GPU autotuning off
   (`--xla_gpu_autotune_level`). `--profile_dir` traces one more epoch of each timing job and
   `--summarize_profile` says where the device's time went.

The model is the paper's setting (word2vec, no unseen-word features, K=3). The train split is
padded once to a few bucket edges and kept on the device (XLA compiles one step per edge), by
`rin_keras.data.numpy_batches`: the tf.data pipeline's batches, in NumPy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags


FLAGS = flags.FLAGS
SPLITS = ("train", "validation", "test")
LSTM_KERNELS = {"scan": True, "loop": False}  # BiLSTMEncoder(fused=...) on JAX: one scan for both directions (the
# default), or the Keras layer's masked loop per direction.


def write_data(path: str, max_train_sentences: int | None = None) -> None:
    """Encodes WebNLG* with the project's pipeline and writes it, with the config and vectors, to `path`."""
    from rin_keras.data import numpy_batches  # rin_keras imports: once KERAS_BACKEND is set.
    from rin_keras.config import RINConfig
    from rin_keras.data import dataset, embeddings
    from rin_keras.data.corpus import Corpus
    from rin_keras.preprocessor import RINPreprocessor

    corpus = Corpus.prepare("webnlg", "partial")
    vocab = corpus.build_vocabulary()
    config = RINConfig.for_dataset("webnlg", unknown_word_rate=0.0, pretrained_dim=0,
                                   shape_dim=0, char_dim=0).with_vocabulary(vocab, 0)
    featurizer = RINPreprocessor.from_config_and_vocabulary(config, vocab).featurizer
    arrays = {}
    for split in SPLITS:
        examples = list(dataset.encode_split(corpus, split, featurizer, config.max_length,
                                             limit=max_train_sentences if split == "train" else None,
                                             drop_empty=split == "train").as_numpy_iterator())
        arrays.update(numpy_batches.pack(examples, split))
    sentences = [[t.decode("utf-8") for t in x["tokens"]] for x in corpus.examples("train")]
    vectors = embeddings.train_word2vec(sentences, vocab, config.word_dim, os.path.join("runs", ".cache"), config.seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    meta = {"config": config.__dict__, "ignore": dataset.IGNORE,
            "bucket_boundaries": list(dataset.DEFAULT_BUCKET_BOUNDARIES)}
    np.savez_compressed(path, meta=json.dumps(meta), word_vectors=vectors, **arrays)
    print(f"Wrote {path}: " + ", ".join(f"{s} {len(arrays[s + '_lengths'])} sentences" for s in SPLITS))


class DeviceBatches:
    """The train split padded once to its bucket edges and kept on the device, and epochs of batches gathered there.

    Each epoch shuffles every bucket and the order of its batches; a bucket's last batch is dropped when it is not
    full (fixed shapes: XLA compiles one step per edge). Building the dense `[batch, n, n, relations]` targets on the
    host for each batch would bound the step by the host, not the device.
    """

    def __init__(self, examples, edges, num_relations: int, ignore: int):
        from rin_keras.data import numpy_batches
        import jax

        self.buckets = []
        for edge, members in numpy_batches.group_by_edge(examples, edges).items():
            inputs, targets = numpy_batches.pad_batch(members, edge - 1, num_relations, ignore)
            self.buckets.append(jax.device_put({**inputs, **targets}))
        self.nbytes = sum(a.nbytes for bucket in self.buckets for a in bucket.values())

    @staticmethod
    def _batch(bucket: dict, rows):
        """`(inputs, targets)` of these rows (indices or a slice) of a bucket."""
        return {"token_ids": bucket["token_ids"][rows]}, {name: bucket[name][rows] for name in ("entity_tags",
                                                                                                "relations")}

    def first_batch(self, bucket: int, batch_size: int):
        """`(inputs, targets)` of the bucket's first `batch_size` sentences (`None` if it holds fewer)."""
        arrays = self.buckets[bucket]
        return self._batch(arrays, slice(0, batch_size)) if len(arrays["token_ids"]) >= batch_size else None

    def steps(self, batch_size: int) -> int:
        """Batches an epoch."""
        return sum(len(b["token_ids"]) // batch_size for b in self.buckets)

    def epochs(self, batch_size: int, rng):
        """Yields `(inputs, targets)` batches, epoch after epoch."""
        import jax.numpy as jnp

        while True:
            batches = []
            for bucket in self.buckets:
                order = rng.permutation(len(bucket["token_ids"]))
                batches += [(bucket, order[i:i + batch_size])
                            for i in range(0, len(order) - batch_size + 1, batch_size)]
            for k in rng.permutation(len(batches)):
                bucket, rows = batches[k]
                yield self._batch(bucket, jnp.asarray(rows))


class Scorer:
    """Partial-match F1 of a split, counted on the device: one compiled call per bucket edge compares the pair cells
    at or above the threshold (what `decode_triples` keeps) with the gold cells and returns three counts."""

    def __init__(self, model, examples, edges, num_relations: int, ignore: int, threshold: float, batch_size=100):
        from rin_keras.data import numpy_batches
        import jax
        import jax.numpy as jnp

        self.model = model
        ordered = sorted(examples, key=lambda x: x["length"])
        self.chunks = []  # (token_ids, gold cells: 1 gold, 0 not, `ignore` outside real pairs); short chunks padded.
        for begin in range(0, len(ordered), batch_size):
            chunk = ordered[begin:begin + batch_size]
            width = next(e for e in edges if chunk[-1]["length"] < e) - 1
            empty = {"token_ids": [], "tags": [], "relations": [], "length": 0}
            inputs, targets = numpy_batches.pad_batch(chunk + [empty] * (batch_size - len(chunk)), width,
                                                      num_relations, ignore)
            self.chunks.append(jax.device_put((inputs["token_ids"], targets["relations"])))

        @jax.jit
        def counts(trainable, non_trainable, token_ids, gold):
            outputs, _ = model.stateless_call(trainable, non_trainable, {"token_ids": token_ids}, training=False)
            predicted = (outputs["relations"] >= threshold) & (gold != ignore)
            gold = gold == 1
            return jnp.stack([jnp.sum(predicted & gold), jnp.sum(predicted), jnp.sum(gold)])

        self.counts = counts

    def lowered(self) -> dict:
        """`{chunk shape: the counting call lowered for it}` (for `compile_ahead`; scorers of one model and
        threshold lower a shape to the same program)."""
        values = ([v.value for v in self.model.trainable_variables],
                  [v.value for v in self.model.non_trainable_variables])
        shapes = {}
        for chunk in self.chunks:
            shapes.setdefault(chunk[0].shape, chunk)
        return {shape: self.counts.lower(*values, *chunk) for shape, chunk in shapes.items()}

    def f1(self) -> float:
        """F1 of the model's current weights (one transfer from the device)."""
        from rin_keras import metrics

        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        totals = sum(self.counts(trainable, non_trainable, *chunk) for chunk in self.chunks)
        return metrics.prf(*(int(n) for n in np.asarray(totals)))["f1"]


def _load(path: str):
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    return data, meta


def _build(meta, vectors, policy: str, lstm: str = "scan", unroll: int = 1):
    import keras

    from rin_keras.config import RINConfig
    from rin_keras.model import build_rin

    keras.mixed_precision.set_global_policy(policy)
    config = RINConfig(**meta["config"])
    keras.utils.set_random_seed(config.seed)
    model = build_rin(config)
    model.encoder.set_word_vectors(vectors)
    # Read when the train step is traced, at the first batch.
    model.encoder.fused, model.encoder.scan_unroll = LSTM_KERNELS[lstm], unroll
    return config, model


def _peak_memory_mb() -> float | None:
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
    except (ImportError, RuntimeError):
        return None


def _epoch_timer():
    """A callback that records the seconds of each `fit` epoch, ended when the device has finished it."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds, self.losses = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.losses.append(float(logs["loss"]))  # Waits for the device.
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


class CompileLog:
    """The XLA compiles of this process, from `jax.monitoring` events: each program's name and seconds (a load from
    the persistent cache counts as a compile), and the persistent cache's hits. `close` stops the listening."""

    COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
    HIT_EVENT = "/jax/compilation_cache/cache_hits"

    def __init__(self):
        import jax

        self.compiles, self.hits = [], 0
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)

    def _on_duration(self, event: str, duration_secs: float, **kwargs):
        if event == self.COMPILE_EVENT:
            self.compiles.append((str(kwargs.get("fun_name", "")), duration_secs))

    def _on_event(self, event: str, **kwargs):
        self.hits += event == self.HIT_EVENT

    def summary(self) -> dict:
        """Compiles, their summed seconds (threads compiling at once overlap), the slowest, and cache hits."""
        slowest = sorted(self.compiles, key=lambda c: -c[1])[:6]
        return {"xla_compiles": len(self.compiles), "xla_compile_s": round(sum(s for _, s in self.compiles), 1),
                "slowest_compiles": [[name, round(s, 2)] for name, s in slowest], "cache_hits": self.hits}

    def close(self):
        import jax

        jax.monitoring.unregister_event_duration_listener(self._on_duration)
        jax.monitoring.unregister_event_listener(self._on_event)


def enable_compilation_cache(path: str) -> None:
    """Turns on JAX's persistent compilation cache in `path` for every program, whatever compiled before."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()  # Read the settings below at the next compile.
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def compile_ahead(model, batches: "DeviceBatches", batch_size: int, scorers=(), threads: int = 8) -> dict:
    """Compiles `fit`'s train step for every bucket edge, and each scorer's counting call for each chunk shape, all
    at once in `threads` threads (XLA compiles without holding Python's lock). `fit` then calls that jitted step
    with its traces and programs; the scorers' jitted calls share theirs, and a scorer of the same shapes as another
    finds them in the persistent compilation cache (`enable_compilation_cache` first). Tracing and lowering stay
    serial. Returns the seconds taken and the programs compiled."""
    import jax
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    samples = [batches.first_batch(bucket, batch_size) for bucket in range(len(batches.buckets))]
    samples = [s for s in samples if s is not None]
    if not samples:
        raise ValueError(f"No length bucket holds {batch_size} sentences: use a smaller batch size.")
    # What `fit` does before its first step (Keras' own private steps): build the optimizer and compiled metrics,
    # then pass the state as these four lists to a train step jitted with the state donated.
    model._symbolic_build(data_batch=samples[0])
    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True, optimizer_variables=True,
                                 metrics_variables=True)
    step = jax.jit(model.train_step, donate_argnums=0)
    lowered = [step.lower(state, sample) for sample in samples]
    model.train_function = model._make_function(step)  # `fit` calls this one: its traces above are reused.
    scoring = {}
    for scorer in scorers:
        scoring = {**scorer.lowered(), **scoring}  # One program a shape.
    lowered += scoring.values()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda program: program.compile(), lowered))
    return {"compile_ahead_s": round(time.perf_counter() - start, 2), "programs": len(lowered)}


def _compile_ahead_if_asked(model, batches, batch_size: int, scorers=()) -> dict:
    """`compile_ahead` with `--compile_ahead_threads` threads (nothing when 0)."""
    if not FLAGS.compile_ahead_threads:
        return {}
    return compile_ahead(model, batches, batch_size, scorers, FLAGS.compile_ahead_threads)


def time_one(path: str, policy: str, batch_size: int, timed_epochs: int, boundaries, lstm: str = "scan",
             unroll: int = 1, compiles: CompileLog | None = None) -> dict:
    """`fit`s `1 + timed_epochs` epochs; returns the first epoch's and the steady-state seconds."""
    from rin_keras.data import numpy_batches
    data, meta = _load(path)
    config, model = _build(meta, data["word_vectors"], policy, lstm, unroll)
    train = numpy_batches.unpack(data, "train")
    edges = numpy_batches.bucket_edges(boundaries, data["train_lengths"])
    batches = DeviceBatches(train, edges, config.num_relations, meta["ignore"])
    steps = batches.steps(batch_size)
    if not steps:
        raise ValueError(f"No length bucket holds {batch_size} sentences: use a smaller batch size.")
    ahead = _compile_ahead_if_asked(model, batches, batch_size)
    timer = _epoch_timer()
    model.fit(batches.epochs(batch_size, np.random.default_rng(0)), epochs=1 + timed_epochs, steps_per_epoch=steps,
              callbacks=[timer], verbose=0)
    seconds = timer.seconds
    steady = float(np.median(seconds[1:])) if timed_epochs else seconds[0]
    if FLAGS.profile_dir:  # One more epoch, traced (its time is not counted).
        import jax

        with jax.profiler.trace(FLAGS.profile_dir, create_perfetto_trace=True):
            model.fit(batches.epochs(batch_size, np.random.default_rng(1)), epochs=1, steps_per_epoch=steps,
                      verbose=0)
    return {"policy": policy, "batch_size": batch_size, "lstm": lstm, "unroll": unroll, "edges": len(batches.buckets),
            **ahead, "first_epoch_s": round(seconds[0], 2), "epoch_s": round(steady, 3),
            "sentences_per_s": round(steps * batch_size / steady), "sentences": steps * batch_size,
            "peak_memory_mb": _peak_memory_mb(), "train_data_mb": round(batches.nbytes / 2**20, 1),
            **(compiles.summary() if compiles else {}),
            "final_loss": round(timer.losses[-1], 3)}


def train_and_score(path: str, policy: str, epochs: int, boundaries, lstm: str = "scan", unroll: int = 1,
                    compiles: CompileLog | None = None) -> dict:
    """Trains with the cosine schedule (the config's rate; its batch size unless `--train_batch_size`); scores dev
    partial F1 each epoch, and test at each new best dev epoch; reports the last epoch and the best dev epoch
    (selection on dev; test only reported)."""
    from rin_keras.data import numpy_batches
    import keras

    from rin_keras.callbacks import cosine_learning_rate

    start = time.perf_counter()
    data, meta = _load(path)
    config, model = _build(meta, data["word_vectors"], policy, lstm, unroll)
    edges = numpy_batches.bucket_edges(boundaries, np.concatenate([data[f"{s}_lengths"] for s in SPLITS]))
    batches = DeviceBatches(numpy_batches.unpack(data, "train"), edges, config.num_relations, meta["ignore"])
    scorers = {split: Scorer(model, numpy_batches.unpack(data, split), edges, config.num_relations, meta["ignore"],
                             config.threshold) for split in ("validation", "test")}
    setup_s = round(time.perf_counter() - start, 1)  # Data to the device, the model's initial weights.
    batch_size = FLAGS.train_batch_size or config.batch_size
    ahead = _compile_ahead_if_asked(model, batches, batch_size, scorers.values())
    history = []

    class Score(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            scores = {"epoch": epoch + 1, "dev": round(scorers["validation"].f1(), 2)}
            if scores["dev"] > max((h["dev"] for h in history), default=-1.0):
                scores["test"] = round(scorers["test"].f1(), 2)
            history.append({**scores, "wall_s": round(time.perf_counter() - start, 1)})
            print(json.dumps(history[-1]), flush=True)

    model.fit(batches.epochs(batch_size, np.random.default_rng(config.seed)), epochs=epochs,
              steps_per_epoch=batches.steps(batch_size),
              callbacks=[cosine_learning_rate(config.learning_rate, epochs, config.lr_final_fraction), Score()],
              verbose=0)
    best = max(history, key=lambda h: h["dev"])
    return {"policy": policy, "lstm": lstm, "unroll": unroll, "epochs": epochs, "batch_size": batch_size,
            "setup_s": setup_s, **ahead,
            "wall_s": round(time.perf_counter() - start, 1), **(compiles.summary() if compiles else {}),
            "last": history[-1], "best_dev_epoch": best}


def check_kernels(path: str, sentences: int = 64) -> dict:
    """How far the one-scan BiLSTM is from the Keras loop over time steps on train sentences of several lengths: the
    largest state difference and relative gradient difference of the encoder's weights (same weights)."""
    import jax

    from rin_keras.data import numpy_batches
    from rin_keras.layers import BiLSTMEncoder

    data, meta = _load(path)
    c = meta["config"]
    examples = numpy_batches.unpack(data, "train")[:sentences]
    width = max(x["length"] for x in examples)
    token_ids = numpy_batches.pad_batch(examples, width, c["num_relations"], meta["ignore"])[0]
    token_ids = token_ids["token_ids"]
    encoders = {kernel: BiLSTMEncoder(c["vocab_size"], c["word_dim"], c["lstm_units"], 0.0, fused=fused)
                for kernel, fused in LSTM_KERNELS.items()}
    for encoder in encoders.values():
        encoder.build(token_ids.shape)
        encoder.set_weights(encoders["scan"].get_weights())
    projection = np.random.default_rng(0).normal(size=(*token_ids.shape, 2 * c["lstm_units"])).astype("float32")

    def loss(values, encoder):
        states, _ = encoder.stateless_call(values, [v.value for v in encoder.non_trainable_variables], token_ids)
        return (states * projection).sum(), states

    values = [v.value for v in encoders["scan"].trainable_variables]
    run = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)
    (_, loop), loop_grads = run(values, encoders["loop"])
    (_, states), grads = run(values, encoders["scan"])
    return {"check": "scan_vs_keras_loop", "sentences": len(examples), "width": int(token_ids.shape[1]),
            "max_state_diff": float(np.max(np.abs(np.asarray(states) - np.asarray(loop)))),
            "max_grad_rel_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))
                                     for a, b in zip(grads, loop_grads))}


def summarize_profile(path: str, top: int = 15) -> list[dict]:
    """Per process of a Perfetto trace (`/device:GPU:0`, `/host:CPU`): the traced span, the time in which any of
    its threads ran an event (their union), and the names that took most of that time (summed over events)."""
    import gzip

    with gzip.open(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"}
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    begin, end = min(e["ts"] for e in spans), max(e["ts"] + e["dur"] for e in spans)
    summaries = []
    for pid, process in sorted(names.items(), key=lambda item: item[1]):
        mine = sorted((e["ts"], e["ts"] + e["dur"], e["name"]) for e in spans if e["pid"] == pid)
        busy, reach, by_name = 0.0, -np.inf, {}
        for start, stop, name in mine:
            busy += max(0.0, stop - max(start, reach))
            reach = max(reach, stop)
            by_name[name] = by_name.get(name, 0.0) + stop - start
        ranked = sorted(by_name.items(), key=lambda item: -item[1])[:top]
        summaries.append({"process": process, "span_ms": round((end - begin) / 1e3, 1), "events": len(mine),
                          "busy_ms": round(busy / 1e3, 1),
                          "top_ms": {name[:80]: round(t / 1e3, 2) for name, t in ranked}})
    return summaries


def run_child(job: str):
    """Runs one job of `main` in this process: `check`, `time:<policy>,<batch>,<kernel>,<unroll>` or
    `train:<policy>,<epochs>,<kernel>,<unroll>` (kernel: a key of `LSTM_KERNELS`)."""
    kind, _, args = job.partition(":")
    if FLAGS.compile_ahead_threads:  # A fresh cache (removed when the job returns): every program compiles here.
        cache = tempfile.TemporaryDirectory(prefix="rin_xla_cache_")
        enable_compilation_cache(cache.name)
    compiles = CompileLog()
    boundaries = [int(b) for b in FLAGS.bucket_boundaries]
    if kind == "check":
        return check_kernels(FLAGS.data)
    if kind == "time":
        policy, batch_size, lstm, unroll = args.split(",")
        return time_one(FLAGS.data, policy, int(batch_size), FLAGS.timed_epochs, boundaries, lstm, int(unroll),
                        compiles)
    if kind == "train":
        policy, epochs, lstm, unroll = args.split(",")
        return train_and_score(FLAGS.data, policy, int(epochs), boundaries, lstm, int(unroll), compiles)
    raise app.UsageError(f"Unknown job {job!r}.")


def timing_jobs() -> list[str]:
    """`time:` jobs for every policy, batch size and kernel (and unroll, for the scan)."""
    jobs = []
    for lstm in FLAGS.lstms:
        if lstm not in LSTM_KERNELS:
            raise app.UsageError(f"--lstms: {lstm!r} is not one of {list(LSTM_KERNELS)}.")
        for unroll in FLAGS.scan_unrolls if lstm == "scan" else ["1"]:
            jobs += [f"time:{p},{b},{lstm},{unroll}" for p in FLAGS.policies for b in FLAGS.batch_sizes]
    return jobs


def fastest(results: list[dict]) -> str:
    """`<policy>,<kernel>,<unroll>` of the timing result with the shortest steady epoch at the first batch size."""
    timed = [r for r in results if r.get("batch_size") == int(FLAGS.batch_sizes[0]) and "epoch_s" in r]
    if not timed:
        raise RuntimeError("--train_setting=fastest: no timing job finished.")
    best = min(timed, key=lambda r: r["epoch_s"])
    return f"{best['policy']},{best['lstm']},{best['unroll']}"


def main(argv):
    del argv
    if FLAGS.write_data:
        write_data(FLAGS.write_data, FLAGS.max_train_sentences)
        return
    if FLAGS.summarize_profile:
        for summary in summarize_profile(FLAGS.summarize_profile):
            print(json.dumps(summary, indent=1))
        return
    if not FLAGS.data:
        raise app.UsageError("Pass --write_data=PATH (TensorFlow side) or --data=PATH (GPU side).")
    if FLAGS.child:
        print("RESULT " + json.dumps(run_child(FLAGS.child)), flush=True)
        return
    jobs = (["check"] if FLAGS.check else []) + timing_jobs() + (["train"] if FLAGS.train_epochs else [])
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    if FLAGS.xla_gpu_autotune_level >= 0 and "--xla_gpu_autotune_level" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_gpu_autotune_level={FLAGS.xla_gpu_autotune_level}".strip()
    print(f"backend {env['KERAS_BACKEND']}; device: {_device_name(env)}", flush=True)
    deadline = time.monotonic() + FLAGS.deadline_s
    results = []
    for job in jobs:
        left = deadline - time.monotonic()
        if job != "train" and FLAGS.train_epochs:
            left -= FLAGS.train_reserve_s
        if job == "train":
            setting = fastest(results) if FLAGS.train_setting == "fastest" else FLAGS.train_setting
            policy, lstm, unroll = setting.split(",")
            job = f"train:{policy},{FLAGS.train_epochs},{lstm},{unroll}"
        if left < 20:
            print(f"{job}: skipped, {left:.0f} s left of --deadline_s (less --train_reserve_s)", flush=True)
            continue
        try:  # A training job's per-epoch lines are printed with its result, when it ends.
            out = subprocess.run(_child_command(job), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, timeout=left)
        except subprocess.TimeoutExpired as e:
            partial = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""  # Bytes, despite text=True.
            print(f"{job}: stopped at --deadline_s\n{partial[-3000:]}", flush=True)
            continue
        results += _report(job, out.stdout.splitlines(), out.stderr)
    if any("epoch_s" in r for r in results):
        print(f"fastest setting: {fastest(results)}", flush=True)


def _child_command(job: str) -> list[str]:
    """This script, run for one job in a fresh process (one dtype policy and one set of compiles each)."""
    return [sys.executable, __file__, f"--data={FLAGS.data}", f"--child={job}", f"--timed_epochs={FLAGS.timed_epochs}",
            f"--bucket_boundaries={','.join(FLAGS.bucket_boundaries)}",
            f"--compile_ahead_threads={FLAGS.compile_ahead_threads}", f"--profile_dir={FLAGS.profile_dir or ''}",
            f"--train_batch_size={FLAGS.train_batch_size or 0}"]


def _report(job: str, lines: list[str], stderr: str) -> list[dict]:
    """Prints a job's output (its last lines, or its error) and returns its results."""
    found = [json.loads(l[len("RESULT "):]) for l in lines if l.startswith("RESULT ")]
    print("\n".join(lines[-60:]) if found else f"{job} failed:\n{stderr[-3000:]}", flush=True)
    return found


def _device_name(env) -> str:
    code = "import jax; print(jax.devices()[0].device_kind)" if env["KERAS_BACKEND"] == "jax" else "print('n/a')"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip()


def define_flags():
    flags.DEFINE_string("write_data", None, "Write the encoded data here (TensorFlow side) and stop.")
    flags.DEFINE_string("data", None, "Encoded data written by --write_data (GPU side).")
    flags.DEFINE_list("policies", ["float32", "mixed_bfloat16", "mixed_float16"], "Dtype policies to time.")
    flags.DEFINE_list("batch_sizes", ["50"], "Batch sizes to time.")
    flags.DEFINE_integer("timed_epochs", 3, "Epochs timed after the first (which compiles).")
    flags.DEFINE_integer("train_epochs", 0, "Then train this many epochs (cosine schedule) and score dev and test.")
    flags.DEFINE_list("lstms", ["scan"], f"BiLSTM kernels to time, of {list(LSTM_KERNELS)}.")
    flags.DEFINE_list("scan_unrolls", ["4"], "Time steps per scan iteration to time (the scan kernel; the encoder "
                      "unrolls 4 on a GPU).")
    flags.DEFINE_integer("train_batch_size", 0, "Batch size of the --train_epochs run (0: the config's, 50).")
    flags.DEFINE_string("train_setting", "fastest",
                        "`<policy>,<kernel>,<unroll>` of the --train_epochs run, or `fastest`: the timed setting with "
                        "the shortest steady epoch.")
    flags.DEFINE_float("train_reserve_s", 0, "With --train_epochs: skip timing jobs that would leave less than this "
                       "many seconds of --deadline_s for training.")
    flags.DEFINE_integer("max_train_sentences", None, "Use the first N train sentences only (a smoke test).",
                          lower_bound=1)
    flags.DEFINE_list("bucket_boundaries", ["20", "32", "48"],
                      "Length bucket edges (fewer than the CPU pipeline's: each edge is one more XLA compile).")
    flags.DEFINE_bool("check", True, "First compare the scan BiLSTMs with the Keras loop (values and gradients).")
    flags.DEFINE_float("deadline_s", 3600, "Skip or stop the jobs left after this many seconds.")
    flags.DEFINE_integer("compile_ahead_threads", 16, "Before training, compile every train-step and scoring shape "
                         "at once in this many threads (0: compile each at its first use, serially).")
    flags.DEFINE_integer("xla_gpu_autotune_level", 0, "XLA's GPU autotuning level for the jobs (unless XLA_FLAGS sets "
                         "one): 0 turns it off, which compiled the train step 3-4x faster on an H100 and ran its epoch "
                         "no slower; -1: XLA's default.")
    flags.DEFINE_string("profile_dir", None, "Trace one more epoch of each timing job with `jax.profiler` into this "
                        "folder (a Perfetto trace; `--summarize_profile` reads it).")
    flags.DEFINE_string("summarize_profile", None, "Print where the device's time goes in this Perfetto trace "
                        "(`perfetto_trace.json.gz` of --profile_dir) and stop.")
    flags.DEFINE_string("child", None, "Internal: run one job in this process and print its JSON.")


if __name__ == "__main__":
    define_flags()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # rin_keras without installing.
    app.run(main)
