"""RINPreprocessor and RINTripleExtractor: one artifact that loads and predicts raw text."""

import os
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from rin_keras.data import features
from rin_keras.data.tokenizer import tokenize
from rin_keras.data.vocab import Vocabulary
from rin_keras.decoding import decode_triples
from rin_keras.model import PREDICT_CHUNK_SIZE, build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras import triple_extractor
from rin_keras.triple_extractor import ARTIFACT_FILE, RINTripleExtractor

from conftest import assert_same_triples, tiny_config

WORDS = "Alan Bean was born in Wheeler , Texas . the Suárez".split()
PRETRAINED = ["alan", "bean", "texas", "obama", "honolulu"]
SENTENCES = ["Alan Bean was born in Wheeler, Texas.", "Barack Obama was born in Honolulu, Hawaii.", "", "Suárez (東京) 🚀"]


def _vocab(pretrained=PRETRAINED):
    return (Vocabulary.build([WORDS], ["birthPlace", "country"]).with_pretrained_words(pretrained)
            .with_pos_lexicon({"was": "VBD", "born": "VBN", "in": "IN", "the": "DT", ",": ",", ".": "."}))


def _extractor(seed=0):
    """A tiny untrained extractor with every word feature (part-of-speech tags included), whose relation head
    fires often."""
    keras.utils.set_random_seed(seed)
    vocab = _vocab()
    config = tiny_config(vocab_size=vocab.vocab_size, num_relations=vocab.num_relations, shape_dim=3, char_dim=4,
                         num_chars=len(vocab.chars) + 2, pretrained_dim=4, pretrained_rows=len(PRETRAINED) + 2,
                         pos_dim=2, max_length=6)
    model = build_rin(config)
    model.word_features.set_pretrained_vectors(np.random.default_rng(seed).normal(0, 1, (5, 4)).astype("float32"))
    head = model.get_layer("relation_head")
    head.output_kernel.assign(np.random.default_rng(seed).normal(0, 3, head.output_kernel.shape).astype("float32"))
    head.output_bias.assign(np.zeros(head.output_bias.shape, "float32"))
    return RINTripleExtractor(model, RINPreprocessor.from_config_and_vocabulary(config, vocab), threshold=0.3)


def test_preprocessor_reads_raw_sentences_as_the_featurizer_reads_their_tokens():
    vocab = Vocabulary(["<pad>", "<unk>", "Bean", "Texas"], ["birthPlace"])
    assert RINPreprocessor(vocab)(tf.constant(["Bean, Texas."]))["token_ids"].numpy().tolist() == [[2, 1, 3, 1]]
    extractor = _extractor()
    preprocessor = extractor.preprocessor
    from_text = preprocessor(tf.constant(SENTENCES))
    tokens = tf.ragged.constant([tokenize(s)[:6] for s in SENTENCES], dtype=tf.string, ragged_rank=1)
    from_tokens = features.WordIds(_vocab(), extractor.config.word_feature_inputs)(tokens)
    assert set(from_text) == {"token_ids", "pretrained_ids", "shape_ids", "pos_ids", "char_ids"}
    for name in from_text:
        np.testing.assert_array_equal(from_text[name], from_tokens[name])
    assert from_text["token_ids"].shape[1] == 6  # Cut to max_length.


def test_preprocessor_without_vocabulary_says_so():
    with pytest.raises(ValueError, match="no vocabulary yet"):
        RINPreprocessor().featurizer
    with pytest.raises(ValueError, match="encoder must be"):
        RINPreprocessor(encoder="lstm")


