"""A user's own folder: the casrel_folder builder, its error messages, and train/evaluate/predict on it."""

import json
import logging
import os
import shutil
import subprocess
import sys

import keras
import pytest
from absl.testing import flagsaver

from rin_keras import RINConfig, RINTripleExtractor, train
from rin_keras.data.corpus import Corpus
from rin_keras.data.tokenizer import tokenize
from rin_keras.evaluate import evaluate_folder
from tfds_builders import casrel
from tfds_builders.casrel_folder import casrel_folder_dataset_builder

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "custom_jsonl")
TINY = dict(word_dim=8, lstm_units=4, hidden_dim=8, rounds=1, batch_size=4, epochs=1, pretrained_dim=0)


def _jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _casrel_copy(directory):
    """Writes the example folder in the CasRel flavour: tokenised texts and entities in JSON arrays."""
    os.makedirs(directory)
    for split, name in casrel.JSONL_SPLIT_FILES.items():
        records = [{"text": " ".join(tokenize(r["text"])),
                    "triple_list": [[" ".join(tokenize(s)), p, " ".join(tokenize(o))] for s, p, o in r["triple_list"]]}
                   for r in _jsonl(os.path.join(EXAMPLE, name))]
        with open(os.path.join(directory, casrel.SPLIT_FILES[split]), "w", encoding="utf-8") as f:
            json.dump(records, f, indent=2)
    return str(directory)


def _folder(tmp_path, files):
    """Writes a folder of `{name: text or bytes}` beside a copy of the example's val/test; returns its path."""
    directory = tmp_path / "mine"
    shutil.copytree(EXAMPLE, directory)
    for name, text in files.items():
        (directory / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(directory)


def _example_text(name):
    with open(os.path.join(EXAMPLE, name), encoding="utf-8") as f:
        return f.read()


def _prepare(directory, tmp_path):
    return Corpus.from_folder(directory, str(tmp_path / "tfds"))


def test_jsonl_folder_is_tokenised_and_its_entities_located(tmp_path):
    corpus = _prepare(EXAMPLE, tmp_path)
    assert corpus.relation_names == ["birthPlace", "capital", "workPlace"]  # From train, sorted.
    assert [corpus.builder.info.splits[s].num_examples for s in ("train", "validation", "test")] == [6, 2, 2]
    first = next(x for x in corpus.examples("train") if x["tokens"][0] == b"Alan")
    assert [t.decode() for t in first["tokens"]] == tokenize("Alan Bean was born in Wheeler, Texas.")
    triples = first["triples"]
    assert (triples["subject"]["start"][0], triples["subject"]["end"][0]) == (0, 2)  # Alan Bean
    assert (triples["object"]["start"][0], triples["object"]["end"][0]) == (5, 8)  # Wheeler , Texas


def test_casrel_flavour_builds_the_same_examples(tmp_path):
    jsonl = _prepare(EXAMPLE, tmp_path)
    tokenised = _prepare(_casrel_copy(tmp_path / "casrel"), tmp_path)
    assert tokenised.builder.builder_config.split_files["train"] == "train_triples.json"
    for split, size in (("train", 6), ("validation", 2), ("test", 2)):
        assert len(jsonl.examples(split)) == len(tokenised.examples(split)) == size
        key = lambda x: tuple(x["tokens"])  # noqa: E731  (TFDS shuffles the stored order)
        for a, b in zip(sorted(jsonl.examples(split), key=key), sorted(tokenised.examples(split), key=key)):
            assert a["tokens"].tolist() == b["tokens"].tolist()
            for part in ("subject", "object"):
                assert a["triples"][part]["start"].tolist() == b["triples"][part]["start"].tolist()
                assert a["triples"][part]["end"].tolist() == b["triples"][part]["end"].tolist()
            assert a["triples"]["relation"].tolist() == b["triples"]["relation"].tolist()


def test_rel2id_sets_the_relations_and_an_edit_rebuilds(tmp_path):
    directory = _folder(tmp_path, {"rel2id.json": json.dumps([{"0": "workPlace", "1": "capital", "2": "birthPlace"}])})
    config = casrel_folder_dataset_builder.folder_config(directory)
    assert config.relations == ("workPlace", "capital", "birthPlace")
    with open(os.path.join(directory, "test.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "Berlin is the capital of Germany.",
                            "triple_list": [["Germany", "capital", "Berlin"]]}) + "\n")
    edited = casrel_folder_dataset_builder.folder_config(directory)
    assert edited.name != config.name and edited.name.startswith("mine_")


