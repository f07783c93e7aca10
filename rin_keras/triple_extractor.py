"""RINTripleExtractor: the trained artifact, raw text in and triples out.

The keras-hub Task: a `RINPreprocessor` (tokenisation with character offsets,
vocabulary, features), the `RINModel` network and the decoding settings, saved
together as one `.keras` file that training writes and that predict, evaluate,
export and the pipeline's Evaluator, Pusher and BulkInferrer load:

    extractor = RINTripleExtractor.from_preset("runs/webnlg_partial_k3")
    extractor.predict(["Alan Bean was born in Wheeler, Texas."])
    # [[{"subject": "Bean", "relation": "birthPlace", "object": "Texas", "score": 0.98,
    #    "subject_char_span": [5, 9], "object_char_span": [31, 36], ...}]]

Sentences are tokenised the way the benchmark texts are (`rin_keras.data.tokenizer`),
and every triple carries `subject_char_span` / `object_char_span`, `[start, end)`
character offsets into the string given. Documents are split into sentences
first (pysbd); pre-tokenised input goes through `predict_tokens` (token lists) or `predict_pretokenized`
(tokens separated by whitespace).
"""

from __future__ import annotations

import itertools
import numbers
import os
import re
import zipfile
from typing import Iterable, Iterator

import keras
import numpy as np
from absl import logging

from rin_keras.config import RINConfig
from rin_keras.data import features
from rin_keras.data.tokenizer import SPACE, Token
from rin_keras.data.vocab import Vocabulary
from rin_keras.decoding import candidate_logit, cells_from_logits, span_starts
from rin_keras.files import write_atomically
from rin_keras.model import PREDICT_CHUNK_SIZE, predict_on_batch
from rin_keras.preprocessor import RINPreprocessor
from serving import contract

ARTIFACT_FILE = "extractor.keras"  # What `save_to_preset` writes into a folder.
CHECKPOINT_FILE = "best.keras"  # The network alone, as training selects it (with config.json and vocab/).
_SURROGATE = re.compile("[\ud800-\udfff]")  # In a str, a code point that no UTF-8 text holds.


def as_text(item, index: int) -> str:
    """Item `index` of a batch of texts as a `str` that UTF-8 can encode, read as the serving graph reads bytes.

    Bytes are decoded as UTF-8 and a lone surrogate of a `str` (from JSON's `\\ud800` escapes, or bytes decoded
    with `surrogateescape`) reads as U+FFFD, one character for one, so character offsets still index the text.

    Raises:
        TypeError: `item` is not a `str` or `bytes`.
    """
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if not isinstance(item, str):
        raise TypeError(f"Text {index} is a {type(item).__name__}, not a str.")
    return item if item.isascii() else _SURROGATE.sub("\ufffd", item)


def _is_text_dataset(x) -> bool:
    """Whether `x` is a `tf.data.Dataset` of strings (of any rank: texts one by one or in batches)."""
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset) and getattr(x.element_spec, "dtype", None) == tf.string


def _text_batch(texts, method: str, batch_size: int) -> Iterable:
    """A batch of texts as an iterable: a list, tuple or other iterable, a NumPy array, a string tensor, a pandas
    Series or a `tf.data.Dataset` of strings. Refuses a lone text, a dict or a set (whose order is not the results'),
    and a batch size below 1."""
    if isinstance(texts, (str, bytes)) or getattr(texts, "shape", None) == ():  # A text, or a tensor of one.
        raise TypeError(f"{method} takes a list of texts; wrap a single text in a list.")
    if texts is None or isinstance(texts, (dict, set, frozenset)):
        raise TypeError(f"{method} takes a list of texts, not {type(texts).__name__ if texts is not None else None}.")
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if _is_text_dataset(texts):  # Its texts in order, whatever its batches.
        return (text for element in texts for text in np.ravel(element.numpy()).tolist())
    if callable(getattr(texts, "numpy", None)):  # An eager tensor.
        texts = texts.numpy()
    elif callable(getattr(texts, "to_numpy", None)):  # A pandas Series.
        texts = texts.to_numpy()
    return texts.tolist() if isinstance(texts, np.ndarray) else texts