def test_predict_takes_raw_sentences_and_keeps_keras_predict_for_tensors():
    extractor = _extractor()
    triples = extractor.predict(SENTENCES)
    assert len(triples) == 4 and sum(map(len, triples)) > 5
    # The cells of one unchunked pass of the network over the batch, decoded as the paper's decoder reads them.
    inputs = {k: v.numpy() for k, v in extractor.preprocessor(tf.constant(SENTENCES)).items()}
    outputs = extractor.model.predict_on_batch(inputs)
    lengths = (inputs["token_ids"] != 0).sum(axis=1)
    for i, found in enumerate(triples):
        cells = decode_triples(outputs["entity_tags"][i], outputs["relations"][i], lengths[i], extractor.threshold)
        assert [(t["subject_span"][1] - 1, t["relation"], t["object_span"][1] - 1) for t in found] == [
            (c.subject_head, extractor.relation_names[c.relation], c.object_head) for c in cells]
        np.testing.assert_allclose([t["score"] for t in found], [c.score for c in cells], rtol=1e-5)
    for sentence, found in zip(SENTENCES, triples):
        for t in found:
            start, end = t["object_char_span"]
            assert sentence[start:end].endswith(t["object"].split(" ")[-1])
    with pytest.raises(TypeError, match="predict takes a list of texts"):
        extractor.predict(SENTENCES[0])
    inputs = {k: v.numpy() for k, v in extractor.preprocessor(tf.constant(SENTENCES[:2])).items()}
    outputs = extractor.predict(inputs, verbose=0)
    assert outputs["relations"].shape == (2, 6, 6, 2)
    outputs = extractor.predict(tf.data.Dataset.from_tensors(inputs), verbose=0)  # A dataset of inputs: Keras's.
    assert outputs["relations"].shape == (2, 6, 6, 2)


def test_predict_gives_a_mixed_batch_what_each_sentence_gives_alone(tmp_path):
    """The pair rounds run on length-sorted chunks of `PREDICT_CHUNK_SIZE`; each sentence's triples come back to it."""
    extractor = _extractor()
    words = "Alan Bean was born in Wheeler , Texas".split()
    sentences = [" ".join(words[:n]) for n in (2, 6, 1, 4, 6, 3, 5, 2, 8, 1, 3, 7, 4, 2, 6, 5, 1, 3)] + [""]
    assert len(sentences) > 2 * PREDICT_CHUNK_SIZE
    alone = [extractor.predict([sentence])[0] for sentence in sentences]
    assert sum(map(len, alone)) > 10 and len({len(triples) for triples in alone}) > 3
    assert_same_triples(extractor.predict(sentences), alone)
    path = extractor.save_to_preset(str(tmp_path / "preset"))  # The views made for predict are not saved.
    assert len(RINTripleExtractor.from_preset(path).weights) == len(extractor.weights)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's tracing of Keras predict functions")
def test_predict_traces_its_graph_and_each_python_view_once_for_any_batch_shape():
    """predict's graph is traced once, for any batch; so is each network view of the Python path (the one other
    backends take). Keras alone traces each view three times for these batches."""
    extractor = _extractor()
    words = "Alan Bean was born in Wheeler , Texas".split()
    for lengths, batch_size in (((3, 2, 5, 6, 4), 2), (tuple(range(1, 9)) * 3, 7)):
        sentences = [" ".join(words[:n]) for n in lengths]
        extractor.predict(sentences, batch_size=batch_size)
        for begin in range(0, len(sentences), batch_size):
            extractor._python_cells([words[:n][: extractor.max_length] for n in lengths[begin:begin + batch_size]])
    assert extractor._graph_function().experimental_get_tracing_count() == 1
    encode, interact = extractor._split_network()
    assert [view.predict_function.experimental_get_tracing_count() for view in (encode, interact)] == [1, 1]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the graph path runs on TensorFlow")
