"""Compares training runs: a markdown table, and optionally F1 against one hyper-parameter as a PNG.

    python benchmarks/compare_runs.py --epochs=20 --x=rounds --plot=docs/webnlg_rounds.png \\
        --model_dirs=runs/sweep_k1,runs/sweep_k2,runs/webnlg_partial_k3,runs/sweep_k4,runs/sweep_k5

`--series=updater` draws one line per updater (the paper's Figure 3: GRU against
vanilla RNN updaters for K = 1..5).

Each run is judged at the same budget: its best dev F1 (of the variant's scorer,
the one that selects the model) within the first `--epochs` epochs. Test scores
come from `results.json` (written when a run ends) or the test scores of
`python -m rin_keras.evaluate` (`evaluation_test.json`; for a run on a folder of your own, that folder's); when
the run's chosen epoch lies past the budget, the cell says which epoch they belong to and the plot leaves them
out. Runs still in progress are compared on the epochs they have (a run in its first epoch on none). Runs on
different data say so (`data=`: the benchmark and variant, or the folder).
"""

import dataclasses
import json
import os

from absl import app, flags

from rin_keras import RINConfig, cli, evaluate
from rin_keras.callbacks import history_rows
from rin_keras.train import DATA_FILE, run_data_folder

FLAGS = flags.FLAGS
flags.DEFINE_list("model_dirs", None, "Training output folders to compare.")
flags.DEFINE_integer("epochs", None, "Epoch budget (default: every logged epoch).", lower_bound=1)
flags.DEFINE_string("x", None, "Config key for the plot's x axis (e.g. rounds).")
flags.DEFINE_string("plot", None, "PNG to write (needs --x).")
flags.DEFINE_string("series", None, "Config key that splits the plot into one line per value (e.g. updater).")
flags.mark_flag_as_required("model_dirs")
cli.register_path_check("model_dirs", cli.training_run)

# Config keys that tell runs apart in the table (the rest are shared defaults).
_DESCRIBED = ("data", "variant", "encoder", "rounds", "updater", "use_relation_input", "use_entity_input",
              "use_hidden_input", "task_features", "seed")


def load_run(model_dir: str, budget: int | None) -> dict:
    """Reads one run's config, dev history and test scores.

    Returns:
        dict with `config` (and `config["data"]`, what the run trains on, where its folder says), `epochs` (logged;
        an epoch trained again after a stop counts once), `dev_f1` and `dev_epoch` (best within the budget,
        1-based; None before the first epoch ends), `test` (scores of the chosen model, or None: not scored yet,
        or, with `scored`, a run without a test split) and `test_epoch`.
    """
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = {**dataclasses.asdict(RINConfig()), **json.load(f)}  # Older runs lack newer keys.
    data_file = os.path.join(model_dir, DATA_FILE)
    if os.path.exists(data_file):
        with open(data_file, encoding="utf-8") as f:
            config["data"] = f.read().strip()
    monitor = f"val_{config['variant']}_f1"
    rows = history_rows(os.path.join(model_dir, "history.csv"), monitor)
    run = {"dir": model_dir, "config": config, "epochs": len(rows), "dev_f1": None, "dev_epoch": None,
           "test": None, "test_epoch": None, "scored": False}
    if not rows:
        return run
    best = max([r for r in rows if not budget or int(r["epoch"]) < budget], key=lambda r: float(r[monitor]))
    run["dev_f1"], run["dev_epoch"] = float(best[monitor]), int(best["epoch"]) + 1
    results = os.path.join(model_dir, "results.json")
    if config["dataset"] == "custom" and config.get("data"):
        folder = run_data_folder(config["data"])
        evaluation = evaluate.report_of(model_dir, evaluate.folder_report_names(folder, "test"), folder)
    else:
        evaluation = "evaluation_test"
    if os.path.exists(results):
        with open(results, encoding="utf-8") as f:
            saved = json.load(f)
        run["test"], run["test_epoch"], run["scored"] = saved.get("test"), saved["best_epoch"], True
    elif evaluation and os.path.exists(os.path.join(model_dir, evaluation + ".json")):
        with open(os.path.join(model_dir, evaluation + ".json"), encoding="utf-8") as f:
            run["test"] = json.load(f)
        run["test_epoch"] = 1 + int(max(rows, key=lambda r: float(r[monitor]))["epoch"])
    return run


def describe(config: dict, others: list[dict]) -> str:
    """The config values that differ between the compared runs (those of `_DESCRIBED` first)."""
    differ = {k for o in others for k in o if len({str(c.get(k)) for c in others}) > 1}
    keys = [k for k in _DESCRIBED if k in differ] + sorted(differ - set(_DESCRIBED))
    return ", ".join(f"{k}={config.get(k)}" for k in keys) or "(same config)"


