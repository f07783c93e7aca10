"""The tf.data batches on the dummy corpus: encoding, bucketing, targets, bad input."""

import shutil
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from rin_keras.data import dataset, numpy_batches
from rin_keras.data.corpus import Corpus
from rin_keras.decoding import TAGS
from rin_keras.data.features import MAX_WORD_CHARS, WordIds
from rin_keras.data.vocab import PAD, UNK, Vocabulary
from tfds_builders import testing


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    with testing.dummy_checksums("webnlg"):
        yield Corpus.prepare(
            "webnlg", "exact", str(tmp_path_factory.mktemp("tfds")), testing.dummy_dir("webnlg")
        )


def test_bieso_tags():
    tags = dataset.bieso_tags(tf.constant([0, 3, 7]), tf.constant([1, 6, 9]), tf.constant(10)).numpy()
    assert "".join(TAGS[t] for t in tags) == "SOOBIEOBEO"


def test_dense_relation_targets():
    relations = tf.constant([[[0, 1, 2], [0, 1, 2], [-1, -1, -1]], [[1, 0, 0], [-1, -1, -1], [-1, -1, -1]]])
    dense = dataset.dense_relation_targets(relations, tf.constant([3, 2]), tf.constant(3), 3).numpy()
    assert dense.shape == (2, 3, 3, 3) and dense.dtype == np.int8
    assert dense[0, 0, 1, 2] == 1 and dense[1, 1, 0, 0] == 1  # a triple listed twice is one cell
    assert (dense == 1).sum() == 2
    assert np.all(dense[1, 2] == -1) and np.all(dense[1, :, 2] == -1) and np.all(dense[0] >= 0)


def test_vocabulary_from_train_only_and_round_trip(corpus, tmp_path):
    vocab = corpus.build_vocabulary()
    assert vocab.words[:2] == [PAD, UNK] and "Italy" in vocab.words
    assert "Athens" not in vocab.words  # a test-split word
    assert vocab.num_relations == 216
    vocab.save(str(tmp_path))
    restored = Vocabulary.load(str(tmp_path))
    assert restored.words == vocab.words and restored.relations == vocab.relations
    ids = vocab.word_lookup()(tf.constant(["Italy", "Athens"])).numpy()
    assert ids[0] == vocab.words.index("Italy") and ids[1] == 1


def test_train_words_spelled_like_the_reserved_entries_read_as_unknown():
    vocab = Vocabulary.build([["Alan", PAD, UNK, "Bean"]], ["birthPlace"])
    assert vocab.words == [PAD, UNK, "Alan", "Bean"]
    ids = WordIds(vocab)(tf.ragged.constant([["Alan", PAD, UNK, "Bean"]]))["token_ids"].numpy().tolist()
    assert ids == [[2, 1, 1, 3]]


def test_make_dataset_feeds_fit_shapes(corpus):
    vocab = corpus.build_vocabulary()
    batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=2, training=True, seed=1))
    assert sum(int(x["token_ids"].shape[0]) for x, _ in batches) == 6
    for inputs, targets in batches:
        n = inputs["token_ids"].shape[1]
        assert targets["entity_tags"].shape == inputs["token_ids"].shape
        assert targets["relations"].shape[1:] == (n, n, 216)
        real = inputs["token_ids"].numpy() != 0
        assert np.array_equal(targets["entity_tags"].numpy() >= 0, real)


def test_padding_to_bucket_edges_gives_fixed_shapes_with_character_features(corpus):
    vocab = corpus.build_vocabulary()
    featurizer = WordIds(vocab, ("shape_ids", "char_ids"))
    batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=2, training=True, seed=1,
                                        featurizer=featurizer, bucket_boundaries=[4, 8], pad_to_bucket_boundary=True))
    assert batches
    for inputs, _ in batches:  # Words of up to MAX_WORD_CHARS characters fit below any bucket edge.
        assert inputs["token_ids"].shape[1] in (3, 7, 100) and inputs["char_ids"].shape[2] == MAX_WORD_CHARS
        assert inputs["char_ids"].shape[1] == inputs["token_ids"].shape[1]


def test_padding_to_bucket_edges_leaves_word_pieces_at_their_longest(corpus):
    import keras_hub

    from rin_keras.data.features import WordPieces

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alan", "bean", "was", "born", "in", "texas", "."]
    featurizer = WordPieces(keras_hub.models.BertTokenizer(vocabulary=pieces, lowercase=True))
    vocab = corpus.build_vocabulary()
    batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=2, training=True, seed=1,
                                        featurizer=featurizer, bucket_boundaries=[4, 8], pad_to_bucket_boundary=True))
    assert batches
    for inputs, targets in batches:
        assert inputs["word_pieces"].shape[1] == targets["entity_tags"].shape[1]
        assert (inputs["piece_ids"][:, -1] != 0).numpy().any()  # Padded to the longest, not to an edge.