def test_what_is_left_out_is_counted(tmp_path, caplog):
    lines = _jsonl(os.path.join(EXAMPLE, "train.jsonl"))
    lines[0]["triple_list"] *= 2  # The same triple twice.
    lines.append({"text": "   ", "triple_list": []})
    lines[2]["triple_list"][0][2] = "Warsaw."  # Copied with the sentence's period.
    lines[0]["triple_list"].append(["Wheeler, Texas", "capital", "Texas"])  # Nested: the tags hold one of them.
    directory = _folder(tmp_path, {"train.jsonl": "\n".join(json.dumps(r) for r in lines) + "\n"})
    with caplog.at_level(logging.WARNING):
        corpus = _prepare(directory, tmp_path)
    assert corpus.builder.info.splits["train"].num_examples == 6
    assert "1 empty sentences left out, 1 repeated triples kept once" in caplog.text
    assert "1 entities written with the punctuation after them" in caplog.text
    assert "2 entities that overlap another of their sentence" in caplog.text
    poland = next(x for x in corpus.examples("train") if x["tokens"][-2] == b"Warsaw")
    assert (poland["triples"]["object"]["start"][0], poland["triples"]["object"]["end"][0]) == (5, 6)  # Warsaw


def _located(text: str, *triples) -> list[tuple[str, str, str]]:
    """The triples of a raw-text record as `folder_example` places them: `(subject@start, relation, object@start)`."""
    example, _ = casrel.folder_example({"text": text, "triple_list": [list(t) for t in triples]},
                                       {t[1] for t in triples}, "train.jsonl:1", pretokenized=False)
    words = example["tokens"]

    def name(span):
        return " ".join(words[span["start"]:span["end"]]) + f"@{span['start']}"

    return [(name(t["subject"]), t["relation"], name(t["object"])) for t in example["triples"]]


def test_an_entity_is_placed_outside_another_entitys_longer_name_where_it_stands_alone():
    assert _located("Paris Hilton was born in Paris.", ("Paris Hilton", "birthPlace", "Paris")) == [
        ("Paris Hilton@0", "birthPlace", "Paris@5")]
    assert _located("He left New York City for New York state.", ("New York City", "partOf", "New York")) == [
        ("New York City@2", "partOf", "New York@6")]
    # An entity written with the sentence's period is no longer name of the same entity.
    assert _located("Paris Hilton was born in Paris.", ("Paris Hilton", "birthPlace", "Paris."),
                    ("Paris Hilton", "birthPlace", "Paris")) == [("Paris Hilton@0", "birthPlace", "Paris@5")]
    # With an ellipsis after it, in three periods or one character.
    for ellipsis in ("...", "\u2026"):
        assert _located(f"He was born in Texas{ellipsis}", ("He", "birthPlace", f"Texas{ellipsis}")) == [
            ("He@0", "birthPlace", "Texas@4")]
    # Inside the longer name only: placed there.
    assert _located("Paris Hilton is named after Paris Hilton.", ("Paris Hilton", "namedAfter", "Paris")) == [
        ("Paris Hilton@0", "namedAfter", "Paris@0")]


def test_a_triple_written_twice_in_other_spellings_is_kept_once():
    assert _located("Zoë was born in Paris.", ("Zoë", "birthPlace", "Paris"), ("Zoe\u0308", "birthPlace", "Paris."),
                    ("Zoë", "birthPlace", "Paris")) == [("Zoë@0", "birthPlace", "Paris@4")]


