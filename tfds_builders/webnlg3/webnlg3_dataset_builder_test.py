"""Tests of the webnlg3 builder on its dummy data (the release's XML schema, train, dev and test files)."""

import os

import pytest
import tensorflow_datasets as tfds

from tfds_builders.webnlg3 import webnlg3_dataset_builder

DUMMY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dummy_data")


class Webnlg3Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = webnlg3_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["exact", "partial"]
    SPLITS = {"train": 5, "validation": 4, "test": 1}
    SKIP_CHECKSUMS = True


class Webnlg3HeldoutTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = webnlg3_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["exact_heldout"]
    SPLITS = {"train": 2, "validation": 1, "test": 1, "heldout_categories": 3, "heldout_entities": 3}
    SKIP_CHECKSUMS = True


def _examples(tmp_path, config):
    builder = webnlg3_dataset_builder.Builder(config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=DUMMY))
    names = builder.info.features["triples"]["relation"].names
    result = {}
    for split in builder.info.splits:
        for x in tfds.as_numpy(builder.as_dataset(split=split)):
            tokens = [t.decode() for t in x["tokens"]]
            triples = [(" ".join(tokens[s:e]), names[r], " ".join(tokens[os_:oe])) for s, e, r, os_, oe in zip(
                x["triples"]["subject"]["start"], x["triples"]["subject"]["end"], x["triples"]["relation"],
                x["triples"]["object"]["start"], x["triples"]["object"]["end"])]
            result.setdefault(split, {})[x["text"].decode()] = (x["category"].decode(), sorted(triples))
    return result


def test_entities_are_located_in_the_raw_text_and_unlocatable_triples_dropped(tmp_path):
    exact = _examples(tmp_path, "exact")
    assert exact["train"]["Alan Bean was born on March 15, 1932."][1] == [("Alan Bean", "birthDate", "March 15 , 1932")]
    assert exact["train"]["Aaron S. Daggett was a member of the Republican Party."][1] == [
        ("Aaron S. Daggett", "party", "Republican Party")]
    airport = [text for text in exact["train"] if text.startswith("The runway")][0]
    assert exact["train"][airport][1] == [("Aarhus Airport", "runwayLength", "2776")]  # The leader is not there.
    assert exact["validation"]["Granola is an ingredient of Bionico."][1] == [("Bionico", "mainIngredient", "Granola")]
    assert exact["test"]["Marie Curie was a scientist from Poland."][0] == "Scientist"
    partial = _examples(tmp_path, "partial")
    assert partial["train"]["Alan Bean was born on March 15, 1932."][1] == [("Bean", "birthDate", "1932")]


def test_heldout_categories_never_reach_train_or_validation(tmp_path):
    heldout = _examples(tmp_path, "exact_heldout")
    for split in ("train", "validation"):
        assert not {category for category, _ in heldout[split].values()} & set(
            webnlg3_dataset_builder.HELDOUT_CATEGORIES)
    assert {category for category, _ in heldout["heldout_categories"].values()} == {"Politician", "Artist"}
    # Alan_Bean and Bionico_(dessert) fall in the 1-in-20 draw of held-out subjects: no train text names them.
    unseen = {triples[0][0] for _, triples in heldout["heldout_entities"].values()}
    assert unseen == {"Alan Bean", "Bionico"}
    trained = {name for _, triples in heldout["train"].values() for s, _, o in triples for name in (s, o)}
    assert not unseen & trained


def test_a_corrupt_release_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(webnlg3_dataset_builder.Builder, "_expected_checksums",
                        lambda self: {"train/1triples/Astronaut_sample.xml": "0" * 64})
    with pytest.raises(ValueError, match="Corrupt"):
        _examples(tmp_path, "exact")
