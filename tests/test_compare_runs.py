"""benchmarks/compare_runs.py on two hand-made run folders."""

import csv
import json
import os
import subprocess
import sys

from rin_keras import evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scores(partial, exact):
    return {"partial": {"f1": partial}, "exact": {"f1": exact}}


def _run(folder, rounds, dev_f1, test=None, best_epoch=None, results_file="results.json", updater="gru", **config):
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"dataset": "webnlg", "variant": "partial", "rounds": rounds, "updater": updater, **config}, f)
    with open(os.path.join(folder, "history.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "val_partial_f1", "val_exact_f1"])
        writer.writeheader()
        writer.writerows({"epoch": i, "val_partial_f1": v, "val_exact_f1": v - 1} for i, v in enumerate(dev_f1))
    if test:
        saved = {"test": test, "best_epoch": best_epoch} if results_file == "results.json" else test
        with open(os.path.join(folder, results_file), "w") as f:
            json.dump(saved, f)


def _compare(*flags) -> str:
    """The output of `benchmarks/compare_runs.py` with `flags`."""
    return subprocess.run([sys.executable, "benchmarks/compare_runs.py", *flags], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


def _rows(output: str) -> dict[str, list[str]]:
    """The cells of each run's row of the table, by run folder name."""
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in output.splitlines() if line.startswith("| ") and not line.startswith("| run ")}


def test_table_and_plot_at_an_epoch_budget(tmp_path):
    _run(tmp_path / "k1", 1, [10.0, 60.0, 50.0], _scores(58.0, 55.0), best_epoch=2)
    _run(tmp_path / "k3", 3, [20.0, 40.0, 70.0, 30.0, 90.0], _scores(88.0, 86.0), results_file="evaluation_test.json")
    png = tmp_path / "plots" / "rounds.png"  # A folder made for it.
    rows = _rows(_compare(f"--model_dirs={tmp_path / 'k1'},{tmp_path / 'k3'}", "--epochs=3", "--x=rounds",
                          f"--plot={png}"))
    assert rows["k1"] == ["rounds=1", "3", "60.00 (epoch 2)", "58.00", "55.00"]
    # The k3 run's best epoch (5) lies past the 3-epoch budget: its dev F1 is the best of epochs 1-3,
    # and its test scores are labelled with the epoch they belong to.
    assert rows["k3"] == ["rounds=3", "5", "70.00 (epoch 3)", "88.00 (epoch 5)", "86.00 (epoch 5)"]
    assert png.stat().st_size > 0


def test_one_line_per_series(tmp_path):
    _run(tmp_path / "gru_k3", 3, [70.0], _scores(68.0, 66.0), best_epoch=1)
    _run(tmp_path / "gru_k1", 1, [60.0], _scores(58.0, 55.0), best_epoch=1)
    _run(tmp_path / "rnn_k1", 1, [50.0], updater="rnn")
    png = tmp_path / "updaters.png"
    output = _compare("--x=rounds", "--series=updater", f"--plot={png}",
                      "--model_dirs=" + ",".join(str(tmp_path / name) for name in ("gru_k3", "gru_k1", "rnn_k1")))
    assert "updater=gru: rounds 1, 3 -> best dev F1 60.00, 70.00" in output
    assert "updater=rnn: rounds 1 -> best dev F1 50.00" in output
    assert "| rnn_k1 | rounds=1, updater=rnn |" in output
    assert png.stat().st_size > 0


def test_an_epoch_trained_again_counts_once_and_a_run_without_test_split_says_so(tmp_path):
    _run(tmp_path / "resumed", 3, [50.0, 60.0, 62.0, 80.0], _scores(78.0, 75.0), best_epoch=4)
    with open(tmp_path / "resumed" / "history.csv", "a", newline="") as f:
        csv.writer(f).writerow([1, 61.0, 60.0])  # Epoch 2 trained again after a stop, logged after epoch 4.
    _run(tmp_path / "no_test", 1, [40.0, 45.0], hidden_dim=50)
    with open(tmp_path / "no_test" / "results.json", "w") as f:
        json.dump({"validation": _scores(45.0, 44.0), "best_epoch": 2}, f)  # A folder of data without test.
    rows = _rows(_compare("--epochs=4", f"--model_dirs={tmp_path / 'resumed'},{tmp_path / 'no_test'}"))
    assert rows["resumed"] == ["rounds=3, hidden_dim=100", "4", "80.00 (epoch 4)", "78.00", "75.00"]
    assert rows["no_test"] == ["rounds=1, hidden_dim=50", "2", "45.00 (epoch 2)", "(no test split)", "(no test split)"]


def test_a_run_in_its_first_epoch_and_runs_on_folders_of_your_own(tmp_path):
    _run(tmp_path / "started", 3, [])  # Its history.csv holds no epoch yet.
    # As rin_keras.train records a folder, and as it did before it added the files' digest.
    for name, data in (("ours_a", f"{tmp_path / 'a' / 'mydata'} (files 0123456789ab)"),
                       ("ours_b", tmp_path / "b" / "mydata")):
        _run(tmp_path / name, 3, [50.0], dataset="custom", variant="exact")
        (tmp_path / name / "data.txt").write_text(str(data) + "\n")
    # ours_a was scored by rin_keras.evaluate on its folder, and on another folder of the same name.
    with open(tmp_path / "ours_a" / "evaluation_mydata_test.json", "w") as f:
        json.dump({**_scores(42.0, 41.0), "data": str(tmp_path / "b" / "mydata")}, f)
    with open(tmp_path / "ours_a" / f"{evaluate.folder_report_names(str(tmp_path / 'a' / 'mydata'), 'test')[1]}.json",
              "w") as f:
        json.dump({**_scores(33.0, 32.0), "data": str(tmp_path / "a" / "mydata")}, f)
    rows = _rows(_compare("--model_dirs=" + ",".join(str(tmp_path / n) for n in ("started", "ours_a", "ours_b"))))
    assert rows["started"][2:] == ["(no epoch yet)"] * 3 and rows["started"][1] == "0"
    assert rows["ours_a"] == [f"data={tmp_path / 'a' / 'mydata'} (files 0123456789ab), variant=exact, dataset=custom",
                              "1", "49.00 (epoch 1)", "33.00", "32.00"]
    assert rows["ours_b"][3:] == ["(not scored yet)"] * 2


def test_runs_of_two_variants_plot_as_two_lines(tmp_path):
    """Each run's F1 is of its own variant's scorer: partial and exact runs are not joined into one line."""
    _run(tmp_path / "partial_k1", 1, [60.0], _scores(58.0, 30.0), best_epoch=1)
    _run(tmp_path / "exact_k3", 3, [71.0], _scores(80.0, 69.0), best_epoch=1, variant="exact")
    png = tmp_path / "variants.png"
    output = _compare("--x=rounds", f"--plot={png}",
                      "--model_dirs=" + ",".join(str(tmp_path / name) for name in ("partial_k1", "exact_k3")))
    assert "variant=partial: rounds 1 -> best dev F1 60.00" in output
    assert "variant=exact: rounds 3 -> best dev F1 70.00" in output  # val_exact_f1, one below the partial column.
    assert png.stat().st_size > 0
