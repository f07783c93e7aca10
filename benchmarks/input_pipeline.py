"""Input pipeline benchmark: batches/s and padding of the n^2 relation grid, with and without bucketing.

    python benchmarks/input_pipeline.py --dataset=webnlg --batch_size=50

The train batches as training makes them (`make_dataset`, at most `--max_batch_pairs` word pairs a bucketed
batch), without the unseen-word features' inputs (`train_throughput.py` times the whole step).
Padding ratio = real token pairs / padded cells of the [B, n, n] grid (1.0 means no padding).
"""

import time

import numpy as np
from absl import app, flags

from rin_keras import RINConfig
from rin_keras.data.corpus import Corpus
from rin_keras.data.dataset import DEFAULT_BUCKET_BOUNDARIES, make_dataset

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "webnlg", "Dataset.")
flags.DEFINE_string("variant", "partial", "Variant.")
flags.DEFINE_integer("batch_size", 50, "Batch size.", lower_bound=1)
flags.DEFINE_integer("epochs", 3, "Passes timed; the first fills the cache and is left out of the mean (unless it is the only one).", lower_bound=1)
flags.DEFINE_string("tfds_data_dir", None, "TFDS data folder.")
flags.DEFINE_integer("max_batch_pairs", RINConfig.max_batch_pairs, "Word pairs per bucketed batch at most, as "
                     "`rin_keras.train --max_batch_pairs` (0: no cap).", lower_bound=0)


def measure(corpus, vocab, bucket_boundaries):
    dataset = make_dataset(
        corpus, "train", vocab, FLAGS.batch_size, training=True, bucket_boundaries=bucket_boundaries, seed=0,
        max_pairs=FLAGS.max_batch_pairs or None,
    )
    real = padded = batches = 0
    timings = []
    for _ in range(FLAGS.epochs):
        start = time.perf_counter()
        for inputs, _ in dataset:
            lengths = np.sum(inputs["token_ids"].numpy() != 0, axis=1)
            real += int(np.sum(lengths**2))
            padded += int(inputs["token_ids"].shape[0] * inputs["token_ids"].shape[1] ** 2)
            batches += 1
        timings.append(time.perf_counter() - start)
    per_epoch = batches // FLAGS.epochs
    return per_epoch, per_epoch / np.mean(timings[1:] or timings), real / padded, padded // FLAGS.epochs


def main(argv):
    del argv
    corpus = Corpus.prepare(FLAGS.dataset, FLAGS.variant, FLAGS.tfds_data_dir)
    vocab = corpus.build_vocabulary()
    print(f"{corpus.name} train, batch {FLAGS.batch_size} (dense [B,n,n,l] targets built in the pipeline)")
    print(f"{'batching':<12}{'batches/epoch':>14}{'batches/s':>11}{'pair ratio':>12}{'padded n^2 cells':>18}")
    rows = {}
    for name, boundaries in (("bucketed", DEFAULT_BUCKET_BOUNDARIES), ("plain", None)):
        rows[name] = measure(corpus, vocab, boundaries)
        n, rate, ratio, cells = rows[name]
        print(f"{name:<12}{n:>14d}{rate:>11.1f}{ratio:>12.3f}{cells:>18,d}")
    cut = 1 - rows["bucketed"][3] / rows["plain"][3]
    print(f"bucketing cuts padded n^2 cells by {100 * cut:.1f}%")


if __name__ == "__main__":
    app.run(main)