@pytest.mark.parametrize("files,message", [
    ({"train.jsonl": '{"text": "He was born in \'Paris\'.", "triple_list": [["He", "birthPlace", "Paris"]]}\n'},
     "the object 'Paris' of ['He', 'birthPlace', 'Paris'] is in the text only as part of \"'Paris\": an entity is "
     "whole tokens (a straight quote that opens a word stays on it"),
    ({"train.jsonl": '{"text": "A b.", "triple_list": []}\n{"text": "C d.", "triple_list": [}\n'},
     "train.jsonl:2:"),
    ({"train.jsonl": '{"text": "A b.", "triple_list": []}\n["no object"]\n'},
     "train.jsonl:2: a record must be a JSON object"),
    ({"train.jsonl": '{"sentence": "A b.", "triple_list": []}\n'}, 'train.jsonl:1: the record has no "text" string'),
    ({"train.jsonl": '{"text": "A b.", "triple_list": [["A", "capital"]]}\n'},
     "train.jsonl:1: a triple must be [subject, relation, object] strings"),
    ({"train.jsonl": '{"text": "Paris is in France.", "triple_list": []}\n'
                     '{"text": "Paris is in France.", "triple_list": [["Lyon", "capital", "France"]]}\n'},
     "train.jsonl:2: the subject 'Lyon' of ['Lyon', 'capital', 'France'] is not in the text"),
    ({"train.jsonl": '{"text": "O\u2019Brien was born in Dublin.", "triple_list": [["O\'Brien", "birthPlace", '
                     '"Dublin"]]}\n'},
     "train.jsonl:1: the subject \"O'Brien\" of [\"O'Brien\", 'birthPlace', 'Dublin'] is not in the text as written: "
     "the text has other quote marks in it (\u2019 for ', \u201c for \"); write the entity as the text does."),
    ({"val.jsonl": '{"text": "Bonn is in Germany.", "triple_list": [["Bonn", "cityOf", "Germany"]]}\n'},
     "val.jsonl:1: relation 'cityOf' is not one of the folder's relations (rel2id.json, or those of the train split "
     "when the folder has none): birthPlace, capital, workPlace."),
    ({"train.jsonl": '{"text": "Paris is in France.", "triple_list": [["Paris", "capital\\nof", "France"]]}\n'},
     "train.jsonl:1: the relation name 'capital\\nof' holds a line break: write it on one line."),
    ({"rel2id.json": '{"birthPlace": 0, "capital\\u2028of": 1, "workPlace": 2}'},
     "rel2id.json: the relation name 'capital\\u2028of' holds a line break"),
    ({"train.jsonl": '{"text": "The Paris-born painter.", "triple_list": [["Paris", "capital", "painter"]]}\n'},
     "train.jsonl:1: the subject 'Paris' of ['Paris', 'capital', 'painter'] is in the text only as part of "
     "'Paris-born': an entity is whole tokens"),
    ({"val.jsonl": '{"text": "Bonn is in Germany.", "triple_list": []}\n'},
     "val.jsonl: the validation split states no triple, so it scores nothing and cannot choose the epoch"),
    ({"test.jsonl": "\n"}, "test.jsonl: the test split has no sentences"),
    ({"test.jsonl": '{"text": "", "triple_list": []}\n{"text": " \u200b ", "triple_list": []}\n'},
     "test.jsonl: the test split has no sentences"),
    ({"train.jsonl": _example_text("train.jsonl").replace("Alan", "Al\u00e1n").encode("latin-1")},
     "train.jsonl:1: the byte at offset 12 (0xe1) is not UTF-8: save the file as UTF-8."),
    ({"train.jsonl": _example_text("train.jsonl").encode("utf-16")},
     "train.jsonl:1: the byte at offset 0 (0xff) is not UTF-8"),
    ({"rel2id.json": '["birthPlace", "capital", "workPlace"]'},
     "rel2id.json: 'birthPlace' is not a map of relation names and their ids: write [{\"0\": \"birthPlace\""),
    ({"rel2id.json": '{"birthPlace": "0", "capital": "1", "workPlace": "2"}'},
     "rel2id.json: 'birthPlace': '0' is neither a name and its integer id nor an id and its name: write"),
    ({"rel2id.json": '{"birthPlace": [0], "capital": 1, "workPlace": 2}'},
     "rel2id.json: 'birthPlace': [0] is neither a name and its integer id"),
    ({"rel2id.json": '{"birthPlace": 0, "birthPlace ": 1, "workPlace": 2}'},
     "rel2id.json names 'birthPlace' more than once"),
    ({"val_triples.json": "[]"}, "holds split 'validation' twice"),
    ({"train_triples.json": '[\n  {"text": "A b .", "triple_list": []},\n  {"text": 3}\n]'},
     'train_triples.json:3: the record has no "text" string'),
    ({"train_triples.json": '[\n  {"text": "Alan Bean was born in Wheeler, Texas.",\n'
                            '   "triple_list": [["Alan Bean", "birthPlace", "Texas"]]}\n]'},
     "train_triples.json:2: the object 'Texas' of ['Alan Bean', 'birthPlace', 'Texas'] is not in the text "
     "(a .json split holds tokenised text"),
])
def test_bad_input_names_file_and_line(tmp_path, files, message):
    directory = _folder(tmp_path, files)
    if any(name.startswith("train_") for name in files):
        os.remove(os.path.join(directory, "train.jsonl"))
    with pytest.raises(casrel.DataError) as error:
        _prepare(directory, tmp_path)
    assert message in str(error.value)


