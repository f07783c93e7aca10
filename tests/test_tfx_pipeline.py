"""The TFX-style pipeline end to end on the dummy WebNLG data with a 1-epoch trainer."""

import dataclasses
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import flags

from pipelines import local_runner, rin_pipeline
from pipelines.artifacts import Artifact, CorruptRecordError, run_component
from pipelines.components import bulk_inferrer, evaluator, example_gen, pusher, trainer
from rin_keras import RINConfig, export, predict
from rin_keras.data.corpus import RecordCorpus
from rin_keras.triple_extractor import RINTripleExtractor
from serving import contract
from tfds_builders import testing

from conftest import assert_same_triples

TINY = {"word_dim": 8, "lstm_units": 4, "hidden_dim": 8, "rounds": 1, "batch_size": 4, "epochs": 1,
        "pretrained_dim": 0}


def _trainer(seed, mixed_precision="none"):
    return trainer.Config({**TINY, "seed": seed}, word_vectors="random", mixed_precision=mixed_precision)


def _config(root, tfds_dir, min_f1=0.0):
    return rin_pipeline.PipelineConfig(
        pipeline_root=str(root),
        example_gen=example_gen.Config("webnlg", "exact", testing.dummy_dir("webnlg"), str(tfds_dir)),
        trainer=_trainer(42),
        evaluator=evaluator.Config(min_partial_f1=min_f1, max_f1_drop=100.0),
        pusher=pusher.Config(str(root / "serving")),
        bulk_inferrer=bulk_inferrer.Config(max_batch_size=2),
    )


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    config = _config(root / "root", root / "tfds")
    with testing.dummy_checksums("webnlg"):
        artifacts = rin_pipeline.run_pipeline(config)
    return config, artifacts


def test_every_artifact_exists(first_run):
    config, artifacts = first_run
    assert set(artifacts) == {"ExampleGen", "StatisticsGen", "Trainer", "Evaluator", "Pusher", "BulkInferrer"}
    examples = artifacts["ExampleGen"]
    corpus = RecordCorpus(examples.uri)
    assert corpus.name == f"webnlg/exact/{tfds.builder_cls('webnlg').VERSION}"
    recorded = json.loads(open(examples.path("artifact.json")).read())
    # Part of the fingerprint, with the builder's version.
    assert recorded["config"]["published_splits"] == ["train", "validation", "test"]
    assert recorded["config"]["builder_version"] == str(tfds.builder_cls("webnlg").VERSION)
    assert {s: len(corpus.examples(s)) for s in ("train", "validation", "test")} == examples.properties["num_examples"]
    assert os.path.exists(examples.path("text", "test.txt"))
    statistics = json.loads(open(artifacts["StatisticsGen"].path("statistics.json")).read())
    assert statistics["train"]["sentences"] == examples.properties["num_examples"]["train"]
    assert statistics["train"]["oov_rate"] == 0.0 < statistics["test"]["oov_rate"]
    assert sum(statistics["test"]["overlap_categories"].values()) == statistics["test"]["sentences"]
    for name in ("lengths_and_triples.png", "relation_frequencies.png"):
        assert os.path.getsize(artifacts["StatisticsGen"].path(name)) > 1000
    for name in ("best.keras", "config.json", "vocab/words.txt", "results.json"):
        assert os.path.exists(artifacts["Trainer"].path(name))
    assert os.path.exists(artifacts["Evaluator"].path("BLESSED"))
    assert artifacts["Pusher"].properties["version"] == 1
    assert os.path.exists(os.path.join(config.pusher.serving_base, "1", "saved_model.pb"))
    assert contract.export_source(artifacts["Pusher"].properties["path"]) == os.path.abspath(artifacts["Trainer"].uri)


def _predictions(output_dir):
    """The JSON lines BulkInferrer wrote to `output_dir`."""
    lines = []
    for path in glob.glob(os.path.join(output_dir, "predictions-*.jsonl")):
        lines += [json.loads(line) for line in open(path, encoding="utf-8")]
    return lines


