"""Real text: tokeniser fidelity and speed, and a model's F1 on unseen categories, tokenised and raw.

    python benchmarks/real_text.py                                   # the tokeniser only
    python benchmarks/real_text.py --model_dir=runs/webnlg_partial_k3 [--knockouts]

Prints, on `webnlg_ood_dev` (../shared/data, or --dataset_dir):
- how many `raw_text` sentences the tokeniser turns into exactly the `text` field
  (misses by kind), whether the Python and in-graph tokenisers agree on every
  one, and each one's sentences/s;
- with --model_dir: partial F1 (index-based, as `rin_keras.evaluate`) and the
  string-level partial F1 of what a user receives from the tokenised and from the
  raw texts, overall and per category, the raw - tokenised gap, and the
  sentences/s of `RINTripleExtractor.predict` on the raw texts;
- with --knockouts: the tokenised partial F1 when one unseen-word feature input is
  replaced by "unknown" at inference (pretrained vectors, characters): what the
  trained model leans on, not what training without it would give;
- with --thresholds=0.5,0.4,...: string-level partial F1 at each pair threshold on
  the raw OOD texts and on the dev split of the model's own dataset (its
  `config.dataset`), from one pass at the lowest threshold.
"""

import collections
import json
import os
import time

import tensorflow as tf
from absl import app, flags

from rin_keras import cli, evaluate
from rin_keras.data.corpus import Corpus, FolderCorpus
from rin_keras.data.tokenizer import RINTokenizer, tokenize, tokenize_with_offsets
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor, artifact_file
from tfds_builders import casrel

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training output folder to score (optional).")
flags.DEFINE_string("dataset_dir", os.path.join(casrel.default_manual_dir(), "webnlg_ood_dev"),
                    "A CasRel-layout folder with raw_val.jsonl.")
flags.DEFINE_bool("knockouts", False, "Also score with each unseen-word feature knocked out at inference.")
flags.DEFINE_list("thresholds", [], "Pair thresholds to compare (string-level F1, OOD raw and in-domain dev).")
cli.register_path_check("model_dir", artifact_file)


def _miss_kind(raw: str, expected: str, got: str) -> str:
    if '"' in raw:
        return "double quote"
    if len(got.split(" ")) != len(expected.split(" ")):
        return "split differently"
    return "same split, other text"


