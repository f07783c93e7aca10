"""Word features: featurizer inputs (part-of-speech tags included), the WordFeatures layer, and what an unseen
word reads as."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from rin_keras.data import embeddings, features, pos
from rin_keras.data.vocab import Vocabulary
from rin_keras.layers import BiLSTMEncoder, WordFeatures
from rin_keras import RINConfig
from rin_keras.model import RINModel, quantize_pretrained_table

from conftest import tiny_config

WORDS = ["Alan", "Bean", "was", "born", "in", "Texas", ","]
PRETRAINED = ["alan", "obama", "honolulu", "texas", "suárez"]


def _vocab():
    return Vocabulary.build([WORDS], ["birthPlace"]).with_pretrained_words(PRETRAINED)


def _config(vocab, **overrides):
    return tiny_config(vocab_size=vocab.vocab_size, num_relations=1, shape_dim=3, char_dim=5,
                       num_chars=len(vocab.chars) + 2, pretrained_dim=4, pretrained_rows=len(PRETRAINED) + 2,
                       **overrides)


def _featurize(vocab, config, sentences):
    inputs = features.WordIds(vocab, config.word_feature_inputs)(tf.ragged.constant(sentences))
    return {k: v.numpy() for k, v in inputs.items()}


def test_featurizer_makes_every_feature_input():
    vocab = _vocab()
    inputs = _featurize(vocab, _config(vocab), [["Obama", "was", "born", "in", "Honolulu", "."], ["SUÁREZ"]])
    assert inputs["token_ids"].tolist() == [[1, vocab.words.index("was"), vocab.words.index("born"),
                                             vocab.words.index("in"), 1, 1], [1, 0, 0, 0, 0, 0]]
    assert inputs["pretrained_ids"].tolist() == [[3, 1, 1, 1, 4, 1], [6, 0, 0, 0, 0, 0]]  # lower-cased, ids from 2
    names = [name for name, _ in features.WORD_SHAPES]
    assert inputs["shape_ids"][0].tolist() == [
        names.index(n) + 1 for n in ("title", "lower", "lower", "lower", "title", "punctuation")]
    assert inputs["shape_ids"][1, 0] == names.index("upper") + 1  # Non-ASCII capitals count as capitals.
    assert inputs["char_ids"].shape == (2, 6, 8)  # "Honolulu": the longest word.
    assert (inputs["char_ids"][0, 5, 1:] == 0).all() and inputs["char_ids"][1, 1:].sum() == 0
    assert "O" not in vocab.chars and inputs["char_ids"][0, 0, 0] == 1  # A character unseen in train.
    assert inputs["char_ids"][0, 1, :3].tolist() == [2 + vocab.chars.index(c) for c in "was"]


def test_the_layer_embeds_every_shape_and_tag_id():
    from rin_keras.layers import word_features

    assert word_features.NUM_SHAPES == len(features.WORD_SHAPES) + 2  # Padding and "other" besides the shapes.
    assert word_features.NUM_POS_TAGS == len(pos.TAGS) + 1


def test_word_shapes():
    words = tf.constant(["texas", "Texas", "USA", "1,000", "F-16", ",", "McDonald", "Łódź", "ÉCOLE"])
    names = [name for name, _ in features.WORD_SHAPES] + ["other"]
    assert [names[i - 1] for i in features.word_shape_ids(words).numpy()] == [
        "lower", "title", "upper", "number", "mixed_alnum", "punctuation", "other", "title", "upper"]


def test_pos_tagger_reads_the_lexicon_then_the_form_of_the_word():
    tagger = pos.PosTagger({"was": "VBD", "born": "VBN", "in": "IN", "Texas": "NNP", ",": ","})
    words = ["Bean", "was", "born", "in", "Texas", ",", "1932-03-15", "3Arena", "flying", "landed", "quickly",
             "planes", "glass", "F-16", "well-known", "Łódź", "historic", "—", "moon", "WAS"]
    assert tagger.tag(words) == ["NNP", "VBD", "VBN", "IN", "NNP", ",", "CD", "CD", "VBG", "VBN", "RB", "NNS",
                                 "NN", "NNP", "JJ", "NNP", "JJ", "SYM", "NN", "NNP"]
    graph = tf.function(tagger.__call__, input_signature=[tf.TensorSpec([None, None], tf.string)])
    batch = tf.constant([words[:10], words[10:]])
    np.testing.assert_array_equal(graph(batch), tagger(batch))  # The same ops in a graph.
    with pytest.raises(ValueError, match="outside TAGS"):
        pos.PosTagger({"was": "VERB"})


def test_brill_lexicon_tags_common_words():
    lexicon = pos.brill_lexicon()
    assert len(lexicon) > 90_000 and set(lexicon.values()) <= set(pos.TAGS)
    tagger = pos.PosTagger(lexicon)
    assert tagger.tag("The airport serves the city of Aarhus .".split()) == [
        "DT", "NN", "VBZ", "DT", "NN", "IN", "NNP", "."]


def test_featurizer_tags_real_words_and_pads_with_zero(tmp_path):
    vocab = _vocab().with_pos_lexicon({"was": "VBD", "born": "VBN", "in": "IN"})
    inputs = _featurize(vocab, _config(vocab, pos_dim=2), [["Obama", "was", "born", "in", "Honolulu"], ["<pad>"]])
    assert [pos.TAGS[i - 1] for i in inputs["pos_ids"][0]] == ["NNP", "VBD", "VBN", "IN", "NNP"]
    # A real token spelled like padding is a word (NN); padding is 0.
    assert inputs["pos_ids"][1].tolist() == [pos.TAGS.index("NN") + 1, 0, 0, 0, 0]
    vocab.save(str(tmp_path))
    assert Vocabulary.load(str(tmp_path)).pos_lexicon == vocab.pos_lexicon
    with pytest.raises(ValueError, match="no part-of-speech lexicon"):
        features.WordIds(_vocab(), ("pos_ids",))


def test_an_unseen_word_reads_as_more_than_unk():
    vocab = _vocab()
    keras.utils.set_random_seed(0)
    model = RINModel(_config(vocab))
    model.word_features.set_pretrained_vectors(np.random.default_rng(0).normal(0, 1, (5, 4)).astype("float32"))
    encode, _ = model.split_at_encoder()
    sentences = [["Obama", "was", "born", "in", "Honolulu"], ["Obama", "was", "born", "in", "Lagos"]]
    inputs = _featurize(vocab, model.config, sentences)
    assert inputs["token_ids"][0, 4] == inputs["token_ids"][1, 4] == 1  # Both unknown to the train vocabulary.
    states = encode(inputs).numpy()
    assert not np.allclose(states[0, 4], states[1, 4], atol=1e-4)

    plain_config = tiny_config(vocab_size=vocab.vocab_size, num_relations=1)
    plain = RINModel(plain_config).split_at_encoder()[0](_featurize(vocab, plain_config, sentences)).numpy()
    np.testing.assert_allclose(plain[0, 4], plain[1, 4], atol=1e-6)  # Without features both are just <unk>.


def test_word_features_layer_serializes_and_keeps_the_table_frozen():
    layer = WordFeatures(pretrained_rows=7, pretrained_dim=4, shape_dim=3, num_chars=9, char_dim=5)
    inputs = {"pretrained_ids": np.array([[2, 1, 0]]), "shape_ids": np.array([[1, 2, 0]]),
              "char_ids": np.array([[[2, 3], [4, 0], [0, 0]]])}
    out = layer(inputs)
    assert out.shape == (1, 3, 12) == layer.compute_output_shape({k: v.shape for k, v in inputs.items()})
    layer.set_pretrained_vectors(np.ones((5, 4), "float32"))
    assert np.allclose(out.numpy()[0, 2, 7:], 0.0)  # A padded word has no characters: its CNN feature is 0.
    assert not layer.pretrained.embeddings.trainable
    assert all(w is not layer.pretrained.embeddings for w in layer.trainable_weights)
    restored = WordFeatures.from_config(layer.get_config())
    restored(inputs)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(restored(inputs).numpy(), layer(inputs).numpy())
    with pytest.raises(ValueError, match="do not fit"):
        layer.set_pretrained_vectors(np.ones((3, 4), "float32"))


def test_unknown_word_rate_hides_words_only_in_training():
    encoder = BiLSTMEncoder(vocab_size=10, word_dim=4, lstm_units=3, input_dropout=0.0, unknown_word_rate=0.5)
    ids = np.array([[2, 3, 4, 5, 6, 7, 8, 9, 0, 0]] * 4, "int32")
    inference = encoder(ids).numpy()
    np.testing.assert_allclose(encoder(ids).numpy(), inference)
    as_unknown = encoder(np.where(ids > 0, 1, 0).astype("int32")).numpy()
    trained = encoder(ids, training=True).numpy()
    assert not np.allclose(trained, inference)
    assert not np.allclose(trained, as_unknown)
    np.testing.assert_allclose(trained[:, 8:], 0.0)  # Padding stays padding.


def test_the_words_read_as_unknown_follow_the_global_seed():
    ids = np.array([[2, 3, 4, 5, 6, 7, 8, 9]] * 8, "int32")
    hidden = {}
    for seed in (1, 2, 1):
        keras.utils.set_random_seed(seed)
        encoder = BiLSTMEncoder(vocab_size=10, word_dim=4, lstm_units=3, input_dropout=0.0, unknown_word_rate=0.5)
        encoder(ids)
        rng = np.random.default_rng(0)
        for weight in encoder.trainable_weights:  # The same weights: only the draws differ.
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
        hidden.setdefault(seed, []).append(encoder(ids, training=True).numpy())
    np.testing.assert_allclose(*hidden[1])  # The same seed, the same words hidden.
    assert not np.allclose(hidden[1][0], hidden[2][0])


def test_model_with_features_saves_and_loads(tmp_path):
    vocab = _vocab()
    model = RINModel(_config(vocab))
    model.word_features.set_pretrained_vectors(np.full((5, 4), 0.5, "float32"))
    inputs = _featurize(vocab, model.config, [["Obama", "was", "born", "in", "Honolulu", "."]])
    expected = model.predict_on_batch(inputs)["relations"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict_on_batch(inputs)["relations"], expected, rtol=1e-5)


def test_int8_table_reads_as_the_float_table_and_older_float_models_convert(tmp_path):
    vocab = _vocab()
    vectors = np.random.default_rng(0).normal(0, 1, (5, 4)).astype("float32")
    float_model = RINModel(_config(vocab, pretrained_int8=False))
    float_model.word_features.set_pretrained_vectors(vectors)
    assert float_model.word_features.pretrained.embeddings.dtype == "float32"
    model = quantize_pretrained_table(float_model)
    table = model.word_features.pretrained
    assert model.config.pretrained_int8 and table.embeddings.dtype == "int8" and table.embeddings_scale.shape == (7,)
    # Each value within half a step (its row's largest absolute value / 127) of the float one; padding and <unk> 0.
    step = np.abs(vectors).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(model.word_features.pretrained_vectors() - vectors) <= step / 2 + 1e-6)
    np.testing.assert_array_equal(table(np.array([0, 1])), 0.0)
    inputs = _featurize(vocab, model.config, [["Obama", "was", "born", "in", "Honolulu", "."]])
    expected = model.predict_on_batch(inputs)["relations"]
    np.testing.assert_allclose(expected, float_model.predict_on_batch(inputs)["relations"], atol=0.02)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.word_features.pretrained.embeddings.dtype == "int8"
    np.testing.assert_allclose(loaded.predict_on_batch(inputs)["relations"], expected, rtol=1e-5)
    assert quantize_pretrained_table(model) is model
    saved_before_int8 = {k: v for k, v in float_model.config.network_fields().items() if k != "pretrained_int8"}
    assert not RINConfig.from_dict(saved_before_int8).pretrained_int8 and RINConfig().pretrained_int8


@pytest.mark.parametrize("policy, table_policy", [("mixed_bfloat16", "int8_from_mixed_bfloat16"),
                                                  ("mixed_float16", "int8_from_float32"),  # Keras: no int8 in float16.
                                                  ("float16", "int8_from_float32")])
def test_int8_table_keeps_the_mixed_precision_compute_dtype(policy, table_policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = WordFeatures(pretrained_rows=7, pretrained_dim=4, shape_dim=3, pretrained_int8=True)
    out = layer({"pretrained_ids": np.array([[2, 3, 0]]), "shape_ids": np.array([[1, 2, 0]])})
    assert layer.pretrained.dtype_policy.name == table_policy and out.dtype == policy.split("_")[-1]


def test_vocabulary_keeps_chars_and_pretrained_words_and_reads_old_folders(tmp_path):
    vocab = _vocab()
    vocab.save(str(tmp_path / "v"))
    loaded = Vocabulary.load(str(tmp_path / "v"))
    assert (loaded.words, loaded.chars, loaded.pretrained_words) == (vocab.words, vocab.chars, PRETRAINED)
    for name in ("chars.txt", "pretrained_words.txt"):
        (tmp_path / "v" / name).unlink()  # A vocabulary saved before these features existed.
    old = Vocabulary.load(str(tmp_path / "v"))
    assert (old.words, old.chars, old.pretrained_words) == (vocab.words, [], [])


def test_pretrained_tables(tiny_vectors):
    words, vectors = embeddings.load_pretrained_table(tiny_vectors)
    assert words[:2] == ["alan", "bean"] and vectors.shape == (8, 4)
    words, vectors = embeddings.load_pretrained_table("glove")
    assert len(words) == 400_000 and vectors.shape == (400_000, 50)
    assert {"honolulu", "obama", "suárez"} <= set(words)


def test_a_vectors_file_with_a_header_or_a_bad_number(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("words count dim\nalan 0.1 0.2\nbean 0.3 x\n", encoding="utf-8")
    with pytest.raises(embeddings.VectorsFileError, match=r"vectors.txt:3: the line of 'bean' holds a field that is "):
        embeddings.load_pretrained_table(str(path))
    vocab = Vocabulary.build([["alan", "bean"]], ["birthPlace"])
    with pytest.raises(embeddings.VectorsFileError, match=r"vectors.txt:3: "):
        embeddings.load_text_vectors(str(path), vocab, 2)
    path.write_text("words count dim\nalan 0.1 0.2\nbean 0.3 0.4\n", encoding="utf-8")  # A header is skipped.
    words, vectors = embeddings.load_pretrained_table(str(path))
    assert words == ["alan", "bean"] and vectors.shape == (2, 2)


def test_a_pretrained_file_is_read_as_its_words_are_looked_up(tmp_path, caplog):
    """Lower-cased (the first row of a word in any case), its byte-order mark skipped, the width of most rows;
    rows of another width, of numbers that are not finite or of the lookup's reserved words left out and counted."""
    path = tmp_path / "vectors.txt"
    path.write_text("first 1 2 3\nTexas 1 1\ntexas 2 2\nNASA 3 3\n<pad> 4 4\nbad nan 5\nalan 6 6\n",
                    encoding="utf-8-sig")
    with caplog.at_level(logging.WARNING):
        words, vectors = embeddings.load_pretrained_table(str(path))
    assert words == ["texas", "nasa", "alan"] and vectors.tolist() == [[1, 1], [3, 3], [6, 6]]
    assert ("3 rows left out: 1 of another width than 2, 1 of a reserved word, 1 of numbers that are not finite."
            in caplog.text)
    lookup = features.WordIds(Vocabulary(["<pad>", "<unk>", "Texas"], ["r"], pretrained_words=words),
                              ("pretrained_ids",))
    ids = lookup(tf.ragged.constant([["Texas", "NASA", "alan", "Bean"]]))["pretrained_ids"]
    assert ids.numpy().tolist() == [[2, 3, 4, 1]]  # Rows + 2; "Bean" is not in the table.


