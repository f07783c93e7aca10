"""The raw-text tokeniser: the data's conventions, offsets, and Python/graph parity."""

import collections
import json
import os
import unicodedata

import keras
import pytest
import tensorflow as tf

from rin_keras.data.tokenizer import RINTokenizer, tokenize, tokenize_with_offsets

from conftest import SHARED_DATA

RAW_VAL = os.path.join(SHARED_DATA, "webnlg_ood_dev", "raw_val.jsonl")
ODD_TEXTS = [
    "Alan Bean was born in Wheeler, Texas.",
    'He said "Hi" to the U.S. Navy\'s crew in Washington D.C.',
    "Jones' dog can't eat 1,000 apples at 10:30; (really) [no]!",
    "Suárez and Stöger met Łukasz in Zürich.",
    "東京 is the capital of 日本, isn't it?",
    "The 🚀 launched from Cape Canaveral 🇺🇸 in 1969.",
    "  leading and trailing spaces \t ",
    "no\u00a0break\u2009thin\u3000ideographic spaces.",
    "",
    "   ",
    "...",
    '"',
    "O'Donnell's Al-Khor A.C. Milan 14L/32R F.C. won 3.5 points.",
    "e\u0301 combining, \U0001F600\U0001F600 two emoji.",
    "Alan\x00\x07 Bean \x1b[0m",
    "Curie was born in Warsaw. She died in 1934. Aaron S. Daggett of St. Louis and the U.S. Navy. Élan.",
    "Admin. Sci. Q. Its ground is St. Vincent–St. Mary. Now.",
    "\ufeffAlan\u200bBean\u2060was born\u0085in Wheeler,\u200b Texas.\u200b\ufeff",
    "He said “Hi”, ‘bye’… then—left «oui» „ja“ O’Brien 2007–08.",
    "Rio de Janeiro... and Oslo.... U.S... 1...5 .. . ...",
    "Cafe\u0301 in Zu\u0308rich and L\u0323ondon. L\u0323and Ångstro\u0308m.",
    'a\x00"b and a \x00"quote',  # NUL reads as a space before a quote too.
    # Characters newer than Python 3.11's Unicode tables (16.0, 15.0), which TF Text's ICU composes or reorders.
    "\U00016d67\U00016d67 a\U0001e08f\u0323 a\u0897\u0323 e\u0301\U000113c2\U000113c2",
    # Noncharacters at the ends of planes 14-16 are unassigned too.
    "e\u0301\U000FFFFE x e\u0301\U0010FFFF e\u0301\U000EFFFF e\u0301\U000F0000",
]


def _graph(texts, tokenizer=None):
    tokens, starts, ends = (tokenizer or RINTokenizer())(tf.constant(texts, tf.string))
    return [
        [(t.decode("utf-8"), s, e) for t, s, e in zip(row_t, row_s, row_e)]
        for row_t, row_s, row_e in zip(tokens.to_list(), starts.to_list(), ends.to_list())
    ]


def _python(texts):
    return [[(t.text, t.start, t.end) for t in tokenize_with_offsets(text)] for text in texts]


