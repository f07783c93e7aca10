"""Raw text to the benchmark's tokens, with character offsets, in Python and in the graph.

The CopyRE/CasRel WebNLG and NYT texts are tokenised PTB-style: `, ; : ( ) [ ] ! ?`
are split off (a comma or colon between digits stays: `1,000`, `10:30`), as are
the clitics `'s 're 've 'll 'd 'm n't` and a word-final apostrophe; a straight
double quote becomes two backquotes when it opens and two apostrophes when it
closes; the sentence-final period is split off while other periods, hyphens and
slashes stay (`U.S.`, `A.C. Milan`, `Al-Khor`, `14L/32R`). Inside a text of several
sentences, a period that ends a word is split off too when the next token starts with
an upper-case letter (and does not end with a period), unless the word is an initial,
holds another period or is a common abbreviation (`Warsaw. She` -> `Warsaw`, `.`, `She`; `S. Daggett`, `U.S. Navy`,
`St. Louis` stay). Typographic quotes (`“ ” ‘ « » „`), the ellipsis `…` and the em dash
`—` are split off too, and so is `...`, the ellipsis in periods; an en dash and an apostrophe inside a word stay (`2007–08`, `O’Brien`).
Zero-width spaces, word joiners and a byte-order mark separate tokens as spaces do.

One regular expression, `DELIMITER`, defines all of this. It is written in the
common subset of Python's `re` (with `re.ASCII`) and RE2, so `tokenize` (Python)
and `RINTokenizer` (a Keras layer built on `tensorflow_text.regex_split_with_offsets`,
which runs inside a SavedModel) split every string the same way; a test checks
that over the whole `webnlg_ood_dev` raw text and over accents, CJK and emoji.
Offsets are `[start, end)` character (code point) indices into the original
string, so `text[start:end]` is the token as written; the token's text is that
in Unicode NFC, so that a decomposed accent reads as the word the vocabulary
holds (a token with a character newer than Python's Unicode tables stays as
written). NUL characters read as spaces (the TF Text op stops at them).

Both take a token limit (`tokenize_with_offsets(text, limit)`, `RINTokenizer()(sentences,
max_tokens)`): past it, no work is done per token or per character, so a sentence
of a million tokens costs what its first few hundred do, beyond reading the string.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata

import keras
import tensorflow as tf

# Whitespace: ASCII, no-break and the other Unicode spaces people paste in, the next-line control, and the
# invisible separators of web text (zero-width space, word joiner, a byte-order mark inside a text).
SPACE = (" \t\n\r\f\v\u0085\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200C)))
          + "\u2028\u2029\u202f\u205f\u2060\u3000\ufeff")  # Each character itself: a class for RE2 and `re`.
WHITESPACE = f"[{SPACE}]+"
_KEPT = [
    r"[0-9]+(?:[,:.][0-9]+)+",  # A number with inner separators stays one token: 1,000 / 10:30 / 3.5
    r"[\"“”‘«»„;()\[\]{}!?,:…—]",  # Quotes, punctuation, the ellipsis and the em dash, one character each.
    r"(?:['’](?:[sSdDmM]|re|RE|ve|VE|ll|LL)|[nN]['’][tT])\b",  # Clitics: 's 're n't ...
    r"['’]\B",  # A word-final apostrophe (Jones').
    r"\.\.\.",  # An ellipsis written as three periods, as `…`.
    r"\.$",  # The sentence-final period (the text is right-stripped first).
]
KEPT_DELIMITER = "|".join(_KEPT)
DELIMITER = f"{WHITESPACE}|{KEPT_DELIMITER}"
_OPENING_CONTEXT = f"[{SPACE}(\\[{{]"  # A quote after these (or first) opens.
OPEN_QUOTE, CLOSE_QUOTE = "``", "''"
# A sentence's last word inside a text: its period is split off before a token that starts with one of `_UPPER`.
WORD_AND_PERIOD = r"[^.]{2,}\."
ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "Prof", "Rev", "Gen", "Col", "Lt", "Sgt", "Capt", "Gov", "Sen", "Rep",
                 "St", "Mt", "Ft", "Ave", "Blvd", "Rd", "Jr", "Sr", "Bros", "Co", "Corp", "Inc", "Ltd", "No", "Vol",
                 "Dept", "Univ", "vs", "ca", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct",
                 "Nov", "Dec")
# `St.`, and `Vincent–St.` in `St. Vincent–St. Mary`.
ABBREVIATION = f"(?:.*[-–/])?(?:{'|'.join(ABBREVIATIONS)})\\."
_UPPER = "A-ZÀ-ÖØ-Þ"
SENTENCE_START = f"[{_UPPER}]"

# Python's backtracking engine would try the number pattern again at every digit of a long digit run
# (quadratic time): a number never starts right after a digit (the number pattern is greedy), so Python
# skips those starts. RE2 runs in linear time as is.
_PY_DELIMITER = re.compile(DELIMITER.replace(_KEPT[0], "(?<![0-9])" + _KEPT[0], 1), re.ASCII)
_PY_WHITESPACE = re.compile(WHITESPACE)
_PY_OPENING = re.compile(_OPENING_CONTEXT)
_PY_WORD_AND_PERIOD = re.compile(WORD_AND_PERIOD)
_PY_ABBREVIATION = re.compile(ABBREVIATION)
_PY_SENTENCE_START = re.compile(SENTENCE_START)
# Tokens that a cut through the text can change: the last three of a prefix (`don'` | `t`: `don`, `'`
# where the whole text has `do`, `n't`; `1,` | `000`: `1`, `,` where it has `1,000`; `Warsaw. Mr.` | ` Smith`:
# `Warsaw`, `.`, `Mr`, `.` where it has `Warsaw.`, `Mr.`, as the cut's final period reads as a sentence end).
PREFIX_UNSTABLE_TOKENS = 3
_CHARS_PER_TOKEN = 16  # First guess of the characters a token takes, doubled while too few.


@dataclasses.dataclass(frozen=True)
class Token:
    """One token: its text as the model reads it and where it is in the original string.

    Attributes:
        text: the token in Unicode NFC (`e` + U+0301 reads as `é`; a straight double quote reads as ``` `` ``` or
            `''`).
        start: index of its first character in the original string.
        end: one past its last character (`original[start:end]` is the token as written).
    """

    text: str
    start: int
    end: int


def tokenize_with_offsets(text: str | bytes, limit: int | None = None) -> list[Token]:
    """Returns the tokens of one sentence with their character offsets.

    Invalid UTF-8 bytes read as U+FFFD, as in the graph.

    Args:
        text: the sentence.
        limit: if set, the first `limit` tokens only; the rest of the text is not tokenised.

    Example:
    >>> [t.text for t in tokenize_with_offsets('Alan Bean was born in Wheeler, Texas.')]
    ['Alan', 'Bean', 'was', 'born', 'in', 'Wheeler', ',', 'Texas', '.']
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.replace("\x00", " ")  # As the graph reads it (offsets unchanged).
    stripped = text.rstrip(SPACE)  # A `WHITESPACE$` search is quadratic in Python on a long run of spaces.
    pieces = []
    position = 0
    for match in _PY_DELIMITER.finditer(stripped):
        if limit is not None and len(pieces) > limit:  # One piece past the limit: the next token decides a period.
            break
        if match.start() > position:
            pieces.append((position, match.start()))
        if not _PY_WHITESPACE.fullmatch(match.group()):
            pieces.append((match.start(), match.end()))
        position = match.end()
    else:
        if position < len(stripped):
            pieces.append((position, len(stripped)))
    return [Token(_token_text(text, start, end), start, end)
            for start, end in _split_sentence_periods(stripped, pieces)[:limit]]


