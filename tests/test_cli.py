"""The commands' path flags: a path that names nothing usable stops the command at parsing, in one line."""

import json
import os
import subprocess
import sys

import pytest
from absl import flags

from rin_keras import cli, train
from rin_keras.data.vocab import Vocabulary
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor

from conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(define, *args):
    flag_values = flags.FlagValues()
    define(flag_values)
    flag_values(["command", *args])
    return flag_values


def test_model_dir_is_checked_when_parsed(tmp_path):
    with pytest.raises(flags.IllegalFlagValueError, match="No extractor.keras or best.keras in .*rin_keras.train"):
        _parse(cli.define_model_dir_flag, f"--model_dir={tmp_path}")
    with pytest.raises(flags.IllegalFlagValueError, match="must have a value"):
        _parse(cli.define_model_dir_flag)
    (tmp_path / "best.keras").write_bytes(b"")  # A training folder stopped before its extractor was written.
    assert _parse(cli.define_model_dir_flag, f"--model_dir={tmp_path}").model_dir == str(tmp_path)
    (tmp_path / "mine.keras").write_bytes(b"")
    assert _parse(cli.define_model_dir_flag, f"--model_dir={tmp_path / 'mine.keras'}")


def _save_tiny_extractor(directory, threshold=0.5):
    vocab = Vocabulary.build([["Alan", "Bean", "was", "born"]], ["birthPlace"])
    config = tiny_config(vocab_size=vocab.vocab_size, num_relations=vocab.num_relations, max_length=8)
    preprocessor = RINPreprocessor.from_config_and_vocabulary(config, vocab)
    RINTripleExtractor(build_rin(config), preprocessor, threshold=threshold).save_to_preset(str(directory))


def test_threshold_flag_sets_the_loaded_extractors_threshold(tmp_path):
    _save_tiny_extractor(tmp_path, threshold=0.4)

    def define(flag_values):
        cli.define_model_dir_flag(flag_values)
        cli.define_threshold_flag(flag_values)

    assert cli.load_extractor(_parse(define, f"--model_dir={tmp_path}")).threshold == 0.4
    assert cli.load_extractor(_parse(define, f"--model_dir={tmp_path}", "--threshold=0.7")).threshold == 0.7
    assert cli.load_extractor(_parse(define, f"--model_dir={tmp_path}", "--threshold=0")).threshold == 0.0
    for wrong in ("1.5", "-0.2"):
        with pytest.raises(flags.IllegalFlagValueError, match="must be in \\[0, 1\\]"):
            _parse(define, f"--model_dir={tmp_path}", f"--threshold={wrong}")


def test_a_folder_to_train_on_must_hold_a_train_and_a_validation_split(tmp_path):
    def define(flag_values):
        flags.DEFINE_string("dataset_dir", None, "", flag_values=flag_values)
        cli.register_path_check("dataset_dir", train.check_dataset_dir, flag_values)

    assert _parse(define).dataset_dir is None
    with pytest.raises(flags.IllegalFlagValueError, match="No folder"):
        _parse(define, f"--dataset_dir={tmp_path / 'missing'}")
    (tmp_path / "val.jsonl").write_text("")
    with pytest.raises(flags.IllegalFlagValueError, match="has no train split: add train_triples.json .* or train.jsonl"):
        _parse(define, f"--dataset_dir={tmp_path}")
    (tmp_path / "val.jsonl").rename(tmp_path / "train.jsonl")
    with pytest.raises(flags.IllegalFlagValueError, match="has no validation split: add val_triples.json .* or val.jsonl"):
        _parse(define, f"--dataset_dir={tmp_path}")
    (tmp_path / "val.jsonl").write_text("")
    assert _parse(define, f"--dataset_dir={tmp_path}").dataset_dir == str(tmp_path)
    (tmp_path / "train_triples.json").write_text("[]")
    with pytest.raises(flags.IllegalFlagValueError, match="holds split 'train' twice"):
        _parse(define, f"--dataset_dir={tmp_path}")