def test_records_on_one_line_are_told_apart_and_keys_of_one_a_line_are_kept(tmp_path):
    directory = _casrel_copy(tmp_path / "casrel")
    path = os.path.join(directory, "train_triples.json")
    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    builder = casrel_folder_dataset_builder.folder_builder(directory, str(tmp_path / "tfds"))
    assert [key for key, _ in builder._read_split(path, "train")] == [f"train_{line}" for line in range(2, 8)]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f)  # All on one line.
    keys = [key for key, _ in builder._read_split(path, "train")]
    assert len(set(keys)) == 6 and keys[0] == "train_1_2"
    assert _prepare(directory, tmp_path).builder.info.splits["train"].num_examples == 6
    records[3]["text"] = 3
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f)
    column = casrel.read_text(path).index(json.dumps(records[3])) + 1
    with pytest.raises(casrel.DataError, match=f'train_triples.json:1:{column}: the record has no "text" string'):
        _prepare(directory, tmp_path)


def test_json_lines_may_hold_unicode_line_separators_in_strings(tmp_path):
    text = "Alan Bean\u2028was born\u2029in\x85Wheeler, Texas."
    line = json.dumps({"text": text, "triple_list": [["Alan Bean", "birthPlace", "Wheeler, Texas"]]},
                      ensure_ascii=False)
    directory = _folder(tmp_path, {"train.jsonl": (_example_text("train.jsonl") + line + "\n\n{").replace("\n", "\r\n")})
    with pytest.raises(casrel.DataError, match="train.jsonl:9:2: malformed JSON"):  # Lines counted at breaks only.
        _prepare(directory, tmp_path)
    records = casrel.read_records(os.path.join(_folder(tmp_path / "b", {"train.jsonl": line + "\n"}), "train.jsonl"))
    assert records == [(casrel.RecordPosition(1), json.loads(line))]
    old_mac = _folder(tmp_path / "c", {"train.jsonl": line + "\r" + line + "\r"})  # Lines that end in \r alone.
    assert casrel.read_records(os.path.join(old_mac, "train.jsonl")) == [
        (casrel.RecordPosition(1), json.loads(line)), (casrel.RecordPosition(2), json.loads(line))]


