"""SavedModel export for TF Serving: raw sentences in, triples out, all in-graph.

    python -m rin_keras.export --model_dir=runs/webnlg_partial_k3 --export_dir=serving_models/rin --version=1

writes `serving_models/rin/1/` (TF Serving's `<base>/<version>/` layout) with:

- `serving_default`: `sentences` tf.string [batch] -> triples (see `serving.contract.OUTPUTS`).
  Tokenisation (`rin_keras.data.tokenizer.RINTokenizer`, the same rules as the
  Python `tokenize_with_offsets`), vocabulary lookup, the model, BIESO span
  decoding and thresholding all run in the graph; character spans index the sentence.
- `serve_tokens`: `tokens` tf.string [batch, n], pre-tokenised, "" as padding;
  character spans index the tokens joined by single spaces.
- `assets.extra/tf_serving_warmup_requests`: warm-up requests TF Serving replays
  on load; `assets.extra/rin_source.txt`: the model it was exported from.

A version folder is written under a temporary name and renamed when complete,
so a server polling the base path never sees half an export.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import keras
import tensorflow as tf
from absl import logging

from rin_keras import cli
from rin_keras.data import features
from rin_keras.data.tokenizer import char_prefix, tokenize, valid_utf8
from rin_keras.decoding import TAGS, candidate_logit
from rin_keras.files import remove_stale_temporaries, temporary_name
from rin_keras.model import PAIR_CHUNK_SIZE
from rin_keras.triple_extractor import artifact_file
from serving import contract

WARMUP_SENTENCES = (
    "Alan Bean was born in Wheeler, Texas.",
    "The Acharya Institute of Technology is located in Bangalore , India .",
)
_B, _I, _E, _S, _O = range(len(TAGS))
_CELL_KEYS = ("rows", "subjects", "objects", "relations", "scores", "subject_starts", "object_starts")
_CELL_SPECS = [(tf.int32, [None])] * 4 + [(tf.float32, [None])] + [(tf.int32, [None])] * 2


class TripleGraph:
    """The in-graph path from tokens to padded triple tensors.

    Args:
        extractor: a trained `RINTripleExtractor` (its preprocessor, network and threshold).
        max_length: tokens kept per sentence, up to the preprocessor's (the default).
        chunk_size: sentences per pair-round call inside one request (see `PAIR_CHUNK_SIZE`).

    Raises:
        ValueError: `max_length` beyond the model's: an export may only read less than the model trained on.
    """

    def __init__(self, extractor, max_length: int | None = None, chunk_size: int = PAIR_CHUNK_SIZE):
        if max_length is not None and max_length > extractor.max_length:
            raise ValueError(f"max_length={max_length}: the model reads up to {extractor.max_length} tokens a sentence "
                             "(its training max_length), and an export may only lower that.")
        self.model = extractor.model
        self.encode, self.interact = self.model.split_at_encoder(relation_logits=True)
        self.chunk_size = chunk_size
        self.featurizer = extractor.preprocessor.featurizer
        self.tokenizer = extractor.preprocessor.tokenizer
        self.tracked_layers = extractor.preprocessor.lookup_layers
        self.relation_names = tf.constant(extractor.relation_names)
        self.max_length = max_length or extractor.max_length
        self.threshold = extractor.threshold
        self.candidate_logit = candidate_logit(self.threshold)

    def from_sentences(self, sentences: tf.Tensor) -> dict:
        """Triples of raw sentences, tf.string [batch]; character spans index each sentence.

        Only each sentence's first `max_length + 1` tokens are read (the last one to
        tell `truncated`), and only the text they cover is kept for the entity strings.
        """
        tokens, starts, ends = self.tokenizer(sentences, self.max_length + 1)
        kept_chars = tf.maximum(tf.reduce_max(ends[:, : self.max_length], axis=1), 0)
        texts = char_prefix(sentences, kept_chars)
        return self.from_tokens(texts, tokens, starts, ends)

    def from_padded_tokens(self, tokens: tf.Tensor) -> dict:
        """Triples of pre-tokenised sentences, tf.string [batch, n] with "" padding.

        Character spans index the tokens joined by single spaces. Tokens past the
        first `max_length + 1` are not read; invalid UTF-8 bytes read as U+FFFD.
        """
        tokens = valid_utf8(tokens)
        tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))[:, : self.max_length + 1]
        lengths = tf.strings.length(tokens.flat_values, unit="UTF8_CHAR")
        through = tf.cumsum(lengths + 1)  # Characters up to each token's following space, batch-wide.
        before_row = tf.gather(tf.concat([[0], through], 0), tokens.row_starts())
        ends = through - 1 - tf.gather(before_row, tokens.value_rowids())
        texts = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return self.from_tokens(texts, tokens, tokens.with_flat_values(ends - lengths), tokens.with_flat_values(ends))

    def from_tokens(self, texts: tf.Tensor, tokens: tf.RaggedTensor, starts: tf.RaggedTensor,
                    ends: tf.RaggedTensor) -> dict:
        """Triples of a ragged [batch, (n)] batch of tokens of `texts`, with their character offsets.

        An entity is the text its character span covers, as written.

        The encoder reads the whole batch at once; the pair rounds, whose tensors
        grow with n^2, run on the sentences sorted by length, `chunk_size` at a
        time, each chunk cut to its own longest sentence, so little of their work
        goes to padding in mixed batches.
        """
        truncated = tokens.row_lengths() > self.max_length
        tokens = tokens[:, : self.max_length]
        if isinstance(self.featurizer, features.WordPieces):  # Words past the backbone's pieces are not read.
            read = tf.cast(self.featurizer.words_read(tokens), tf.int64)
            truncated |= read < tokens.row_lengths()
            tokens = tf.ragged.boolean_mask(tokens, tf.ragged.range(tokens.row_lengths()) < read[:, None])
        lengths = tf.cast(tokens.row_lengths(), tf.int32)
        found = self._cells_by_chunk(self.featurizer(tokens), lengths, self.threshold, self.candidate_logit)
        return self._outputs(texts, tokens, starts, ends, found, lengths, truncated)

    def cells(self, tokens: tf.RaggedTensor, threshold: tf.Tensor, candidate: tf.Tensor) -> dict:
        """The cells of a ragged [batch, (n)] batch of tokens whose probability reaches `threshold`.

        For `RINTripleExtractor.predict`, which reads its threshold when called (`candidate` is
        `rin_keras.decoding.candidate_logit(threshold)`). Tokens past `max_length` are not read.

        Returns:
            one entry per triple, sorted by sentence (`rows`), as the serving signatures find them: head words
            (`subjects`, `objects`), `relations` ids, `scores`, and the starts of the entities that end at the
            heads (`subject_starts`, `object_starts`; a head that ends no tagged entity starts its own).
        """
        tokens = tokens[:, : self.max_length]
        return self._cells_by_chunk(self.featurizer(tokens), tf.cast(tokens.row_lengths(), tf.int32), threshold,
                                    candidate)

    def _cells_by_chunk(self, inputs: dict, lengths: tf.Tensor, threshold, candidate) -> dict:
        """The extracted cells (`_CELL_KEYS`) of a batch, from the pair rounds run on length-sorted chunks, in
        the order of one unchunked pass over the batch."""
        batch = tf.shape(lengths)[0]
        order = tf.argsort(lengths, direction="DESCENDING", stable=True)
        word_input = inputs[self.model.word_input]
        hidden = self.encode(inputs, training=False)

        def run_chunk(i, found):
            rows = order[i * self.chunk_size : (i + 1) * self.chunk_size]
            width = tf.maximum(lengths[rows[0]], 1)  # The chunk's longest sentence comes first.
            cells = self._chunk_cells(tf.gather(word_input, rows)[:, :width], tf.gather(hidden, rows)[:, :width],
                                      tf.gather(lengths, rows), threshold, candidate)
            cells["rows"] = tf.gather(rows, cells["rows"])  # Back to the request's order.
            return i + 1, [ta.write(i, cells[k]) for k, ta in zip(_CELL_KEYS, found)]

        num_chunks = (batch + self.chunk_size - 1) // self.chunk_size
        arrays = [tf.TensorArray(dtype, size=num_chunks, infer_shape=False, element_shape=shape)
                  for dtype, shape in _CELL_SPECS]
        _, arrays = tf.while_loop(lambda i, _: i < num_chunks, run_chunk, [0, arrays])
        found = {k: ta.concat() for k, ta in zip(_CELL_KEYS, arrays)}
        # Each sentence's cells come from one chunk, already in (subject, object, relation) order:
        # a stable sort by sentence restores the order of one unchunked pass.
        rank = tf.argsort(found["rows"], stable=True)
        return {k: tf.gather(v, rank) for k, v in found.items()}

    def _outputs(self, texts: tf.Tensor, tokens: tf.RaggedTensor, starts: tf.RaggedTensor, ends: tf.RaggedTensor,
                 found: dict, lengths: tf.Tensor, truncated: tf.Tensor) -> dict:
        """The signature's outputs: each sentence's triples (`found` cells) padded to the most triples, with
        their token and character spans and entity texts as written."""
        batch = tokens.nrows(out_type=tf.int32)
        rows = found["rows"]
        width = tf.stack([batch, features.padded_width(tokens)])
        subject_spans = tf.stack([found["subject_starts"], found["subjects"] + 1], 1)
        object_spans = tf.stack([found["object_starts"], found["objects"] + 1], 1)
        char_starts = tf.cast(starts[:, : self.max_length].to_tensor(0, shape=width), tf.int32)
        char_ends = tf.cast(ends[:, : self.max_length].to_tensor(0, shape=width), tf.int32)

        def char_spans(spans):
            first = tf.gather_nd(char_starts, tf.stack([rows, spans[:, 0]], 1))
            last = tf.gather_nd(char_ends, tf.stack([rows, spans[:, 1] - 1], 1))
            return tf.stack([first, last], 1)

        def span_text(char_span):
            return tf.strings.substr(tf.gather(texts, rows), char_span[:, 0], char_span[:, 1] - char_span[:, 0],
                                     unit="UTF8_CHAR")

        subject_chars, object_chars = char_spans(subject_spans), char_spans(object_spans)

        def per_sentence(values, default):
            ragged = tf.RaggedTensor.from_value_rowids(values, rows, nrows=batch)
            return ragged.to_tensor(default_value=default)

        return {
            "subjects": per_sentence(span_text(subject_chars), ""),
            "relations": per_sentence(tf.gather(self.relation_names, found["relations"]), ""),
            "objects": per_sentence(span_text(object_chars), ""),
            "scores": per_sentence(found["scores"], 0.0),
            "subject_spans": per_sentence(subject_spans, 0),
            "object_spans": per_sentence(object_spans, 0),
            "subject_char_spans": per_sentence(subject_chars, 0),
            "object_char_spans": per_sentence(object_chars, 0),
            "num_triples": tf.math.bincount(rows, minlength=batch, maxlength=batch, dtype=tf.int32),
            "num_tokens": lengths,
            "truncated": truncated,
        }

    def _chunk_cells(self, word_input: tf.Tensor, hidden: tf.Tensor, lengths: tf.Tensor, threshold,
                     candidate) -> dict:
        """Runs the pair rounds on a few encoded sentences; returns one entry per triple (see `_CELL_KEYS`).

        The final relation head gives logits; only the word pairs whose largest logit reaches `candidate`
        (`candidate_logit(threshold)`) get a sigmoid, as `rin_keras.decoding.cells_from_logits` does in NumPy.
        """
        outputs = self.interact([word_input, hidden], training=False)
        logits = outputs["relation_logits"]
        starts = self._span_starts(tf.argmax(outputs["entity_tags"], axis=-1, output_type=tf.int32))
        best = tf.cast(tf.reduce_max(logits, axis=-1), tf.float32)
        # A pair with a NaN logit is read cell by cell, as the probabilities were.
        pairs = tf.cast(tf.where((best >= candidate) | tf.math.is_nan(best)), tf.int32)
        rows, subjects, objects = tf.unstack(pairs, num=3, axis=1)
        length = tf.gather(lengths, rows)
        real = (subjects < length) & (objects < length)
        pairs = tf.boolean_mask(pairs, real)
        probs = tf.sigmoid(tf.cast(tf.gather_nd(logits, pairs), tf.float32))  # [pairs, relations]
        found = tf.cast(tf.where(probs >= threshold), tf.int32)  # (pair, relation), in the cells' order
        rows, subjects, objects = tf.unstack(tf.gather(pairs, found[:, 0]), num=3, axis=1)
        return {
            "rows": rows,
            "subjects": subjects,
            "objects": objects,
            "relations": found[:, 1],
            "scores": tf.gather_nd(probs, found),
            "subject_starts": tf.gather_nd(starts, tf.stack([rows, subjects], 1)),
            "object_starts": tf.gather_nd(starts, tf.stack([rows, objects], 1)),
        }

    @staticmethod
    def _span_starts(tag_ids: tf.Tensor) -> tf.Tensor:
        """Start of the entity ending at each word (the word itself if none), as `tags_to_spans`.

        A span ends at an S, or at an E whose nearest earlier non-I tag is a B.
        """
        positions = tf.range(tf.shape(tag_ids)[1])
        non_inside = tf.where(tag_ids != _I, positions[None, :], -1)
        earlier = positions[None, :] < positions[:, None]
        previous = tf.reduce_max(tf.where(earlier[None], non_inside[:, None, :], -1), axis=-1)
        previous_tag = tf.gather(tag_ids, tf.maximum(previous, 0), batch_dims=1)
        closes_b = (tag_ids == _E) & (previous >= 0) & (previous_tag == _B)
        return tf.where(closes_b, previous, positions[None, :])


def require_tensorflow_backend() -> None:
    """Raises RuntimeError, saying what to do, where Keras runs another backend: a SavedModel is TensorFlow's."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"a SavedModel is exported with TensorFlow, and Keras runs {keras.backend.backend()} here: "
                           "run the export with KERAS_BACKEND=tensorflow (a model trained on any backend exports).")