def test_bulk_inference_matches_predict(first_run, tmp_path):
    _, artifacts = first_run
    test_file = artifacts["ExampleGen"].path("text", "test.txt")
    sentences = open(test_file, encoding="utf-8").read().splitlines()
    extractor = RINTripleExtractor.from_preset(artifacts["Trainer"].uri)
    lines = _predictions(artifacts["BulkInferrer"].uri)
    assert sorted(r["text"] for r in lines) == sorted(sentences)
    expected = dict(zip(sentences, extractor.predict(sentences)))
    assert_same_triples([r["triples"] for r in lines], [expected[r["text"]] for r in lines])

    # A model of one epoch may find nothing at 0.5; with its relation head's output weights drawn at random it finds
    # triples in about half the cells, and its export must give the triples predict gives.
    head = extractor.model.get_layer("relation_head")
    head.output_kernel.assign(np.random.default_rng(0).normal(0, 3, head.output_kernel.shape).astype("float32"))
    head.output_bias.assign(np.zeros(head.output_bias.shape, "float32"))
    expected = dict(zip(sentences, extractor.predict(sentences)))
    path = export.export_version(extractor, str(tmp_path / "models"))
    counts = bulk_inferrer.run(bulk_inferrer.Config(max_batch_size=2), path, test_file, str(tmp_path / "out"))
    lines = _predictions(tmp_path / "out")
    assert counts == {"sentences": len(sentences), "triples": sum(map(len, expected.values())), "truncated": 0}
    assert counts["triples"] > len(sentences)
    assert_same_triples([r["triples"] for r in lines], [expected[r["text"]] for r in lines])

    # Files as `rin_keras.predict --input` reads them: a byte-order mark, `\r` line ends, a byte that is not UTF-8,
    # JSON lines; a text over the model's maximum of tokens is marked truncated.
    long_text = " ".join(["word"] * (extractor.max_length + 20))
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"\xef\xbb\xbf" + "\r".join([*sentences[:3], long_text]).encode() + b"\r\xffAlan Bean .\n")
    jsonl = tmp_path / "raw.jsonl"
    jsonl.write_text("".join(json.dumps({"text": s}) + "\n" for s in sentences[3:6]), encoding="utf-8")
    texts = [*predict.read_texts(str(raw)), *predict.read_texts(str(jsonl))]
    assert texts == [*sentences[:3], long_text, "\ufffdAlan Bean .", *sentences[3:6]]
    counts = bulk_inferrer.run(bulk_inferrer.Config(str(tmp_path / "raw.*"), max_batch_size=2), path, test_file,
                               str(tmp_path / "raw_out"))
    lines = _predictions(tmp_path / "raw_out")
    assert sorted(r["text"] for r in lines) == sorted(texts) and counts["truncated"] == 1
    expected = dict(zip(texts, extractor.predict_detailed(texts)))
    assert all(r["truncated"] == expected[r["text"]]["truncated"] for r in lines)
    assert_same_triples([r["triples"] for r in lines], [expected[r["text"]]["triples"] for r in lines])
    jsonl.write_text('{"text": "One."}\n{"txt": "Two."}\n', encoding="utf-8")
    with pytest.raises(predict.InputError, match=r"raw.jsonl:2: expected a JSON object with a \"text\" string"):
        bulk_inferrer.run(bulk_inferrer.Config(str(jsonl)), path, test_file, str(tmp_path / "bad_out"))