def tokeniser_report(dataset_dir: str) -> None:
    with open(os.path.join(dataset_dir, "raw_val.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    raw = [r["raw_text"] for r in rows]
    start = time.perf_counter()
    python = [tokenize_with_offsets(text) for text in raw]
    python_seconds = time.perf_counter() - start
    layer = RINTokenizer()
    layer(tf.constant(raw[:2]))  # Warm-up.
    start = time.perf_counter()
    tokens, starts, ends = layer(tf.constant(raw))
    graph_seconds = time.perf_counter() - start
    graph = [[(t.decode("utf-8"), s, e) for t, s, e in zip(*row)]
             for row in zip(tokens.to_list(), starts.to_list(), ends.to_list())]
    agree = sum(g == [(t.text, t.start, t.end) for t in p] for g, p in zip(graph, python))
    misses = collections.Counter()
    for row in rows:
        got = " ".join(tokenize(row["raw_text"]))
        if got != row["text"]:
            misses[_miss_kind(row["raw_text"], row["text"], got)] += 1
    same = len(rows) - sum(misses.values())
    print(f"tokeniser: {same}/{len(rows)} raw sentences give the tokenised text exactly ({100 * same / len(rows):.2f}%);"
          f" misses by kind: {dict(misses) or 'none'}")
    print(f"tokeniser: Python and graph agree (tokens and offsets) on {agree}/{len(rows)}; "
          f"Python {len(rows) / python_seconds:.0f} sentences/s, graph {len(rows) / graph_seconds:.0f} sentences/s")


class _KnockedOut:
    """A featurizer whose `name` input reads as "unknown" (id 1) wherever it is real."""

    def __init__(self, featurizer, name):
        self.featurizer, self.name = featurizer, name
        self.padding_values, self.padded_shapes = featurizer.padding_values, featurizer.padded_shapes
        self.word_inputs = featurizer.word_inputs

    def __call__(self, tokens):
        inputs = dict(self.featurizer(tokens))
        inputs[self.name] = tf.where(inputs[self.name] > 0, tf.ones_like(inputs[self.name]), 0)
        return inputs


def model_report(model_dir: str, dataset_dir: str, knockouts: bool) -> None:
    start = time.perf_counter()
    extractor = RINTripleExtractor.from_preset(model_dir)
    scores = evaluate.evaluate_folder(extractor, dataset_dir, "validation")
    strings = scores["strings"]
    print(f"{os.path.basename(os.path.normpath(dataset_dir))} ({model_dir}, {time.perf_counter() - start:.0f}s):")
    print(f"  partial F1 (index-based, tokenised)  {scores['partial']['f1']:6.2f}  "
          f"P {scores['partial']['precision']:.2f} R {scores['partial']['recall']:.2f}")
    for name, s in strings.items():
        print(f"  strings, {name:<10} partial F1     {s['f1']:6.2f}  P {s['precision']:.2f} R {s['recall']:.2f}")
        for category, c in s.get("by_category", {}).items():
            print(f"      {category:<22}{c['sentences']:5d} sentences  F1 {c['f1']:6.2f}")
    if "raw" in strings:
        print(f"  raw - tokenised: {strings['raw']['f1'] - strings['tokenised']['f1']:+.2f} F1")
        with open(os.path.join(dataset_dir, "raw_val.jsonl"), encoding="utf-8") as f:
            texts = [json.loads(line)["raw_text"] for line in f]
        rates = []
        for _ in range(3):  # Scoring above has traced the network already.
            start = time.perf_counter()
            extractor.predict(texts, batch_size=64)
            rates.append(len(texts) / (time.perf_counter() - start))
        print(f"  RINTripleExtractor.predict on the raw texts, batch 64: {' / '.join(f'{r:.0f}' for r in rates)} "
              "sentences/s (three passes)")
    if knockouts:
        corpus = FolderCorpus(dataset_dir, extractor.relation_names)
        preprocessor = extractor.preprocessor
        for name in extractor.config.word_feature_inputs:
            if name == "shape_ids":
                continue  # Every word has a shape; there is no "unknown" one.
            knocked = RINTripleExtractor(extractor.model, RINPreprocessor.from_config_and_vocabulary(
                extractor.config.replace(max_length=preprocessor.max_length), preprocessor.vocabulary), extractor.threshold)
            knocked.preprocessor.featurizer = _KnockedOut(preprocessor.featurizer, name)
            knocked = evaluate.evaluate_split(knocked, corpus, "validation")
            print(f"  {name} knocked out at inference: partial F1 {knocked['partial']['f1']:6.2f}")


def threshold_report(model_dir: str, dataset_dir: str, thresholds: list[float]) -> None:
    extractor = RINTripleExtractor.from_preset(model_dir)
    extractor.threshold = min(thresholds)
    config = extractor.model.config
    with open(os.path.join(dataset_dir, "val_triples.json"), encoding="utf-8") as f:
        ood_gold = [evaluate.last_word_triples(r["triple_list"]) for r in json.load(f)]
    with open(os.path.join(dataset_dir, "raw_val.jsonl"), encoding="utf-8") as f:
        ood = extractor.predict_detailed([json.loads(line)["raw_text"] for line in f])
    corpus = Corpus.for_model(model_dir, config)
    examples = corpus.examples("validation")
    dev = extractor.predict_tokens([[t.decode("utf-8") for t in x["tokens"]] for x in examples])
    names = corpus.relation_names
    dev_gold = [{(r["tokens"][s], names[rel], r["tokens"][o])
                 for s, rel, o in zip(x["triples"]["subject"]["head"], x["triples"]["relation"],
                                      x["triples"]["object"]["head"])} for x, r in zip(examples, dev)]
    for threshold in sorted(thresholds, reverse=True):
        def kept(results):
            return [{**r, "triples": [t for t in r["triples"] if t["score"] >= threshold]} for r in results]

        o, d = evaluate.score_texts(kept(ood), ood_gold), evaluate.score_texts(kept(dev), dev_gold)
        print(f"  threshold {threshold:.2f}: OOD raw F1 {o['f1']:6.2f} (P {o['precision']:.2f} R {o['recall']:.2f})"
              f"   {config.dataset} dev F1 {d['f1']:6.2f} (P {d['precision']:.2f} R {d['recall']:.2f})")


def main(argv):
    del argv
    tokeniser_report(FLAGS.dataset_dir)
    if FLAGS.model_dir:
        model_report(FLAGS.model_dir, FLAGS.dataset_dir, FLAGS.knockouts)
        if FLAGS.thresholds:
            threshold_report(FLAGS.model_dir, FLAGS.dataset_dir, [float(t) for t in FLAGS.thresholds])


if __name__ == "__main__":
    app.run(main)