def artifact_file(path: str | os.PathLike) -> str:
    """Returns the file that `RINTripleExtractor.from_preset(path)` reads.

    That is `path` itself when it is a `.keras` file, else `<path>/extractor.keras`, else `<path>/best.keras` (a
    training folder without the extractor, assembled with its `config.json` and `vocab/`). `~` is expanded.

    Raises:
        FileNotFoundError: none of them is there.
    """
    path = os.path.expanduser(os.fspath(path))
    if path.endswith(".keras") and not os.path.exists(path):
        raise FileNotFoundError(f"No file {path}.")
    if os.path.isfile(path) and not path.endswith(".keras"):
        raise FileNotFoundError(f"{path!r} is a file but not a .keras file: pass a rin_keras.train --model_dir or a "
                                ".keras file written by RINTripleExtractor.save_to_preset.")
    extractor_file = path if os.path.isfile(path) else os.path.join(path, ARTIFACT_FILE)
    for file in (extractor_file, os.path.join(path, CHECKPOINT_FILE)):
        if os.path.isfile(file):
            return file
    raise FileNotFoundError(
        f"No {ARTIFACT_FILE} or {CHECKPOINT_FILE} in {path!r}: pass a rin_keras.train --model_dir or a .keras file "
        "written by RINTripleExtractor.save_to_preset."
    )


def split_pretokenized(sentence: str | bytes) -> list[Token]:
    """Returns the tokens of a pre-tokenised sentence: split on ASCII whitespace only, as
    `tf.strings.split` does, with their offsets. Invalid UTF-8 bytes become U+FFFD."""
    if isinstance(sentence, bytes):
        sentence = sentence.decode("utf-8", errors="replace")
    return [Token(m.group(), m.start(), m.end()) for m in contract.TOKEN.finditer(sentence)]


def joined_tokens(tokens: list[str]) -> list[Token]:
    """Returns `tokens` with their offsets in `" ".join(tokens)`, the text of a token list."""
    result, position = [], 0
    for token in tokens:
        result.append(Token(token, position, position + len(token)))
        position += len(token) + 1
    return result


SENTENCE_BLOCK_CHARS = 2_000  # pysbd's time grows faster than the text: it reads a document a block at a time.
_BLOCK_END = re.compile(r"[.!?][\"'”’)\]]*\s+|\n\s*")  # Where a block may end, best first: a sentence or a line.
_SPACE_RUN = re.compile(r"\s+")
# A line break that continues its paragraph: not one of a blank line, nor one before a list item.
_WRAPPED_LINE_BREAK = re.compile(r"(?<![\r\n])(?:\r\n|\r|\n)(?![^\S\r\n]*(?:[\r\n]|[-*•]\s|\d{1,3}[.)]\s))")


