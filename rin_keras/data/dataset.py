"""tf.data batches for training and scoring: raw TFDS examples -> padded, length-bucketed `(inputs, targets)`.

Each example is encoded to the featurizer's model inputs, BIESO tag ids and a
sparse relation list `[n_triples, 3]` of (subject head, object head, relation).
Batches are padded (bucketed by length for training) and the dense
`[B, n, n, l]` relation targets are scattered per batch inside the graph. Padded
cells of both targets are -1, which the losses and metrics read as "not a real token".
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import tensorflow as tf
from absl import logging

from rin_keras.data.corpus import Corpus
from rin_keras.data.features import MAX_WORD_CHARS, WordIds, WordPieces
from rin_keras.data.numpy_batches import IGNORE, bucket_batch_size
from rin_keras.data.vocab import Vocabulary
from rin_keras.decoding import TAGS

TAG_IDS = {tag: i for i, tag in enumerate(TAGS)}
DEFAULT_BUCKET_BOUNDARIES = (12, 16, 20, 24, 28, 32, 40, 48, 64)


def encoder(featurizer, max_length: int):
    """Returns a tf.data map function that encodes one raw TFDS example.

    The encoded example holds the model inputs of `featurizer` (e.g. `token_ids`
    [n]), `tags` [n] (BIESO ids), `relations` [t, 3] (subject head, object head,
    relation id), `length`, and the counts `truncated_tokens` and
    `dropped_triples` caused by the cut at `read_length`; an `index` travels along.
    An example that holds its `read_length` already is cut there.
    """

    def encode(example):
        tokens = example["tokens"]
        full_length = tf.shape(tokens, out_type=tf.int32)[0]
        length = example["read_length"] if "read_length" in example else read_length(featurizer, tokens, max_length)
        entities = example["entities"]
        inside = entities["end"] <= length
        triples = example["triples"]
        kept = (triples["subject"]["end"] <= length) & (triples["object"]["end"] <= length)
        relations = tf.stack(
            [
                tf.boolean_mask(triples["subject"]["head"], kept),
                tf.boolean_mask(triples["object"]["head"], kept),
                tf.boolean_mask(tf.cast(triples["relation"], tf.int32), kept),
            ],
            axis=1,
        )
        inputs = featurizer(tf.RaggedTensor.from_tensor(tokens[None, :length]))
        return {
            **{k: v[0, :length] if k in featurizer.word_inputs else v[0] for k, v in inputs.items()},
            "tags": bieso_tags(
                tf.boolean_mask(entities["start"], inside),
                tf.boolean_mask(entities["end"], inside),
                length,
            ),
            "relations": tf.reshape(relations, [-1, 3]),
            "length": length,
            "truncated_tokens": full_length - length,
            "dropped_triples": tf.reduce_sum(tf.cast(~kept, tf.int32)),
            **({"index": example["index"]} if "index" in example else {}),
        }

    return encode


def read_length(featurizer, tokens: tf.Tensor, max_length: int) -> tf.Tensor:
    """How many of a sentence's `tokens` [n] the model reads: at most `max_length`, and for a BERT encoder only the
    words within its word pieces (`WordPieces.words_read`), as prediction reads them."""
    length = tf.minimum(tf.shape(tokens, out_type=tf.int32)[0], max_length)
    if isinstance(featurizer, WordPieces):
        length = tf.minimum(length, featurizer.words_read(tf.RaggedTensor.from_tensor(tokens[None, :length]))[0])
    return length


def bieso_tags(starts: tf.Tensor, ends: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """Returns BIESO tag ids [length] for entity spans [start, end).

    Where spans nest or overlap, tags written later (E, then S) win.
    """
    single = ends - starts == 1
    multi_starts = tf.boolean_mask(starts, ~single)
    multi_ends = tf.boolean_mask(ends, ~single)
    inner = tf.ragged.range(multi_starts + 1, multi_ends - 1).flat_values
    tags = tf.fill([length], TAG_IDS["O"])
    for positions, tag in (
        (inner, "I"),
        (multi_starts, "B"),
        (multi_ends - 1, "E"),
        (tf.boolean_mask(starts, single), "S"),
    ):
        tags = tf.tensor_scatter_nd_update(
            tags, positions[:, None], tf.fill(tf.shape(positions), TAG_IDS[tag])
        )
    return tags


def dense_relation_targets(
    relations: tf.Tensor, lengths: tf.Tensor, max_len: tf.Tensor, num_relations: int
) -> tf.Tensor:
    """Scatters padded sparse triples [B, t, 3] into int8 targets [B, n, n, l].

    Cells of real token pairs are 0 or 1; cells touching padding are -1. int8
    keeps the batches waiting in the prefetch buffer 4x smaller than float32.
    """
    batch = tf.shape(relations)[0]
    rows = tf.where(relations[:, :, 0] >= 0)
    cells = tf.gather_nd(relations, rows)
    indices = tf.concat([tf.cast(rows[:, :1], tf.int32), cells], axis=1)
    shape = tf.stack([batch, max_len, max_len, num_relations])
    dense = tf.scatter_nd(indices, tf.ones(tf.shape(indices)[:1], tf.int8), shape)
    dense = tf.minimum(dense, 1)  # A triple listed twice is one cell.
    mask = tf.sequence_mask(lengths, max_len)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    return tf.where(pair_mask[..., None], dense, tf.constant(IGNORE, tf.int8))


def make_dataset(corpus: Corpus, split: str, vocab: Vocabulary, batch_size: int = 50, *, training: bool = False,
                 max_length: int = 100, bucket_boundaries: Iterable[int] | None = DEFAULT_BUCKET_BOUNDARIES,
                 pad_to_bucket_boundary: bool = False, seed: int | None = None, limit: int | None = None,
                 featurizer=None, with_index: bool = False, substitute=None, max_pairs: int | None = None,
                 num_shards: int = 1, shard_index: int = 0) -> tf.data.Dataset:
    """Returns batches `({"token_ids"}, {"entity_tags", "relations"})` for `model.fit`.

    Empty sentences are dropped; longer sentences are truncated to `max_length`
    and triples reaching past it dropped; the counts are logged.

    Args:
        corpus: a prepared corpus.
        split: `"train"`, `"validation"` or `"test"`.
        vocab: the train-split vocabulary.
        batch_size: sentences per batch.
        training: shuffle (with `seed`) and bucket by length. Otherwise batches
            keep the stored order, so outputs line up with `corpus.examples(split)`.
        max_length: truncation length.
        bucket_boundaries: length bucket edges when training; None pads each
            batch to its longest sentence without bucketing.
        pad_to_bucket_boundary: pad to the bucket edge (fixed shapes, for XLA), where every input has one entry
            per word (not with word pieces, which batches pad to their longest).
        seed: shuffle seed.
        limit: use only the first `limit` sentences of the split.
        featurizer: the model's input featurizer (default: word ids of `vocab`,
            for the BiLSTM encoder; see `rin_keras.data.features`).
        substitute: the training augmentation that writes words inside gold entities
            as stand-ins, drawn anew each epoch
            (`EntitySubstitutes.substituter(rate, unrelated_share)`); not applied
            outside training.
        max_pairs: when bucketing, a batch holds at most this many word pairs (sentences x the bucket's
            longest length squared): buckets of long sentences get fewer than `batch_size` (None: no cap).
        with_index: for inference over a whole split: bucket by length without
            shuffling (padding far fewer n^2 cells than the stored order) and add
            each sentence's position in the split as `targets["index"]`, by which
            the caller puts the results back in order.
        num_shards: when training data-parallel, the workers that split every batch (`shard_batches`): each
            batch holds a multiple of them.
        shard_index: this worker's index among them.
    """
    featurizer = featurizer or WordIds(vocab)
    extra = ("index",) if with_index else ()
    examples, length_counts = _encode_split(corpus, split, featurizer, max_length, limit=limit,
                                            with_index=with_index, drop_empty=training,
                                            substitute=substitute if training else None, seed=seed)
    if training:
        examples = examples.shuffle(8192, seed=seed, reshuffle_each_iteration=True)
    boundaries = bucket_boundaries if training or with_index else None
    batches = pad_and_batch(examples, featurizer, batch_size, max_length, boundaries, pad_to_bucket_boundary, extra,
                            max_pairs, num_shards)
    to_targets = inputs_and_targets(tuple(featurizer.padding_values), vocab.num_relations, extra)
    batches = shard_batches(batches.map(to_targets, num_parallel_calls=tf.data.AUTOTUNE), num_shards, shard_index)
    if training:
        # Training batches state their number, which bucketing and dropped empty sentences otherwise hide, so
        # Keras knows an epoch's steps from the first epoch on.
        length_counts[0] = 0  # Dropped empty sentences.
        count = batch_count(length_counts, batch_size, _bucket_edges(boundaries, max_length), min_rows=num_shards,
                            max_pairs=max_pairs)
        batches = batches.apply(tf.data.experimental.assert_cardinality(count))
    return batches.prefetch(tf.data.AUTOTUNE)


def batch_count(length_counts: np.ndarray, batch_size: int, bucket_edges: Iterable[int] | None,
                min_rows: int = 1, max_pairs: int | None = None) -> int:
    """The number of batches `pad_and_batch` makes of sentences with `length_counts[n]` sentences of length n.

    Each length bucket (`[edge_i, edge_i+1)`; one bucket without `bucket_edges`) ends with a short batch of its
    remainder, which counts when it holds at least `min_rows` sentences (the data-parallel workers, whose number
    every batch size is a multiple of; `shard_batches` keeps such a batch).
    """
    edges = [0, *(bucket_edges or ()), len(length_counts)]
    count = 0
    for low, high in zip(edges[:-1], edges[1:]):
        size = bucket_batch_size(batch_size, high - 1, max_pairs if bucket_edges else None, min_rows)
        full, rest = divmod(int(np.sum(length_counts[low:high])), size)
        count += full + (1 if rest >= max(min_rows, 1) else 0)
    return count


def _bucket_edges(bucket_boundaries: Iterable[int] | None, max_length: int) -> list[int] | None:
    """The bucket edges `pad_and_batch` uses for `bucket_boundaries` (None: no bucketing)."""
    if not bucket_boundaries:
        return None
    return sorted({b for b in bucket_boundaries if b <= max_length} | {max_length + 1})


def encode_split(corpus: Corpus, split: str, featurizer, max_length: int, *, limit: int | None = None,
                 with_index: bool = False, drop_empty: bool = False, substitute=None,
                 seed: int | None = None) -> tf.data.Dataset:
    """Step 1: the encoded examples of `split` (see `encoder`), cached, with their counts logged.

    Each keeps the featurizer's inputs, `tags`, `relations` and `length` (and
    `index`, its position in the split, with `with_index`). With `substitute`, a
    map function over raw examples and random keys (`EntitySubstitutes.substituter`),
    the raw examples are cached instead and substituted and encoded anew each epoch,
    with keys drawn from `seed` (the same in every process, so data-parallel workers
    build batches of one shape).
    """
    return _encode_split(corpus, split, featurizer, max_length, limit=limit, with_index=with_index,
                         drop_empty=drop_empty, substitute=substitute, seed=seed)[0]


def _encode_split(corpus: Corpus, split: str, featurizer, max_length: int, *, limit: int | None = None,
                  with_index: bool = False, drop_empty: bool = False, substitute=None,
                  seed: int | None = None) -> tuple[tf.data.Dataset, np.ndarray]:
    """`encode_split`, and the number of sentences of each length 0..max_length (after truncation)."""
    raw = corpus.raw(split, limit)
    encode = encoder(featurizer, max_length)
    if with_index:
        raw = raw.enumerate().map(lambda i, x: {**x, "index": tf.cast(i, tf.int32)})
    if substitute is None:
        encoded = raw.map(encode, num_parallel_calls=tf.data.AUTOTUNE).cache()
        length_counts = _log_counts(encoded, f"{corpus.name}/{split}", max_length)
    else:
        # Substitution swaps words one for one, so each sentence keeps the length it is read to before (the
        # batches' count holds); a stand-in of more word pieces may leave a BERT encoder's last words at its
        # last piece.
        raw = raw.map(lambda x: {**x, "read_length": read_length(featurizer, x["tokens"], max_length)},
                      num_parallel_calls=tf.data.AUTOTUNE).cache()
        length_counts = _log_counts(raw.map(encode, num_parallel_calls=tf.data.AUTOTUNE), f"{corpus.name}/{split}",
                                    max_length)
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        encoded = tf.data.Dataset.zip(raw, keys).map(lambda x, key: encode(substitute(x, key)),
                                                     num_parallel_calls=tf.data.AUTOTUNE)
    if drop_empty:
        encoded = encoded.filter(lambda x: x["length"] > 0)
    kept = (*featurizer.padding_values, "tags", "relations", "length", *(("index",) if with_index else ()))
    return encoded.map(lambda x: {k: x[k] for k in kept}), length_counts


def pad_and_batch(examples: tf.data.Dataset, featurizer, batch_size: int, max_length: int,
                  bucket_boundaries: Iterable[int] | None, pad_to_bucket_boundary: bool = False,
                  extra: tuple[str, ...] = (), max_pairs: int | None = None, num_shards: int = 1
                  ) -> tf.data.Dataset:
    """Step 2: padded batches, bucketed by length when `bucket_boundaries` is given.

    `extra` names per-sentence scalars that travel along (e.g. `index`); `max_pairs` caps a bucketed batch's word
    pairs, and every batch size is a multiple of `num_shards` (`numpy_batches.bucket_batch_size`).
    """
    padded_shapes = {**featurizer.padded_shapes, "tags": [None], "relations": [None, 3], "length": [],
                     **{k: [] for k in extra}}
    padding_values = {**featurizer.padding_values, "tags": IGNORE, "relations": IGNORE, "length": 0,
                      **{k: 0 for k in extra}}
    if pad_to_bucket_boundary and set(featurizer.padding_values) - set(featurizer.word_inputs):
        pad_to_bucket_boundary = False  # Word pieces outnumber the words that the bucket edges bound.
    if pad_to_bucket_boundary and "char_ids" in padded_shapes:
        padded_shapes["char_ids"] = [None, MAX_WORD_CHARS]  # A bucket edge bounds the words, not their characters.
    boundaries = _bucket_edges(bucket_boundaries, max_length)
    if not boundaries:
        return examples.padded_batch(bucket_batch_size(batch_size, max_length, None, num_shards), padded_shapes,
                                     padding_values)
    return examples.bucket_by_sequence_length(
        element_length_func=lambda x: x["length"],
        bucket_boundaries=boundaries,
        # A sentence of bucket i is shorter than boundaries[i]; the bucket past the last edge stays empty.
        bucket_batch_sizes=[bucket_batch_size(batch_size, edge - 1, max_pairs, num_shards) for edge in boundaries]
        + [bucket_batch_size(batch_size, max_length, None, num_shards)],
        padded_shapes=padded_shapes,
        padding_values=padding_values,
        pad_to_bucket_boundary=pad_to_bucket_boundary,
    )


def inputs_and_targets(input_names: tuple[str, ...], num_relations: int, extra: tuple[str, ...] = ()):
    """Step 3: returns the batch map to `(inputs, {"entity_tags", "relations", *extra})` with dense relation targets."""

    def split_batch(batch):
        max_len = tf.shape(batch["tags"])[1]
        relations = dense_relation_targets(batch["relations"], batch["length"], max_len, num_relations)
        targets = {"entity_tags": batch["tags"], "relations": relations, **{k: batch[k] for k in extra}}
        return {k: batch[k] for k in input_names}, targets

    return split_batch


def shard_batches(batches: tf.data.Dataset, num_shards: int, index: int) -> tf.data.Dataset:
    """This worker's slice of every batch, for data-parallel training (`rin_keras.data_parallel`).

    Every worker builds the same batches (same data, same shuffle seed, so the same padded lengths) and keeps rows
    `[index * b // num_shards, (index + 1) * b // num_shards)` of each batch of `b` sentences: the slices of one step
    have one shape on every worker, as a global batch needs. Batch sizes are multiples of `num_shards`
    (`pad_and_batch`), so only a bucket's last, short batch of an epoch has `b % num_shards` sentences over: they sit
    that epoch out, and the shuffle changes which they are each epoch.
    """
    if num_shards == 1:
        return batches

    def rows(tensor):
        size = tf.shape(tensor)[0] // num_shards
        return tensor[index * size:(index + 1) * size]

    def shard(inputs, targets):
        return tf.nest.map_structure(rows, inputs), tf.nest.map_structure(rows, targets)

    def big_enough(inputs, targets):
        return tf.shape(tf.nest.flatten(targets)[0])[0] >= num_shards

    return batches.filter(big_enough).map(shard)


def _log_counts(encoded: tf.data.Dataset, name: str, max_length: int) -> np.ndarray:
    """Logs how many sentences are empty and what truncation removed; returns the sentences of each length."""
    totals, length_counts = encoded.reduce(
        (np.zeros(4, np.int64), np.zeros(max_length + 1, np.int64)),
        lambda acc, x: (
            acc[0] + tf.cast(
                tf.stack([1, tf.cast(x["length"] == 0, tf.int32), x["truncated_tokens"], x["dropped_triples"]]),
                tf.int64,
            ),
            acc[1] + tf.one_hot(x["length"], max_length + 1, dtype=tf.int64),
        ),
    )
    totals = totals.numpy()
    logging.info(
        "%s: %d sentences, %d empty, %d tokens truncated, %d triples dropped by truncation.",
        name,
        *totals,
    )
    if totals[2] or totals[3]:
        logging.warning(
            "%s: truncation (max_length, or the encoder's word pieces) cut %d tokens and dropped %d triples.", name,
            totals[2], totals[3]
        )
    return length_counts.numpy()
