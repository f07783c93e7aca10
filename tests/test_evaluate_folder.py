"""Scoring any CasRel-layout folder, on its tokenised and raw texts (`evaluate --dataset_dir`)."""

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import keras
import pytest
from absl import logging

from rin_keras import evaluate
from rin_keras.data.corpus import FolderCorpus
from rin_keras.data.vocab import Vocabulary
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor, split_pretokenized
from tfds_builders import casrel, testing

from conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDS = [
    ("Alan Bean was born in Wheeler , Texas .", "Alan Bean was born in Wheeler, Texas.", [["Bean", "birthPlace", "Texas"]],
     "Astronaut"),
    ("SuÃ¡rez 's club is `` Ajax '' .", 'Suárez\'s club is "Ajax".', [["SuÃ¡rez", "club", "Ajax"]], "Athlete"),
    ("Rome is the capital of Italy and Italy is led by Sergio Mattarella .",
     "Rome is the capital of Italy and Italy is led by Sergio Mattarella.",
     [["Italy", "capital", "Rome"], ["Italy", "leaderName", "Sergio Mattarella"]], "City"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A CasRel folder with val_triples.json, rel2id.json and raw_val.jsonl."""
    root = tmp_path_factory.mktemp("casrel")
    shutil.copy(os.path.join(testing.dummy_dir("webnlg"), "webnlg_star", "rel2id.json"), root / "rel2id.json")
    with open(root / "val_triples.json", "w", encoding="utf-8") as f:
        json.dump([{"text": text, "triple_list": triples} for text, _, triples, _ in RECORDS], f)
    with open(root / "raw_val.jsonl", "w", encoding="utf-8") as f:
        for text, raw, _, category in RECORDS:
            f.write(json.dumps({"raw_text": raw, "text": text, "category": category}, ensure_ascii=False) + "\n")
    return root


@pytest.fixture(scope="module")
def model_dir(folder, tmp_path_factory):
    """An untrained model over the folder's relations and words (with the character and shape features)."""
    with open(folder / "rel2id.json", encoding="utf-8") as f:
        relations = casrel.parse_relation_names(json.load(f))
    sentences = [text.split(" ") for text, _, _, _ in RECORDS]
    vocab = Vocabulary.build(sentences, relations)
    keras.utils.set_random_seed(0)
    model = build_rin(tiny_config(vocab_size=vocab.vocab_size, num_relations=len(relations), shape_dim=3,
                                  char_dim=4, num_chars=len(vocab.chars) + 2))
    path = tmp_path_factory.mktemp("model")
    RINTripleExtractor(model, RINPreprocessor.from_config_and_vocabulary(model.config, vocab)).save_to_preset(str(path))
    return path


def _extractor(model_dir, threshold=0.5):
    extractor = RINTripleExtractor.from_preset(str(model_dir))
    extractor.threshold = threshold
    return extractor


def test_folder_corpus_reads_and_repairs_like_the_builders(folder):
    with open(folder / "rel2id.json", encoding="utf-8") as f:
        relations = casrel.parse_relation_names(json.load(f))
    corpus = FolderCorpus(str(folder), relations)
    assert corpus.splits == ["validation"]
    examples = corpus.examples("validation")
    assert [t.decode() for t in examples[1]["tokens"]][:2] == ["Suárez", "'s"]
    assert examples[1]["triples"]["relation"].tolist() == [relations.index("club")]
    assert examples[2]["triples"]["subject"]["head"].tolist() == [5, 5]
    assert [r["category"] for r in corpus.raw_texts("validation")] == ["Astronaut", "Athlete", "City"]
    with pytest.raises(FileNotFoundError, match="has no test split: add .*test_triples.json"):
        corpus.raw("test")


def test_a_missing_split_is_named_in_the_folders_format(tmp_path, model_dir):
    (tmp_path / "test.jsonl").write_text(json.dumps({"text": "Alan Bean was born in Texas.", "triple_list": []}))
    with pytest.raises(FileNotFoundError, match=r"has no validation split: add .*val\.jsonl \(it holds test\)"):
        evaluate.evaluate_folder(_extractor(model_dir), str(tmp_path), "validation")


def test_a_gold_triple_not_in_its_text_is_counted_and_logged(folder, tmp_path, model_dir):
    lost = tmp_path / "lost"
    shutil.copytree(folder, lost)
    records = copy.deepcopy([{"text": text, "triple_list": triples} for text, _, triples, _ in RECORDS])
    records[2]["triple_list"][1][2] = "Giorgia Meloni"
    with open(lost / "val_triples.json", "w", encoding="utf-8") as f:
        json.dump(records, f)  # On one line: a record is placed by its column.
    column = (lost / "val_triples.json").read_text(encoding="utf-8").index(json.dumps(records[2])) + 1
    with mock.patch.object(logging, "warning") as warning:
        scores = evaluate.evaluate_folder(_extractor(model_dir), str(lost))
    assert scores["triples_not_found"] == 1 and scores["partial"]["gold"] == 3 and scores["strings"]["raw"]["gold"] == 4
    message = warning.call_args[0][0] % warning.call_args[0][1:]
    assert message.startswith(f"{lost / 'val_triples.json'}: 1 gold triples whose subject or object is not in the text")
    assert message.endswith(f"at lines 1:{column}.")


def test_relation_names_are_read_as_the_folder_builder_reads_them(folder, tmp_path, model_dir):
    """A name with spaces around it, or mis-decoded UTF-8, is the repaired name the model was trained on."""
    renamed = tmp_path / "renamed"
    shutil.copytree(folder, renamed)
    records = copy.deepcopy([{"text": text, "triple_list": triples} for text, _, triples, _ in RECORDS])
    records[0]["triple_list"][0][1] = " birthPlace "
    records[2]["triple_list"][0][1] = "capitÃ¡l"  # "capitál" mis-decoded as cp1252.
    with open(renamed / "val_triples.json", "w", encoding="utf-8") as f:
        json.dump(records, f)
    assert casrel.relation_name(records[2]["triple_list"][0][1], "val_triples.json:3") == "capitál"
    corpus = FolderCorpus(str(renamed), ["birthPlace", "capitál", "club", "leaderName"], drop_unknown_relations=True)
    triples = [len(x["triples"]["relation"]) for x in corpus.examples("validation")]
    assert triples == [1, 1, 2] and corpus.unknown_relations["validation"] == {}
    gold = [evaluate.last_word_triples(r["triple_list"]) for _, r in corpus.records("validation")]
    assert ("Bean", "birthPlace", "Texas") in gold[0] and ("Italy", "capitál", "Rome") in gold[2]


def test_every_cell_predicted_finds_every_gold_triple_in_tokenised_and_raw_text(folder, model_dir):
    scores = evaluate.evaluate_folder(_extractor(model_dir, threshold=0.0), str(folder))
    assert scores["split"] == "validation"
    assert scores["partial"]["recall"] == 100.0 and scores["partial"]["gold"] == 4
    tokenised, raw = scores["strings"]["tokenised"], scores["strings"]["raw"]
    assert tokenised["recall"] == raw["recall"] == 100.0 and tokenised["gold"] == 4
    assert {k: v for k, v in raw.items() if k != "by_category"} == \
        {k: v for k, v in tokenised.items() if k != "by_category"}  # The raw texts read as the tokenised ones.
    assert set(raw["by_category"]) == {"Astronaut", "Athlete", "City"}
    assert raw["by_category"]["City"]["gold"] == 2


def test_raw_text_gold_last_words_are_the_tokens_the_builder_locates(tmp_path, model_dir):
    """An entity written with the period after it, with a parenthesis or with a space after it: its last token."""
    records = [("Alan Bean was born in London.", ["Alan Bean", "birthPlace", "London."]),
               ("Buzz Aldrin (astronaut) was born in Glen Ridge.", ["Buzz Aldrin (astronaut)", "birthPlace", "Glen Ridge"]),
               ("Ada Lovelace was born in London.", ["Ada Lovelace ", "birthPlace", "London"])]
    (tmp_path / "val.jsonl").write_text("".join(json.dumps({"text": t, "triple_list": [triple]}) + "\n"
                                                for t, triple in records), encoding="utf-8")
    scores = evaluate.evaluate_folder(_extractor(model_dir, threshold=0.0), str(tmp_path))
    assert scores["partial"]["recall"] == 100.0
    for text in ("tokenised", "raw"):
        assert scores["strings"][text]["recall"] == 100.0 and scores["strings"][text]["gold"] == 3
    assert evaluate.located_last_word_triples({"text": records[1][0], "triple_list": [records[1][1]]}, "val.jsonl:2") \
        == {(")", "birthPlace", "Ridge")}


def test_a_tokenised_text_reads_any_run_of_whitespace_as_one_space_in_training_and_scoring(tmp_path, model_dir):
    record = {"text": "Alan  Bean was born in\tWheeler , Texas . ", "triple_list": [["Alan  Bean ", "birthPlace", "Texas"]]}
    (tmp_path / "val_triples.json").write_text(json.dumps([record]), encoding="utf-8")
    shutil.copy(os.path.join(testing.dummy_dir("webnlg"), "webnlg_star", "rel2id.json"), tmp_path / "rel2id.json")
    relations = {"birthPlace"}
    trained, _ = casrel.folder_example(record, relations, "val_triples.json:1", pretokenized=True)  # As training reads it.
    scored, counts = casrel.to_example(record, relations, "validation_0")  # As evaluate --dataset_dir reads it.
    words = "Alan Bean was born in Wheeler , Texas .".split(" ")
    assert trained["tokens"] == scored["tokens"] == words and counts["not_found"] == 0
    assert trained["triples"] == scored["triples"]
    scores = evaluate.evaluate_folder(_extractor(model_dir, threshold=0.0), str(tmp_path))
    assert scores["triples_not_found"] == 0 and scores["partial"]["recall"] == 100.0
    assert scores["strings"]["tokenised"]["recall"] == 100.0 and scores["strings"]["tokenised"]["gold"] == 1
    # Split as `predict --pretokenized` and `serving.client` split it: at ASCII whitespace, not a no-break space.
    record = {"text": "Alan Bean was born in Wheeler\xa0Park .", "triple_list": [["Alan Bean", "birthPlace", "Wheeler\xa0Park"]]}
    trained, _ = casrel.folder_example(record, relations, "val_triples.json:1", pretokenized=True)
    scored, _ = casrel.to_example(record, relations, "validation_0")
    assert trained["tokens"] == scored["tokens"] == [t.text for t in split_pretokenized(record["text"])] == [
        "Alan", "Bean", "was", "born", "in", "Wheeler\xa0Park", "."]
    assert trained["triples"] == scored["triples"] and scored["triples"][0]["object"] == {"start": 5, "end": 6, "head": 5}


def test_a_model_of_a_users_folder_scores_its_casrel_json_as_it_was_trained_on_it(tmp_path, model_dir):
    """The punctuation written after an entity is left out of its span, and a repeated triple counts once."""
    records = [{"text": "Lise Meitner was born in Vienna .", "triple_list": [["Lise Meitner", "birthPlace", "Vienna ."]]},
               {"text": "The capital of Italy is Rome .", "triple_list": [["Italy", "capital", "Rome"],
                                                                      ["Italy", "capital", "Rome ."]]}]
    (tmp_path / "test_triples.json").write_text(json.dumps(records), encoding="utf-8")
    relations = ["birthPlace", "capital"]
    trained = [casrel.folder_example(r, set(relations), "test_triples.json", pretokenized=True)[0] for r in records]
    corpus = FolderCorpus(str(tmp_path), relations, as_training_folder=True)
    assert [[(t["object"]["start"], t["object"]["end"]) for t in e["triples"]] for e in trained] == [[(5, 6)], [(5, 6)]]
    assert [list(zip(x["triples"]["object"]["start"], x["triples"]["object"]["end"]))
            for x in corpus.examples("test")] == [[(5, 6)], [(5, 6)]]
    extractor = _extractor(model_dir, threshold=0.0)
    custom = dataclasses.replace(extractor.config, dataset="custom")
    with mock.patch.object(RINTripleExtractor, "config", new_callable=mock.PropertyMock, return_value=custom):
        scores = evaluate.evaluate_folder(extractor, str(tmp_path))
    assert scores["partial"]["gold"] == scores["exact"]["gold"] == 2 and scores["partial"]["recall"] == 100.0
    assert scores["strings"]["tokenised"]["gold"] == 2 and scores["strings"]["tokenised"]["recall"] == 100.0
    # A benchmark's model reads it as the benchmark builders do: the entity strings as written.
    assert evaluate.evaluate_folder(extractor, str(tmp_path))["exact"]["gold"] == 3


def test_raw_texts_are_repaired_as_the_tokens_are(tmp_path, model_dir):
    record = {"text": "Luis Su\u00c3\u00a1rez was born in Salto.", "triple_list": [["Luis Su\u00e1rez", "birthPlace", "Salto"]]}
    (tmp_path / "test.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert FolderCorpus(str(tmp_path), ["birthPlace"]).raw_texts("test") == [
        {"raw_text": "Luis Su\u00e1rez was born in Salto."}]
    scores = evaluate.evaluate_folder(_extractor(model_dir, threshold=0.0), str(tmp_path))
    assert scores["strings"]["raw"]["recall"] == scores["strings"]["tokenised"]["recall"] == 100.0


def test_entities_past_the_maximum_length_count_as_missed_in_ner_as_their_triples_do(tmp_path, model_dir):
    filler = " ".join(["and"] * 120)
    record = {"text": f"Alan Bean was born in Texas {filler} Ada Lovelace was born in London .",
              "triple_list": [["Alan Bean", "birthPlace", "Texas"], ["Ada Lovelace", "birthPlace", "London"]]}
    (tmp_path / "test_triples.json").write_text(json.dumps([record]), encoding="utf-8")
    extractor = _extractor(model_dir)
    assert extractor.preprocessor.max_length < len(record["text"].split()) - 5  # Ada Lovelace and London are cut.
    scores = evaluate.evaluate_folder(extractor, str(tmp_path))
    assert scores["partial"]["gold"] == 2 and scores["ner"]["gold"] == 4


def test_a_split_without_sentences_is_refused(tmp_path, model_dir):
    (tmp_path / "val.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(casrel.DataError, match=r"val\.jsonl: the validation split has no sentences"):
        evaluate.evaluate_folder(_extractor(model_dir), str(tmp_path))


def test_scoring_logs_its_progress(folder, model_dir):
    extractor = _extractor(model_dir)
    corpus = FolderCorpus(str(folder), extractor.relation_names)
    batches = evaluate.scoring_batches(extractor.preprocessor, corpus, "validation", batch_size=1)
    lines = []
    with mock.patch.object(evaluate.logging, "info", lambda fmt, *args: lines.append(fmt % args)):
        predicted, _, _ = evaluate.predict_split(extractor, corpus, "validation", batches=batches, total=3,
                                                 every_seconds=0)
    assert len(predicted) == 3
    assert [line.split(",")[0] for line in lines if "sentences scored" in line] == ["validation: 1 of 3 sentences scored",
                                                      "validation: 2 of 3 sentences scored"]


def test_nothing_predicted_scores_zero(folder, model_dir):
    scores = evaluate.evaluate_folder(_extractor(model_dir, threshold=1.0), str(folder))
    assert scores["strings"]["raw"]["predicted"] == scores["partial"]["predicted"] == 0


def test_bad_raw_files_name_the_line(folder, tmp_path, model_dir):
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    with open(bad / "raw_val.jsonl", "a", encoding="utf-8") as f:
        f.write("{not json\n")
    corpus = FolderCorpus(str(bad), ["birthPlace"])
    with pytest.raises(casrel.DataError, match="raw_val.jsonl:4"):
        corpus.raw_texts("validation")
    lines = (folder / "raw_val.jsonl").read_text(encoding="utf-8").splitlines()
    (bad / "raw_val.jsonl").write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    with pytest.raises(casrel.DataError, match="has 2 lines but"):
        corpus.raw_texts("validation")
    with pytest.raises(ValueError, match="unknown relation 'club'"):
        corpus.examples("validation")
    lenient = FolderCorpus(str(bad), ["birthPlace"], drop_unknown_relations=True)
    with mock.patch.object(logging, "warning") as warning:
        assert len(lenient.examples("validation")) == 3 and len(lenient.examples("validation")) == 3
    assert lenient.unknown_relations == {"validation": {"club": 1, "capital": 1, "leaderName": 1}}
    assert warning.call_count == 1  # Once a split, however often it is read.
    with pytest.raises(FileNotFoundError, match="No folder"):
        evaluate.evaluate_folder(_extractor(model_dir), str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of train_triples.json, .*, train.jsonl"):
        evaluate.evaluate_folder(_extractor(model_dir), str(tmp_path / "empty"))


def test_cli_writes_the_scores(folder, model_dir):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={model_dir}", f"--dataset_dir={folder}",
         "--threshold=0"], capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout
    assert out.startswith(f"{os.path.realpath(folder)}, validation split, threshold 0:\n")  # No test split here.
    assert "strings/raw" in out and "raw/Athlete" in out and "relation/birthPlace" in out
    saved = json.loads((model_dir / "evaluation_casrel0_validation_t0.json").read_text())
    assert saved["relations"]["birthPlace"]["gold"] == 1 and saved["relations"]["birthPlace"]["recall"] == 100.0
    assert (model_dir / "evaluation_casrel0_validation_t0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["strings"]["raw"]["recall"] == 100.0
    missed = saved["missed_by_kind"]["all"]
    assert set(missed) == set(evaluate.MISSED_KINDS)
    assert sum(missed.values()) == saved["partial"]["gold"] - saved["partial"]["correct"]
    assert "missed/nothing" in out
    assert "sentences" not in saved  # They go to the page:
    page = (model_dir / "evaluation_casrel0_validation_t0.html").read_text(encoding="utf-8")
    assert page.count("<div class=s ") == 3 and "<mark class=" in page


def test_cli_scores_a_model_of_a_users_folder_on_that_folder_by_default(folder, model_dir, tmp_path):
    from rin_keras import train

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = tmp_path / "run"
    shutil.copytree(model_dir, run)
    extractor = RINTripleExtractor.from_preset(str(run))
    extractor.config.replace(dataset="custom").save(str(run / "config.json"))
    (run / train.DATA_FILE).write_text(f"{os.path.realpath(folder)} (files 0123abcd)\n")  # As train writes it.

    def evaluate_run():
        return subprocess.run([sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={run}"], capture_output=True,
                              text=True, cwd=REPO, env=env)

    scored = evaluate_run()
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert scored.stdout.startswith(f"{os.path.realpath(folder)}, validation split, threshold 0.5:\n")
    (run / train.DATA_FILE).write_text(f"{tmp_path / 'gone'} (files 0123abcd)\n")
    refused = evaluate_run()
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert (f"this model was trained on a folder of your own ({tmp_path / 'gone'}, which is not there): name it with "
            "--dataset_dir.") in refused.stderr


def test_cli_keeps_the_scores_of_two_folders_of_one_name_apart(folder, model_dir, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    other = tmp_path / "elsewhere" / os.path.basename(folder)
    shutil.copytree(folder, other)
    reports = []
    for data in (folder, other, folder):
        subprocess.run([sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={model_dir}",
                        f"--dataset_dir={data}", "--split=validation", "--threshold=0.25"],
                       capture_output=True, text=True, cwd=REPO, env=env, check=True)
        names = evaluate.folder_report_names(str(data), "validation", "_t0.25")
        reports.append(evaluate.report_of(str(model_dir), names, os.path.realpath(data)))
    assert reports[0] == reports[2] == f"evaluation_{os.path.basename(folder)}_validation_t0.25"
    assert reports[1] == evaluate.folder_report_names(str(other), "validation", "_t0.25")[1]
    saved = json.loads((model_dir / f"{reports[1]}.json").read_text())
    assert saved["data"] == os.path.realpath(other) and saved["threshold"] == 0.25


def test_cli_names_a_folder_without_splits_in_one_line(model_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={model_dir}", f"--dataset_dir={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"rin_keras.evaluate: {tmp_path} holds none of train_triples.json" in result.stderr


def test_cli_refuses_a_heldout_split_of_a_folder(folder, model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={model_dir}", f"--dataset_dir={folder}",
         "--split=heldout_categories"], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode != 0 and "folder has no heldout_categories split" in result.stderr


def test_examples_page_puts_errors_first():
    from rin_keras.decoding import Triple

    tokens = [["Alan", "Bean", "was", "born", "in", "Texas"], ["Bean", "flew", "Apollo", "12"]]
    born = Triple(1, 0, 5, 1.0, (0, 2), (5, 6))
    flew = Triple(0, 1, 3, 1.0, (0, 1), (2, 4))
    wrong_span = Triple(0, 1, 3, 0.9, (0, 1), (3, 4))
    sentences = evaluate.compare_sentences([[born], [flew]], [[born], [wrong_span]], tokens, ["birthPlace", "crew"],
                                           "exact")
    assert [len(s["correct"]) for s in sentences] == [1, 0]
    assert sentences[1]["missed"][0]["object"] == "Apollo 12" and sentences[1]["spurious"][0]["object"] == "12"
    partial = evaluate.compare_sentences([[born], [flew]], [[born], [wrong_span]], tokens, ["birthPlace", "crew"],
                                         "partial")
    assert [len(s["correct"]) for s in partial] == [1, 1]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "page.html")
        evaluate.write_examples_page(sentences, path, "test <page>")
        page = open(path, encoding="utf-8").read()
    assert page.index("id=s1") < page.index("id=s0")  # The sentence with errors first.
    assert "<mark class=missed>Apollo</mark> <mark class=missed>12</mark>" in page
    assert "test &lt;page&gt;" in page and "2 sentences, 1 with an error" in page


def test_missed_triples_are_sorted_by_what_came_instead():
    from rin_keras.decoding import Triple

    tokens = [["A", "born", "in", "B", "and", "C", "D", "E"]] * 6
    names = ["birthPlace", "deathPlace"]
    gold = Triple(0, 0, 3, 1.0, (0, 1), (3, 4))  # (A, birthPlace, B)
    instead = [
        Triple(0, 1, 3, 0.9, (0, 1), (3, 4)),  # (A, deathPlace, B): wrong relation
        Triple(3, 1, 0, 0.9, (3, 4), (0, 1)),  # (B, deathPlace, A): reversed
        Triple(0, 0, 5, 0.9, (0, 1), (5, 6)),  # (A, birthPlace, C): wrong object
        Triple(6, 0, 3, 0.9, (6, 7), (3, 4)),  # (D, birthPlace, B): wrong subject
        Triple(6, 1, 7, 0.9, (6, 7), (7, 8)),  # Another pair altogether: nothing
    ]
    predicted = [[t] for t in instead] + [[gold]]
    sentences = evaluate.compare_sentences([[gold]] * 6, predicted, tokens, names, "partial")
    counts = evaluate.missed_by_kind(sentences, "partial")
    assert counts["all"] == {kind: 1 for kind in evaluate.MISSED_KINDS}
    assert counts["relations"] == {"birthPlace": counts["all"]}
    # Exact match compares whole spans: (A, birthPlace, "D E") is the gold (A, birthPlace, "C D E") found with a
    # wrong span, not a wrong object or a wrong relation; (A, birthPlace, "C D") is a wrong object.
    gold_exact = Triple(0, 0, 7, 1.0, (0, 1), (5, 8))
    exact = evaluate.compare_sentences([[gold_exact]] * 3, [[Triple(0, 0, 7, 0.9, (0, 1), (6, 8))],
                                                            [Triple(0, 0, 6, 0.9, (0, 1), (5, 7))],
                                                            [Triple(0, 1, 7, 0.9, (0, 1), (7, 8))]],
                                       tokens[:3], names, "exact")
    assert evaluate.missed_by_kind(exact, "exact")["all"] == {
        "wrong span": 1, "wrong relation": 0, "reversed": 0, "wrong object": 1, "wrong subject": 0, "nothing": 1}


def test_a_gold_triple_listed_twice_counts_once_in_the_breakdowns():
    """As in the scores: WebNLG* test lists some gold triples twice."""
    from rin_keras import metrics
    from rin_keras.decoding import Triple

    born = Triple(1, 0, 5, 1.0, (0, 2), (5, 6))
    lived = Triple(1, 1, 3, 1.0, (0, 2), (3, 4))
    assert metrics.overlap_category([born, lived, born]) == "SingleEntityOverlap"
    assert metrics.overlap_category([born, Triple(1, 1, 5, 1.0, (0, 2), (5, 6))]) == "EntityPairOverlap"
    tokens = [["Alan", "Bean", "was", "born", "in", "Texas"]] * 2
    sentences = evaluate.compare_sentences([[born, born], [born, born]], [[], [born]], tokens, ["birthPlace", "x"],
                                           "partial")
    assert [(len(s["correct"]), len(s["missed"])) for s in sentences] == [(0, 1), (1, 0)]
    assert evaluate.missed_by_kind(sentences, "partial")["all"]["nothing"] == 1