def test_predict_reads_a_max_length_or_featurizer_set_after_its_first_call():
    extractor = _extractor()
    words = "Alan Bean was born in Wheeler , Texas".split()
    assert len(extractor.predict_detailed([" ".join(words)])[0]["tokens"]) == extractor.max_length == 6
    extractor.preprocessor.max_length = 8
    result = extractor.predict_detailed([" ".join(words)])[0]
    assert len(result["tokens"]) == 8 and max(t["subject_span"][1] for t in result["triples"]) == 8
    before = extractor._graph_cells([words])[0]["scores"]
    # A featurizer that reads the words as other rows of the pretrained table: other inputs, other scores.
    inputs = extractor.preprocessor.featurizer.inputs
    extractor.preprocessor.featurizer = features.WordIds(_vocab(pretrained=PRETRAINED[::-1]), inputs)
    graph, python = extractor._graph_cells([words])[0], extractor._python_cells([words])[0]
    np.testing.assert_allclose(graph["scores"], python["scores"], rtol=1e-6)
    assert graph["scores"].shape == before.shape and not np.allclose(graph["scores"], before)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the graph path runs on TensorFlow")
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 1.0])
def test_graph_and_python_paths_find_the_same_cells(threshold):
    """predict on TensorFlow (the serving graph's path) and on other backends (NumPy) find the same cells, in the
    same order, with the same entity starts (`test_serving.test_in_graph_span_starts_are_those_of_tags_to_spans`
    checks the starts of tags that this untrained model does not give)."""
    extractor = _extractor()
    extractor.threshold = threshold
    words = "Alan Bean was born in Wheeler , Texas".split()
    batch = [words[:n] for n in (2, 6, 1, 4, 6, 3, 5, 2, 6, 1, 3, 0, 6, 5)]
    graph, python = extractor._graph_cells(batch), extractor._python_cells(batch)
    assert threshold > 0.3 or sum(len(cells["scores"]) for cells in graph) > 20  # This model's cells are < 0.5.
    assert len(graph) == len(python) == len(batch)
    for found, expected in zip(graph, python):
        assert found.keys() == expected.keys()
        for key, value in found.items():
            if key == "scores":
                np.testing.assert_allclose(value, expected[key], rtol=1e-6)
            else:
                assert value.tolist() == expected[key].tolist(), key


@pytest.mark.parametrize("as_file", [False, True])
def test_one_artifact_round_trips(tmp_path, as_file):
    extractor = _extractor()
    path = extractor.save_to_preset(str(tmp_path / "preset"))
    assert path == str(tmp_path / "preset" / ARTIFACT_FILE) and os.listdir(tmp_path / "preset") == [ARTIFACT_FILE]
    loaded = RINTripleExtractor.from_preset(path if as_file else str(tmp_path / "preset"))
    assert (loaded.threshold, loaded.max_length, loaded.relation_names) == (0.3, 6, ["birthPlace", "country"])
    assert loaded.preprocessor.vocabulary.pretrained_words == PRETRAINED
    saved_config = loaded.model.get_config()["config"]  # The network's fields; the run keeps how it trained.
    assert "learning_rate" not in saved_config and saved_config["pretrained_dim"] == 4
    assert_same_triples([r["triples"] for r in loaded.predict_detailed(SENTENCES)],
                        [r["triples"] for r in extractor.predict_detailed(SENTENCES)])


def test_an_extractor_of_a_compiled_trained_model_loads_for_inference(tmp_path):
    extractor = _extractor()
    extractor.model.optimizer.build(extractor.model.trainable_variables)  # As after `fit`.
    loaded = RINTripleExtractor.from_preset(os.path.dirname(extractor.save_to_preset(str(tmp_path))))
    assert extractor.model.compiled and not loaded.model.compiled
    assert_same_triples(loaded.predict(SENTENCES), extractor.predict(SENTENCES))


def test_old_training_folders_load_and_convert(tmp_path):
    extractor = _extractor()
    old = tmp_path / "run"
    os.makedirs(old)
    extractor.model.save(old / "best.keras")
    extractor.config.replace(threshold=0.3).save(str(old / "config.json"))
    extractor.preprocessor.vocabulary.save(str(old / "vocab"))
    assembled = RINTripleExtractor.from_preset(str(old))
    expected = extractor.predict(SENTENCES)
    assert_same_triples(assembled.predict(SENTENCES), expected)
    # The path of the folder's best.keras is read as the folder.
    assert_same_triples(RINTripleExtractor.from_preset(str(old / "best.keras")).predict(SENTENCES), expected)
    assembled.save_to_preset(str(old))
    assert_same_triples(keras.saving.load_model(old / ARTIFACT_FILE).predict(SENTENCES), expected)