def iter_sentences(document: str) -> Iterator[tuple[int, int]]:
    """Yields `[start, end)` character offsets of the sentences of `document` (pysbd, English rules).

    A line break inside a paragraph reads as a space (hard-wrapped text, text copied from a PDF); a blank line, or a
    line that starts a list item (`-`, `*`, `•`, `1.`, `1)`), ends a sentence. pysbd reads the document in blocks of
    at most `SENTENCE_BLOCK_CHARS` characters, each ending at the last sentence end (or else line break, or else
    space) that fits; a block's last sentence is read again at the start of the next block, so that a block that
    ends inside a sentence (at `Dr. `) does not cut it, and a sentence that fills a block (a long URL) goes on into
    the next. Time grows linearly with the document and memory stays bounded. Sentences do not overlap, and
    leave out whitespace only; a stretch of whitespace alone (the tokeniser's: a zero-width space or a byte-order
    mark too) is no sentence.

    Example:
    >>> list(iter_sentences("Bean was born in Texas. He flew to the Moon."))
    [(0, 24), (24, 44)]
    >>> list(iter_sentences("Bean was born in\\nTexas.\\n\\n- He flew."))
    [(0, 25), (25, 35)]
    """
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    text = _WRAPPED_LINE_BREAK.sub(lambda match: " " * len(match.group()), document)  # Offsets unchanged.
    begin = last_end = 0
    going_on = None  # The start of a sentence that filled the blocks read since: it goes on in the next.
    while begin < len(text):
        end, ends_a_line = _block_end(text, begin)
        block = text[begin:end]
        spans = [(begin + span.start, begin + span.end) for span in segmenter.segment(block)
                 if span.sent.strip(SPACE)] if block.strip(SPACE) else []
        if end < len(text) and len(spans) > 1:
            spans, end = spans[:-1], spans[-1][0]  # The last sentence may go on past the block: read it again.
        elif end < len(text) and spans and not ends_a_line:  # One sentence fills the block, cut at a space or none.
            going_on = spans[0][0] if going_on is None else going_on
            begin = end
            continue
        if going_on is not None:
            spans = [(going_on, spans[0][1] if spans else begin), *spans[1:]]
            going_on = None
        for start, span_end in spans:
            # pysbd's spans can overlap, or leave out a period, at runs of spaced periods (`. . .`).
            start = last_end if text[last_end:start].strip(SPACE) else max(start, last_end)
            if start < span_end:
                yield start, span_end
                last_end = span_end
        begin = end
    if text[last_end:].strip(SPACE):  # What pysbd left out at the end.
        yield last_end, len(text)


def _block_end(document: str, begin: int) -> tuple[int, bool]:
    """End of the block of `iter_sentences` that starts at `begin`, and whether it ends the document, a sentence or
    a line (else a space, or no space in a block's length of characters)."""
    limit = begin + SENTENCE_BLOCK_CHARS
    if limit >= len(document):
        return len(document), True
    for pattern in (_BLOCK_END, _SPACE_RUN):
        ends = [match.end() for match in pattern.finditer(document, begin, limit) if match.end() < limit]
        if ends:
            return ends[-1], pattern is _BLOCK_END
    return limit, False


def triple_dicts(text: str, tokens: list[Token], cells: dict, relation_names: list[str]) -> list[dict]:
    """Returns one sentence's triples as the dicts `RINTripleExtractor.predict` gives.

    Args:
        text: the sentence.
        tokens: its tokens, with their offsets in `text`.
        cells: its cells above the threshold, as `TripleGraph.cells` gives them: arrays of head words
            (`subjects`, `objects`), `relations` ids and `scores`, and the starts of the entities that end at
            the heads (`subject_starts`, `object_starts`).
        relation_names: the names of the relation ids.

    An entity is the text its span covers as written (`text[start:end]` of its character span: `Wheeler, Texas`);
    a head that ends no tagged entity is its own span.
    """
    def char_span(start, head):
        return [tokens[start].start, tokens[head].end]

    dicts = []
    for subject, obj, relation, score, subject_start, object_start in zip(
            *(cells[key].tolist() for key in ("subjects", "objects", "relations", "scores", "subject_starts",
                                               "object_starts"))):
        subject_chars, object_chars = char_span(subject_start, subject), char_span(object_start, obj)
        dicts.append({
            "subject": text[subject_chars[0]:subject_chars[1]],
            "relation": relation_names[relation],
            "object": text[object_chars[0]:object_chars[1]],
            "score": score,
            "subject_span": [subject_start, subject + 1],
            "object_span": [object_start, obj + 1],
            "subject_char_span": subject_chars,
            "object_char_span": object_chars,
        })
    return dicts


def _ragged_tokens(words: list[list[str]]):
    """`words` as a ragged `[batch, (n)]` tf.string tensor."""
    import tensorflow as tf

    flat = tf.constant([word for sentence in words for word in sentence], tf.string, shape=[sum(map(len, words))])
    return tf.RaggedTensor.from_row_lengths(flat, [len(sentence) for sentence in words])