def test_data_conventions():
    assert tokenize("Alan Bean was born in Wheeler, Texas.") == \
        ["Alan", "Bean", "was", "born", "in", "Wheeler", ",", "Texas", "."]
    assert tokenize('He said "Hi" to the U.S. Navy\'s crew in Washington D.C.') == \
        ["He", "said", "``", "Hi", "''", "to", "the", "U.S.", "Navy", "'s", "crew", "in", "Washington", "D.C", "."]
    assert tokenize("Jones' dog can't eat 1,000 apples at 10:30; (really) [no]!") == \
        ["Jones", "'", "dog", "ca", "n't", "eat", "1,000", "apples", "at", "10:30", ";", "(", "really", ")", "[",
         "no", "]", "!"]
    assert tokenize("O'Donnell's Al-Khor A.C. Milan 14L/32R F.C. won 3.5 points.") == \
        ["O'Donnell", "'s", "Al-Khor", "A.C.", "Milan", "14L/32R", "F.C.", "won", "3.5", "points", "."]
    assert tokenize("   ") == tokenize("") == []
    # Inside a text, a sentence's last word loses its period; initials, abbreviations and `U.S.` keep theirs.
    assert tokenize("Curie was born in Warsaw. She died in 1934. Aaron S. Daggett met Dr. Who in the U.S. Navy.") == \
        ["Curie", "was", "born", "in", "Warsaw", ".", "She", "died", "in", "1934", ".", "Aaron", "S.", "Daggett",
         "met", "Dr.", "Who", "in", "the", "U.S.", "Navy", "."]
    assert tokenize("It is abbreviated to Admin. Sci. Q. Its ground is St. Vincent–St. Mary High School.") == \
        ["It", "is", "abbreviated", "to", "Admin.", "Sci.", "Q.", "Its", "ground", "is", "St.", "Vincent–St.", "Mary",
         "High", "School", "."]
    assert tokenize("It is 5 ft. tall, in Texas. the end") == ["It", "is", "5", "ft.", "tall", ",", "in", "Texas.",
                                                                "the", "end"]
    assert tokenize(b"ab\xff c") == ["ab\ufffd", "c"]


def test_web_text_separators_quotes_and_decomposed_accents():
    # Invisible separators of pasted web text split words as spaces do.
    assert tokenize("\ufeffAlan\u200bBean\u2060was born\u0085in Wheeler,\u200b Texas.\u200b") == \
        tokenize("Alan Bean was born in Wheeler, Texas.")
    assert tokenize("He said “Hi”, ‘bye’… then—left «oui» „ja“ O’Brien 2007–08.") == \
        ["He", "said", "“", "Hi", "”", ",", "‘", "bye", "’", "…", "then", "—", "left", "«", "oui", "»", "„", "ja", "“",
         "O’Brien", "2007–08", "."]
    # An ellipsis written as three periods is one token, as `…` is.
    assert tokenize("Born in Rio de Janeiro... and Oslo... or not.") == \
        ["Born", "in", "Rio", "de", "Janeiro", "...", "and", "Oslo", "...", "or", "not", "."]
    # A decomposed accent reads as the composed word; the offsets still index the text as written.
    text = "Cafe\u0301 in Zu\u0308rich."
    assert [(t.text, t.start, t.end) for t in tokenize_with_offsets(text)] == \
        [("Café", 0, 5), ("in", 6, 8), ("Zürich", 9, 16), (".", 16, 17)]


def test_offsets_point_into_the_original_string():
    for text in ODD_TEXTS:
        for token in tokenize_with_offsets(text):
            written = text[token.start:token.end]
            assert token.text in (written, unicodedata.normalize("NFC", written)) or (
                written == '"' and token.text in ("``", "''"))
    tokens = tokenize_with_offsets("東京 is in 日本, 🚀 Suárez.")
    assert [(t.text, t.start, t.end) for t in tokens] == [
        ("東京", 0, 2), ("is", 3, 5), ("in", 6, 8), ("日本", 9, 11), (",", 11, 12), ("🚀", 13, 14),
        ("Suárez", 15, 21), (".", 21, 22)]


def test_graph_matches_python_on_odd_text():
    assert _graph(ODD_TEXTS) == _python(ODD_TEXTS)
    tokens, starts, _ = RINTokenizer()(tf.constant(ODD_TEXTS))
    assert tokens.row_splits.dtype == starts.row_splits.dtype == tf.int64  # As TF Text's ops give them.
    assert _graph([]) == []


def test_graph_reads_invalid_utf8_as_python_does():
    texts = [b"Alan \xff\xfe Bean.", b"\xc3", b"ok"]
    tokens, _, _ = RINTokenizer()(tf.constant(texts))
    assert [[t.decode() for t in row] for row in tokens.to_list()] == [tokenize(t) for t in texts]