def test_loading_errors_say_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="rin_keras.train --model_dir"):
        RINTripleExtractor.from_preset(str(tmp_path))
    _extractor().model.save(tmp_path / "network.keras")
    with pytest.raises(ValueError, match="holds a RINModel, not a RINTripleExtractor"):
        RINTripleExtractor.from_preset(str(tmp_path / "network.keras"))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="is a file but not a .keras file"):
        RINTripleExtractor.from_preset(str(tmp_path / "config.json"))
    with pytest.raises(FileNotFoundError, match="^No file .*missing.keras.$"):
        RINTripleExtractor.from_preset(tmp_path / "missing.keras")  # A path object.
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="text.keras is not a .keras file"):
        RINTripleExtractor.from_preset(str(tmp_path / "text.keras"))
    os.makedirs(tmp_path / "stopped")
    _extractor().model.save(tmp_path / "stopped" / "best.keras")
    with pytest.raises(FileNotFoundError, match="stopped lacks config.json and vocab: a training folder's best.keras"):
        RINTripleExtractor.from_preset(str(tmp_path / "stopped"))
    with mock.patch.dict(os.environ, {"HOME": str(tmp_path)}):
        with pytest.raises(FileNotFoundError, match=f"in '{tmp_path}/stopped/none'"):
            RINTripleExtractor.from_preset("~/stopped/none")