def tokenize(text: str | bytes) -> list[str]:
    """Returns the token strings of one sentence (see `tokenize_with_offsets`)."""
    return [token.text for token in tokenize_with_offsets(text)]


def _split_sentence_periods(text: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Splits the period off a word that ends a sentence inside the text: a `WORD_AND_PERIOD`, no `ABBREVIATION`,
    whose next piece starts with an upper-case letter (`SENTENCE_START`) and does not end with a period (so the
    words of `Admin. Sci. Q.` keep theirs)."""
    split = []
    for (start, end), following in zip(pieces, [*pieces[1:], None]):
        word = text[start:end]
        if (following and _PY_SENTENCE_START.match(text[following[0]]) and text[following[1] - 1] != "."
                and _PY_WORD_AND_PERIOD.fullmatch(word) and not _PY_ABBREVIATION.fullmatch(word)):
            split += [(start, end - 1), (end - 1, end)]
        else:
            split.append((start, end))
    return split


def _token_text(text: str, start: int, end: int) -> str:
    piece = text[start:end]
    if piece != '"':
        return piece if _has_unassigned(piece) else unicodedata.normalize("NFC", piece)
    opens = start == 0 or _PY_OPENING.fullmatch(text[start - 1])
    return OPEN_QUOTE if opens else CLOSE_QUOTE


def _has_unassigned(piece: str) -> bool:
    """Whether `piece` holds a code point that Python's Unicode tables do not assign: such a token is not put in NFC,
    in Python or in the graph, as TF Text's ICU knows newer Unicode versions and could compose it otherwise."""
    return not piece.isascii() and any(unicodedata.category(c) == "Cn" for c in piece)


@functools.cache
def _unassigned_pattern() -> str:
    """An RE2 pattern matching a string that holds a code point `_has_unassigned` finds (computed once, ~0.1 s)."""
    ranges, start = [], None
    planes = [*range(0x40000), *range(0xE0000, 0x110000)]  # Planes 4-13 assign nothing (added below).
    for code in planes:
        unassigned = unicodedata.category(chr(code)) == "Cn"
        if unassigned and start is None:
            start = code
        elif not unassigned and start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:  # U+10FFFF, a noncharacter, is unassigned.
        ranges.append((start, 0x10FFFF))
    ranges.append((0x40000, 0xDFFFF))
    return ".*[" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "].*"


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

    def call(self, sentences, max_tokens=None):
        """Tokenises `sentences`; with `max_tokens` (a Python int), each sentence's first tokens only.

        With `max_tokens`, only a prefix of each sentence is tokenised: one that
        holds `max_tokens + PREFIX_UNSTABLE_TOKENS` tokens (or the whole sentence),
        found by doubling a character budget. Its first `max_tokens` tokens are those
        of the whole sentence.
        """
        if max_tokens is None:
            return self._split(valid_utf8(sentences))
        tokens, starts, ends = self._split(_prefixes(sentences, max_tokens + PREFIX_UNSTABLE_TOKENS))
        return tokens[:, :max_tokens], starts[:, :max_tokens], ends[:, :max_tokens]

    @staticmethod
    def _split(sentences):
        """Tokens and character offsets of valid UTF-8 sentences, in time and memory linear in their length.

        The sentence is split into pieces that cover it (tokens and the whitespace
        between them): a piece's offset is the sum of the lengths before it.
        """
        import tensorflow_text as tf_text  # Imported here: it loads custom ops.

        no_nul = tf.strings.regex_replace(sentences, r"\x00", " ")
        stripped = tf.strings.regex_replace(no_nul, f"{WHITESPACE}$", "")
        pieces, _, _ = tf_text.regex_split_with_offsets(stripped, DELIMITER, DELIMITER)
        flat = pieces.flat_values
        lengths = tf.cast(tf.strings.length(flat, unit="UTF8_CHAR"), tf.int32)
        through = tf.cumsum(lengths)  # Characters up to each piece's end, batch-wide.
        before_row = tf.gather(tf.concat([[0], through], 0), pieces.row_starts())
        ends = through - tf.gather(before_row, pieces.value_rowids())
        starts = ends - lengths
        last_char = tf.strings.substr(flat, -1, 1, unit="UTF8_CHAR")
        previous = tf.concat([[""], last_char[:-1]], 0)  # The character before each piece (its row's first: none).
        opens = tf.equal(starts, 0) | tf.strings.regex_full_match(previous, _OPENING_CONTEXT)
        texts = tf.where(tf.equal(flat, '"'), tf.where(opens, OPEN_QUOTE, CLOSE_QUOTE), flat)
        is_token = tf.logical_not(tf.strings.regex_full_match(flat, WHITESPACE))
        tokens = (tf.ragged.boolean_mask(pieces.with_flat_values(values), pieces.with_flat_values(is_token))
                  for values in (texts, starts, ends))
        tokens, starts, ends = _split_sentence_periods_in_graph(*tokens)
        texts = tokens.flat_values
        composed = tf.where(tf.strings.regex_full_match(texts, _unassigned_pattern()), texts,
                            tf_text.normalize_utf8(texts, "NFC"))
        return tokens.with_flat_values(composed), starts, ends

    def compute_output_spec(self, sentences, max_tokens=None):
        return tuple(
            keras.KerasTensor((None, None), dtype=dtype, ragged=True) for dtype in ("string", "int32", "int32")
        )


def _split_sentence_periods_in_graph(tokens, starts, ends):
    """`_split_sentence_periods` on ragged `[batch, (n)]` tokens and their offsets: a split token becomes two."""
    texts, row_ids = tokens.flat_values, tokens.value_rowids()
    following = tf.concat([texts[1:], [""]], 0)
    same_row = tf.concat([tf.equal(row_ids[1:], row_ids[:-1]), [False]], 0)
    split = (same_row & tf.strings.regex_full_match(tf.strings.substr(following, 0, 1, unit="UTF8_CHAR"),
                                                    SENTENCE_START)
             & tf.logical_not(tf.strings.regex_full_match(following, r".*\."))
             & tf.strings.regex_full_match(texts, WORD_AND_PERIOD)
             & tf.logical_not(tf.strings.regex_full_match(texts, ABBREVIATION)))
    counts = 1 + tf.cast(split, tf.int32)
    period = tf.equal(tf.ragged.range(counts).flat_values, 1)  # The second of a split token's two.
    shortened = tf.repeat(split, counts) & tf.logical_not(period)  # The first: the word.
    flat_ends, repeated = tf.repeat(ends.flat_values, counts), tf.repeat(texts, counts)
    new_texts = tf.where(period, ".", tf.where(shortened, tf.strings.regex_replace(repeated, r"\.$", ""), repeated))
    new_starts = tf.where(period, flat_ends - 1, tf.repeat(starts.flat_values, counts))
    new_ends = tf.where(shortened, flat_ends - 1, flat_ends)
    row_lengths = tf.cast(tf.math.unsorted_segment_sum(counts, row_ids, tokens.nrows()), tokens.row_splits.dtype)
    return tuple(tf.RaggedTensor.from_row_lengths(values, row_lengths, validate=False)
                 for values in (new_texts, new_starts, new_ends))


def char_prefix(sentences: tf.Tensor, chars: tf.Tensor) -> tf.Tensor:
    """Returns the first `chars` characters of each sentence (`valid_utf8`), reading at most `4 * chars` bytes.

    A character takes at most 4 bytes (an invalid byte reads as one U+FFFD), so the
    first `chars` characters of the whole sentence lie in its first `4 * chars` bytes.
    """
    return tf.strings.substr(valid_utf8(_byte_prefix(sentences, chars)), tf.zeros_like(chars), chars, unit="UTF8_CHAR")


def _byte_prefix(sentences: tf.Tensor, chars: tf.Tensor) -> tf.Tensor:
    """The bytes that hold each sentence's first `chars` characters."""
    return tf.strings.substr(sentences, tf.zeros_like(chars), tf.minimum(chars, tf.int32.max // 4) * 4)


def _prefixes(sentences: tf.Tensor, min_tokens: int) -> tf.Tensor:
    """Returns the shortest prefix of each sentence (`valid_utf8`), among lengths `min_tokens * 16 * 2^k`
    characters, that holds `min_tokens` tokens (or the whole sentence)."""
    import tensorflow_text as tf_text

    byte_lengths = tf.strings.length(sentences)

    def prefix_and_enough(budget):
        raw = _byte_prefix(sentences, budget)
        valid = valid_utf8(raw)
        prefix = tf.strings.substr(valid, tf.zeros_like(budget), budget, unit="UTF8_CHAR")  # `char_prefix`.
        counts = tf_text.regex_split(prefix, DELIMITER, KEPT_DELIMITER).row_lengths()
        whole = tf.equal(tf.strings.length(raw), byte_lengths) & tf.equal(prefix, valid)
        return prefix, (counts >= min_tokens) | whole

    budget = tf.fill(tf.shape(sentences), min_tokens * _CHARS_PER_TOKEN)
    prefix, done = prefix_and_enough(budget)

    def grow(budget, prefix, done):
        budget = tf.where(done, budget, tf.minimum(budget * 2, tf.maximum(byte_lengths, budget)))
        return (budget, *prefix_and_enough(budget))

    _, prefix, _ = tf.while_loop(lambda budget, prefix, done: tf.logical_not(tf.reduce_all(done)), grow,
                                 [budget, prefix, done])
    return prefix