def test_rerun_reuses_then_new_model_is_version_2_and_threshold_refuses(first_run):
    config, artifacts = first_run
    with testing.dummy_checksums("webnlg"):
        again = rin_pipeline.run_pipeline(config)
        assert {k: v.uri for k, v in again.items()} == {k: v.uri for k, v in artifacts.items()}
        # In bfloat16, whose LSTM fails on a batch of no words (the dummy test split has an empty sentence).
        second = rin_pipeline.run_pipeline(dataclasses.replace(config, trainer=_trainer(7, "mixed_bfloat16")))
        assert keras.mixed_precision.global_policy().name == "float32"  # Set for the training only.
        assert second["ExampleGen"].uri == artifacts["ExampleGen"].uri
        assert second["Trainer"].uri != artifacts["Trainer"].uri
        assert second["Pusher"].properties["version"] == 2
        assert second["Evaluator"].properties["baseline_f1"] == artifacts["Evaluator"].properties["partial_f1"]
        # The same command again, now that its own model is the last blessed one: nothing runs, nothing is pushed.
        baseline = open(os.path.join(config.pipeline_root, rin_pipeline.BASELINE_FILE)).read()
        assert second["Trainer"].fingerprint in baseline
        with mock.patch.object(evaluator, "run", side_effect=AssertionError("the evaluation must be reused")):
            again = rin_pipeline.run_pipeline(dataclasses.replace(config, trainer=_trainer(7, "mixed_bfloat16")))
            assert {k: v.uri for k, v in again.items()} == {k: v.uri for k, v in second.items()}
            # The first model's command again: reused, and the last blessed model stays the second.
            assert rin_pipeline.run_pipeline(config)["Evaluator"].uri == artifacts["Evaluator"].uri
        assert open(os.path.join(config.pipeline_root, rin_pipeline.BASELINE_FILE)).read() == baseline
        refused = rin_pipeline.run_pipeline(dataclasses.replace(
            config, trainer=_trainer(7, "mixed_bfloat16"), evaluator=evaluator.Config(min_partial_f1=101.0)))
    assert not refused["Evaluator"].properties["blessed"]
    assert os.path.exists(refused["Evaluator"].path("NOT_BLESSED"))
    assert not refused["Pusher"].properties["pushed"] and "BulkInferrer" not in refused
    assert sorted(os.listdir(config.pusher.serving_base)) == ["1", "2"]


def test_a_reused_evaluation_is_not_pushed_again_over_a_better_model_blessed_since(first_run, tmp_path):
    config, artifacts = first_run
    root = tmp_path / "root"
    shutil.copytree(config.pipeline_root, root, ignore=shutil.ignore_patterns("serving"))
    config = dataclasses.replace(config, pipeline_root=str(root), pusher=pusher.Config(str(root / "serving")))
    f1 = artifacts["Evaluator"].properties["partial_f1"]
    better = {"model": "other", "fingerprint": "c" * 16, "partial_f1": f1 + config.evaluator.max_f1_drop + 1}
    (root / rin_pipeline.BASELINE_FILE).write_text(json.dumps(better))
    with testing.dummy_checksums("webnlg"), \
            mock.patch.object(evaluator, "run", side_effect=AssertionError("the evaluation must be reused")):
        again = rin_pipeline.run_pipeline(config)
    assert again["Evaluator"].properties["blessed"] and not again["Pusher"].properties["pushed"]
    assert "BulkInferrer" not in again and not (root / "serving").exists()
    # Against the baseline it was blessed on, the same evaluation pushes.
    (root / rin_pipeline.BASELINE_FILE).unlink()
    with testing.dummy_checksums("webnlg"):
        assert rin_pipeline.run_pipeline(config)["Pusher"].properties["version"] == 1


def _stop_evaluator_after_it_ran(root, name, config, inputs, executor, *args):
    """`run_component`, stopped as if killed after the Evaluator's work, before its artifact was recorded."""
    if name == "Evaluator":
        os.makedirs(os.path.join(root, "stopped-evaluation"))
        executor(os.path.join(root, "stopped-evaluation"))
        raise KeyboardInterrupt
    return run_component(root, name, config, inputs, executor, *args)


