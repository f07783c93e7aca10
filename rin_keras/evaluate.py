"""Scoring a RIN model on a split: P/R/F1 tables and breakdowns.

`python -m rin_keras.evaluate --model_dir=runs/webnlg` re-scores the best saved
model on the test split (and dev with --split=validation), with breakdowns by
overlap category and by number of triples per sentence.

`--dataset_dir=../shared/data/webnlg_ood_dev` scores any CasRel-layout folder
instead. Beside the index-based scores it then scores the extracted strings,
(subject last word, relation, object last word), as a user receives them: from
the tokenised texts read as given, and, where the folder has `raw_<split>.jsonl`,
from the untokenised texts through the project's tokeniser, per category when
the raw file names one.
"""

from __future__ import annotations

import collections
import json
import os

import numpy as np
from absl import app, flags, logging
from tfds_builders import casrel

from rin_keras import metrics
from rin_keras.data import features, pipeline
from rin_keras.decoding import decode_triples


def predict_split(model, corpus: pipeline.Corpus, split: str, vocab, batch_size: int = 100, max_length: int = 100,
                  threshold: float = 0.5, featurizer=None):
    """Runs `model` over `split` in length-bucketed batches.

    Returns:
        (predicted triples, predicted tag ids, gold tag ids), each a list with
        one entry per sentence in the stored order of `split`.
    """
    dataset = pipeline.make_dataset(
        corpus, split, vocab, batch_size, max_length=max_length, featurizer=featurizer, with_index=True
    )
    triples, tags, gold_tags = {}, {}, {}
    for inputs, targets in dataset:
        outputs = model.predict_on_batch(inputs)
        gold = targets["entity_tags"].numpy()
        lengths = np.sum(gold >= 0, axis=1)
        tag_ids = np.argmax(outputs["entity_tags"], axis=-1)
        for i, (index, length) in enumerate(zip(targets["index"].numpy(), lengths)):
            triples[index] = decode_triples(tag_ids[i], outputs["relations"][i], int(length), threshold)
            tags[index] = tag_ids[i][:length]
            gold_tags[index] = gold[i][:length]
    order = sorted(triples)
    return [triples[i] for i in order], [tags[i] for i in order], [gold_tags[i] for i in order]


def overlap_category(triples) -> str:
    """Returns Normal, EntityPairOverlap or SingleEntityOverlap for a sentence's gold triples."""
    pairs = [(t.subject_head, t.object_head) for t in triples]
    if len({frozenset(p) for p in pairs}) < len(set(pairs)) or len(set(pairs)) < len(pairs):
        return "EntityPairOverlap"
    entities = [e for p in pairs for e in p]
    return "SingleEntityOverlap" if len(set(entities)) < len(entities) else "Normal"


def evaluate_split(model, corpus: pipeline.Corpus, split: str, vocab, *, batch_size: int = 100,
                   max_length: int = 100, threshold: float = 0.5, breakdown: bool = False, featurizer=None) -> dict:
    """Returns partial / exact / text triple scores and NER F1 of `model` on `split`.

    With `breakdown`, adds partial-match scores per overlap category and per
    number of gold triples in the sentence. `featurizer` makes the model inputs
    (default: word ids, for the BiLSTM encoder).
    """
    examples = corpus.examples(split)
    predicted, predicted_tags, gold_tags = predict_split(
        model, corpus, split, vocab, batch_size, max_length, threshold, featurizer
    )
    gold = [metrics.gold_triples(x) for x in examples]
    tokens = [[t.decode("utf-8") for t in x["tokens"]] for x in examples]
    relation_names = corpus.relation_names
    scores = metrics.score_triples(gold, predicted, tokens, relation_names)
    scores["ner"] = metrics.score_entities(gold_tags, predicted_tags)
    if breakdown:
        groups = collections.defaultdict(list)
        for i, g in enumerate(gold):
            groups[("overlap", overlap_category(g))].append(i)
            groups[("triples", str(min(len(g), 5)) + ("+" if len(g) >= 5 else ""))].append(i)
        scores["breakdown"] = {
            f"{kind}/{name}": {
                "sentences": len(ids),
                **metrics.score_triples(
                    [gold[i] for i in ids], [predicted[i] for i in ids], [tokens[i] for i in ids], relation_names
                )["partial"],
            }
            for (kind, name), ids in sorted(groups.items())
        }
    return scores