def export_saved_model(extractor, path: str, max_length: int | None = None, model_name: str = "rin",
                       source: str | None = None) -> str:
    """Writes the serving SavedModel of a `RINTripleExtractor` to `path` (which must not exist).

    `source`, the path of the model exported, is written into `contract.SOURCE_FILE` with its file's sha256
    (`contract.export_source` and `export_source_digest` read them), so that a version folder says which run it
    serves, and which model wherever that run's folder is mounted.

    Every export tokenises with a TF Text op (`regex_split_with_offsets`; a BERT
    encoder's word pieces too): a process loading it must `import tensorflow_text`
    first (`serving.server` does); TF Serving's model server is built with them.

    Returns:
        `path`.

    Raises:
        RuntimeError: Keras runs another backend than TensorFlow (`require_tensorflow_backend`).
    """
    require_tensorflow_backend()
    graph = TripleGraph(extractor, max_length)
    archive = keras.export.ExportArchive()
    archive.track(extractor.model)
    for layer in graph.tracked_layers:
        archive.track(layer)
    archive.add_endpoint(
        contract.SENTENCES_SIGNATURE,
        graph.from_sentences,
        input_signature=[tf.TensorSpec([None], tf.string, name=contract.input_name(contract.SENTENCES_SIGNATURE))],
    )
    archive.add_endpoint(
        contract.TOKENS_SIGNATURE,
        graph.from_padded_tokens,
        input_signature=[tf.TensorSpec([None, None], tf.string, name=contract.input_name(contract.TOKENS_SIGNATURE))],
    )
    archive.write_out(path, verbose=False)
    _write_warmup_requests(path, model_name)
    if source is not None:
        with open(os.path.join(path, contract.SOURCE_FILE), "w", encoding="utf-8") as f:
            f.write(f"{os.path.abspath(source)}\n{model_digest(source)}\n")
    return path


