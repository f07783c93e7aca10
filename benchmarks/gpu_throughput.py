"""Training throughput of the RIN model on a GPU with the JAX backend, where TensorFlow is not installed.

Two steps, because the text side of rin-keras (tokeniser, lookups, tf.data) is TensorFlow:

1. Here, with TensorFlow: encode WebNLG* with the project's own corpus, vocabulary and
   featurizer (`encode_split`, what training reads), and the initial word2vec vectors:

       python benchmarks/gpu_throughput.py --write_data=gpu_data/webnlg.npz

2. There, with JAX and CUDA (keras travels as a wheel; see docs/results.md for the command):

       KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --data=gpu_data/webnlg.npz \\
           --policies=float32,mixed_bfloat16,mixed_float16 --batch_sizes=50,256 --train_epochs=44

   Each dtype policy and batch size runs in a fresh process and prints one line: the first
   epoch's seconds (compile included), steady-state seconds and sentences/s per epoch (the
   median of the timed epochs) and peak device memory. `--train_epochs` then trains the
   project's `RINModel` with the cosine schedule and prints WebNLG* dev and test partial F1.

The model is the paper's setting (word2vec, no unseen-word features, K=3). Batches are
padded to the training pipeline's bucket edges, as `--jit_compile` training pads them, so
XLA compiles one step per edge; targets follow `rin_keras.data.dataset` (a test checks that
the NumPy batches here equal its batches).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
SPLITS = ("train", "validation", "test")


def write_data(path: str, max_train_sentences: int | None = None) -> None:
    """Encodes WebNLG* with the project's pipeline and writes it, with the config and vectors, to `path`."""
    from rin_keras.config import RINConfig
    from rin_keras.data import dataset, embeddings
    from rin_keras.data.corpus import Corpus
    from rin_keras.preprocessor import RINPreprocessor

    corpus = Corpus.prepare("webnlg", "partial")
    vocab = corpus.build_vocabulary()
    config = RINConfig.for_dataset("webnlg", unknown_word_rate=0.0, entity_unknown_rate=0.0, pretrained_dim=0,
                                   shape_dim=0, char_dim=0).with_vocabulary(vocab, 0)
    featurizer = RINPreprocessor.from_config_and_vocabulary(config, vocab).featurizer
    arrays = {}
    for split in SPLITS:
        examples = list(dataset.encode_split(corpus, split, featurizer, config.max_length,
                                             limit=max_train_sentences if split == "train" else None,
                                             drop_empty=split == "train").as_numpy_iterator())
        arrays.update(pack(examples, split))
    sentences = [[t.decode("utf-8") for t in x["tokens"]] for x in corpus.examples("train")]
    vectors = embeddings.train_word2vec(sentences, vocab, config.word_dim, os.path.join("runs", ".cache"), config.seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    meta = {"config": config.__dict__, "ignore": dataset.IGNORE,
            "bucket_boundaries": list(dataset.DEFAULT_BUCKET_BOUNDARIES)}
    np.savez_compressed(path, meta=json.dumps(meta), word_vectors=vectors, **arrays)
    print(f"Wrote {path}: " + ", ".join(f"{s} {len(arrays[s + '_lengths'])} sentences" for s in SPLITS))


def pack(examples: list[dict], split: str) -> dict:
    """Flattens encoded examples (`token_ids`, `tags`, `relations`, `length`) into arrays keyed by split."""
    return {
        f"{split}_lengths": np.asarray([x["length"] for x in examples], np.int32),
        f"{split}_token_ids": np.concatenate([x["token_ids"] for x in examples] + [np.zeros(0, np.int32)]),
        f"{split}_tags": np.concatenate([x["tags"] for x in examples] + [np.zeros(0, np.int32)]),
        f"{split}_num_triples": np.asarray([len(x["relations"]) for x in examples], np.int32),
        f"{split}_relations": np.concatenate([x["relations"] for x in examples] + [np.zeros((0, 3), np.int32)]),
    }


def unpack(data, split: str) -> list[dict]:
    """The examples of `pack`."""
    lengths, counts = data[f"{split}_lengths"], data[f"{split}_num_triples"]
    words, triples = np.cumsum(np.r_[0, lengths]), np.cumsum(np.r_[0, counts])
    return [{"token_ids": data[f"{split}_token_ids"][words[i]:words[i + 1]],
             "tags": data[f"{split}_tags"][words[i]:words[i + 1]],
             "relations": data[f"{split}_relations"][triples[i]:triples[i + 1]],
             "length": int(lengths[i])} for i in range(len(lengths))]


def pad_batch(examples: list[dict], width: int, num_relations: int, ignore: int = -1):
    """`(inputs, targets)` of a batch padded to `width` words, as `rin_keras.data.dataset` makes them."""
    batch = len(examples)
    token_ids = np.zeros((batch, width), np.int32)
    tags = np.full((batch, width), ignore, np.int32)
    relations = np.zeros((batch, width, width, num_relations), np.int8)
    real = np.zeros((batch, width), bool)
    for row, x in enumerate(examples):
        n = x["length"]
        token_ids[row, :n], tags[row, :n], real[row, :n] = x["token_ids"], x["tags"], True
        for subject, obj, relation in x["relations"]:
            relations[row, subject, obj, relation] = 1
    pairs = real[:, :, None] & real[:, None, :]
    relations = np.where(pairs[..., None], relations, np.int8(ignore))
    return {"token_ids": token_ids}, {"entity_tags": tags, "relations": relations}


def bucketed_batches(examples, batch_size, boundaries, max_length, num_relations, ignore, rng=None):
    """Batches of sentences of one length bucket each, padded to the bucket's edge (the buckets of
    `make_dataset`); shuffled when `rng` is given.

    A bucket's last batch is dropped when it is not full (fixed shapes: one compiled step per edge).
    """
    order = rng.permutation(len(examples)) if rng is not None else np.arange(len(examples))
    edges = sorted({b for b in boundaries if b <= max_length} | {max_length + 1})
    buckets = {}
    for i in order:
        edge = next(e for e in edges if examples[i]["length"] < e)
        buckets.setdefault(edge, []).append(examples[i])
    batches = []
    for edge, members in sorted(buckets.items()):
        for begin in range(0, len(members) - batch_size + 1, batch_size):
            batches.append(pad_batch(members[begin:begin + batch_size], edge - 1, num_relations, ignore))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _load(path: str):
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    return data, meta


def _build(meta, vectors, policy: str):
    import keras

    from rin_keras.config import RINConfig
    from rin_keras.model import build_rin

    keras.mixed_precision.set_global_policy(policy)
    config = RINConfig(**meta["config"])
    keras.utils.set_random_seed(config.seed)
    model = build_rin(config)
    model.encoder.set_word_vectors(vectors)
    return config, model


def _peak_memory_mb() -> float | None:
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
    except (ImportError, RuntimeError):
        return None


def time_one(path: str, policy: str, batch_size: int, timed_epochs: int) -> dict:
    """Trains `1 + timed_epochs` epochs; returns the first epoch's and the steady-state seconds."""
    data, meta = _load(path)
    config, model = _build(meta, data["word_vectors"], policy)
    train = unpack(data, "train")
    rng = np.random.default_rng(0)
    seconds, sentences = [], 0
    for _ in range(1 + timed_epochs):
        batches = bucketed_batches(train, batch_size, meta["bucket_boundaries"], config.max_length,
                                   config.num_relations, meta["ignore"], rng)
        if not batches:
            raise ValueError(f"No length bucket holds {batch_size} sentences: use a smaller batch size.")
        start = time.perf_counter()
        for inputs, targets in batches:
            logs = model.train_on_batch(inputs, targets, return_dict=True)
        float(logs["loss"])  # Waits for the device.
        seconds.append(time.perf_counter() - start)
        sentences = sum(len(b[0]["token_ids"]) for b in batches)
    steady = float(np.median(seconds[1:])) if timed_epochs else seconds[0]
    return {"policy": policy, "batch_size": batch_size, "first_epoch_s": round(seconds[0], 2),
            "epoch_s": round(steady, 3), "sentences_per_s": round(sentences / steady), "sentences": sentences,
            "peak_memory_mb": _peak_memory_mb(), "final_loss": round(float(logs["loss"]), 3)}


def train_and_score(path: str, policy: str, epochs: int) -> dict:
    """Trains with the cosine schedule (batch 50); returns dev and test partial F1 of the last epoch and of the best dev epoch."""
    import keras

    from rin_keras import metrics
    from rin_keras.decoding import decode_triples

    data, meta = _load(path)
    config, model = _build(meta, data["word_vectors"], policy)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(epochs - 1, 1),
                                                      alpha=config.lr_final_fraction)
    splits = {split: unpack(data, split) for split in SPLITS}
    rng = np.random.default_rng(config.seed)

    def score(split):
        gold, predicted = [], []
        examples = splits[split]
        for begin in range(0, len(examples), 100):
            chunk = examples[begin:begin + 100]
            inputs, _ = pad_batch(chunk, max(1, max(x["length"] for x in chunk)), config.num_relations, meta["ignore"])
            outputs = model.predict_on_batch(inputs)
            tag_ids = np.argmax(outputs["entity_tags"], axis=-1)
            for row, x in enumerate(chunk):
                triples = decode_triples(tag_ids[row], outputs["relations"][row], x["length"], config.threshold)
                predicted.append({(t.subject_head, t.relation, t.object_head) for t in triples})
                gold.append({(int(s), int(r), int(o)) for s, o, r in x["relations"]})
        return metrics.score_sets(gold, predicted)["f1"]

    start, history = time.perf_counter(), []
    for epoch in range(epochs):
        model.optimizer.learning_rate = float(schedule(epoch))
        for inputs, targets in bucketed_batches(splits["train"], config.batch_size, meta["bucket_boundaries"],
                                                config.max_length, config.num_relations, meta["ignore"], rng):
            model.train_on_batch(inputs, targets)
        history.append({"epoch": epoch + 1, "dev": score("validation"), "test": score("test")})
        print(json.dumps(history[-1]), flush=True)
    best = max(history, key=lambda h: h["dev"])  # Selected on dev; test only reported.
    return {"policy": policy, "epochs": epochs, "wall_s": round(time.perf_counter() - start, 1),
            "last": history[-1], "best_dev_epoch": best}