def test_batches_of_long_sentences_hold_at_most_max_pairs_word_pairs(corpus):
    vocab = corpus.build_vocabulary()
    lengths = sorted(len(x["tokens"]) for x in corpus.examples("train"))
    assert lengths[0] < 8 <= lengths[-1]
    # Sentences under 8 words: 98 // 7**2 = 2 a batch; longer ones (up to max_length 100): one a batch.
    batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=4, training=True, seed=1,
                                        bucket_boundaries=(8,), max_pairs=98))  # Its stated cardinality holds.
    sizes = sorted((int(x["token_ids"].shape[1]) < 8, int(x["token_ids"].shape[0])) for x, _ in batches)
    short = sum(n < 8 for n in lengths)
    expected = [(False, 1)] * (len(lengths) - short) + [(True, 1)] * (short % 2) + [(True, 2)] * (short // 2)
    assert sizes == expected
    assert [numpy_batches.bucket_batch_size(50, n, 80_000) for n in (39, 47, 63, 100)] == [50, 36, 20, 8]
    assert numpy_batches.bucket_batch_size(50, 100, None) == 50


def test_eval_order_and_targets_match_the_examples(corpus):
    vocab = corpus.build_vocabulary()
    (inputs, targets), *_ = dataset.make_dataset(corpus, "train", vocab, batch_size=6)
    sentences = [[t.decode() for t in x["tokens"]] for x in corpus.examples("train")]
    index = next(i for i, tokens in enumerate(sentences) if "Mattarella" in tokens)
    tokens = sentences[index]
    tags = "".join(TAGS[t] for t in targets["entity_tags"].numpy()[index][: len(tokens)])
    assert tags[tokens.index("Sergio") : tokens.index("Mattarella") + 1] == "BE"
    rel = targets["relations"].numpy()[index]
    leader = vocab.relations.index("leaderName")
    assert rel[tokens.index("Italy"), tokens.index("Mattarella"), leader] == 1
    assert (rel == 1).sum() == 2


def test_indexed_batches_are_bucketed_and_cover_the_split_once(corpus):
    vocab = corpus.build_vocabulary()
    batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=6, with_index=True,
                                         bucket_boundaries=(8,)))
    lengths = [len(x["tokens"]) for x in corpus.examples("train")]
    assert len(batches) == 1 + any(n >= 8 for n in lengths) and any(n < 8 for n in lengths)
    seen = []
    for inputs, targets in batches:
        real = (inputs["token_ids"].numpy() != 0).sum(axis=1)
        indices = targets["index"].numpy().tolist()
        assert real.tolist() == [lengths[i] for i in indices]  # each row is the sentence its index names
        seen += indices
    assert sorted(seen) == list(range(len(lengths)))


def test_truncation_drops_triples_and_counts(corpus, caplog):
    vocab = corpus.build_vocabulary()
    with caplog.at_level("WARNING"):
        batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=6, max_length=5))
    assert "dropped" in caplog.text
    inputs, targets = batches[0]
    assert inputs["token_ids"].shape[1] == 5
    sentences = [[t.decode() for t in x["tokens"]] for x in corpus.examples("train")]
    index = next(i for i, tokens in enumerate(sentences) if "Mattarella" in tokens)
    # "Rome is the capital of Italy ...": Italy is token 5, so both triples fall outside.
    assert (targets["relations"].numpy()[index] == 1).sum() == 0


def test_empty_sentence_is_kept_for_evaluation_and_dropped_for_training(corpus):
    vocab = corpus.build_vocabulary()
    (inputs, _), = list(dataset.make_dataset(corpus, "test", vocab, batch_size=4))
    lengths = sorted((inputs["token_ids"].numpy() != 0).sum(axis=1))
    assert lengths[0] == 0 and lengths[1] > 0  # the empty sentence is there, all padding
    train = list(dataset.make_dataset(corpus, "test", vocab, batch_size=4, training=True))
    assert sum(int(x["token_ids"].shape[0]) for x, _ in train) == 1


def test_missing_split_names_the_file(tmp_path):
    with testing.dummy_checksums("nyt"):
        corpus = Corpus.prepare("nyt", "partial", str(tmp_path), testing.dummy_dir("nyt"))
    with pytest.raises(FileNotFoundError, match="nyt_star/train_triples.json"):
        corpus.raw("train")
    with pytest.raises(ValueError, match="no 'heldout_categories' split; its splits: validation, test"):
        corpus.raw("heldout_categories")
    # Training checks its splits before building anything; a split already prepared needs no file.
    with pytest.raises(FileNotFoundError, match="nyt/exact/.* no 'train' split: .*nyt/train_triples.json is missing"):
        Corpus.check_splits("nyt", "exact", ("train", "validation"), str(tmp_path / "fresh"), testing.dummy_dir("nyt"))
    assert not (tmp_path / "fresh").exists()
    Corpus.check_splits("nyt", "exact", ("validation", "test"), str(tmp_path / "fresh"), testing.dummy_dir("nyt"))
    Corpus.check_splits("nyt", "partial", ("validation", "test"), str(tmp_path), str(tmp_path / "no_files"))