def test_a_model_blessed_again_under_other_thresholds_is_not_pushed_again(first_run, tmp_path):
    config, artifacts = first_run
    root = tmp_path / "root"
    shutil.copytree(config.pipeline_root, root, ignore=shutil.ignore_patterns("serving", rin_pipeline.BASELINE_FILE))
    data = tmp_path / "data"
    shutil.copytree(testing.dummy_dir("webnlg"), data)
    # The data read from another folder holding the same files: ExampleGen's artifact holds.
    config = dataclasses.replace(config, pipeline_root=str(root), pusher=pusher.Config(str(root / "serving")),
                                 example_gen=dataclasses.replace(config.example_gen, data_dir=str(data)))
    with testing.dummy_checksums("webnlg"), \
            mock.patch.object(example_gen, "run", side_effect=AssertionError("ExampleGen must be reused")):
        assert rin_pipeline.run_pipeline(config)["Pusher"].properties["version"] == 1
        other = {"model": "other", "fingerprint": "c" * 16, "partial_f1": 0.0}
        (root / rin_pipeline.BASELINE_FILE).write_text(json.dumps(other))
        looser = dataclasses.replace(config, evaluator=evaluator.Config(min_partial_f1=-1.0, max_f1_drop=100.0))
        # Stopped as the new evaluation is recorded: the rerun evaluates again and records its model as the baseline.
        with mock.patch.object(rin_pipeline, "write_atomically", side_effect=KeyboardInterrupt), \
                pytest.raises(KeyboardInterrupt):
            rin_pipeline.run_pipeline(looser)
        # Stopped after that: the rerun holds the model against the same baseline as before.
        with mock.patch.object(rin_pipeline, "run_component", side_effect=_stop_evaluator_after_it_ran), \
                pytest.raises(KeyboardInterrupt):
            rin_pipeline.run_pipeline(looser)
        with mock.patch.object(bulk_inferrer, "run", side_effect=AssertionError("the bulk inference must be reused")):
            again = rin_pipeline.run_pipeline(looser)
    assert again["Evaluator"].properties["baseline_f1"] == 0.0
    assert json.loads((root / rin_pipeline.BASELINE_FILE).read_text())["fingerprint"] == artifacts["Trainer"].fingerprint
    assert again["Evaluator"].uri != artifacts["Evaluator"].uri and again["Pusher"].properties["pushed"]
    assert again["Pusher"].properties["version"] == 1 and os.listdir(root / "serving") == ["1"]  # Not pushed again.


def test_a_root_reached_by_another_path_finds_its_push(first_run, tmp_path):
    """The Pusher's version folder names the model's file by its sha256: a copied root does not push it again."""
    config, artifacts = first_run
    version = artifacts["Pusher"].properties["path"]
    assert contract.export_source(version) == os.path.abspath(artifacts["Trainer"].uri)
    assert contract.export_source_digest(version) == export.model_digest(artifacts["Trainer"].uri)
    root = tmp_path / "copy"
    shutil.copytree(config.pipeline_root, root)
    copied = dataclasses.replace(config, pipeline_root=str(root), pusher=pusher.Config(str(root / "serving")))
    with testing.dummy_checksums("webnlg"), \
            mock.patch.object(pusher.export, "export_version", side_effect=AssertionError("must not export")):
        again = rin_pipeline.run_pipeline(copied)
    assert again["Pusher"].properties["version"] == 1
    assert sorted(os.listdir(root / "serving")) == sorted(os.listdir(config.pusher.serving_base))  # None added.


def test_an_export_source_may_name_a_folder_with_spaces(tmp_path):
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / contract.SOURCE_FILE).write_text("/runs/my run/ünï\n" + "a" * 64 + "\n", encoding="utf-8")
    assert contract.export_source(str(tmp_path)) == "/runs/my run/ünï"
    assert contract.export_source_digest(str(tmp_path)) == "a" * 64


def test_a_corrupt_record_of_the_root_is_named(tmp_path):
    first = run_component(str(tmp_path), "C", {}, {}, lambda out: {"n": 1})
    with open(first.path("artifact.json"), "r+", encoding="utf-8") as f:
        f.truncate(40)
    with pytest.raises(CorruptRecordError, match=rf"^{re.escape(first.path('artifact.json'))} does not read .*: "
                                                 rf"remove {re.escape(first.uri)} to run the component again"):
        run_component(str(tmp_path), "C", {}, {}, lambda out: {"n": 2})
    with mock.patch.object(local_runner, "config_from_flags"), mock.patch.object(local_runner, "check_inputs"), \
            mock.patch.object(local_runner, "run_pipeline", side_effect=CorruptRecordError("x.json does not read")):
        with pytest.raises(SystemExit, match=r"^pipelines.local_runner: x.json does not read$"):
            local_runner.main(["local_runner"])