def last_word_triples(triple_list) -> set[tuple[str, str, str]]:
    """Returns `{(subject last word, relation, object last word)}` of CasRel gold triples, repaired as read."""
    def last(phrase):
        return casrel.repair_word(phrase.split(" ")[-1])

    return {(last(s), r, last(o)) for s, r, o in triple_list}


def score_texts(results: list[dict], gold: list[set], categories: list[str] | None = None) -> dict:
    """Partial match on strings: returned triples' head words against `gold` (see `last_word_triples`).

    Args:
        results: `Extractor.predict_detailed` / `predict_tokens` output, one per sentence.
        gold: per sentence, the gold `(subject, relation, object)` last-word triples.
        categories: per sentence, a group name for a per-group breakdown.

    Returns:
        P/R/F1 counts (`metrics.prf`), and `by_category` when `categories` is given.
    """
    predicted = [
        {(r["tokens"][t["subject_span"][1] - 1], t["relation"], r["tokens"][t["object_span"][1] - 1])
         for t in r["triples"]}
        for r in results
    ]
    scores = metrics.score_sets(gold, predicted)
    if categories:
        groups = collections.defaultdict(list)
        for i, category in enumerate(categories):
            groups[category].append(i)
        scores["by_category"] = {
            name: {"sentences": len(ids), **metrics.score_sets([gold[i] for i in ids], [predicted[i] for i in ids])}
            for name, ids in sorted(groups.items())
        }
    return scores


def evaluate_folder(model_dir: str, directory: str, split: str | None = None, threshold: float | None = None) -> dict:
    """Scores the model of `model_dir` on a CasRel-layout folder (see the module docstring).

    `threshold` replaces the trained model's pair threshold when given.

    Returns:
        `evaluate_split`'s scores with `split`, and `strings`: string-level partial
        scores on the `tokenised` texts and, where present, the `raw` texts.
    """
    from rin_keras.predict import Extractor

    extractor = Extractor.from_model_dir(model_dir)
    if threshold is not None:
        extractor.threshold = threshold
    corpus = pipeline.FolderCorpus(directory, extractor.vocab.relations)
    if not corpus.splits:
        raise FileNotFoundError(f"{directory} holds none of {', '.join(casrel.SPLIT_FILES.values())}.")
    split = split or ("test" if "test" in corpus.splits else corpus.splits[0])
    scores = evaluate_split(extractor.model, corpus, split, extractor.vocab, max_length=extractor.max_length,
                            threshold=extractor.threshold, breakdown=True, featurizer=extractor.featurizer)
    with open(corpus.split_path(split), encoding="utf-8") as f:
        records = json.load(f)
    gold = [last_word_triples(record["triple_list"]) for record in records]
    raw = corpus.raw_texts(split)
    categories = [r["category"] for r in raw] if raw and all("category" in r for r in raw) else None
    # The tokens as the builders read them (mis-decoded UTF-8 repaired, like the gold).
    tokenised = extractor.predict_tokens([[t.decode("utf-8") for t in x["tokens"]] for x in corpus.examples(split)])
    scores["split"] = split
    scores["strings"] = {"tokenised": score_texts(tokenised, gold, categories)}
    if raw:
        scores["strings"]["raw"] = score_texts(extractor.predict_detailed([r["raw_text"] for r in raw]), gold,
                                               categories)
    return scores


