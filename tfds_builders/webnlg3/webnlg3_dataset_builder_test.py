"""Tests of the webnlg3 builder on its dummy data (the release's XML schema, train, dev and test files)."""

import hashlib
import os
import pathlib
import re
import shutil
from unittest import mock

import pytest
import tensorflow_datasets as tfds

from tfds_builders import casrel
from tfds_builders.webnlg3 import locating, webnlg3_dataset_builder

DUMMY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dummy_data")


class Webnlg3Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = webnlg3_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["exact", "partial"]
    SPLITS = {"train": 5, "validation": 4, "test": 2}  # The test file's empty text is left out.
    SKIP_CHECKSUMS = True


class Webnlg3HeldoutTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = webnlg3_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["exact_heldout"]
    SPLITS = {"train": 2, "validation": 1, "test": 2, "heldout_categories": 3, "heldout_entities": 3}
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


def test_the_official_test_set_stays_whole_in_the_heldout_configs(tmp_path):
    test = _examples(tmp_path, "exact_heldout")["test"]
    assert sorted(category for category, _ in test.values()) == ["Politician", "Scientist"]


def _release_copy(tmp_path, monkeypatch):
    """A copy of the dummy release whose train and dev files are the ones the checksums list."""
    release = tmp_path / "manual"
    shutil.copytree(DUMMY, release)
    en = release / "webnlg3" / "en"
    listed = {str(p.relative_to(en)): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in en.glob("*/*triples/*.xml")}
    monkeypatch.setattr(webnlg3_dataset_builder.Builder, "_expected_checksums", lambda self: listed)
    return release, en


def _build(manual, data_dir, config="exact"):
    builder = webnlg3_dataset_builder.Builder(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return builder


def test_a_release_copy_cut_short_or_with_a_stray_file_is_refused(tmp_path, monkeypatch):
    release, en = _release_copy(tmp_path, monkeypatch)
    assert _build(release, tmp_path / "whole").info.splits["train"].num_examples == 5
    stray = en / "train" / "1triples" / "Astronaut_sample (copy).xml"
    shutil.copy(en / "train" / "1triples" / "Astronaut_sample.xml", stray)
    with pytest.raises(ValueError, match=r"not the release's split as published \(not in the release: "
                                         r"train/1triples/Astronaut_sample \(copy\).xml\)"):
        _build(release, tmp_path / "stray")
    stray.unlink()
    (en / "dev" / "1triples" / "Food_sample.xml").unlink()
    with pytest.raises(ValueError, match=r"\(missing dev/1triples/Food_sample.xml\)"):
        _build(release, tmp_path / "short")
    assert not (tmp_path / "short" / "webnlg3" / "exact").exists() or not any(
        (tmp_path / "short" / "webnlg3" / "exact").glob("*/dataset_info.json"))


def test_texts_holding_xml_elements_are_refused(tmp_path, monkeypatch):
    release, en = _release_copy(tmp_path, monkeypatch)
    path = en / "train" / "1triples" / "Astronaut_sample.xml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"<lex ([^>]*)>([^<]*)</lex>", r"<lex \1><text>\2</text></lex>", text, count=1),
                    encoding="utf-8")
    with pytest.raises(ValueError, match="holds XML elements \\(<text>\\), where WebNLG 3.0 has plain text"):
        locating.read_entries(path)


def test_a_corrupt_release_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(webnlg3_dataset_builder.Builder, "_expected_checksums",
                        lambda self: {"train/1triples/Astronaut_sample.xml": "0" * 64})
    with pytest.raises(ValueError, match="Corrupt"):
        _examples(tmp_path, "exact")


@pytest.mark.parametrize("change, message", [
    (lambda text: text[:300], r"Astronaut_sample\.xml: not well-formed XML"),
    (lambda text: re.sub(r"(<mtriple>[^|<]*) \| ", r"\1 || ", text, count=1),
     r"Astronaut_sample\.xml: entry Id\d+: the triple .* is not written `subject \| relation \| object`"),
    (lambda text: re.sub(r' size="\d+"', "", text, count=1), r"Astronaut_sample\.xml: entry Id\d+ has no category or "
                                                            r"no size"),
    (lambda text: "<dataset><item>Alan Bean</item></dataset>", r"Astronaut_sample\.xml holds no <entry>"),
])
def test_a_file_that_is_not_webnlg3_xml_is_named(tmp_path, change, message):
    path = tmp_path / "Astronaut_sample.xml"
    path.write_text(change((pathlib.Path(DUMMY) / "webnlg3/en/train/1triples/Astronaut_sample.xml").read_text(
        encoding="utf-8")), encoding="utf-8")
    with pytest.raises(casrel.DataError, match=message):
        locating.read_entries(path)


def test_texts_in_another_language_are_left_out_and_counted(tmp_path):
    path = tmp_path / "Airport.xml"
    text = (pathlib.Path(DUMMY) / "webnlg3/en/test/semantic-parsing-test-data-with-refs-en.xml").read_text(
        encoding="utf-8")
    path.write_text(text.replace('<lex lid="Id1" lang="en">Marie', '<lex lid="Id9" lang="ru">Мария</lex>\n'
                                 '      <lex lid="Id1" lang="en">Marie'), encoding="utf-8")
    with mock.patch.object(locating.logging, "warning") as warning:
        entries = locating.read_entries(path)
    assert [lid for lid, _ in entries[0].lexes] == ["Id1"]
    assert warning.call_args.args[0] % warning.call_args.args[1:] == f"{path}: 1 texts in another language than " \
                                                                      "English left out."


def test_test_triples_of_relations_outside_the_release_are_counted_in_a_warning(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    test = manual / "webnlg3" / "en" / "test" / webnlg3_dataset_builder.TEST_FILES[0]
    test.write_text(test.read_text(encoding="utf-8").replace(
        "<mtriple>Marie_Curie | nationality | Poland</mtriple>",
        "<mtriple>Marie_Curie | nationality | Poland</mtriple><mtriple>Marie_Curie | knownForX | Radium</mtriple>"),
        encoding="utf-8")
    with mock.patch.object(webnlg3_dataset_builder.logging, "warning") as warning:
        _build(manual, tmp_path / "tfds")
    messages = [call.args[0] % call.args[1:] for call in warning.call_args_list]
    assert "webnlg3/exact/test: 1 triples of relations outside relations.txt left out of the split's gold" in \
        "\n".join(messages)