def table(runs: list[dict], budget: int | None) -> str:
    """A markdown table of the runs."""
    configs = [r["config"] for r in runs]
    lines = [
        f"| run | setting | epochs logged | best dev F1{f' (<= {budget} epochs)' if budget else ''} | test partial F1 "
        "| test exact F1 |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        test = run["test"]
        if run["dev_f1"] is None:
            partial = exact = "(no epoch yet)"
        elif test is None:
            partial = exact = "(no test split)" if run["scored"] else "(not scored yet)"
        elif budget and run["test_epoch"] > budget:
            partial, exact = (f"{test[k]['f1']:.2f} (epoch {run['test_epoch']})" for k in ("partial", "exact"))
        else:
            partial, exact = f"{test['partial']['f1']:.2f}", f"{test['exact']['f1']:.2f}"
        dev = "(no epoch yet)" if run["dev_f1"] is None else f"{run['dev_f1']:.2f} (epoch {run['dev_epoch']})"
        lines.append(f"| {os.path.basename(run['dir'].rstrip('/'))} | {describe(run['config'], configs)} | "
                     f"{run['epochs']} | {dev} | {partial} | {exact} |")
    return "\n".join(lines)


def curves(runs: list[dict], key: str, budget: int | None, series: str | None = None) -> dict[str, dict]:
    """The points to plot: per series value (one "" series without `series`), and per variant where the runs
    differ in it (each run's F1 is of its variant's scorer), x values with dev and test F1.

    Returns:
        {label: {"x": [...], "dev": [...], "test_x": [...], "test": [...], "variant": ...}}; test points only for
        runs scored inside the budget.
    """
    mixed = len({r["config"]["variant"] for r in runs}) > 1
    lines = {}
    for run in sorted((r for r in runs if r["dev_f1"] is not None), key=lambda r: r["config"][key]):
        variant = run["config"]["variant"]
        label = ", ".join(([f"{series}={run['config'][series]}"] if series else []) +
                          ([f"variant={variant}"] if mixed else []))
        line = lines.setdefault(label, {"x": [], "dev": [], "test_x": [], "test": [], "variant": variant})
        line["x"].append(run["config"][key])
        line["dev"].append(run["dev_f1"])
        if run["test"] and not (budget and run["test_epoch"] > budget):
            line["test_x"].append(run["config"][key])
            line["test"].append(run["test"][run["config"]["variant"]]["f1"])
    return lines


def plot(runs: list[dict], key: str, budget: int | None, png: str, series: str | None = None) -> None:
    """Dev F1 (and test F1 where inside the budget) against `config[key]`, one line pair per series value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, line in curves(runs, key, budget, series).items():
        prefix = f"{label}: " if label else ""
        print(f"{prefix}{key} {', '.join(map(str, line['x']))} -> best dev F1 "
              f"{', '.join(f'{v:.2f}' for v in line['dev'])}")
        dev = ax.plot(line["x"], line["dev"], marker="o", label=f"{prefix}best dev F1")
        if line["test"]:
            ax.plot(line["test_x"], line["test"], marker="s", linestyle="--", color=dev[0].get_color(),
                    label=f"{prefix}test {line['variant']} F1")
    ax.set_xlabel(key)
    ax.set_xticks(sorted({r["config"][key] for r in runs}))
    ax.set_ylabel("F1 (%)")
    ax.set_title(f"{runs[0]['config']['dataset']}" + (f", {budget} epochs" if budget else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(argv):
    del argv
    if FLAGS.plot and not FLAGS.x:
        raise app.UsageError("--plot needs --x.")
    if FLAGS.series and not FLAGS.plot:
        raise app.UsageError("--series needs --plot.")
    runs = [load_run(d, FLAGS.epochs) for d in FLAGS.model_dirs]
    for key in (FLAGS.x, FLAGS.series) if FLAGS.plot else ():
        missing = [d for d, run in zip(FLAGS.model_dirs, runs) if key and key not in run["config"]]
        if missing:
            raise app.UsageError(f"{key!r} is no config key of {', '.join(missing)} (keys: "
                                 f"{', '.join(sorted(runs[0]['config']))}).")
    print(table(runs, FLAGS.epochs))
    if FLAGS.plot:
        plot(runs, FLAGS.x, FLAGS.epochs, FLAGS.plot, FLAGS.series)
        print(f"wrote {FLAGS.plot}")


if __name__ == "__main__":
    app.run(main)
