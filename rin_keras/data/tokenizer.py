"""Raw text to the benchmark's tokens, with character offsets, in Python and in the graph.

The CopyRE/CasRel WebNLG and NYT texts are tokenised PTB-style: `, ; : ( ) [ ] ! ?`
are split off (a comma or colon between digits stays: `1,000`, `10:30`), as are
the clitics `'s 're 've 'll 'd 'm n't` and a word-final apostrophe; a straight
double quote becomes two backquotes when it opens and two apostrophes when it
closes; the sentence-final period is split off while other periods, hyphens and
slashes stay (`U.S.`, `A.C. Milan`, `Al-Khor`, `14L/32R`).

One regular expression, `DELIMITER`, defines all of this. It is written in the
common subset of Python's `re` (with `re.ASCII`) and RE2, so `tokenize` (Python)
and `RINTokenizer` (a Keras layer built on `tensorflow_text.regex_split_with_offsets`,
which runs inside a SavedModel) split every string the same way; a test checks
that over the whole `webnlg_ood_dev` raw text and over accents, CJK and emoji.
Offsets are `[start, end)` character (code point) indices into the original
string, so `text[start:end]` is the token as written. NUL characters read as
spaces (the TF Text op stops at them).
"""

from __future__ import annotations

import dataclasses
import re

import keras
import tensorflow as tf

# Whitespace: ASCII, no-break and the other Unicode spaces people paste in.
_SPACE = " \t\n\r\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE = f"[{_SPACE}]+"
_KEPT = [
    r"[0-9]+(?:[,:.][0-9]+)+",  # A number with inner separators stays one token: 1,000 / 10:30 / 3.5
    r"[\"“”;()\[\]{}!?,:]",  # Quotes and punctuation, one character each.
    r"(?:['’](?:[sSdDmM]|re|RE|ve|VE|ll|LL)|[nN]['’][tT])\b",  # Clitics: 's 're n't ...
    r"['’]\B",  # A word-final apostrophe (Jones').
    r"\.$",  # The sentence-final period (the text is right-stripped first).
]
KEPT_DELIMITER = "|".join(_KEPT)
DELIMITER = f"{WHITESPACE}|{KEPT_DELIMITER}"
_OPENING_CONTEXT = f"[{_SPACE}(\\[{{]"  # A quote after these (or first) opens.
OPEN_QUOTE, CLOSE_QUOTE = "``", "''"

_PY_DELIMITER = re.compile(DELIMITER, re.ASCII)
_PY_WHITESPACE = re.compile(WHITESPACE)
_PY_OPENING = re.compile(_OPENING_CONTEXT)
_PY_TRAILING_SPACE = re.compile(f"{WHITESPACE}$")


@dataclasses.dataclass(frozen=True)
class Token:
    """One token: its text as the model reads it and where it is in the original string.

    Attributes:
        text: the token (a straight double quote reads as ``` `` ``` or `''`).
        start: index of its first character in the original string.
        end: one past its last character (`original[start:end]` is the token as written).
    """

    text: str
    start: int
    end: int