def model_digest(source: str) -> str:
    """The sha256 of the model file that `RINTripleExtractor.from_preset(source)` reads (`artifact_file`)."""
    digest = hashlib.sha256()
    with open(artifact_file(source), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_warmup_requests(path: str, model_name: str) -> None:
    """Writes a PredictionLog of one request per signature, which TF Serving replays on load."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    os.makedirs(os.path.dirname(os.path.join(path, contract.WARMUP_FILE)), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(path, contract.WARMUP_FILE)) as writer:
        for signature, value in (
            (contract.SENTENCES_SIGNATURE, list(WARMUP_SENTENCES)),
            (contract.TOKENS_SIGNATURE, [tokenize(s) for s in WARMUP_SENTENCES[:1]]),
        ):
            name = contract.input_name(signature)
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def export_version(extractor, base: str, version: int | None = None, **kwargs) -> str:
    """Exports into `<base>/<version>/` atomically; version defaults to `contract.next_version(base)`. The temporary
    folders of exports that were killed on this host are removed.

    Raises:
        FileExistsError: that version already exists.
        ValueError: no version is left after the base's newest, or `max_length` is beyond the model's.

    Returns:
        the version folder.
    """
    version = version if version is not None else contract.next_version(base)
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists; pick another --version or remove it.")
    remove_stale_temporaries(base)
    temporary = os.path.join(base, temporary_name(str(version)))
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        export_saved_model(extractor, temporary, **kwargs)
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    logging.info("Exported %s", final)
    return final


def main(argv):
    del argv
    from absl import flags

    FLAGS = flags.FLAGS
    try:
        require_tensorflow_backend()
    except RuntimeError as e:
        raise SystemExit(f"rin_keras.export: {e}") from e
    extractor = cli.load_extractor()
    try:
        os.makedirs(FLAGS.export_dir, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"rin_keras.export: cannot make --export_dir={FLAGS.export_dir}: {e.strerror}.") from e
    try:
        path = export_version(extractor, FLAGS.export_dir, FLAGS.version, max_length=FLAGS.max_length,
                              model_name=FLAGS.model_name, source=FLAGS.model_dir)
    except (FileExistsError, ValueError) as e:  # A version taken meanwhile, none left, or a --max_length too long.
        raise SystemExit(f"rin_keras.export: {e}") from e
    print(path)


if __name__ == "__main__":
    from absl import app, flags

    cli.define_model_dir_flag()
    cli.define_threshold_flag()
    flags.adopt_module_key_flags(cli)  # --help lists the shared flags too.
    flags.DEFINE_string("export_dir", "serving_models/rin", "TF Serving base path; versions go below it.")
    cli.register_path_check("export_dir", cli.folder_to_write)
    flags.DEFINE_integer("version", None, "Version number (default: newest existing + 1).", lower_bound=0,
                         upper_bound=contract.MAX_VERSION)
    flags.DEFINE_integer("max_length", None, "Tokens kept per sentence, up to the training max_length (the "
                         "default).", lower_bound=1)
    flags.DEFINE_string("model_name", "rin", "Model name in the warm-up requests (TF Serving --model_name).")
    flags.register_multi_flags_validator(
        ["export_dir", "version"],
        lambda f: f["version"] is None or not os.path.exists(os.path.join(f["export_dir"], str(f["version"]))),
        "--export_dir holds that --version already: pick another (or leave it out for the next) or remove it.")
    app.run(main)
