"""Batches as NumPy arrays, without TensorFlow: what `rin_keras.data.dataset` makes, for other backends' hosts.

A machine with only JAX (or PyTorch) and NumPy cannot run the tf.data pipeline, but can read encoded
examples (`dataset.encode_split`, written where TensorFlow is) and batch them here: `pack` / `unpack`
flatten examples into arrays for one `.npz` file and back, `bucket_edges` and `group_by_edge` put sentences in
`make_dataset`'s length buckets, `bucket_batch_size` gives a bucket's sentences per batch, and `pad_batch` pads
a batch to a bucket's width with the same inputs and targets (`IGNORE` outside real words and pairs). A test
checks that these batches equal the pipeline's. `benchmarks/gpu_throughput.py` trains from them on a GPU.
"""

from __future__ import annotations

import numpy as np

IGNORE = -1  # Target value of padded tokens and cells (the tf.data pipeline's too).


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
    # Each read of an `np.load` archive's key decompresses the array again: read each once.
    lengths, counts, token_ids, tags, relations = (data[f"{split}_{name}"] for name in (
        "lengths", "num_triples", "token_ids", "tags", "relations"))
    words, triples = np.cumsum(np.r_[0, lengths]), np.cumsum(np.r_[0, counts])
    return [{"token_ids": token_ids[words[i]:words[i + 1]], "tags": tags[words[i]:words[i + 1]],
             "relations": relations[triples[i]:triples[i + 1]], "length": int(lengths[i])}
            for i in range(len(lengths))]


def pad_batch(examples: list[dict], width: int, num_relations: int, ignore: int = IGNORE):
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


def bucket_edges(boundaries, lengths) -> list[int]:
    """The bucket edges of `make_dataset` that hold sentences of these lengths: a sentence of length n goes to the
    first edge above n and is padded to edge - 1 words; the last edge follows the longest sentence."""
    longest = int(max(lengths))
    return sorted({b for b in boundaries if b <= longest} | {longest + 1})


def bucket_batch_size(batch_size: int, width: int, max_pairs: int | None, multiple_of: int = 1) -> int:
    """Sentences per batch of a length bucket whose sentences have up to `width` words.

    `batch_size`, or fewer where `batch_size * width**2` word pairs would exceed `max_pairs` (None or 0: no cap):
    the pair tensors of the longest sentences, not the batch size, set a training step's peak memory. Rounded down
    to a multiple of `multiple_of` (the data-parallel workers that split each batch evenly), and at least that.
    """
    size = batch_size if not max_pairs else max(1, min(batch_size, max_pairs // (width * width)))
    return max(multiple_of, size - size % multiple_of)


def group_by_edge(examples, edges) -> dict[int, list[dict]]:
    """`{edge: examples}`, each example in the first edge above its length."""
    groups = {}
    for x in examples:
        groups.setdefault(next(e for e in edges if x["length"] < e), []).append(x)
    return dict(sorted(groups.items()))