def test_predict_reads_any_batch_of_texts_and_refuses_what_is_not_one(caplog):
    extractor = _extractor()
    expected = extractor.predict(SENTENCES)
    assert_same_triples(extractor.predict(np.array(SENTENCES)), expected)
    assert_same_triples(extractor.predict(tuple(SENTENCES)), expected)
    assert_same_triples(extractor.predict(tf.constant(SENTENCES)), expected)
    assert_same_triples(extractor.predict(pytest.importorskip("pandas").Series(SENTENCES)), expected)
    assert_same_triples(extractor.predict(text for text in SENTENCES), expected)
    assert_same_triples(extractor.predict(tf.data.Dataset.from_tensor_slices(SENTENCES)), expected)
    assert_same_triples(extractor.predict(tf.data.Dataset.from_tensor_slices(SENTENCES).batch(2)), expected)
    unknown_rank = tf.data.Dataset.from_generator(lambda: iter([SENTENCES[:3], SENTENCES[3:]]),
                                                  output_signature=tf.TensorSpec(None, tf.string))
    assert_same_triples(extractor.predict(unknown_rank), expected)
    assert extractor.predict_detailed(tf.data.Dataset.from_tensor_slices(SENTENCES)) == extractor.predict_detailed(
        SENTENCES)
    assert extractor.predict(np.array([])) == extractor.predict([]) == extractor.predict(iter([])) == []
    documents = extractor.predict_documents(SENTENCES)
    assert extractor.predict_documents(tf.data.Dataset.from_tensor_slices(SENTENCES).batch(3)) == documents
    assert extractor.predict_documents(tf.constant(SENTENCES)) == extractor.predict_documents(np.array(SENTENCES))
    assert extractor.predict_documents(tf.constant(SENTENCES)) == documents
    assert extractor.predict_detailed(tf.constant(SENTENCES)) == extractor.predict_detailed(SENTENCES)
    # Bytes read as UTF-8, invalid bytes and lone surrogates (which UTF-8 cannot encode) as U+FFFD, one for one.
    bad_bytes, surrogate = extractor.predict_detailed([b"Alan \xff Bean", "Alan \ud800 Bean"])
    assert bad_bytes["tokens"] == surrogate["tokens"] == ["Alan", "\ufffd", "Bean"]
    assert surrogate["token_spans"] == [[0, 4], [5, 6], [7, 11]]
    for call, error, match in (
        (lambda: extractor.predict_detailed(SENTENCES[0]), TypeError, "predict_detailed takes a list of texts"),
        (lambda: extractor.predict_documents(SENTENCES[0]), TypeError, "predict_documents takes a list of texts"),
        (lambda: extractor.predict_tokens(["Alan Bean"]), TypeError, "Sentence 0 is a str; predict_tokens takes lists"),
        (lambda: extractor.predict([SENTENCES[0], None]), TypeError, "Text 1 is a NoneType, not a str"),
        (lambda: extractor.predict([None]), TypeError, "Text 0 is a NoneType, not a str"),
        (lambda: extractor.predict([123]), TypeError, "Text 0 is a int, not a str"),
        (lambda: extractor.predict(None), TypeError, "predict takes a list of texts"),
        (lambda: extractor.predict(set(SENTENCES)), TypeError, "predict takes a list of texts, not set"),
        (lambda: extractor.predict_documents({"text": SENTENCES[0]}), TypeError,
         "predict_documents takes a list of texts, not dict"),
        (lambda: extractor.predict(SENTENCES, batch_size=0), ValueError, "batch_size must be a positive integer"),
        (lambda: extractor.predict_detailed(SENTENCES, -1), ValueError, "batch_size must be a positive integer"),
        (lambda: extractor.predict_documents(SENTENCES, True), ValueError, "batch_size must be a positive integer"),
        (lambda: extractor.predict(tf.constant(SENTENCES[0])), TypeError, "wrap a single text in a list"),
        (lambda: extractor.predict(np.array(SENTENCES[0])), TypeError, "wrap a single text in a list"),
    ):
        with pytest.raises(error, match=match):
            call()
    for threshold in ("0.5", float("nan"), True, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold must be a number in"):
            extractor.threshold = threshold
    assert_same_triples(extractor.predict(SENTENCES, batch_size=np.int64(2)), expected)  # NumPy numbers too.
    threshold, extractor.threshold = extractor.threshold, np.int64(1)
    assert extractor.threshold == 1.0
    extractor.threshold = threshold
    # Text past max_length tokens is not read: predict says so, predict_documents names the sentences.
    long_text = " ".join(["word"] * (extractor.max_length + 5))
    with caplog.at_level("WARNING"):
        extractor.predict([long_text, "Alan Bean"])
    assert f"1 of 2 texts were longer than the model reads ({extractor.max_length} tokens)" in caplog.text
    [document] = extractor.predict_documents(["Alan Bean was born. " + long_text + "."])
    assert len(document["sentences"]) == 2 and document["truncated"] == [1]


def _sentences(document: str) -> list[str]:
    return [document[start:end] for start, end in triple_extractor.iter_sentences(document)]


def test_documents_read_wrapped_lines_as_one_sentence_and_blank_lines_and_list_items_as_ends():
    document = ("Alan Bean was born in\nWheeler, Texas. He flew\r\nto the Moon.\n\nA new paragraph\nwithout an end\n"
                "- a list item\n2) another\n  \n  the last")
    assert _sentences(document) == [
        "Alan Bean was born in\nWheeler, Texas. ", "He flew\r\nto the Moon.\n\n", "A new paragraph\nwithout an end\n",
        "- a list item\n", "2) another\n  \n  ", "the last"]


def test_invisible_whitespace_alone_is_no_sentence():
    assert _sentences("Alan Bean flew to Texas.\u200b") == ["Alan Bean flew to Texas."]
    assert _sentences("He flew.\ufeff\n\n\u2060\u200b\n\nShe flew.") == ["He flew.", "She flew."]
    assert _sentences("\u200b \u2060") == []


def test_a_sentence_longer_than_a_block_is_one_sentence(monkeypatch):
    monkeypatch.setattr(triple_extractor, "SENTENCE_BLOCK_CHARS", 150)
    url = "https://example.org/" + "a" * 400
    first = f"Alan Bean , see {url} , was born in Wheeler, Texas. "
    assert _sentences(first + "He flew.") == [first, "He flew."]
    assert _sentences("x" * 1000) == ["x" * 1000]
    assert _sentences(f"{url} {url}\n\nHe flew.") == [f"{url} {url}\n\n", "He flew."]


def test_sentences_do_not_overlap():
    for document in ("Alice lives in Paris. . . Bob lives in Rome.", "Wait .... Alice lives in Paris. . ."):
        spans = list(triple_extractor.iter_sentences(document))
        assert all(start < end <= next_start for (start, end), (next_start, _) in zip(spans, spans[1:]))
        assert "".join(document[start:end] for start, end in spans).split() == document.split()


@pytest.mark.parametrize("seed", range(4))
def test_a_block_end_cuts_no_sentence(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    pieces = ["Alan Bean, a friend of Dr. Smith, was born in Wheeler, Texas.", "He flew to the U.S. Moon base.",
              "Mr. Bean met Prof. Jones at noon.", "It was long!", "Was it?", "\"Yes,\" he said.", "Apollo flew."]
    chosen = list(rng.choice(pieces, 120))
    monkeypatch.setattr(triple_extractor, "SENTENCE_BLOCK_CHARS", 150)  # A block ends after every few sentences.
    assert _sentences(" ".join(chosen)) == [piece + " " for piece in chosen[:-1]] + chosen[-1:]
