"""Entity substitution: stand-ins from the pretrained table, swapped into training batches through every feature."""

import numpy as np
import pytest
import tensorflow as tf

from rin_keras import train
from rin_keras.config import RINConfig
from rin_keras.data import dataset, embeddings
from rin_keras.data.corpus import Corpus
from rin_keras.data.features import WordIds
from rin_keras.data.substitution import EntitySubstitutes, written_like
from tfds_builders import testing

# Three clusters (countries, cities, years) and words outside them, in a 4-d table.
CLUSTERS = {
    (1, 0, 0, 0): ("italy", "spain", "portugal", "germany", "france", "indonesia"),
    (0, 1, 0, 0): ("rome", "madrid", "lisbon", "paris", "berlin", "wheeler", "texas"),
    (0, 0, 1, 0): ("1959", "1961", "1962"),
    (0, 0, 0, 1): ("alan", "bean", "sergio", "mattarella", "bakso", "is", "the", ",", "born", "in"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    with testing.dummy_checksums("webnlg"):
        yield Corpus.prepare("webnlg", "exact", str(tmp_path_factory.mktemp("tfds")), testing.dummy_dir("webnlg"))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    with open(path, "w", encoding="utf-8") as f:
        for center, words in CLUSTERS.items():
            for word in words:
                vector = np.asarray(center, float) + rng.normal(0, 0.05, 4)
                f.write(" ".join([word, *(f"{v:.4f}" for v in vector)]) + "\n")
    return embeddings.load_pretrained_table(str(path))


def test_written_like_copies_the_case_pattern():
    assert written_like("ohio", "Texas") == "Ohio"
    assert written_like("ohio", "USA") == "OHIO"
    assert written_like("Ohio", "texas") == "ohio"
    assert written_like("mcdonald", "McQuaid") == "Mcdonald"
    assert written_like("1961", "1959") == "1961"


def test_stand_ins_are_the_nearest_words_of_the_same_kind(table):
    words, vectors = table
    substitutes = EntitySubstitutes.from_pretrained(["Italy", "1959", "Rome", ",", "Unknownword"], words, vectors, k=3)
    assert sorted(substitutes.substitutes) == ["1959", "Italy", "Rome"]  # "," has no kind; the last no vector.
    assert set(substitutes.substitutes["Italy"]) <= {"Spain", "Portugal", "Germany", "France", "Indonesia"}
    assert len(substitutes.substitutes["Italy"]) == 3
    assert sorted(substitutes.substitutes["1959"]) == ["1961", "1962"]  # Digits for digits; never itself.
    assert "Rome" not in substitutes.substitutes["Rome"]


def test_entity_words_are_the_words_inside_gold_entities(corpus):
    words = EntitySubstitutes.entity_words(corpus.examples("train"))
    assert {"Alan", "Bean", "Wheeler", ",", "Texas", "Italy", "Rome"} <= set(words)
    assert "born" not in words and "weather" not in words


def test_substitution_swaps_entity_words_through_every_feature(corpus, table):
    words, vectors = table
    vocab = corpus.build_vocabulary().with_pretrained_words(words)
    featurizer = WordIds(vocab, ("pretrained_ids", "shape_ids", "char_ids"))
    substitutes = EntitySubstitutes.from_pretrained(EntitySubstitutes.entity_words(corpus.examples("train")),
                                                    words, vectors, k=3)

    def batch(**kwargs):
        [(x, y)] = list(dataset.make_dataset(corpus, "train", vocab, batch_size=8, seed=5, bucket_boundaries=None,
                                             featurizer=featurizer, **kwargs))
        return {k: v.numpy() for k, v in x.items()}, y["entity_tags"].numpy()

    plain, tags = batch(training=True)
    swapped, swapped_tags = batch(training=True, substitute=substitutes.substituter(0.99))
    np.testing.assert_array_equal(tags, swapped_tags)  # Same sentences, same order.
    outside = tags == dataset.TAG_IDS["O"]
    for name in ("token_ids", "pretrained_ids", "shape_ids"):  # The second, unannotated "Italy" apart.
        moved = (plain[name] != swapped[name]) & outside
        assert all(vocab.words[i] == "Italy" for i in plain["token_ids"][moved]), name
    changed = (plain["pretrained_ids"] != swapped["pretrained_ids"]) & ~outside
    assert changed.sum() >= 8  # Alan, Bean, Wheeler, Texas, Italy, Rome, ... at 99%.
    # Each swapped word reads exactly as one of its stand-ins would, characters included.
    word_of_id = {i: w for i, w in enumerate(vocab.words)}
    for row, position in zip(*np.nonzero(changed)):
        original = word_of_id[plain["token_ids"][row, position]]
        stand_ins = featurizer(tf.ragged.constant([[s] for s in substitutes.substitutes[original]]))
        match = [i for i in range(len(substitutes.substitutes[original]))
                 if stand_ins["pretrained_ids"][i, 0] == swapped["pretrained_ids"][row, position]]
        assert match, original
        chars = stand_ins["char_ids"][match[0], 0].numpy()
        width = swapped["char_ids"].shape[-1]
        np.testing.assert_array_equal(np.pad(chars, (0, max(0, width - len(chars))))[:width],
                                      swapped["char_ids"][row, position])
        assert swapped["shape_ids"][row, position] == stand_ins["shape_ids"][match[0], 0]
    # A name said twice in a sentence is swapped for the same stand-in both times; other words stay.
    example = {"tokens": tf.constant(["Italy", "beat", "Germany", "and", "Italy", "won"]),
               "entities": {"start": tf.constant([0, 2, 4]), "end": tf.constant([1, 3, 5])}}
    substitute = substitutes.substituter(rate=0.99)
    for key in range(5):
        tokens = [t.decode() for t in substitute(example, tf.constant(key, tf.int64))["tokens"].numpy()]
        assert tokens[0] == tokens[4] != "Italy" and tokens[0] in substitutes.substitutes["Italy"]
        assert tokens[1::2] == ["beat", "and", "won"]
    # The draws follow the seed alone, whatever the order of the parallel map: every data-parallel worker (a new
    # pipeline, here a second one) substitutes the same words the same way, each epoch anew.
    def two_epochs():
        data = dataset.make_dataset(corpus, "train", vocab, batch_size=2, training=True, seed=5, featurizer=featurizer,
                                    substitute=substitutes.substituter(0.5))
        return [[(x["token_ids"].numpy().tobytes(), x["char_ids"].shape) for x, _ in data] for _ in range(2)]

    first_epoch, second_epoch = two_epochs()
    assert [first_epoch, second_epoch] == two_epochs() and first_epoch != second_epoch
    evaluation, _ = batch(training=False, substitute=substitutes.substituter(0.99))
    assert (evaluation["token_ids"] > 1).sum() == (evaluation["token_ids"] > 0).sum()  # Never outside training.


def test_substitution_reaches_a_bert_encoders_word_pieces(corpus):
    import keras_hub

    from rin_keras.data.features import WordPieces

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alan", "bean", "was", "born", "in", "wheeler", ",",
              "texas", "ohio", "italy", "spain", "rome", "."]
    featurizer = WordPieces(keras_hub.models.BertTokenizer(vocabulary=pieces, lowercase=True))
    substitutes = EntitySubstitutes({"Texas": ["Ohio"], "Italy": ["Spain"]})
    vocab = corpus.build_vocabulary()

    def piece_ids(**kwargs):
        [(x, _)] = list(dataset.make_dataset(corpus, "train", vocab, batch_size=8, seed=5, bucket_boundaries=None,
                                             featurizer=featurizer, **kwargs))
        return x["piece_ids"].numpy()

    plain = piece_ids(training=True)
    swapped = piece_ids(training=True, substitute=substitutes.substituter(1.0))
    ids = {p: i for i, p in enumerate(pieces)}
    assert (plain == ids["texas"]).sum() == 1 and (plain == ids["italy"]).sum() == 2
    assert (swapped == ids["texas"]).sum() == (swapped == ids["italy"]).sum() == 0
    assert (swapped == ids["ohio"]).sum() == 1 and (swapped == ids["spain"]).sum() == 2
    changed = plain != swapped
    assert set(plain[changed]) == {ids["texas"], ids["italy"]}  # Nothing else moves.


@pytest.mark.parametrize("neighbours", [1, 4])
def test_training_draws_as_many_stand_ins_as_configured(corpus, table, neighbours):
    config = RINConfig.for_dataset("webnlg", variant="exact", entity_substitution_rate=0.5,
                                   entity_substitution_neighbours=neighbours)
    words, vectors = table
    vocab = corpus.build_vocabulary().with_pretrained_words(words)
    substitutes = train._entity_substitutes(config, corpus, vocab, vectors, "glove")
    assert len(substitutes.substitutes["Italy"]) == neighbours


def test_stand_in_count_must_be_positive():
    with pytest.raises(ValueError, match="entity_substitution_neighbours"):
        RINConfig.for_dataset("webnlg", entity_substitution_neighbours=0)


def test_unrelated_stand_ins_come_from_any_word_of_the_same_kind_and_case():
    substitutes = EntitySubstitutes({"Texas": ["Ohio", "Utah"], "Bean": ["Collins"], "ITALY": ["SPAIN"],
                                     "rome": ["paris"], "1959": ["1961"], "1960": ["1962"]})
    example = {"tokens": tf.constant(["Bean", "of", "Texas", "saw", "ITALY", "rome", "1959", "Bean"]),
               "entities": {"start": tf.constant([0, 2, 4, 5, 6]), "end": tf.constant([1, 3, 5, 6, 7])}}
    groups = {"Bean": {"Ohio", "Utah", "Collins"}, "Texas": {"Ohio", "Utah", "Collins"}, "ITALY": {"SPAIN"},
              "rome": {"paris"}, "1959": {"1961", "1962"}}

    def draws(share):
        substitute = substitutes.substituter(rate=1.0, unrelated_share=share)
        return [[t.decode() for t in substitute(example, tf.constant(key, tf.int64))["tokens"].numpy()]
                for key in range(40)]

    own = draws(0.0)
    assert all(tokens[2] in {"Ohio", "Utah"} and tokens[0] == "Collins" and tokens[6] == "1961" for tokens in own)
    unrelated = draws(1.0)
    for tokens in unrelated:
        for position, word in zip([0, 2, 4, 5, 6], ["Bean", "Texas", "ITALY", "rome", "1959"]):
            assert tokens[position] in groups[word], (word, tokens)
        assert tokens[7] == tokens[0] and tokens[1::2][:2] == ["of", "saw"]
    # The unrelated draws reach other words' stand-ins: a Title name reads as a place and the other way round.
    assert {tokens[0] for tokens in unrelated} == {"Ohio", "Utah", "Collins"}
    assert "1962" in {tokens[6] for tokens in unrelated}
    half = draws(0.5)
    assert 0 < sum(tokens[0] != "Collins" for tokens in half) < 40
    with pytest.raises(ValueError, match="unrelated_share"):
        substitutes.substituter(rate=0.5, unrelated_share=1.5)
    with pytest.raises(ValueError, match="unrelated_share"):
        RINConfig.for_dataset("webnlg", entity_substitution_unrelated_share=-0.1)
    with pytest.raises(ValueError, match="set that rate too"):
        RINConfig.for_dataset("webnlg", entity_substitution_unrelated_share=0.5)