def main(argv):
    del argv
    if FLAGS.write_data:
        write_data(FLAGS.write_data, FLAGS.max_train_sentences)
        return
    if not FLAGS.data:
        raise app.UsageError("Pass --write_data=PATH (TensorFlow side) or --data=PATH (GPU side).")
    if FLAGS.child:
        policy, batch_size = FLAGS.child.split(",")
        print("RESULT " + json.dumps(time_one(FLAGS.data, policy, int(batch_size), FLAGS.timed_epochs)), flush=True)
        return
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    print(f"backend {env['KERAS_BACKEND']}; device: {_device_name(env)}")
    for policy in FLAGS.policies:
        for batch_size in FLAGS.batch_sizes:
            out = subprocess.run([sys.executable, __file__, f"--data={FLAGS.data}", f"--child={policy},{batch_size}",
                                  f"--timed_epochs={FLAGS.timed_epochs}"], env=env, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            print(lines[0][7:] if lines else f"{policy} batch {batch_size} failed:\n{out.stderr[-3000:]}", flush=True)
    if FLAGS.train_epochs:
        print("RESULT " + json.dumps(train_and_score(FLAGS.data, FLAGS.train_policy, FLAGS.train_epochs)))


def _device_name(env) -> str:
    code = "import jax; print(jax.devices()[0].device_kind)" if env["KERAS_BACKEND"] == "jax" else "print('n/a')"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip()


def define_flags():
    flags.DEFINE_string("write_data", None, "Write the encoded data here (TensorFlow side) and stop.")
    flags.DEFINE_string("data", None, "Encoded data written by --write_data (GPU side).")
    flags.DEFINE_list("policies", ["float32", "mixed_bfloat16", "mixed_float16"], "Dtype policies to time.")
    flags.DEFINE_list("batch_sizes", ["50", "256"], "Batch sizes to time.")
    flags.DEFINE_integer("timed_epochs", 3, "Epochs timed after the first (which compiles).")
    flags.DEFINE_integer("train_epochs", 0, "Then train this many epochs (cosine schedule) and score dev and test.")
    flags.DEFINE_string("train_policy", "float32", "Dtype policy of the --train_epochs run.")
    flags.DEFINE_integer("max_train_sentences", None, "Use the first N train sentences only (a smoke test).")
    flags.DEFINE_string("child", None, "Internal: time one 'policy,batch_size' in this process and print JSON.")


if __name__ == "__main__":
    define_flags()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # rin_keras without installing.
    app.run(main)