def test_tokenizer_layer_serializes():
    layer = RINTokenizer(name="tok")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, RINTokenizer) and restored.name == "tok"
    assert _graph(["a, b."], restored) == [[("a", 0, 1), (",", 1, 2), ("b", 3, 4), (".", 4, 5)]]


@pytest.mark.skipif(not os.path.exists(RAW_VAL), reason="needs ../shared/data/webnlg_ood_dev")
def test_every_ood_raw_sentence_python_graph_parity_and_reproduction():
    with open(RAW_VAL, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    raw = [row["raw_text"] for row in rows]
    assert _graph(raw) == _python(raw)
    misses = collections.Counter(
        "quote" if '"' in row["raw_text"] else "other"
        for row in rows if " ".join(tokenize(row["raw_text"])) != row["text"]
    )
    assert sum(misses.values()) <= 0.03 * len(rows), misses


def test_token_limit_holds_when_the_prefix_ends_at_an_abbreviation():
    """A prefix that ends right after `Mr.` reads its period as a sentence end, and so the period before it
    (`Warsaw.` | `Mr.`): the first tokens are still the whole text's."""
    from rin_keras.data import tokenizer

    texts = []
    for limit in (1, 3, 5):
        budget = (limit + tokenizer.PREFIX_UNSTABLE_TOKENS) * tokenizer._CHARS_PER_TOKEN  # The first prefix's length.
        for head in ("Warsaw.", "a b Warsaw.", "a. b. Warsaw."):
            for cut in ("Mr.", "U.S.", "J."):
                for shorter in range(3):
                    texts.append((limit, head + " " * (budget - len(head) - len(cut) - shorter) + cut + " Smith went."))
    for limit, text in texts:
        tokens, starts, ends = RINTokenizer()(tf.constant([text]), limit)
        expected = [(t.text, t.start, t.end) for t in tokenize_with_offsets(text)][:limit]
        assert list(zip([t.decode() for t in tokens.to_list()[0]], starts.to_list()[0], ends.to_list()[0])) == expected


def test_token_limit_reads_a_prefix_and_gives_the_first_tokens_of_the_whole_text(monkeypatch):
    """Cut texts through clitics, numbers, quotes and spaces: the first tokens equal the whole text's."""
    import random

    from rin_keras.data import tokenizer

    monkeypatch.setattr(tokenizer, "_CHARS_PER_TOKEN", 1)  # Prefixes cut through every kind of token.
    pieces = list("ab1,.:;'\"’ n()[]{}!?é東🚀\t\u00a0sdmrevlt0") + ["n't", "'s", "1,000", "  ", "...", "D.C."]
    pieces += ["Texas.", "S.", "St.", "She", "Él", "Sci."]  # Periods that the next token splits off, or not.
    pieces += ["\u200b", "\ufeff", "\u0085", "…", "‘", "—", "«", "e\u0301", "L\u0323", "\u0308"]
    generator = random.Random(0)
    texts = ["".join(generator.choice(pieces) for _ in range(generator.randint(0, 80))) for _ in range(150)]
    texts += ODD_TEXTS + ["7" * 5000 + " x", " " * 5000 + "x" + " " * 5000, "Texas " * 3000]
    texts = [text.encode() for text in texts]
    texts += [b"".join(generator.choice([b"\xff", b"\xc3", b"\xe6\x9d", b"a ", b"\xc3\xa1", b"'s"]) for _ in range(40))
              for _ in range(50)]  # Invalid UTF-8 (read as U+FFFD) where a cut may fall.
    whole = _python(texts)
    for limit in (1, 2, 5, 20):
        expected = [tokens[:limit] for tokens in whole]
        assert [[(t.text, t.start, t.end) for t in tokenize_with_offsets(text, limit)] for text in texts] == expected
        tokens, starts, ends = RINTokenizer()(tf.constant(texts), limit)
        assert [list(zip([t.decode() for t in a], b, c)) for a, b, c in
                zip(tokens.to_list(), starts.to_list(), ends.to_list())] == expected