def test_a_vectors_file_row_goes_to_its_word_as_written_else_lower_cased(tmp_path):
    vocab = Vocabulary(["<pad>", "<unk>", "Apple", "apple", "Pie", "Tart"], ["r"])
    # Pie reads pie's row, lower-cased; pie is listed twice: its first row.
    path = _vectors_file(tmp_path, "apple 1 1\nApple 2 2\npie 3 3\npie 4 4\n")
    matrix = embeddings.load_text_vectors(path, vocab, 2)
    assert matrix[2:5].tolist() == [[2, 2], [1, 1], [3, 3]]
    assert abs(matrix[5]).max() < 1  # Tart: not in the file, a small random vector.


@pytest.mark.parametrize("content,message", [
    ("apple 1 1 1\npie 2 2 2\n", r"holds no 2-dimensional vectors \(its lines hold 3 numbers\): give --word_dim"),
    ("", r"holds no 2-dimensional vectors: give --word_dim"),
])
def test_a_vectors_file_of_another_size_or_empty_is_refused(tmp_path, content, message):
    vocab = Vocabulary(["<pad>", "<unk>", "apple"], ["r"])
    with pytest.raises(embeddings.VectorsFileError, match=message):
        embeddings.load_text_vectors(_vectors_file(tmp_path, content), vocab, 2)


def _vectors_file(tmp_path, content: str) -> str:
    path = tmp_path / "vectors.txt"
    path.write_text(content, encoding="utf-8")
    return str(path)


def test_a_words_features_do_not_depend_on_its_batch():
    layer = WordFeatures(shape_dim=3, num_chars=9, char_dim=5)
    alone = {"shape_ids": np.array([[1]]), "char_ids": np.array([[[2, 3]]])}
    padded = {"shape_ids": np.array([[1, 2]]), "char_ids": np.array([[[2, 3, 0, 0], [4, 5, 6, 7]]])}
    np.testing.assert_allclose(layer(padded).numpy()[0, 0], layer(alone).numpy()[0, 0], atol=1e-6)