def test_an_export_removes_the_temporary_folders_of_stopped_exports_on_its_host(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    names = [f".tmp-{host}-{gone.stdout.strip()}-7", f".tmp-{host}-{running.pid}-7", ".tmp-otherhost-1-7",
             f".tmp-{host}-{gone.stdout.strip()}-8", "6"]
    for name in names:
        (tmp_path / name).mkdir()
    try:
        with mock.patch.object(export, "export_saved_model",
                               side_effect=lambda extractor, path, **kwargs: os.mkdir(path)):
            export.export_version(None, str(tmp_path), 7)
    finally:
        running.kill()
    # A running export's, another host's and a version are left; stopped ones of this host, of any version, not.
    assert sorted(os.listdir(tmp_path)) == sorted([names[1], names[2], "6", "7"])


def test_only_resuming_components_continue_in_what_a_stopped_run_left(tmp_path):
    def stop(out):
        open(os.path.join(out, "beam-temp-1"), "w").close()
        raise KeyboardInterrupt

    def files(out):
        return {"files": sorted(os.listdir(out))}

    for resumes, left in ((False, []), (True, ["beam-temp-1"])):
        with pytest.raises(KeyboardInterrupt):
            run_component(str(tmp_path), f"C{resumes}", {}, {}, stop, resumes=resumes)
        assert run_component(str(tmp_path), f"C{resumes}", {}, {}, files, resumes=resumes).properties == {
            "files": left}


def test_a_new_builder_version_makes_a_new_example_gen_run(first_run, monkeypatch):
    config, artifacts = first_run
    assert example_gen.outside_inputs(config.example_gen)["builder_version"] == str(tfds.builder_cls("webnlg").VERSION)
    monkeypatch.setattr(tfds.builder_cls("webnlg"), "VERSION", tfds.core.Version("1.9.0"))
    with testing.dummy_checksums("webnlg"), mock.patch.object(example_gen, "run", side_effect=KeyboardInterrupt) as run, \
            pytest.raises(KeyboardInterrupt):
        rin_pipeline.run_pipeline(config)
    assert run.call_args.args[1] != artifacts["ExampleGen"].uri + ".partial"


def test_pusher_stopped_after_its_version_was_renamed_into_place_does_not_push_again(tmp_path):
    def export_version(extractor, base, version, source, **kwargs):  # The rename, then a stop before the record.
        os.makedirs(os.path.join(base, str(version), "assets.extra"))
        with open(os.path.join(base, str(version), contract.SOURCE_FILE), "w", encoding="utf-8") as f:
            f.write(os.path.abspath(source) + "\n")  # As `export_saved_model` writes it.
        raise KeyboardInterrupt

    config, out = pusher.Config(str(tmp_path / "serving")), str(tmp_path / "Pusher.partial")
    os.makedirs(out)
    with mock.patch.object(pusher.RINTripleExtractor, "from_preset"), \
            mock.patch.object(pusher.export, "export_version", side_effect=export_version) as export:
        with pytest.raises(KeyboardInterrupt):
            pusher.run(config, "model", True, out)
        assert pusher.run(config, "model", True, out) == {
            "pushed": True, "version": 1, "path": str(tmp_path / "serving" / "1")}
        assert export.call_count == 1
        # A version folder removed since (or never renamed into place): the next push exports again.
        shutil.rmtree(tmp_path / "serving" / "1")
        os.makedirs(tmp_path / "serving" / "4")
        with pytest.raises(KeyboardInterrupt):
            pusher.run(config, "model", True, out)
        assert export.call_args.args[2] == 5
        # Stopped before its export, and the recorded number taken meanwhile by another pipeline's model: this
        # model is pushed as the next version, not reported as that one.
        with open(os.path.join(out, "pushed_path.txt"), "w", encoding="utf-8") as f:
            f.write(str(tmp_path / "serving" / "6") + "\n")
        other = str(tmp_path / "Other.partial")
        os.makedirs(other)
        with pytest.raises(KeyboardInterrupt):
            pusher.run(config, "other_model", True, other)
        assert pusher.run(config, "other_model", True, other)["version"] == 6
        # The folder its stopped push renamed into place (5) holds this model: reported, not pushed again.
        exports = export.call_count
        assert pusher.run(config, "model", True, out)["version"] == 5 and export.call_count == exports
        shutil.rmtree(tmp_path / "serving" / "5")  # Without it, the next version.
        with pytest.raises(KeyboardInterrupt):
            pusher.run(config, "model", True, out)
        assert export.call_args.args[2] == 7


def test_a_component_runs_again_where_its_artifact_no_longer_holds(tmp_path):
    runs = []

    def executor(out):
        runs.append(out)
        return {"run": len(runs)}

    first = run_component(str(tmp_path), "Pusher", {}, {}, executor)
    assert run_component(str(tmp_path), "Pusher", {}, {}, executor, lambda a: True).uri == first.uri
    again = run_component(str(tmp_path), "Pusher", {}, {}, executor, lambda a: a.properties["run"] > 1)
    assert again.uri == first.uri and again.properties == {"run": 2} and len(runs) == 2
    assert Artifact.load(first.uri).properties == {"run": 2}
    # The pipeline's Pusher: a push whose version folder was removed, or holds another model since, does not hold.
    version = tmp_path / "serving" / "3"
    (version / "assets.extra").mkdir(parents=True)
    pushed = Artifact("Pusher", "", "", {"pushed": True, "version": 3, "path": str(version)})
    assert pusher.still_pushed(pushed, "model")  # Exported before exports named their source.
    assert pusher.still_pushed(Artifact("Pusher", "", "", {"pushed": False}), "model")
    (version / contract.SOURCE_FILE).write_text(os.path.abspath("model") + "\n")
    assert pusher.still_pushed(pushed, "model") and not pusher.still_pushed(pushed, "other_model")
    shutil.rmtree(version)
    assert not pusher.still_pushed(pushed, "model")


def test_bulk_inferrer_runs_again_when_its_input_file_changes(first_run, tmp_path):
    config, artifacts = first_run
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("Alan Bean was born in Wheeler , Texas .\n", encoding="utf-8")
    config = dataclasses.replace(config, bulk_inferrer=bulk_inferrer.Config(str(inputs), max_batch_size=2))
    with testing.dummy_checksums("webnlg"):
        before = rin_pipeline.run_pipeline(config)["BulkInferrer"]
        inputs.write_text("Acharya Institute of Technology is in Bangalore , India .\n", encoding="utf-8")
        after = rin_pipeline.run_pipeline(config)
    assert after["Trainer"].uri == artifacts["Trainer"].uri and after["BulkInferrer"].uri != before.uri
    assert [r["text"] for r in _predictions(after["BulkInferrer"].uri)] == [
        "Acharya Institute of Technology is in Bangalore , India ."]


def test_trainer_runs_again_when_its_vectors_file_changes(first_run, tmp_path):
    config, artifacts = first_run
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("alan 0.1 0.2\nbean 0.3 0.4\n", encoding="utf-8")
    config = dataclasses.replace(config, trainer=dataclasses.replace(config.trainer, word_vectors=str(vectors)))

    def trainer_folder():  # The Trainer's output folder (named by its fingerprint), without training.
        with testing.dummy_checksums("webnlg"), mock.patch.object(trainer, "run", side_effect=KeyboardInterrupt) as run, \
                pytest.raises(KeyboardInterrupt):
            rin_pipeline.run_pipeline(config)
        return run.call_args.args[2]

    before = trainer_folder()
    assert trainer_folder() == before
    vectors.write_text("alan 0.1 0.2\nbean 0.3 0.5\n", encoding="utf-8")
    assert trainer_folder() != before  # A new fingerprint: the Trainer trains again.


def test_trainer_refuses_examples_of_another_builder_config(first_run, tmp_path):
    _, artifacts = first_run
    examples = tmp_path / "examples"
    shutil.copytree(artifacts["ExampleGen"].uri, examples)
    splits = json.loads((examples / "splits.json").read_text())
    (examples / "splits.json").write_text(json.dumps({**splits, "name": "webnlg3/exact_heldout/1.2.0"}))
    with mock.patch.object(trainer.train, "train", side_effect=AssertionError("must not train")):
        with pytest.raises(ValueError, match="the examples are webnlg3/exact_heldout/1.2.0, but the model's config "
                                             "asks for webnlg3/exact"):
            trainer.run(_trainer(1), str(examples), str(tmp_path / "model"))


def test_trainer_reads_back_a_run_that_finished_before_it_was_recorded(first_run, tmp_path):
    config, artifacts = first_run
    partial = tmp_path / "Trainer" / "fingerprint.partial"  # Killed after training, before the rename.
    shutil.copytree(artifacts["Trainer"].uri, partial)
    with mock.patch.object(trainer.train, "train", side_effect=AssertionError("the finished run must be reused")):
        properties = trainer.run(config.trainer, artifacts["ExampleGen"].uri, str(partial))
    assert set(properties) == {"best_epoch", "validation_partial_f1", "test_partial_f1"}
    assert properties == {k: artifacts["Trainer"].properties[k] for k in properties}


def test_failed_component_keeps_earlier_artifacts_and_rerun_continues(tmp_path):
    config = _config(tmp_path / "root", tmp_path / "tfds", min_f1=101.0)
    with testing.dummy_checksums("webnlg"):
        with mock.patch.object(trainer, "run", side_effect=RuntimeError("out of memory")):
            with pytest.raises(RuntimeError):
                rin_pipeline.run_pipeline(config)
        finished = sorted(os.listdir(tmp_path / "root"))
        assert finished == ["ExampleGen", "StatisticsGen", "Trainer"]
        assert not any(n.endswith(".partial") for n in os.listdir(tmp_path / "root" / "ExampleGen"))
        example_uri = glob.glob(str(tmp_path / "root" / "ExampleGen" / "*"))[0]
        with mock.patch.object(example_gen, "run", side_effect=AssertionError("ExampleGen must be reused")):
            artifacts = rin_pipeline.run_pipeline(config)
    assert artifacts["ExampleGen"].uri == example_uri
    assert os.path.exists(artifacts["Trainer"].path("best.keras"))


def test_runner_flags_give_the_trainer_rin_keras_train_settings():
    flag_values = flags.FlagValues()
    local_runner.define_flags(flag_values)
    flag_values(["local_runner", "--dataset=webnlg3", "--lr_schedule=cosine", "--epochs=3", "--char_dim=0",
                 "--patience=5", "--direct_num_workers=2"], known_only=True)
    config = local_runner.config_from_flags(flag_values)
    assert (config.example_gen.dataset, config.example_gen.builder_config) == ("webnlg3", "exact")  # its default
    trained = RINConfig.for_dataset("webnlg3", variant="exact", **config.trainer.hyperparameters)
    assert (trained.lr_schedule, trained.epochs, trained.char_dim, trained.rounds) == ("cosine", 3, 0, 3)
    assert trained == RINConfig.for_dataset("webnlg3", lr_schedule="cosine", epochs=3, char_dim=0)
    assert config.trainer.patience == 5 and config.pipeline_root == os.path.join("pipeline_runs", "webnlg3_exact")
    assert (config.trainer.word_vectors, config.trainer.pretrained_vectors) == ("word2vec", "glove")
    flag_values(["local_runner", "--dataset=webnlg", "--variant=partial", "--rounds=2"], known_only=True)
    config = local_runner.config_from_flags(flag_values)
    assert config.example_gen.builder_config == "partial" and config.trainer.hyperparameters["rounds"] == 2
    assert "variant" not in config.trainer.hyperparameters
    # A flag set to the dataset's default makes the same Trainer as the flag left out.
    flag_values = flags.FlagValues()
    local_runner.define_flags(flag_values)
    flag_values(["local_runner", "--dataset=webnlg", "--rounds=2", "--epochs=150", "--lr_schedule=constant"],
                known_only=True)
    assert local_runner.config_from_flags(flag_values).trainer.hyperparameters == {"rounds": 2}
    # Held-out categories reach ExampleGen (the builder config) and the Trainer; the vector and dtype flags too.
    flag_values = flags.FlagValues()
    local_runner.define_flags(flag_values)
    flag_values(["local_runner", "--dataset=webnlg3", "--heldout_categories", "--pretrained_vectors=none",
                 "--word_vectors=random", "--mixed_precision=mixed_bfloat16"], known_only=True)
    config = local_runner.config_from_flags(flag_values)
    assert config.example_gen.builder_config == "exact_heldout"
    assert config.pipeline_root == os.path.join("pipeline_runs", "webnlg3_exact_heldout")
    assert config.trainer.hyperparameters["heldout_categories"] and config.trainer.hyperparameters["pretrained_dim"] == 0
    assert (config.trainer.word_vectors, config.trainer.pretrained_vectors, config.trainer.mixed_precision) == (
        "random", "none", "mixed_bfloat16")


def test_runner_checks_the_train_split_and_the_inference_input_before_any_work(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(testing.dummy_dir("nyt"), data)  # Without train_triples.json, as published here.
    flag_values = flags.FlagValues()
    local_runner.define_flags(flag_values)
    with mock.patch.object(local_runner, "FLAGS", flag_values), \
            mock.patch.object(local_runner, "run_pipeline", side_effect=AssertionError("must not run")):
        flag_values(["local_runner", "--dataset=nyt", f"--data_dir={data}", f"--tfds_data_dir={tmp_path / 'tfds'}"],
                    known_only=True)
        with pytest.raises(SystemExit, match=r"^pipelines.local_runner: nyt/partial/[0-9.]+ has no 'train' split: "
                                             r".*nyt_star/train_triples.json is missing"):
            local_runner.main(["local_runner"])
        flag_values(["local_runner", "--dataset=webnlg", f"--data_dir={testing.dummy_dir('webnlg')}",
                     f"--inference_input={tmp_path / 'none*.txt'}"], known_only=True)
        with pytest.raises(SystemExit, match=r"^pipelines.local_runner: --inference_input: no file matches"):
            local_runner.main(["local_runner"])
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"text": "One ."}\n{"txt": "Two ."}\n', encoding="utf-8")
        flag_values["inference_input"].value = str(bad)
        with pytest.raises(SystemExit, match=r"^pipelines.local_runner: .*bad.jsonl:2: expected a JSON object"):
            local_runner.main(["local_runner"])
        flag_values["inference_input"].value = None
        for flag in ("pipeline_root", "serving_base"):
            flag_values[flag].value = str(bad)
            with pytest.raises(SystemExit, match=rf"^pipelines.local_runner: --{flag}=.*bad.jsonl is a file"):
                local_runner.main(["local_runner"])
            flag_values[flag].value = None
    # Part of ExampleGen's fingerprint: adding the train file makes a new run.
    assert example_gen.outside_inputs(example_gen.Config("nyt", "partial", str(data), str(tmp_path / "tfds")))[
        "published_splits"] == ["validation", "test"]


def test_runner_refuses_flags_that_neither_it_nor_beam_reads():
    assert local_runner.unknown_to_beam(["--direct_num_workers=2", "--direct_running_mode", "multi_processing",
                                         "--runner=DirectRunner", "--no_save_main_session"]) == []
    assert local_runner.unknown_to_beam(["--epoch=1", "--direct_num_workers=2", "stray"]) == ["--epoch=1", "stray"]
    with mock.patch.object(local_runner, "run_pipeline", side_effect=AssertionError("must not run")):
        with pytest.raises(SystemExit, match=r"^pipelines.local_runner: --dataset_dir=mydata: neither a flag of this "
                                             r"runner \(--helpfull\) nor a Beam pipeline option\. The pipeline runs "
                                             r"on a benchmark"):
            local_runner.main(["local_runner", "--dataset_dir=mydata"])
        with pytest.raises(SystemExit, match=r"^pipelines.local_runner: Beam option argument --direct_num_workers: "
                                             r"invalid int value: 'two'$"):
            local_runner.main(["local_runner", "--direct_num_workers=two"])
    flag_values = flags.FlagValues()
    local_runner.define_flags(flag_values)
    for flag in ("--max_train_sentences=0", "--patience=0", "--num_shards=0", "--min_partial_f1=200",
                 "--min_partial_f1=-1", "--max_f1_drop=-5"):
        with pytest.raises(flags.IllegalFlagValueError):
            flag_values(["local_runner", flag], known_only=True)