def test_numpy_batches_equal_the_pipelines(corpus):
    """rin_keras.data.numpy_batches (for hosts without TensorFlow) batches as the tf.data pipeline does."""
    vocab = corpus.build_vocabulary()
    featurizer = WordIds(vocab)
    encoded = list(dataset.encode_split(corpus, "train", featurizer, 100).as_numpy_iterator())
    examples = numpy_batches.unpack(numpy_batches.pack(encoded, "train"), "train")
    assert [x["token_ids"].tolist() for x in examples] == [x["token_ids"].tolist() for x in encoded]
    batches = dataset.pad_and_batch(dataset.encode_split(corpus, "train", featurizer, 100), featurizer,
                                    len(encoded), 100, None)
    inputs, targets = next(iter(batches.map(dataset.inputs_and_targets(("token_ids",), vocab.num_relations))))
    width = int(inputs["token_ids"].shape[1])
    mine_inputs, mine_targets = numpy_batches.pad_batch(examples, width, vocab.num_relations, dataset.IGNORE)
    np.testing.assert_array_equal(mine_inputs["token_ids"], inputs["token_ids"])
    for name in ("entity_tags", "relations"):
        np.testing.assert_array_equal(mine_targets[name], targets[name])
    edges = numpy_batches.bucket_edges(dataset.DEFAULT_BUCKET_BOUNDARIES, [x["length"] for x in examples])
    assert edges[-1] == max(x["length"] for x in examples) + 1 and set(edges[:-1]) <= set(dataset.DEFAULT_BUCKET_BOUNDARIES)
    groups = numpy_batches.group_by_edge(examples, edges)
    assert sum(map(len, groups.values())) == len(examples)
    assert all(x["length"] < edge and (edge == edges[0] or x["length"] >= edges[edges.index(edge) - 1])
               for edge, members in groups.items() for x in members)


@pytest.mark.parametrize("max_pairs", [None, 98])
def test_data_parallel_workers_share_every_batch_but_a_buckets_last_few(corpus, max_pairs):
    vocab = corpus.build_vocabulary()
    size = sum(1 for x in corpus.examples("train") if len(x["tokens"]))
    seen = []
    for index in range(3):  # 3 workers, batches of 5 (capped to 2 or 1 in the long bucket): sizes become 3s.
        batches = list(dataset.make_dataset(corpus, "train", vocab, batch_size=5, training=True, seed=1,
                                            bucket_boundaries=(8,), max_pairs=max_pairs, with_index=True,
                                            num_shards=3, shard_index=index))  # The stated cardinality holds.
        seen.extend(i for _, y in batches for i in y["index"].numpy().tolist())
    assert len(seen) == len(set(seen))  # No sentence twice.
    assert size - len(seen) <= 2 * 2  # At most num_shards - 1 of each bucket's last batch sit the epoch out.


def test_a_webnlg3_test_folder_without_the_files_with_references_is_built_once(tmp_path):
    """`en/test/` kept without its `*-with-refs-en.xml` files (as published for the challenge): no test split, and
    no rebuild on every use to add one."""
    manual = tmp_path / "manual"
    shutil.copytree(testing.dummy_dir("webnlg3"), manual)
    for path in (manual / "webnlg3" / "en" / "test").iterdir():
        path.rename(path.with_name(path.name.replace("-with-refs", "-without-refs")))
    with mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare", autospec=True,
                           side_effect=tfds.core.DatasetBuilder.download_and_prepare) as build:
        for _ in range(2):
            assert Corpus.prepare("webnlg3", "exact", str(tmp_path / "tfds"), str(manual)).splits == [
                "train", "validation"]
    assert build.call_count == 2  # Once for each prepare: the first builds, the second finds it built.
    with pytest.raises(FileNotFoundError,
                       match=r"no .test. split: .*semantic-parsing-test-data-with-refs-en\.xml is missing"):
        Corpus.prepare("webnlg3", "exact", str(tmp_path / "tfds"), str(manual)).raw("test")


def test_a_limit_beyond_the_split_reads_all_of_it(corpus):
    count = len(corpus.examples("train"))
    assert len(list(corpus.raw("train", count + 1000))) == count and len(list(corpus.raw("train", 2))) == 2