@pytest.mark.parametrize("command, missing", [
    (["rin_keras.predict", "--model_dir={tmp}", "Alan Bean was born in Wheeler, Texas."], "No extractor.keras"),
    (["serving.server", "--model_base_path={tmp}", "--port=0", "--rest_api_port=0"], "no numbered SavedModel version"),
])
def test_commands_stop_with_one_line_on_a_wrong_path(tmp_path, command, missing):
    run = subprocess.run([sys.executable, "-m", *(arg.format(tmp=tmp_path) for arg in command)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert f"Flags parsing error: flag --{command[1][2:].split('=')[0]}={tmp_path}: {missing}" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_folder_to_write_lies_under_no_file(tmp_path):
    (tmp_path / "a_file").write_text("")
    assert cli.folder_to_write(str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
    with pytest.raises(ValueError, match="lies under the file .*a_file; name a folder"):
        cli.folder_to_write(str(tmp_path / "a_file" / "sub" / "run"))


def test_a_list_flag_checks_each_path(tmp_path):
    def define(flag_values):
        flags.DEFINE_list("model_dirs", None, "", flag_values=flag_values)
        cli.register_path_check("model_dirs", cli.training_run, flag_values)

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    assert _parse(define, f"--model_dirs={tmp_path / 'run'}").model_dirs == [str(tmp_path / "run")]
    with pytest.raises(flags.IllegalFlagValueError, match="No config.json in .*other: pass a rin_keras.train"):
        _parse(define, f"--model_dirs={tmp_path / 'run'},{tmp_path / 'other'}")


@pytest.mark.parametrize("script, flag", [("compare_runs", "model_dirs"), ("webnlg_star_test", "model_dirs"),
                                          ("serving_latency", "model_dir"), ("real_text", "model_dir")])
def test_benchmarks_stop_with_one_line_on_a_missing_run(tmp_path, script, flag):
    run = subprocess.run([sys.executable, f"benchmarks/{script}.py", f"--{flag}={tmp_path}"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-500:]
    assert f"Flags parsing error: flag --{flag}=" in run.stderr


def test_export_refuses_a_version_that_exists_before_loading_the_model(tmp_path):
    _save_tiny_extractor(tmp_path / "run")
    (tmp_path / "models" / "1").mkdir(parents=True)
    run = subprocess.run([sys.executable, "-m", "rin_keras.export", f"--model_dir={tmp_path / 'run'}",
                          f"--export_dir={tmp_path / 'models'}", "--version=1"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "--export_dir holds that --version already" in run.stderr
    assert os.listdir(tmp_path / "models") == ["1"]


def test_export_numbers_past_every_entry_cleans_killed_exports_and_refuses_what_serving_cannot_take(tmp_path):
    import socket

    from serving import contract

    _save_tiny_extractor(tmp_path / "run")
    models = tmp_path / "models"
    (models / "1").mkdir(parents=True)
    (models / "6").write_text("not a version")
    (models / str(contract.MAX_VERSION + 1)).mkdir()  # No int64: no version to TF Serving.
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()  # A process that is no more, as a killed export's.
    (models / f".tmp-{socket.gethostname()}-{gone.pid}-5").mkdir()
    assert contract.versions(str(models)) == [1] and contract.next_version(str(models)) == 7
    (tmp_path / "full" / str(contract.MAX_VERSION)).mkdir(parents=True)
    with pytest.raises(ValueError, match="the highest TF Serving reads: name a free one"):
        contract.next_version(str(tmp_path / "full"))

    def export(*flags):
        return subprocess.run([sys.executable, "-m", "rin_keras.export", f"--model_dir={tmp_path / 'run'}",
                               f"--export_dir={models}", *flags], cwd=REPO, capture_output=True, text=True,
                              timeout=300)

    run = export()
    assert run.returncode == 0 and run.stdout.strip() == str(models / "7"), run.stderr[-1000:]
    assert sorted(os.listdir(models)) == sorted(["1", "6", "7", str(contract.MAX_VERSION + 1)])
    for flag, message in ((f"--version={contract.MAX_VERSION + 1}", "Flags parsing error: flag --version="),
                          ("--max_length=9", "rin_keras.export: max_length=9: the model reads up to 8 tokens a "
                                             "sentence (its training max_length), and an export may only lower that.")):
        run = export(flag)
        assert run.returncode == 1 and "Traceback" not in run.stderr and message in run.stderr, run.stderr[-1000:]


def test_a_server_on_port_0_takes_a_free_port_and_prints_it(tmp_path):  # As benchmarks/serving_latency.py starts it.
    import re

    from rin_keras import export
    from serving.client import GrpcClient

    _save_tiny_extractor(tmp_path / "run")
    export.export_version(RINTripleExtractor.from_preset(str(tmp_path / "run")), str(tmp_path / "models"))
    server = subprocess.Popen([sys.executable, "-m", "serving.server", f"--model_base_path={tmp_path / 'models'}",
                               "--port=0", "--rest_api_port=0"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert re.fullmatch(r"Serving rin version 1: gRPC 127\.0\.0\.1:[1-9]\d*\n", line), server.stderr.read()
        port = line.rsplit(":", 1)[1].strip()
        assert GrpcClient(f"127.0.0.1:{port}").predict(["Alan Bean was born"]) is not None
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "demo"])
def test_help_lists_the_shared_model_dir_and_threshold_flags(command):
    run = subprocess.run([sys.executable, "-m", f"rin_keras.{command}", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert "--model_dir: Training output folder" in run.stdout and "--threshold: Score" in run.stdout


def test_evaluate_refuses_a_heldout_split_of_a_model_trained_without_one_before_any_data(tmp_path):
    _save_tiny_extractor(tmp_path)
    run = subprocess.run([sys.executable, "-m", "rin_keras.evaluate", f"--model_dir={tmp_path}",
                          "--split=heldout_categories", f"--tfds_data_dir={tmp_path / 'tfds'}"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    # One line, not absl's usage text with every flag.
    assert run.stderr.strip().endswith("rin_keras.evaluate: --split=heldout_categories scores a webnlg3 model trained "
                                       "with --heldout_categories; this one was trained on all of webnlg.")
    assert not (tmp_path / "tfds").exists()


def test_predict_refuses_an_output_that_would_lose_work_before_reading_any_text(tmp_path):
    _save_tiny_extractor(tmp_path)
    texts = tmp_path / "texts.txt"
    texts.write_text("Alan Bean was born\n")
    for args, message in (
        ([f"--input={texts}", f"--output={texts}"], "--output names the --input file"),
        ([f"--output={tmp_path / 'none' / 'out.jsonl'}", "Alan"], "No folder"),
        ([f"--output={tmp_path}", "Alan"], "is a folder; name a file to write"),
        ([f"--input={texts}", "Alan"], "give the texts as arguments or as --input, not both"),
        ([f"--input={texts}", "--resume"], "--resume goes on with an --output from an --input file: give both"),
    ):
        run = subprocess.run([sys.executable, "-m", "rin_keras.predict", f"--model_dir={tmp_path}", *args], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr, run.stderr[-500:]
    assert texts.read_text() == "Alan Bean was born\n"


def test_predict_reads_a_json_file_of_texts_or_of_casrel_records_once(tmp_path):
    from rin_keras import predict

    split = tmp_path / "test_triples.json"
    split.write_text(json.dumps([{"text": "Alan Bean was born in Texas .", "triple_list": []}, {"text": "Ok ."}]))
    texts, total = predict._inputs(str(split), [])
    split.unlink()  # Parsed once: the texts and their count need the file no more.
    assert list(texts) == ["Alan Bean was born in Texas .", "Ok ."] and total == 2
    texts = tmp_path / "texts.JSON"
    texts.write_text('["One.", "Two."]')
    assert list(predict._inputs(str(texts), [])[0]) == ["One.", "Two."]
    for content, message in (('{"text": "One."}', "expected a JSON list of texts"),
                             ('["One.", {"txt": "Two."}]', "item 1: expected a text"),
                             ('["One.",', "malformed JSON")):
        texts.write_text(content)
        with pytest.raises(predict.InputError, match=message):
            predict._inputs(str(texts), [])


def test_predict_resume_point_keeps_whole_results_of_the_same_texts(tmp_path):
    from rin_keras import predict

    def resume_point(documents=False):
        texts, _ = predict._inputs(str(inputs), [])
        return predict._resume_point(texts, str(inputs), str(out), documents), list(texts)

    inputs, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    inputs.write_text("One.\nTwo.\nThree.\n")
    assert resume_point() == (0, ["One.", "Two.", "Three."])  # No output yet.
    whole = "".join(json.dumps({"text": t, "tokens": [t[:-1], "."], "triples": []}) + "\n" for t in ("One.", "Two."))
    out.write_text(whole + '{"text": "Thr')  # Stopped while writing the third result.
    assert resume_point() == (2, ["Three."]) and out.read_text() == whole  # The texts go on after the results.
    inputs = tmp_path / "in.json"
    inputs.write_text('["One.", "Two.", "Three."]')
    assert resume_point() == (2, ["Three."])
    with pytest.raises(SystemExit, match="line 1 of .*out.jsonl is not the result of text 1 of .* as a document"):
        resume_point(documents=True)  # Written by a run without --documents.
    out.write_text(json.dumps({"text": "One.", "tokens": ["One", "."]}) + "\n" + json.dumps({"text": "Other."}) + "\n")
    with pytest.raises(SystemExit, match="line 2 of .*out.jsonl is not the result of text 2 of"):
        resume_point()
    out.write_text("".join(json.dumps({"text": t, "tokens": [t[:-1], "."]}) + "\n"
                           for t in ("One.", "Two.", "Three.", "Four.")))
    with pytest.raises(SystemExit, match="holds more results than"):
        resume_point()


def test_predict_resume_refuses_results_of_texts_split_otherwise(tmp_path):
    from rin_keras import predict

    inputs, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    inputs.write_text("Alan  Bean flew, once.\nTwo.\n")
    out.write_text(json.dumps({"text": "Alan  Bean flew, once.", "tokens": ["Alan", "Bean", "flew,", "once."]}) + "\n")
    texts, _ = predict._inputs(str(inputs), [])
    assert predict._resume_point(texts, str(inputs), str(out), False, pretokenized=True) == 1
    assert list(texts) == ["Two."]
    texts, _ = predict._inputs(str(inputs), [])
    with pytest.raises(SystemExit, match="line 1 of .* is not the result of text 1 of .* as a sentence to tokenise"):
        predict._resume_point(texts, str(inputs), str(out), False)


def test_predict_reads_ndjson_as_json_lines(tmp_path):
    from rin_keras import predict

    texts = tmp_path / "texts.ndjson"
    texts.write_text('{"text": "One."}\n\n{"text": "Two."}\n')
    assert [list(t) for t in [predict._inputs(str(texts), [])[0]]] == [["One.", "Two."]]


def test_predict_pretokenized_spans_index_each_line_as_given_and_a_full_disk_is_one_line(tmp_path):
    _save_tiny_extractor(tmp_path)
    lines = ["Alan  Bean was\tborn", "\tAlan Bean  born ."]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "rin_keras.predict", f"--model_dir={tmp_path}", "--threshold=0", "--pretokenized",
               f"--input={tmp_path / 'in.txt'}"]
    run = subprocess.run([*command, f"--output={tmp_path / 'out.jsonl'}"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-500:]
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == lines and all(r["triples"] for r in records)
    for record in records:
        text = record["text"]
        assert [text[start:end] for start, end in record["token_spans"]] == record["tokens"] == text.split()
        for triple in record["triples"]:
            for entity in ("subject", "object"):
                start, end = triple[f"{entity}_char_span"]
                assert text[start:end] == triple[entity]
    if os.path.exists("/dev/full"):
        run = subprocess.run([*command, "--output=/dev/full"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-500:]
        assert "rin_keras.predict: No space left on device (/dev/full)." in run.stderr