def tokenize_with_offsets(text: str | bytes) -> list[Token]:
    """Returns the tokens of one sentence with their character offsets.

    Invalid UTF-8 bytes read as U+FFFD, as in the graph.

    Example:
    >>> [t.text for t in tokenize_with_offsets('Alan Bean was born in Wheeler, Texas.')]
    ['Alan', 'Bean', 'was', 'born', 'in', 'Wheeler', ',', 'Texas', '.']
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = _PY_TRAILING_SPACE.sub("", text.replace("\x00", " "))
    pieces = []
    position = 0
    for match in _PY_DELIMITER.finditer(stripped):
        if match.start() > position:
            pieces.append((position, match.start()))
        if not _PY_WHITESPACE.fullmatch(match.group()):
            pieces.append((match.start(), match.end()))
        position = match.end()
    if position < len(stripped):
        pieces.append((position, len(stripped)))
    return [Token(_token_text(text, start, end), start, end) for start, end in pieces]


def tokenize(text: str | bytes) -> list[str]:
    """Returns the token strings of one sentence (see `tokenize_with_offsets`)."""
    return [token.text for token in tokenize_with_offsets(text)]


def _token_text(text: str, start: int, end: int) -> str:
    piece = text[start:end]
    if piece != '"':
        return piece
    opens = start == 0 or _PY_OPENING.fullmatch(text[start - 1])
    return OPEN_QUOTE if opens else CLOSE_QUOTE


def valid_utf8(sentences: tf.Tensor) -> tf.Tensor:
    """Returns tf.string `sentences` with invalid UTF-8 bytes replaced by U+FFFD: the text offsets index."""
    return tf.strings.unicode_transcode(sentences, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)


def keep_tensorflow_tensors(layer: keras.layers.Layer) -> None:
    """Lets a layer of TensorFlow text ops take and return TensorFlow tensors on every Keras backend (Keras would
    otherwise turn its string inputs into backend arrays), as keras-hub's preprocessing layers do."""
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True


@keras.saving.register_keras_serializable(package="rin_keras")
class RINTokenizer(keras.layers.Layer):
    """In-graph `tokenize_with_offsets`: raw sentences to tokens and character offsets.

    TF Text ops: TensorFlow tensors in and out whatever the Keras backend, in
    eager code, `tf.data`, `tf.function` and exported SavedModels alike.

    Call arguments:
        sentences: tf.string `[batch]`, UTF-8 (invalid bytes read as U+FFFD).

    Returns:
        `(tokens, starts, ends)`: ragged `[batch, (n)]` tf.string tokens and int32
        character offsets `[start, end)` into each original sentence.

    Example:
    >>> tokens, starts, ends = RINTokenizer()(tf.constant(["Suárez, Texas."]))
    >>> tokens.to_list(), starts.to_list(), ends.to_list()
    ([[b'Su\\xc3\\xa1rez', b',', b'Texas', b'.']], [[0, 6, 8, 13]], [[6, 7, 13, 14]])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        keep_tensorflow_tensors(self)

    def call(self, sentences):
        import tensorflow_text as tf_text  # Imported here: it loads custom ops.

        sentences = valid_utf8(sentences)
        no_nul = tf.strings.regex_replace(sentences, r"\x00", " ")
        stripped = tf.strings.regex_replace(no_nul, f"{WHITESPACE}$", "")
        tokens, byte_starts, _ = tf_text.regex_split_with_offsets(stripped, DELIMITER, KEPT_DELIMITER)
        per_token = tf.gather(sentences, tokens.value_rowids())
        byte_starts = byte_starts.flat_values
        chars_before = tf.strings.length(
            tf.strings.substr(per_token, tf.zeros_like(byte_starts), byte_starts), unit="UTF8_CHAR"
        )
        char_lengths = tf.strings.length(tokens.flat_values, unit="UTF8_CHAR")
        previous = tf.strings.substr(
            per_token, tf.maximum(chars_before - 1, 0), tf.ones_like(chars_before), unit="UTF8_CHAR"
        )
        opens = tf.equal(chars_before, 0) | tf.strings.regex_full_match(previous, _OPENING_CONTEXT)
        quote = tf.where(opens, OPEN_QUOTE, CLOSE_QUOTE)
        texts = tf.where(tf.equal(tokens.flat_values, '"'), quote, tokens.flat_values)
        starts = tf.cast(chars_before, tf.int32)
        ends = starts + tf.cast(char_lengths, tf.int32)
        return (
            tokens.with_flat_values(texts),
            tokens.with_flat_values(starts),
            tokens.with_flat_values(ends),
        )

    def compute_output_spec(self, sentences):
        return tuple(
            keras.KerasTensor((None, None), dtype=dtype, ragged=True) for dtype in ("string", "int32", "int32")
        )
