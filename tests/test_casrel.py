"""The CasRel reader: entity location, bad records, missing and corrupt files."""

import json
import shutil

import pytest
import tensorflow_datasets as tfds

from tfds_builders import casrel, testing


def test_first_occurrence_outside_longer_names_is_taken_and_unfound_triples_dropped():
    record = {"text": "A B A C", "triple_list": [["A", "r", "C"], ["A B", "r", "Z"]]}
    example, counts = casrel.to_example(record, {"r"}, "train_7")
    assert example["triples"] == [{"subject": {"start": 0, "end": 1, "head": 0}, "relation": "r",
                                   "object": {"start": 3, "end": 4, "head": 3}}]
    assert (counts["ambiguous"], counts["not_found"], counts["triples"]) == (1, 1, 1)
    # The first `Cesena` is the last word of the subject: the object is the second, whose tags can mark both.
    record = {"text": "A.C. Cesena ground is in Cesena", "triple_list": [["A.C. Cesena", "ground", "Cesena"]]}
    example, counts = casrel.to_example(record, {"ground"}, "train_8")
    assert [(t["subject"]["start"], t["subject"]["end"], t["object"]["start"], t["object"]["end"])
            for t in example["triples"]] == [(0, 2, 5, 6)]
    assert counts["ambiguous"] == 1


def test_mis_decodings_that_ftfy_leaves_are_repaired_and_real_words_kept():
    # From WebNLG*'s files; WebNLG's exact texts write them repaired.
    assert [casrel.repair_word(w) for w in ("Davuto\u00c4\u0178lu", "Qaraba\u00c4\u0178", "\u00c5\u017eehitleri",
                                            "A.\u00c5\u017e", "Su\u00c3\u00a1rez")] == [
        "Davuto\u011flu", "Qaraba\u011f", "\u015eehitleri", "A.\u015e", "Su\u00e1rez"]
    real = ["Su\u00e1rez", "Pe\u015f\u0259kar", "caf\u00e9", "\u00c3", "\u00a9\u00ae", "Z\u00fcrich\u2122", "\u00e9t\u00e9"]
    assert [casrel.repair_word(w) for w in real] == real
    record = {"text": "Ahmet Davuto\u00c4\u0178lu was born in Konya", "triple_list": [
        ["Ahmet Davuto\u00c4\u0178lu", "birthPlace", "Konya"]]}
    example, counts = casrel.to_example(record, {"birthPlace"}, "train_0")
    assert example["tokens"][:2] == ["Ahmet", "Davuto\u011flu"] and counts["repaired_words"] == 1
    assert [(t["subject"]["start"], t["subject"]["end"]) for t in example["triples"]] == [(0, 2)]
    # Raw text keeps its whitespace as written.
    assert casrel.repair_text(" Ahmet\u00a0 Davuto\u00c4\u0178lu\t(Su\u00c3\u00a1rez)\n") == (
        " Ahmet\u00a0 Davuto\u011flu\t(Su\u00e1rez)\n")


def test_unknown_relation_names_the_example():
    with pytest.raises(ValueError, match="train_7.*'nope'"):
        casrel.to_example({"text": "a b", "triple_list": [["a", "nope", "b"]]}, {"r"}, "train_7")


def test_parse_relation_names_reads_both_layouts():
    assert casrel.parse_relation_names([{"0": "x", "1": "y"}, {"x": 0, "y": 1}]) == ["x", "y"]
    assert casrel.parse_relation_names([{"y": 1, "x": 0}]) == ["x", "y"]
    with pytest.raises(ValueError):
        casrel.parse_relation_names([{"x": 0, "y": 2}])


@pytest.fixture
def manual_copy(tmp_path):
    target = tmp_path / "manual"
    shutil.copytree(testing.dummy_dir("webnlg"), target)
    return target


def _build(manual_dir, data_dir):
    builder = tfds.builder("webnlg/partial", data_dir=str(data_dir))
    with testing.dummy_checksums("webnlg"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))


def test_missing_file_is_named(manual_copy, tmp_path):
    (manual_copy / "webnlg_star" / "train_triples.json").unlink()
    with pytest.raises(FileNotFoundError, match="webnlg_star/train_triples.json"):
        _build(manual_copy, tmp_path / "tfds")


def test_corrupt_file_is_named(manual_copy, tmp_path):
    path = manual_copy / "webnlg_star" / "val_triples.json"
    records = json.loads(path.read_text())
    records[0]["text"] += " !"
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError, match="Corrupt .*val_triples.json"):
        _build(manual_copy, tmp_path / "tfds")
