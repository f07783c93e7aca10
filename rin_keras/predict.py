"""Triples from raw text with a trained model: the `Extractor` API and CLI.

Sentences are tokenised the way the benchmark texts are (`rin_keras.data.tokenizer`:
punctuation and clitics split off, the sentence-final period split, `U.S.` kept),
and every triple carries `subject_char_span` / `object_char_span`, `[start, end)`
character offsets into the string given, so a caller can highlight it. Documents
are split into sentences first (pysbd), and their triples carry the sentence index
and offsets into the document. Pre-tokenised input goes through `predict_tokens`
(or `--pretokenized`), whose tokens are read as given.

    python -m rin_keras.predict --model_dir=runs/webnlg "Alan Bean was born in Wheeler, Texas."
    python -m rin_keras.predict --model_dir=runs/webnlg --documents --input=docs.jsonl --output=triples.jsonl
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Iterable

import numpy as np

from rin_keras.config import RINConfig
from rin_keras.data import features
from rin_keras.data.tokenizer import Token, tokenize_with_offsets
from rin_keras.data.vocab import Vocabulary
from rin_keras.decoding import decode_triples, span_text

_NON_WHITESPACE = re.compile(r"[^ \t\n\v\f\r]+")  # A token of pre-tokenised text.
MODEL_FILE = "best.keras"


def split_pretokenized(sentence: str | bytes) -> list[Token]:
    """Returns the tokens of a pre-tokenised sentence: split on ASCII whitespace only, as
    `tf.strings.split` does, with their offsets. Invalid UTF-8 bytes become U+FFFD."""
    if isinstance(sentence, bytes):
        sentence = sentence.decode("utf-8", errors="replace")
    return [Token(m.group(), m.start(), m.end()) for m in _NON_WHITESPACE.finditer(sentence)]


def joined_tokens(tokens: list[str]) -> list[Token]:
    """Returns `tokens` with their offsets in `" ".join(tokens)`, the text of a token list."""
    result, position = [], 0
    for token in tokens:
        result.append(Token(token, position, position + len(token)))
        position += len(token) + 1
    return result


def split_sentences(document: str) -> list[tuple[int, int]]:
    """Returns `[start, end)` character offsets of the sentences of `document` (pysbd, English rules).

    Example:
    >>> split_sentences("Bean was born in Texas. He flew to the Moon.")
    [(0, 24), (24, 44)]
    """
    import pysbd

    if not document.strip():
        return []
    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return [(span.start, span.end) for span in segmenter.segment(document) if span.sent.strip()]


def triple_dicts(tokens: list[Token], triples, relation_names: list[str]) -> list[dict]:
    """Returns `decoding.Triple`s as the dicts `Extractor.predict` gives.

    An entity whose span the NER head did not tag is its annotated (last) word.
    """
    words = [token.text for token in tokens]

    def char_span(extent):
        return [tokens[extent[0]].start, tokens[extent[1] - 1].end]

    return [
        {
            "subject": span_text(words, t.subject_extent),
            "relation": relation_names[t.relation],
            "object": span_text(words, t.object_extent),
            "score": t.score,
            "subject_span": list(t.subject_extent),
            "object_span": list(t.object_extent),
            "subject_char_span": char_span(t.subject_extent),
            "object_char_span": char_span(t.object_extent),
        }
        for t in triples
    ]


def triples_from_outputs(outputs: dict) -> list[list[dict]]:
    """Returns `Extractor.predict`'s structure from the exported signature's outputs.

    Args:
        outputs: NumPy arrays or nested lists keyed by `rin_keras.export.OUTPUTS` names
            (`subjects`, `relations`, `objects`, `scores`, `subject_spans`,
            `object_spans`, `num_triples`), batch first.
    """

    def text(value):
        return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)

    results = []
    for row, count in enumerate(np.asarray(outputs["num_triples"]).tolist()):
        results.append([
            {
                "subject": text(outputs["subjects"][row][k]),
                "relation": text(outputs["relations"][row][k]),
                "object": text(outputs["objects"][row][k]),
                "score": float(outputs["scores"][row][k]),
                "subject_span": [int(i) for i in outputs["subject_spans"][row][k]],
                "object_span": [int(i) for i in outputs["object_spans"][row][k]],
                "subject_char_span": [int(i) for i in outputs["subject_char_spans"][row][k]],
                "object_char_span": [int(i) for i in outputs["object_char_spans"][row][k]],
            }
            for k in range(count)
        ])
    return results


class Extractor:
    """Extracts relational triples from raw sentences with a trained RIN model.

    Args:
        model: a trained RINModel.
        vocab: the vocabulary it was trained with.
        max_length: sentences are cut to this many tokens (the result says so).
        threshold: pair probability at which a cell is a triple.

    Example (with a trained model; not run as a doctest):

        extractor = Extractor.from_model_dir("runs/webnlg")
        extractor.predict(["Alan Bean was born in Wheeler, Texas."])
        # [[{"subject": "Bean", "relation": "birthPlace", "object": "Texas", "score": 0.98,
        #    "subject_char_span": [5, 9], "object_char_span": [31, 36], ...}]]
    """

    def __init__(self, model, vocab: Vocabulary, max_length: int = 100, threshold: float = 0.5, featurizer=None):
        self.model = model
        self.vocab = vocab
        self.max_length = max_length
        self.threshold = threshold
        self.featurizer = featurizer or features.featurizer_for(model.config, vocab)

    @classmethod
    def from_model_dir(cls, model_dir: str) -> "Extractor":
        """Loads `best.keras`, `config.json` and `vocab/` written by `rin_keras.train`."""
        import keras

        path = os.path.join(model_dir, MODEL_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: is {model_dir!r} a rin_keras.train --model_dir?")
        config = RINConfig.load(os.path.join(model_dir, "config.json"))
        vocab = Vocabulary.load(os.path.join(model_dir, "vocab"))
        return cls(keras.saving.load_model(path), vocab, config.max_length, config.threshold,
                   features.featurizer_for(config, vocab, model_dir))

    def predict(self, sentences: Iterable[str], batch_size: int = 64) -> list[list[dict]]:
        """Returns, per raw sentence, its triples as dicts.

        Each dict holds `subject`, `relation`, `object` (token strings), `score` (the
        pair probability), `subject_span` and `object_span` (`[start, end)` token
        indices) and `subject_char_span` and `object_char_span` (`[start, end)`
        character offsets into the sentence).
        """
        return [result["triples"] for result in self.predict_detailed(sentences, batch_size)]

    def predict_detailed(self, sentences: Iterable[str], batch_size: int = 64) -> list[dict]:
        """Like `predict`, but each sentence gives `{"tokens", "token_spans", "truncated", "triples"}`."""
        return self._predict_all([tokenize_with_offsets(s) for s in sentences], batch_size)

    def predict_tokens(self, token_lists: Iterable[list[str]], batch_size: int = 64) -> list[dict]:
        """`predict_detailed` for pre-tokenised sentences, whose tokens are read as given.

        Character spans index `" ".join(tokens)`.
        """
        return self._predict_all([joined_tokens(list(tokens)) for tokens in token_lists], batch_size)

    def predict_documents(self, documents: Iterable[str], batch_size: int = 64) -> list[dict]:
        """Returns, per document, `{"sentences": [[start, end), ...], "triples": [...]}`.

        Documents are split into sentences (`split_sentences`); each triple adds
        `sentence` (its sentence's index) and its character spans index the document.
        """
        documents = list(documents)
        spans = [split_sentences(document) for document in documents]
        flat = [document[start:end] for document, doc_spans in zip(documents, spans) for start, end in doc_spans]
        results = iter(self.predict_detailed(flat, batch_size))
        output = []
        for doc_spans in spans:
            triples = []
            for index, (start, _) in enumerate(doc_spans):
                for triple in next(results)["triples"]:
                    triples.append({
                        **triple,
                        "sentence": index,
                        "subject_char_span": [start + i for i in triple["subject_char_span"]],
                        "object_char_span": [start + i for i in triple["object_char_span"]],
                    })
            output.append({"sentences": [list(span) for span in doc_spans], "triples": triples})
        return output

    def _predict_all(self, token_lists: list[list[Token]], batch_size: int) -> list[dict]:
        results = []
        for begin in range(0, len(token_lists), batch_size):
            results.extend(self._predict_tokens(token_lists[begin:begin + batch_size]))
        return results

    def _predict_tokens(self, batch: list[list[Token]]) -> list[dict]:
        import tensorflow as tf

        kept = [tokens[: self.max_length] for tokens in batch]
        words = [[token.text for token in tokens] for tokens in kept]
        inputs = self.featurizer(tf.ragged.constant(words, dtype=tf.string, ragged_rank=1))
        outputs = self.model.predict_on_batch({k: v.numpy() for k, v in inputs.items()})
        tag_ids = np.argmax(outputs["entity_tags"], axis=-1)
        results = []
        for row, tokens in enumerate(kept):
            triples = decode_triples(tag_ids[row], outputs["relations"][row], len(tokens), self.threshold)
            results.append({
                "tokens": words[row],
                "token_spans": [[token.start, token.end] for token in tokens],
                "truncated": len(batch[row]) > self.max_length,
                "triples": triple_dicts(tokens, triples, self.vocab.relations),
            })
        return results


def _read_inputs(path: str | None, argv: list[str]) -> list[str]:
    """Returns the texts to read: argv, else lines of `path` or stdin (`.jsonl`: each line's "text")."""
    if argv:
        return argv
    lines = open(path, encoding="utf-8").read().splitlines() if path else sys.stdin.read().splitlines()
    if path and path.endswith(".jsonl"):
        texts = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                texts.append(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise SystemExit(f"{path}:{number}: expected a JSON object with a \"text\" string ({e}).")
        return texts
    return lines


def main(argv):
    from absl import flags
    from tqdm import tqdm

    FLAGS = flags.FLAGS
    texts = _read_inputs(FLAGS.input, argv[1:])
    extractor = Extractor.from_model_dir(FLAGS.model_dir)
    out = open(FLAGS.output, "w", encoding="utf-8") if FLAGS.output else sys.stdout
    chunk = FLAGS.batch_size * 4
    with tqdm(total=len(texts), unit="text", disable=not FLAGS.input, file=sys.stderr) as progress:
        for begin in range(0, len(texts), chunk):
            part = texts[begin:begin + chunk]
            if FLAGS.documents:
                results = extractor.predict_documents(part, FLAGS.batch_size)
            elif FLAGS.pretokenized:
                results = extractor.predict_tokens([[t.text for t in split_pretokenized(s)] for s in part],
                                                   FLAGS.batch_size)
            else:
                results = extractor.predict_detailed(part, FLAGS.batch_size)
            for text, result in zip(part, results):
                out.write(json.dumps({"text": text, **result}, ensure_ascii=False) + "\n")
            out.flush()
            progress.update(len(part))
    if FLAGS.output:
        out.close()


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("model_dir", None, "Training output folder (best.keras, config.json, vocab/).")
    flags.DEFINE_integer("batch_size", 64, "Sentences per model call.")
    flags.DEFINE_string("input", None, "Text file (one text a line) or .jsonl ({\"text\": ...} a line); "
                        "default: the arguments, else stdin.")
    flags.DEFINE_string("output", None, "JSON lines output file (default stdout).")
    flags.DEFINE_bool("documents", False, "Each text is a document: split it into sentences first.")
    flags.DEFINE_bool("pretokenized", False, "Texts are tokens separated by whitespace: read them as given.")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