def test_rel2id_is_read_like_the_triples(tmp_path):
    relations = {"birthPlace ": 0, "capital": 1, "workPlace": 2}  # A space after a name.
    directory = _folder(tmp_path, {"rel2id.json": b"\xef\xbb\xbf" + json.dumps(relations).encode()})  # A BOM.
    assert _prepare(directory, tmp_path).relation_names == ["birthPlace", "capital", "workPlace"]
    with pytest.raises(casrel.DataError, match="is neither a name and its integer id"):
        casrel.parse_relation_names([{"²": "birthPlace"}])  # A digit that int() does not read.


def test_a_relation_repaired_by_ftfy_is_one_of_the_folders_relations(tmp_path):
    mojibake = "lieuDeTravail\u00c3\u00a9"  # lieuDeTravail\u00e9 mis-decoded as cp1252.
    directory = _folder(tmp_path, {name: _example_text(name).replace('"workPlace"', json.dumps(mojibake))
                                   for name in casrel.JSONL_SPLIT_FILES.values()})
    assert _prepare(directory, tmp_path).relation_names == ["birthPlace", "capital", "lieuDeTravail\u00e9"]


def test_a_raw_text_mis_decoded_where_ftfy_leaves_it_is_repaired():
    record = {"text": "Ahmet Davuto\u00c4\u0178lu was born in Konya.",
              "triple_list": [["Ahmet Davuto\u00c4\u0178lu", "birthPlace", "Konya"]]}
    example, counts = casrel.folder_example(record, {"birthPlace"}, "train.jsonl:1", pretokenized=False)
    assert example["tokens"][:2] == ["Ahmet", "Davuto\u011flu"] and counts["repaired"] == 1
    assert [(t["subject"]["start"], t["subject"]["end"]) for t in example["triples"]] == [(0, 2)]


def test_a_json_array_in_a_jsonl_file_is_named_as_such(tmp_path):
    records = [json.loads(line) for line in _example_text("train.jsonl").splitlines() if line.strip()]
    for text in (json.dumps(records), json.dumps(records, indent=2)):
        directory = _folder(tmp_path / str(len(text)), {"train.jsonl": text})
        with pytest.raises(casrel.DataError, match=r"train\.jsonl:1: a JSON array, where a \.jsonl file holds one "
                                                   r"record \(a JSON object\) a line"):
            _prepare(directory, tmp_path)


def test_half_of_a_utf16_pair_is_refused_with_its_line(tmp_path):
    line = json.dumps({"text": "Alan Bean \ud83d was born in Texas.", "triple_list": [["Alan Bean", "birthPlace", "Texas"]]})
    directory = _folder(tmp_path, {"train.jsonl": _example_text("train.jsonl") + line + "\n"})
    with pytest.raises(casrel.DataError, match=r"train\.jsonl:7: 'Alan Bean \\ud83d was born in Texas\.' holds "
                                               r"'\\ud83d', half of a character"):
        _prepare(directory, tmp_path)


def test_train_command_names_a_bad_line_without_a_traceback(tmp_path):
    directory = _folder(tmp_path, {"train.jsonl": '{"text": "A b.", "triple_list": []}\n{"text": "C d." }}\n'})
    run = subprocess.run(
        [sys.executable, "-m", "rin_keras.train", f"--dataset_dir={directory}", f"--model_dir={tmp_path / 'run'}",
         f"--tfds_data_dir={tmp_path / 'tfds'}", "--pretrained_vectors=none"],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(EXAMPLE))), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "rin_keras.train: " + os.path.join(directory, "train.jsonl") + ":2:" in run.stderr


def test_a_missing_split_of_a_folder_is_named_in_its_format(tmp_path):
    directory = _folder(tmp_path, {})
    os.remove(os.path.join(directory, "test.jsonl"))
    with pytest.raises(FileNotFoundError, match=r"test\.jsonl is missing\. Add the file there \(see docs/custom_data"):
        _prepare(directory, tmp_path).raw("test")


