"""StatisticsGen: one Beam pass over ExampleGen's shards -> statistics.json and PNG plots.

Per split: sentence length histogram, triples per sentence, relation frequencies,
overlap categories (Normal / SingleEntityOverlap / EntityPairOverlap), and the
rate of tokens outside the train-split vocabulary.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os

import apache_beam as beam

from rin_keras.data.corpus import RecordCorpus

STATISTICS_FILE = "statistics.json"


@dataclasses.dataclass
class Config:
    """StatisticsGen settings.

    Attributes:
        top_relations: relations shown in the frequency plot.
    """

    top_relations: int = 30


class _Summarise(beam.DoFn):
    """Serialized example -> (length, triples, relation names, overlap category, tokens)."""

    def __init__(self, examples_dir: str):
        self._examples_dir = examples_dir

    def setup(self):
        self._corpus = RecordCorpus(self._examples_dir)
        self._relations = self._corpus.relation_names

    def process(self, record: bytes):
        from rin_keras.metrics import gold_triples, overlap_category

        example = self._corpus.features.deserialize_example_np(record)
        triples = gold_triples(example)
        yield {
            "tokens": [t.decode("utf-8") for t in example["tokens"]],
            "relations": [self._relations[t.relation] for t in triples],
            "overlap": overlap_category(triples),
        }


class _SplitStatistics(beam.CombineFn):
    """Counts over one split's summaries; the train vocabulary arrives as a side input."""

    def create_accumulator(self, *args):
        return {"sentences": 0, "tokens": 0, "oov_tokens": 0, "length": collections.Counter(),
                "triples": collections.Counter(), "relation": collections.Counter(), "overlap": collections.Counter()}

    def add_input(self, acc, summary, train_words):
        acc["sentences"] += 1
        acc["tokens"] += len(summary["tokens"])
        acc["oov_tokens"] += sum(token not in train_words for token in summary["tokens"])
        acc["length"][len(summary["tokens"])] += 1
        acc["triples"][len(summary["relations"])] += 1
        acc["relation"].update(summary["relations"])
        acc["overlap"][summary["overlap"]] += 1
        return acc

    def merge_accumulators(self, accumulators, *args):
        merged = self.create_accumulator()
        for acc in accumulators:
            for key, value in acc.items():
                merged[key] += value
        return merged

    def extract_output(self, acc, *args):
        return {
            "sentences": acc["sentences"],
            "tokens": acc["tokens"],
            "oov_rate": acc["oov_tokens"] / max(acc["tokens"], 1),
            "length_histogram": dict(sorted(acc["length"].items())),
            "triples_per_sentence": dict(sorted(acc["triples"].items())),
            "relation_frequencies": dict(acc["relation"].most_common()),
            "overlap_categories": dict(sorted(acc["overlap"].items())),
        }


def run(config: Config, examples_dir: str, output_dir: str, beam_options=None) -> dict:
    """Writes statistics.json and plots; returns sentence counts and OOV rates."""
    corpus = RecordCorpus(examples_dir)
    splits = list(corpus.info["splits"])
    results = os.path.join(output_dir, "parts")
    with beam.Pipeline(options=beam_options) as pipeline:
        summaries = {
            split: pipeline
            | f"Read[{split}]" >> beam.io.ReadFromTFRecord(os.path.join(examples_dir, "data", f"{split}-*"))
            | f"Summarise[{split}]" >> beam.ParDo(_Summarise(examples_dir))
            for split in splits
        }
        train_words = (
            summaries["train"]
            | "TrainWords" >> beam.FlatMap(lambda s: s["tokens"])
            | "AsSet" >> beam.combiners.ToSet()
        ) if "train" in summaries else pipeline | "NoTrain" >> beam.Create([set()])
        for split, summary in summaries.items():
            _ = (
                summary
                | f"Count[{split}]" >> beam.CombineGlobally(_SplitStatistics(), beam.pvalue.AsSingleton(train_words))
                | f"Json[{split}]" >> beam.Map(lambda stats, split=split: json.dumps({split: stats}))
                | f"Write[{split}]" >> beam.io.WriteToText(os.path.join(results, split), shard_name_template="")
            )
    statistics = {"name": corpus.name}
    for split in splits:
        with open(os.path.join(results, split), encoding="utf-8") as f:
            statistics.update(json.loads(f.read()))
    with open(os.path.join(output_dir, STATISTICS_FILE), "w", encoding="utf-8") as f:
        json.dump(statistics, f, indent=2)
    _plot(statistics, splits, config.top_relations, output_dir)
    return {split: {"sentences": statistics[split]["sentences"], "oov_rate": round(statistics[split]["oov_rate"], 4)}
            for split in splits}


def _plot(statistics: dict, splits: list[str], top: int, output_dir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for split in splits:
        lengths = statistics[split]["length_histogram"]
        axes[0].plot([int(k) for k in lengths], list(lengths.values()), label=split)
        triples = statistics[split]["triples_per_sentence"]
        axes[1].plot([int(k) for k in triples], list(triples.values()), marker="o", label=split)
    axes[0].set(xlabel="tokens per sentence", ylabel="sentences")
    axes[1].set(xlabel="triples per sentence", ylabel="sentences")
    for ax in axes:
        ax.legend()
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "lengths_and_triples.png"), dpi=90)
    plt.close(fig)

    split = "train" if "train" in statistics else splits[0]
    frequent = list(statistics[split]["relation_frequencies"].items())[:top]
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(frequent) + 1))
    ax.barh([name for name, _ in reversed(frequent)], [count for _, count in reversed(frequent)])
    ax.set(xlabel=f"triples in {split}", title=f"{len(frequent)} most frequent relations")
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "relation_frequencies.png"), dpi=90)
    plt.close(fig)