def format_table(scores: dict) -> str:
    """Returns a plain-text P/R/F1 table of `evaluate_split` scores."""
    rows = [f"{'scorer':<12}{'P':>8}{'R':>8}{'F1':>8}{'correct':>9}{'pred':>7}{'gold':>7}"]
    for name in ("partial", "exact", "text", "ner"):
        s = scores[name]
        rows.append(
            f"{name:<12}{s['precision']:8.2f}{s['recall']:8.2f}{s['f1']:8.2f}"
            f"{s['correct']:9d}{s['predicted']:7d}{s['gold']:7d}"
        )
    for name, s in scores.get("breakdown", {}).items():
        rows.append(f"{name:<28}{s['sentences']:5d} sent  P {s['precision']:6.2f}  R {s['recall']:6.2f}  F1 {s['f1']:6.2f}")
    for text, s in scores.get("strings", {}).items():
        rows.append(f"strings/{text:<20}      P {s['precision']:6.2f}  R {s['recall']:6.2f}  F1 {s['f1']:6.2f}"
                    f"  ({s['correct']} of {s['predicted']} returned, {s['gold']} gold)")
        for name, c in s.get("by_category", {}).items():
            rows.append(f"  {text}/{name:<24}{c['sentences']:5d} sent  P {c['precision']:6.2f}  R {c['recall']:6.2f}"
                        f"  F1 {c['f1']:6.2f}")
    return "\n".join(rows)


FLAGS = flags.FLAGS


def _threshold_suffix() -> str:
    """`_t0.3` in the file name of scores taken at a threshold other than the model's."""
    return "" if FLAGS.threshold is None else f"_t{FLAGS.threshold:g}"


def main(argv):
    del argv
    import keras

    from rin_keras import RINConfig
    from rin_keras.data.vocab import Vocabulary

    if FLAGS.dataset_dir:
        scores = evaluate_folder(FLAGS.model_dir, FLAGS.dataset_dir, FLAGS.split, FLAGS.threshold)
        print(format_table(scores))
        path = os.path.join(FLAGS.model_dir, f"evaluation_{os.path.basename(os.path.normpath(FLAGS.dataset_dir))}"
                                             f"_{scores['split']}{_threshold_suffix()}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(scores, f, indent=2)
        logging.info("Wrote %s", path)
        return
    config = RINConfig.load(os.path.join(FLAGS.model_dir, "config.json"))
    vocab = Vocabulary.load(os.path.join(FLAGS.model_dir, "vocab"))
    corpus = pipeline.Corpus.prepare(config.dataset, config.variant, FLAGS.tfds_data_dir, FLAGS.data_dir)
    model = keras.saving.load_model(os.path.join(FLAGS.model_dir, "best.keras"))
    scores = evaluate_split(
        model, corpus, FLAGS.split or "test", vocab, max_length=config.max_length,
        threshold=config.threshold if FLAGS.threshold is None else FLAGS.threshold, breakdown=True,
        featurizer=features.featurizer_for(config, vocab, FLAGS.model_dir),
    )
    print(format_table(scores))
    path = os.path.join(FLAGS.model_dir, f"evaluation_{FLAGS.split or 'test'}{_threshold_suffix()}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(scores, f, indent=2)
    logging.info("Wrote %s", path)


if __name__ == "__main__":
    flags.DEFINE_string("model_dir", None, "Training output folder (holds best.keras, config.json, vocab/).")
    flags.DEFINE_enum("split", None, ["train", "validation", "test"],
                      "Split to score (default test; for --dataset_dir, test if the folder has it, else its first).")
    flags.DEFINE_float("threshold", None, "Pair probability threshold (default: the trained model's).")
    flags.DEFINE_string("dataset_dir", None, "Score this CasRel-layout folder (e.g. ../shared/data/webnlg_ood_dev) "
                        "instead of the model's benchmark, on its tokenised and raw texts.")
    flags.DEFINE_string("data_dir", None, "Manual folder of the published data (default $RIN_DATA_DIR or ../shared/data).")
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps prepared datasets.")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
