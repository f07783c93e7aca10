"""The serving contract of a rin-keras SavedModel, with no Keras or model import.

What `rin_keras.export` writes and what `serving.server`, `serving.client`, the
pipeline's BulkInferrer and callers of TF Serving read: signature and tensor
names, the warm-up file, the version layout of a base path, and the decoding of
the signature's outputs into triple dicts.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import sys

import numpy as np

SENTENCES_SIGNATURE = "serving_default"  # Raw sentences, tokenised in the graph.
TOKENS_SIGNATURE = "serve_tokens"  # Pre-tokenised sentences, "" as padding.
SIGNATURE_INPUTS = {SENTENCES_SIGNATURE: "sentences", TOKENS_SIGNATURE: "tokens"}
OUTPUTS = {
    "subjects": "tf.string [batch, max_triples]: subject as written, the text its character span covers "
                "('' past num_triples)",
    "relations": "tf.string [batch, max_triples]: relation name",
    "objects": "tf.string [batch, max_triples]: object as written",
    "scores": "tf.float32 [batch, max_triples]: pair probability",
    "subject_spans": "tf.int32 [batch, max_triples, 2]: subject [start, end) token indices",
    "object_spans": "tf.int32 [batch, max_triples, 2]: object [start, end) token indices",
    "subject_char_spans": "tf.int32 [batch, max_triples, 2]: subject [start, end) character offsets in the input",
    "object_char_spans": "tf.int32 [batch, max_triples, 2]: object [start, end) character offsets in the input",
    "num_triples": "tf.int32 [batch]: triples per sentence",
    "num_tokens": "tf.int32 [batch]: tokens read (after truncation)",
    "truncated": "tf.bool [batch]: the sentence had more than max_length tokens",
}
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The model an export was made from: its absolute path, and on the next line its file's sha256.
SOURCE_FILE = os.path.join("assets.extra", "rin_source.txt")
GRPC_PORT, REST_PORT = 8500, 8501  # TF Serving's default ports.


def input_name(signature_name: str) -> str:
    """Returns the input tensor name of a signature.

    Raises:
        ValueError: not a rin-keras signature.
    """
    if signature_name not in SIGNATURE_INPUTS:
        raise ValueError(f"Unknown signature {signature_name!r}; rin-keras exports {sorted(SIGNATURE_INPUTS)}.")
    return SIGNATURE_INPUTS[signature_name]


# A UTF-16 surrogate on its own: what Python makes of a byte that is not UTF-8 in a command's arguments, or a JSON
# "\ud800" escape. It cannot be encoded; it reads as U+FFFD, as invalid UTF-8 does in the serving graph.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def readable_text(text: str) -> str:
    """`text` with its lone surrogates (`LONE_SURROGATE`) as U+FFFD, so that it encodes as UTF-8."""
    return LONE_SURROGATE.sub("\ufffd", text)


def open_text(path: str | None) -> io.TextIOWrapper:
    """`path`, or standard input, opened as text: UTF-32 or UTF-16 where it starts with their byte-order mark (as
    Windows tools write UTF-16), else UTF-8.

    Invalid UTF-8 reads as U+FFFD, as in the serving graph; a byte-order mark is not text.
    """
    binary = open(path, "rb") if path else sys.stdin.buffer
    start = binary.peek(4)[:4]
    if start in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):  # Before UTF-16's: UTF-32 LE's mark starts with it.
        encoding = "utf-32"
    elif start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    return io.TextIOWrapper(binary, encoding=encoding, errors="replace")


@contextlib.contextmanager
def json_lines_stdout():
    """Standard output for the JSON lines of `rin_keras.predict` and `serving.client`.

    It writes UTF-8 whatever the locale (a Windows console or `PYTHONIOENCODING` may name another encoding), and a
    reader that leaves early (`| head -1`) ends the command quietly with status 141 (128 + SIGPIPE), as it ends a
    Unix filter.
    """
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    if encoding != "utf8" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    try:
        yield sys.stdout
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's last flush at exit goes nowhere.
        sys.exit(128 + 13)


# A token of pre-tokenised text: split on ASCII whitespace only, as `tf.strings.split` does (not at a no-break space).
TOKEN = re.compile(r"[^ \t\n\v\f\r]+")


def split_tokens(sentence: str) -> list[str]:
    """The tokens of a pre-tokenised sentence (`TOKEN`), the `serve_tokens` input."""
    return TOKEN.findall(sentence)


def pad_tokens(token_lists: list[list[str]]) -> list[list[str]]:
    """Pads token lists with "" to one width, the `serve_tokens` input."""
    width = max([len(tokens) for tokens in token_lists] + [1])
    return [list(tokens) + [""] * (width - len(tokens)) for tokens in token_lists]


def export_source(version_dir: str) -> str | None:
    """The model folder (or `.keras` file) a version folder was exported from, as its `SOURCE_FILE` names it; None
    where it names none."""
    lines = _source_lines(version_dir)
    return lines[0] if lines else None


def export_source_digest(version_dir: str) -> str | None:
    """The sha256 of the model file a version folder was exported from (`SOURCE_FILE`'s second line), None where
    the export did not record it."""
    lines = _source_lines(version_dir)
    return lines[1] if len(lines) > 1 else None


def _source_lines(version_dir: str) -> list[str]:
    try:
        with open(os.path.join(version_dir, SOURCE_FILE), encoding="utf-8") as f:
            return [line.strip() for line in f.read().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return []


MAX_VERSION = 2**63 - 1  # TF Serving's versions are int64 (`ModelSpec.version`).


def version_names(base: str) -> list[int]:
    """Returns the version numbers that the entries of a TF Serving base path are named by, ascending: a number in
    ASCII digits without leading zeros (`2`, not `02`, `²` or `٢`) up to `MAX_VERSION`, a folder or not."""
    if not os.path.isdir(base):
        return []
    return sorted(int(name) for name in os.listdir(base)
                  if re.fullmatch(r"0|[1-9][0-9]*", name) and int(name) <= MAX_VERSION)


def next_version(base: str) -> int:
    """The version after the newest that names an entry of `base` (a folder or not), 1 for none.

    Raises:
        ValueError: `base` holds `MAX_VERSION` already.
    """
    version = (version_names(base) or [0])[-1] + 1
    if version > MAX_VERSION:
        raise ValueError(f"{base} holds version {MAX_VERSION}, the highest TF Serving reads: name a free one.")
    return version


def versions(base: str) -> list[int]:
    """Returns the versions under a TF Serving base path, ascending: the folders of `version_names`, each
    `<base>/<version>`."""
    return [version for version in version_names(base) if os.path.isdir(os.path.join(base, str(version)))]


def triples_from_outputs(outputs: dict) -> list[list[dict]]:
    """Returns `RINTripleExtractor.predict`'s structure from the signature's outputs.

    Args:
        outputs: NumPy arrays or nested lists keyed by `OUTPUTS` names, batch first.

    Returns:
        per sentence, a list of `{"subject", "relation", "object", "score",
        "subject_span", "object_span", "subject_char_span", "object_char_span"}`.
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