def test_a_folder_without_train_or_validation_is_refused(tmp_path):
    directory = _folder(tmp_path, {})
    os.remove(os.path.join(directory, "train.jsonl"))
    with pytest.raises(FileNotFoundError, match="has no train split: add train_triples.json"):
        _prepare(directory, tmp_path)
    directory = _folder(tmp_path / "b", {})
    os.remove(os.path.join(directory, "val.jsonl"))
    with pytest.raises(ValueError, match="no validation split, which selects the model"):
        train.train(RINConfig.for_dataset("custom", **TINY), str(tmp_path / "run"), dataset_dir=directory,
                    tfds_data_dir=str(tmp_path / "tfds"), word_vectors_source="random")


def test_cli_defaults_for_a_folder():
    train.define_flags() if "dataset" not in train.FLAGS else None
    with flagsaver.flagsaver():
        train.FLAGS.unparse_flags()  # Flags that other tests of this process parsed read as given.
        train.FLAGS(["prog", f"--dataset_dir={EXAMPLE}"])
        config = train.config_from_flags()
        assert (config.dataset, config.variant, config.rounds) == ("custom", "exact", 3)
        assert config == RINConfig.for_dataset("custom")  # Python's defaults for a folder are the command's.
        with flagsaver.flagsaver(variant="partial"):
            assert train.config_from_flags().variant == "partial"
        train.FLAGS(["prog", "--dataset=webnlg", f"--dataset_dir={EXAMPLE}"])
        with pytest.raises(SystemExit, match="give one of them"):
            train.config_from_flags()
        train.FLAGS.unparse_flags()
        train.FLAGS(["prog"])
        assert train.config_from_flags().variant == "partial"  # The benchmarks' protocol.


def test_a_folder_trains_evaluates_and_predicts(tmp_path):
    results = train.train(RINConfig.for_dataset("custom", variant="exact", **TINY), str(tmp_path / "run"),
                          dataset_dir=EXAMPLE, tfds_data_dir=str(tmp_path / "tfds"), word_vectors_source="random",
                          mixed_precision="mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"  # Set for the training only.
    assert results["test"]["exact"]["gold"] == 3 and results["validation"]["exact"]["gold"] == 3
    extractor = RINTripleExtractor.from_preset(str(tmp_path / "run"))
    assert extractor.config.dataset == "custom"
    assert extractor.relation_names == ["birthPlace", "capital", "workPlace"]
    # A folder of raw texts is scored on strings of the raw text; one of the CasRel flavour on tokenised strings.
    for directory, strings in ((EXAMPLE, "raw"), (_casrel_copy(tmp_path / "casrel"), "tokenised")):
        scores = evaluate_folder(extractor, directory)
        assert scores["split"] == "test" and scores["exact"]["gold"] == 3
        assert scores["strings"][strings]["gold"] == 3
    extractor.threshold = 0.0  # Every pair: the spans of an untrained model still point into the text.
    text = "Enrico Fermi, born in Rome, worked in Chicago."
    triples = extractor.predict([text])[0]
    assert triples and all(text[slice(*t[f"{role}_char_span"])] == t[role]
                           for t in triples for role in ("subject", "object"))


def test_the_guides_model_fit_example_trains_predicts_and_saves(tmp_path, monkeypatch):
    with open(os.path.join(EXAMPLE, "..", "..", "..", "docs", "custom_data.md"), encoding="utf-8") as f:
        blocks = f.read().split("```python\n")[1:]
    example = next(block.split("```")[0] for block in blocks if "model.fit(" in block)
    example = example.replace('Corpus.from_folder("tests/data/custom_jsonl")',
                              f'Corpus.from_folder({EXAMPLE!r}, {str(tmp_path / "tfds")!r})')
    assert str(tmp_path) in example, "the guide's example no longer reads tests/data/custom_jsonl"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(example, "docs/custom_data.md", "exec"), namespace)
    assert namespace["corpus"].relation_names == ["birthPlace", "capital", "workPlace"]
    reloaded = RINTripleExtractor.from_preset(str(tmp_path / "my_model"))
    sentence = ["Alan Bean was born in Wheeler, Texas."]
    assert reloaded.predict(sentence) == namespace["extractor"].predict(sentence)