@keras.saving.register_keras_serializable(package="rin_keras")
class RINTripleExtractor(keras.Model):
    """Extracts relational triples from raw text: preprocessor + RIN network + threshold.

    Args:
        model: a `RINModel` (trained, or to train with `fit` on preprocessed batches).
        preprocessor: the `RINPreprocessor` of its vocabulary.
        threshold: pair probability at which a cell is a triple.
        **kwargs: passed to `keras.Model`.

    Call arguments:
        inputs: the network's input dict (what `preprocessor` returns).

    Returns:
        the network's outputs (`RINModel`).

    Example (with a trained model; not run as a doctest):

        extractor = RINTripleExtractor.from_preset("runs/webnlg_partial_k3")
        extractor.predict(["Alan Bean was born in Wheeler, Texas."])
    """

    def __init__(self, model, preprocessor: RINPreprocessor, threshold: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.preprocessor = preprocessor
        self.threshold = threshold
        backbone = getattr(getattr(model, "encoder", None), "backbone", None)
        if preprocessor.encoder == "bert" and backbone is not None:  # An extractor saved before it was kept.
            preprocessor.set_max_pieces(backbone.max_sequence_length)
        self.built = True

    @property
    def threshold(self) -> float:
        """The pair probability at which a cell is a triple, in [0, 1]."""
        return self._threshold

    @threshold.setter
    def threshold(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be a number in [0, 1], got {value!r}.")
        self._threshold = float(value)

    # === The artifact ===

    @classmethod
    def from_preset(cls, path: str | os.PathLike) -> "RINTripleExtractor":
        """Loads an extractor.

        Args:
            path: a `.keras` file written by `save` / `save_to_preset`, a folder
                holding `extractor.keras` (what `rin_keras.train` writes), or a
                training folder without it (`best.keras`, `config.json`, `vocab/`:
                runs stopped before their end, or trained before the extractor
                existed), which is assembled here, as it is from the path of
                its `best.keras`; `save_to_preset` converts it.
        """
        file = artifact_file(path)
        if os.path.basename(file) == CHECKPOINT_FILE:  # A training folder's network alone: assembled with its folder.
            return cls.from_checkpoint(os.path.dirname(file))
        if not zipfile.is_zipfile(file):
            raise ValueError(f"{file} is not a .keras file (a zip archive written by Keras).")
        extractor = keras.saving.load_model(file)
        if not isinstance(extractor, cls):
            raise ValueError(f"{file} holds a {type(extractor).__name__}, not a {cls.__name__}.")
        return extractor

    @classmethod
    def from_checkpoint(cls, model_dir: str, checkpoint: str = CHECKPOINT_FILE) -> "RINTripleExtractor":
        """Assembles an extractor from a training folder: `<checkpoint>`, `config.json` and `vocab/`
        (and `tokenizer/` for the BERT encoder).

        Raises:
            FileNotFoundError: one of them is missing.
        """
        missing = [name for name in (checkpoint, "config.json", "vocab")
                   if not os.path.exists(os.path.join(model_dir, name))]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks {' and '.join(missing)}: a training folder's {checkpoint} is "
                                    "read with its config.json and vocab/.")
        config = RINConfig.load(os.path.join(model_dir, "config.json"))
        vocab = Vocabulary.load(os.path.join(model_dir, "vocab"))
        tokenizer_dir = os.path.join(model_dir, features.TOKENIZER_DIR)
        bert_tokenizer = features.load_tokenizer(tokenizer_dir) if os.path.isdir(tokenizer_dir) else None
        model = keras.saving.load_model(os.path.join(model_dir, checkpoint), compile=False)  # For inference.
        max_pieces = model.encoder.backbone.max_sequence_length if config.encoder == "bert" else None
        preprocessor = RINPreprocessor.from_config_and_vocabulary(config, vocab, bert_tokenizer, max_pieces)
        logging.info("Assembled the extractor from %s/%s, config.json and vocab/.", model_dir, checkpoint)
        return cls(model, preprocessor, config.threshold)

    def save_to_preset(self, preset_dir: str) -> str:
        """Writes the extractor as `<preset_dir>/extractor.keras` (renamed into place when whole); returns the path."""
        os.makedirs(preset_dir, exist_ok=True)
        path = os.path.join(preset_dir, ARTIFACT_FILE)
        write_atomically(path, self.save)
        return path

    def get_config(self):
        model = keras.saving.serialize_keras_object(self.model)
        model.pop("compile_config", None)  # The artifact is for inference: its model loads uncompiled.
        return {
            "model": model,
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "threshold": self.threshold,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("model", "preprocessor"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    # === The network ===

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    @property
    def config(self) -> RINConfig:
        """The network's `RINConfig`."""
        return self.model.config

    @property
    def relation_names(self) -> list[str]:
        return self.preprocessor.relation_names

    @property
    def max_length(self) -> int:
        return self.preprocessor.max_length

    # === Triples ===

    def predict(self, x, batch_size=None, **kwargs):
        """Returns, per raw sentence of `x` (a list of strings), its triples as dicts.

        Each dict holds `subject`, `relation`, `object` (the entities as written), `score` (the
        pair probability), `subject_span` and `object_span` (`[start, end)` token
        indices) and `subject_char_span` and `object_char_span` (`[start, end)`
        character offsets into the sentence). Texts may come as a list, tuple or
        other iterable (a generator), a NumPy array, a string tensor, a pandas
        Series or a `tf.data.Dataset` of strings. The network's preprocessed
        inputs (a dict of arrays, a `tf.data.Dataset` or generator of them) go
        to `keras.Model.predict` and give its outputs.
        """
        import tensorflow as tf

        inputs = (isinstance(x, (dict, keras.utils.PyDataset))
                  or (isinstance(x, tf.data.Dataset) and not _is_text_dataset(x))
                  or (isinstance(x, tf.Tensor) and x.dtype != tf.string))
        if inputs:
            return super().predict(x, batch_size=batch_size, **kwargs)
        if isinstance(x, Iterator):  # Texts, or the batches of inputs that Keras reads from a generator.
            first = next(x, None)
            x = itertools.chain([] if first is None else [first], x)
            if first is not None and not isinstance(first, (str, bytes)):
                return super().predict(x, batch_size=batch_size, **kwargs)
        batch_size = 64 if batch_size is None else batch_size
        # Texts: anything else in the batch is refused by its index.
        results = self.predict_detailed(_text_batch(x, "predict", batch_size), batch_size)
        truncated = sum(result["truncated"] for result in results)
        if truncated:
            logging.warning("%d of %d texts were longer than the model reads (%s); the rest of each was not "
                            "read (predict_detailed marks them \"truncated\"; predict_documents splits texts "
                            "into sentences).", truncated, len(results), self.preprocessor.read_limit)
        return [result["triples"] for result in results]

    def predict_detailed(self, sentences: Iterable[str], batch_size: int = 64) -> list[dict]:
        """Like `predict`, but each sentence gives `{"tokens", "token_spans", "truncated", "triples"}`.

        Each sentence is read up to the model's `max_length` tokens, and with a BERT-family
        encoder up to its backbone's word pieces (`truncated` says when there was more); the
        rest of it is not tokenised. Sentences are `str` or UTF-8 `bytes` (`as_text`).
        """
        texts = (as_text(s, i) for i, s in enumerate(_text_batch(sentences, "predict_detailed", batch_size)))
        return self._predict_all(((text, self.preprocessor.split(text)) for text in texts), batch_size)

    def predict_tokens(self, token_lists: Iterable[list[str]], batch_size: int = 64) -> list[dict]:
        """`predict_detailed` for pre-tokenised sentences, whose tokens are read as given; `""` tokens are left
        out, as the padding of the `serve_tokens` signature is.

        Character spans index `" ".join(tokens)` (of the tokens read).
        """
        token_lists = _text_batch(token_lists, "predict_tokens", batch_size)

        def tokens_of(index, tokens):
            if isinstance(tokens, (str, bytes)):
                raise TypeError(f"Sentence {index} is a {type(tokens).__name__}; predict_tokens takes lists of tokens.")
            return [text for text in (as_text(token, index) for token in tokens) if text]

        token_lists = (tokens_of(i, tokens) for i, tokens in enumerate(token_lists))
        return self._predict_all(((" ".join(tokens), joined_tokens(tokens)) for tokens in token_lists), batch_size)

    def predict_pretokenized(self, sentences: Iterable[str], batch_size: int = 64) -> list[dict]:
        """`predict_detailed` for sentences whose tokens are separated by ASCII whitespace (`split_pretokenized`),
        read as given (`rin_keras.predict --pretokenized`). Character spans index each sentence as given."""
        texts = (as_text(s, i) for i, s in enumerate(_text_batch(sentences, "predict_pretokenized", batch_size)))
        return self._predict_all(((text, split_pretokenized(text)) for text in texts), batch_size)

    def predict_documents(self, documents: Iterable[str], batch_size: int = 64) -> list[dict]:
        """Returns, per document, `{"sentences": [[start, end), ...], "triples": [...], "truncated": [...]}`.

        Documents are split into sentences (`iter_sentences`); each triple adds
        `sentence` (its sentence's index) and its character spans index the document
        (a document given as UTF-8 `bytes`: the text decoded, `as_text`).
        `truncated` lists the sentences longer than the model reads (`predict_detailed`),
        of which the rest was not read. Sentences stream through the model
        `batch_size` at a time, so memory does not grow with a document's length
        beyond its sentence offsets and triples.
        """
        documents = [as_text(document, i)
                     for i, document in enumerate(_text_batch(documents, "predict_documents", batch_size))]
        output = [{"sentences": [], "triples": [], "truncated": []} for _ in documents]

        def sentences():
            for document, result in zip(documents, output):
                for start, end in iter_sentences(document):
                    result["sentences"].append([start, end])
                    yield result, len(result["sentences"]) - 1, start, document[start:end]

        stream = sentences()
        while batch := list(itertools.islice(stream, batch_size)):
            for (result, index, start, _), found in zip(batch, self.predict_detailed([s[3] for s in batch], batch_size)):
                if found["truncated"]:
                    result["truncated"].append(index)
                result["triples"].extend({
                    **triple,
                    "sentence": index,
                    "subject_char_span": [start + i for i in triple["subject_char_span"]],
                    "object_char_span": [start + i for i in triple["object_char_span"]],
                } for triple in found["triples"])
        return output

    def _predict_all(self, sentences: Iterable[tuple[str, list[Token]]], batch_size: int) -> list[dict]:
        """Predicts `(text, tokens)` sentences in batches of `batch_size`, tokenising one batch at a time."""
        results = []
        sentences = iter(sentences)
        while batch := list(itertools.islice(sentences, batch_size)):
            results.extend(self._predict_batch(batch))
        return results

    def _predict_batch(self, batch: list[tuple[str, list[Token]]]) -> list[dict]:
        kept = [tokens[: self.max_length] for _, tokens in batch]
        featurizer = self.preprocessor.featurizer
        if isinstance(featurizer, features.WordPieces):  # Words past the backbone's pieces are not read.
            read = featurizer.words_read(_ragged_tokens([[token.text for token in tokens] for tokens in kept]))
            kept = [tokens[:count] for tokens, count in zip(kept, read.numpy().tolist())]
        words = [[token.text for token in tokens] for tokens in kept]
        return [{
            "tokens": texts,
            "token_spans": [[token.start, token.end] for token in tokens],
            "truncated": len(all_tokens) > len(tokens),
            "triples": triple_dicts(text, tokens, cells, self.relation_names),
        } for (text, all_tokens), tokens, texts, cells in zip(batch, kept, words, self._sentence_cells(words))]

    def _sentence_cells(self, words: list[list[str]]) -> list[dict]:
        """Returns, per sentence of `words` (at most `max_length` tokens each), its cells above the threshold
        (`triple_dicts`): on TensorFlow from `_graph_cells`, on other backends from `_python_cells`."""
        if keras.backend.backend() == "tensorflow":
            return self._graph_cells(words)
        return self._python_cells(words)

    def _graph_cells(self, words: list[list[str]]) -> list[dict]:
        """`_sentence_cells` from one call of the serving graph's path from tokens to cells
        (`rin_keras.export.TripleGraph.cells`), traced once for any batch: the encoder reads the whole batch and
        the pair rounds, whose cost grows with n^2, run in the graph on the sentences sorted by length,
        `PAIR_CHUNK_SIZE` at a time (docs/benchmarks/serving_latency.md)."""
        import tensorflow as tf

        found = self._graph_function()(_ragged_tokens(words), tf.constant(self.threshold, tf.float32),
                                       tf.constant(candidate_logit(self.threshold), tf.float32))
        found = {key: value.numpy() for key, value in found.items()}
        bounds = np.searchsorted(found.pop("rows"), np.arange(len(words) + 1))  # The cells come sorted by sentence.
        return [{key: value[begin:end] for key, value in found.items()} for begin, end in zip(bounds, bounds[1:])]

    def _graph_function(self):
        """`TripleGraph.cells` as a TensorFlow function of one trace, made again when the network, the
        preprocessor's featurizer or `max_length` is replaced (`_kept`)."""
        import tensorflow as tf

        from rin_keras.export import TripleGraph

        def make():
            return tf.function(TripleGraph(self).cells, input_signature=[
                tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1), tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.float32)])

        return self._kept("_kept_graph_function", (self.model, self.preprocessor.featurizer, self.max_length), make)

    def _split_network(self) -> tuple[keras.Model, keras.Model]:
        """`RINModel.split_at_encoder`, made again when the network is replaced (`_kept`)."""
        return self._kept("_kept_split_network", (self.model,),
                          lambda: self.model.split_at_encoder(relation_logits=True))

    def _kept(self, name: str, made_for: tuple, make):
        """`make()`, kept under `name` until `made_for` changes (its objects compared by identity).

        Kept past Keras's attribute tracking, so that it is not saved with the extractor; not a cached property,
        which Keras's loader, reading every attribute, would make at load.
        """
        kept = self.__dict__.get(name)
        if kept is None or kept[0] != made_for:
            kept = self.__dict__[name] = (made_for, make())
        return kept[1]

    def _python_cells(self, words: list[list[str]]) -> list[dict]:
        """`_sentence_cells` on any backend, from Python: the encoder reads the whole batch and the pair rounds
        run on the sentences sorted by length, `PREDICT_CHUNK_SIZE` at a time, each chunk cut to its longest
        sentence, so that short sentences are not padded to the batch's longest; the cells are read from the
        final relation head's logits (`rin_keras.decoding.cells_from_logits`) and the entity starts from the
        tags (`rin_keras.decoding.span_starts`), as the serving graph reads them."""
        order = sorted(range(len(words)), key=lambda i: -len(words[i]))
        inputs = self.preprocessor.featurize(_ragged_tokens([words[i] for i in order]))
        inputs = {k: v.numpy() for k, v in inputs.items()}
        encode, interact = self._split_network()
        hidden = predict_on_batch(encode, inputs)
        word_input = inputs[self.model.word_input]
        outputs = [None] * len(words)
        for start in range(0, len(order), PREDICT_CHUNK_SIZE):
            rows = order[start : start + PREDICT_CHUNK_SIZE]
            width = max(len(words[rows[0]]), 1)  # The chunk's longest sentence comes first.
            chunk = slice(start, start + PREDICT_CHUNK_SIZE)
            pairs = predict_on_batch(interact, [word_input[chunk, :width], hidden[chunk, :width]])
            tag_ids = np.argmax(pairs["entity_tags"], axis=-1)
            cells, scores = cells_from_logits(pairs["relation_logits"], [len(words[row]) for row in rows],
                                              self.threshold)
            for i, row in enumerate(rows):
                mine = cells[:, 0] == i
                subjects, objects, relations = cells[mine, 1:].T
                starts = span_starts(tag_ids[i, : len(words[row])])
                outputs[row] = {"subjects": subjects, "objects": objects, "relations": relations,
                                "scores": scores[mine], "subject_starts": starts[subjects],
                                "object_starts": starts[objects]}
        return outputs
