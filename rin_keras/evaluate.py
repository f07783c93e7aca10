"""Scoring a RIN model on a split: P/R/F1 tables and breakdowns.

`python -m rin_keras.evaluate --model_dir=runs/webnlg_partial_k3` re-scores the best saved
model on the test split (dev where the data has no test split, as webnlg3
without the official test files; any split with --split, held-out ones
included), with breakdowns by overlap category and by number of triples per
sentence, written beside the model as `evaluation_<split>.json` and plotted in
`evaluation_<split>.png`; the report names the data scored (`"data"`) and the threshold.

`--dataset_dir=../shared/data/webnlg_ood_dev` scores any CasRel-layout folder
instead. Beside the index-based scores it then scores the extracted strings,
(subject last word, relation, object last word), as a user receives them: from
the tokenised texts read as given, and, where the folder has `raw_<split>.jsonl`,
from the untokenised texts through the project's tokeniser, per category when
the raw file names one.
"""

from __future__ import annotations

import collections
import hashlib
import html
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
from absl import app, flags, logging
from tfds_builders import casrel

from rin_keras import cli, metrics
from rin_keras.data.corpus import SPLITS, Corpus, FolderCorpus
from rin_keras.data.dataset import TAG_IDS, bieso_tags, make_dataset
from rin_keras.decoding import decode_triples, span_text
from rin_keras.model import predict_on_batch


def scoring_batches(preprocessor, corpus: Corpus, split: str, batch_size: int = 100) -> tf.data.Dataset:
    """The length-bucketed batches of `split` that `predict_split` reads, each sentence with its index.

    Build them once to score several models or epochs on the same split: a build traces the featurizer (and a
    list of them, kept in memory, is not read and featurized again on each pass).
    """
    return make_dataset(
        corpus, split, preprocessor.vocabulary, batch_size, max_length=preprocessor.max_length,
        featurizer=preprocessor.featurizer, with_index=True,
    )


def predict_split(extractor, corpus: Corpus, split: str, batch_size: int = 100, batches=None,
                  total: int | None = None, every_seconds: float = 60.0):
    """Runs a `RINTripleExtractor` over `split` in length-bucketed batches.

    Logs the sentences scored so far every `every_seconds` (a MiniLM model scores a few thousand sentences a
    minute on 2 CPU cores).

    Args:
        batches: `scoring_batches` of `split` for this extractor's preprocessor; None builds them.
        total: the number of sentences in `split`, for the progress lines (optional).
        every_seconds: the interval between progress lines.

    Returns:
        (predicted triples, predicted tag ids, gold tag ids), each a list with
        one entry per sentence in the stored order of `split`; the tags of the words read.
    """
    dataset = batches if batches is not None else scoring_batches(extractor.preprocessor, corpus, split, batch_size)
    triples, tags, gold_tags = {}, {}, {}
    start = last_line = time.monotonic()
    for inputs, targets in dataset:
        now = time.monotonic()
        if triples and now - last_line >= every_seconds:
            last_line = now
            logging.info("%s: %d%s sentences scored, %.0f a second", split, len(triples),
                         f" of {total}" if total else "", len(triples) / (now - start))
        outputs = _predict_batch(extractor.model, {k: v.numpy() for k, v in inputs.items()})
        gold = targets["entity_tags"].numpy()
        lengths = np.sum(gold >= 0, axis=1)
        tag_ids = np.argmax(outputs["entity_tags"], axis=-1)
        for i, (index, length) in enumerate(zip(targets["index"].numpy(), lengths)):
            triples[index] = decode_triples(tag_ids[i], outputs["relations"][i], int(length), extractor.threshold)
            tags[index] = tag_ids[i][:length]
            gold_tags[index] = gold[i][:length]
    order = sorted(triples)
    return [triples[i] for i in order], [tags[i] for i in order], [gold_tags[i] for i in order]


def gold_entity_tags(example: dict) -> np.ndarray:
    """The BIESO tag ids of a TFDS example's entities over all its words: the NER gold, like the triples' not cut
    at the model's maximum length."""
    entities = example["entities"]
    return bieso_tags(tf.constant(entities["start"], tf.int32), tf.constant(entities["end"], tf.int32),
                      len(example["tokens"])).numpy()


def _predict_batch(model, inputs: dict) -> dict:
    """The model's outputs for a batch (`predict_on_batch`, any backend). A BiLSTM's batch of empty sentences reads
    one padding column, cut from its outputs: Keras's LSTM loop fails on no steps in bfloat16."""
    if "token_ids" not in inputs or inputs["token_ids"].shape[1]:  # A BERT encoder reads word pieces.
        return predict_on_batch(model, inputs)
    padded = {k: np.pad(v, [(0, 0), (0, 1)] + [(0, 0)] * (v.ndim - 2)) for k, v in inputs.items()}
    outputs = predict_on_batch(model, padded)
    return {"entity_tags": outputs["entity_tags"][:, :0], "relations": outputs["relations"][:, :0, :0]}


def train_relations(corpus: Corpus, limit: int | None = None) -> set[int]:
    """Returns the ids of the relations that the train split of `corpus` (its first `limit` sentences) states."""
    relations = corpus.raw("train", limit).map(lambda example: example["triples"]["relation"])
    return {int(r) for ids in relations.as_numpy_iterator() for r in ids}


def evaluate_split(extractor, corpus: Corpus, split: str, *, batch_size: int = 100,
                   breakdown: bool = False, batches=None, examples: list[dict] | None = None,
                   seen_relations: set[int] | None = None) -> dict:
    """Returns partial / exact / text triple scores and NER F1 of a `RINTripleExtractor` on `split`.

    With `seen_relations` (e.g. `train_relations(corpus)`), adds `seen_relations`: partial and exact scores over
    the gold and predicted triples of those relations only, with `gold_share`, the share of gold triples they
    keep. On a split of unseen categories this separates the triples a model cannot return (a relation it never
    trained on) from those it misses. With `breakdown`, adds partial-match scores per overlap category and per
    number of gold triples in the sentence, `relations`: partial-match scores
    per relation (`metrics.score_by_relation`), `sentences`: each sentence's
    triples sorted into correct, missed and spurious (`compare_sentences`, by the
    model's variant), and `missed_by_kind`: what was returned instead of the
    missed ones (`missed_by_kind`). `batches`: see `predict_split`; `examples`: `corpus.examples(split)`, read
    once to score several models or epochs.
    """
    examples = examples if examples is not None else corpus.examples(split)
    predicted, predicted_tags, gold_tags = predict_split(extractor, corpus, split, batch_size, batches,
                                                         total=len(examples))
    gold = [metrics.gold_triples(x) for x in examples]
    tokens = [[t.decode("utf-8") for t in x["tokens"]] for x in examples]
    relation_names = corpus.relation_names
    scores = metrics.score_triples(gold, predicted, tokens, relation_names)
    # A sentence cut at the maximum length: its NER gold over all its words, those past it read as outside any
    # entity, as its triples past it count as missed.
    for i, example in enumerate(examples):
        if len(example["tokens"]) > len(gold_tags[i]):
            gold_tags[i] = gold_entity_tags(example)
            predicted_tags[i] = np.pad(predicted_tags[i], (0, len(gold_tags[i]) - len(predicted_tags[i])),
                                       constant_values=TAG_IDS["O"])
    scores["ner"] = metrics.score_entities(gold_tags, predicted_tags)
    if seen_relations is not None:
        def seen(triples):
            return [[t for t in sentence if t.relation in seen_relations] for sentence in triples]

        seen_gold = seen(gold)
        scores["seen_relations"] = {
            match: metrics.score_sets(
                ({metrics.triple_key(t, match) for t in g} for g in seen_gold),
                ({metrics.triple_key(t, match) for t in p} for p in seen(predicted)),
            )
            for match in ("partial", "exact")
        }
        scores["seen_relations"]["gold_share"] = (
            100.0 * scores["seen_relations"]["partial"]["gold"] / max(scores["partial"]["gold"], 1))
    if breakdown:
        groups = collections.defaultdict(list)
        for i, g in enumerate(gold):
            groups[("overlap", metrics.overlap_category(g))].append(i)
            count = len({metrics.triple_key(t, "partial") for t in g})  # A triple listed twice counts once.
            groups[("triples", str(min(count, 5)) + ("+" if count >= 5 else ""))].append(i)
        scores["breakdown"] = {
            f"{kind}/{name}": {
                "sentences": len(ids),
                **metrics.score_triples(
                    [gold[i] for i in ids], [predicted[i] for i in ids], [tokens[i] for i in ids], relation_names
                )["partial"],
            }
            for (kind, name), ids in sorted(groups.items())
        }
        scores["relations"] = metrics.score_by_relation(gold, predicted, relation_names)
        scores["sentences"] = compare_sentences(gold, predicted, tokens, relation_names, extractor.config.variant)
        scores["missed_by_kind"] = missed_by_kind(scores["sentences"], extractor.config.variant)
    return scores


def compare_sentences(gold: list, predicted: list, tokens: list[list[str]], relation_names: list[str],
                      match: str) -> list[dict]:
    """Sorts each sentence's triples into correct, missed (gold only) and spurious (predicted only).

    Args:
        gold, predicted: per sentence, `Triple`s.
        tokens: per sentence, its tokens.
        relation_names: relation names by id.
        match: `"partial"` or `"exact"` (see `metrics.triple_key`).

    Returns:
        Per sentence, `{"index", "tokens", "correct", "missed", "spurious"}`, each
        triple as `{"subject", "relation", "object", "subject_span", "object_span"}`
        (token spans `[start, end)`).
    """
    def view(triple, words):
        return {"subject": span_text(words, triple.subject_extent), "relation": relation_names[triple.relation],
                "object": span_text(words, triple.object_extent), "subject_span": list(triple.subject_extent),
                "object_span": list(triple.object_extent)}

    def distinct(triples):  # A triple listed twice is one triple, as the scores count it.
        first = {}
        for t in triples:
            first.setdefault(metrics.triple_key(t, match), t)
        return list(first.values())

    sentences = []
    for index, (g, p, words) in enumerate(zip(gold, predicted, tokens)):
        g, p = distinct(g), distinct(p)
        gold_keys = {metrics.triple_key(t, match) for t in g}
        predicted_keys = {metrics.triple_key(t, match) for t in p}
        sentences.append({
            "index": index, "tokens": words,
            "correct": [view(t, words) for t in g if metrics.triple_key(t, match) in predicted_keys],
            "missed": [view(t, words) for t in g if metrics.triple_key(t, match) not in predicted_keys],
            "spurious": [view(t, words) for t in p if metrics.triple_key(t, match) not in gold_keys],
        })
    return sentences


MISSED_KINDS = ("wrong relation", "reversed", "wrong object", "wrong subject", "nothing")
EXACT_MISSED_KINDS = ("wrong span",) + MISSED_KINDS  # Under exact match, a triple can be found with other bounds.


def missed_by_kind(sentences: list[dict], match: str) -> dict:
    """Counts what the model returned instead of each missed gold triple, the first that applies of
    `MISSED_KINDS`: a spurious triple on the same pair (`wrong relation`), on the pair reversed (`reversed`), with
    the same subject and relation (`wrong object`) or the same relation and object (`wrong subject`); else
    `nothing`. Under exact match (`EXACT_MISSED_KINDS`), first `wrong span`: the same triple by the entities'
    last words, with another span for one of them or both.

    Args:
        sentences: `compare_sentences` output.
        match: `"partial"` (entities compared by their last word) or `"exact"` (by their spans).

    Returns:
        `{"all": {kind: count}, "relations": {relation: {kind: count}}}`, every kind present in each.
    """
    def entity(span):
        return span[1] - 1 if match == "partial" else tuple(span)

    kinds = EXACT_MISSED_KINDS if match == "exact" else MISSED_KINDS
    counts = {"all": dict.fromkeys(kinds, 0), "relations": {}}
    for sentence in sentences:
        spurious = [(entity(t["subject_span"]), t["relation"], entity(t["object_span"])) for t in sentence["spurious"]]
        spurious_last_words = {(t["subject_span"][1], t["relation"], t["object_span"][1]) for t in sentence["spurious"]}
        for t in sentence["missed"]:
            subject, relation, obj = entity(t["subject_span"]), t["relation"], entity(t["object_span"])
            found = {
                "wrong span": (t["subject_span"][1], relation, t["object_span"][1]) in spurious_last_words,
                "wrong relation": any(s == subject and o == obj for s, _, o in spurious),
                "reversed": any(s == obj and o == subject for s, _, o in spurious),
                "wrong object": any(s == subject and r == relation for s, r, _ in spurious),
                "wrong subject": any(r == relation and o == obj for _, r, o in spurious),
            }
            kind = next((k for k in kinds[:-1] if found[k]), "nothing")
            counts["all"][kind] += 1
            counts["relations"].setdefault(relation, dict.fromkeys(kinds, 0))[kind] += 1
    return counts


def write_examples_page(sentences: list[dict], path: str, title: str, limit: int = 200) -> None:
    """Writes an HTML page of sentences with their triples highlighted: errors first, the most first.

    Args:
        sentences: `compare_sentences` output.
        path: the `.html` file to write.
        title: the page heading.
        limit: at most this many sentences (all with errors first, then correct ones).
    """
    def errors(sentence):
        return len(sentence["missed"]) + len(sentence["spurious"])

    shown = sorted(sentences, key=lambda s: (-errors(s), s["index"]))[:limit]
    wrong = sum(1 for s in sentences if errors(s))
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}div.s{border-top:1px solid #ccc;padding:.5em 0}"
        "mark{padding:0 .15em;border-radius:.2em}.correct{background:#b7e4b7}.missed{background:#f4a7a7}"
        ".spurious{background:#f9d58b}td,th{padding:0 .6em;text-align:left}</style>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(sentences)} sentences, {wrong} with an error; {len(shown)} shown, errors first. "
        "<mark class=correct>correct</mark> <mark class=missed>missed (gold only)</mark> "
        "<mark class=spurious>spurious (predicted only)</mark></p>",
    ]
    for sentence in shown:
        marks = {}
        for status in ("correct", "spurious", "missed"):  # Later statuses win a shared word.
            for triple in sentence[status]:
                for start, end in (triple["subject_span"], triple["object_span"]):
                    marks.update({i: status for i in range(start, end)})
        words = [f"<mark class={marks[i]}>{html.escape(w)}</mark>" if i in marks else html.escape(w)
                 for i, w in enumerate(sentence["tokens"])]
        rows = [f"<tr class={status}><td>{status}</td><td>{html.escape(t['subject'])}</td>"
                f"<td>{html.escape(t['relation'])}</td><td>{html.escape(t['object'])}</td></tr>"
                for status in ("missed", "spurious", "correct") for t in sentence[status]]
        parts.append(f"<div class=s id=s{sentence['index']}><p>#{sentence['index']}: {' '.join(words)}</p>"
                     f"<table>{''.join(rows)}</table></div>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")


def last_word_triples(triple_list) -> set[tuple[str, str, str]]:
    """Returns `{(subject last word, relation, object last word)}` of CasRel gold triples, repaired as read."""
    def last(phrase):
        return casrel.repair_word(phrase.split()[-1])

    return {(last(s), r, last(o)) for s, r, o in triple_list}


def located_last_word_triples(record: dict, where: str, pretokenized: bool = False) -> set[tuple[str, str, str]]:
    """`last_word_triples` of a record of a user's folder: each entity's last token where the folder builder places
    it (`casrel.folder_example`: the punctuation written after it left out); `pretokenized`: a CasRel JSON record."""
    example, _ = casrel.folder_example(record, {r for _, r, _ in record["triple_list"]}, where,
                                       pretokenized=pretokenized)
    tokens = example["tokens"]
    return {(tokens[t["subject"]["head"]], t["relation"], tokens[t["object"]["head"]]) for t in example["triples"]}


def score_texts(results: list[dict], gold: list[set], categories: list[str] | None = None) -> dict:
    """Partial match on strings: returned triples' head words against `gold` (see `last_word_triples`).

    Args:
        results: `RINTripleExtractor.predict_detailed` / `predict_tokens` output, one per sentence.
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


def evaluate_folder(extractor, directory: str, split: str | None = None) -> dict:
    """Scores a `RINTripleExtractor` on a CasRel-layout folder (see the module docstring).

    Returns:
        `evaluate_split`'s scores with `split`; `strings`: string-level partial
        scores (returned entities reduced to their last word) on the `tokenised`
        texts and, where present, the `raw` texts; `unknown_relations`: gold
        triples whose relation the model does not have (an exact-match model on a
        partial-match folder), and `triples_not_found`: gold triples of a CasRel
        JSON split whose subject or object is not in the text, both left out of the
        index-based scores and counted as missed by the string-level ones.
    """
    # A model trained on a user's folder is scored on its CasRel JSON as it was trained on it.
    as_training_folder = extractor.config.dataset == "custom"
    corpus = FolderCorpus(directory, extractor.relation_names, drop_unknown_relations=True,
                          as_training_folder=as_training_folder)
    if not corpus.splits:
        raise FileNotFoundError(f"{directory} holds none of "
                                f"{', '.join([*casrel.SPLIT_FILES.values(), *casrel.JSONL_SPLIT_FILES.values()])}.")
    split = split or ("test" if "test" in corpus.splits else corpus.splits[0])
    path, records = corpus.split_path(split), corpus.records(split)
    if not any(record["text"].strip() for _, record in records):
        raise casrel.DataError(f"{path}: the {split} split has no sentences.")
    scores = evaluate_split(extractor, corpus, split, breakdown=True)
    pretokenized = not path.endswith(".jsonl")
    gold = [located_last_word_triples(record, f"{path}:{position}", pretokenized)
            if not pretokenized or as_training_folder else last_word_triples(record["triple_list"])
            for position, record in records]
    raw = corpus.raw_texts(split)
    categories = [r["category"] for r in raw] if raw and all("category" in r for r in raw) else None
    # The tokens as the builders read them (mis-decoded UTF-8 repaired, like the gold).
    tokenised = extractor.predict_tokens([[t.decode("utf-8") for t in x["tokens"]] for x in corpus.examples(split)])
    scores["split"] = split
    scores["unknown_relations"] = corpus.unknown_relations.get(split, {})
    scores["triples_not_found"] = corpus.triples_not_found.get(split, 0)
    scores["strings"] = {"tokenised": score_texts(tokenised, gold, categories)}
    if raw:
        scores["strings"]["raw"] = score_texts(extractor.predict_detailed([r["raw_text"] for r in raw]), gold,
                                               categories)
    return scores


def format_table(scores: dict, relations_shown: int = 12) -> str:
    """Returns a plain-text P/R/F1 table of `evaluate_split` scores (the `relations_shown` commonest gold relations)."""
    rows = [f"{'scorer':<12}{'P':>8}{'R':>8}{'F1':>8}{'correct':>9}{'pred':>7}{'gold':>7}"]
    for name in ("partial", "exact", "text", "ner"):
        s = scores[name]
        rows.append(
            f"{name:<12}{s['precision']:8.2f}{s['recall']:8.2f}{s['f1']:8.2f}"
            f"{s['correct']:9d}{s['predicted']:7d}{s['gold']:7d}"
        )
    seen = scores.get("seen_relations")
    if seen and seen["partial"]["gold"] < scores["partial"]["gold"]:  # Some are of relations train never states.
        for name in ("partial", "exact"):
            s = seen[name]
            rows.append(f"{name + '/seen':<12}{s['precision']:8.2f}{s['recall']:8.2f}{s['f1']:8.2f}"
                        f"{s['correct']:9d}{s['predicted']:7d}{s['gold']:7d}")
        rows.append(f"(/seen: only the triples of relations the train split states, {seen['gold_share']:.1f}% of the gold)")
    for name, s in scores.get("breakdown", {}).items():
        rows.append(f"{name:<28}{s['sentences']:5d} sent  P {s['precision']:6.2f}  R {s['recall']:6.2f}  F1 {s['f1']:6.2f}")
    commonest = sorted(scores.get("relations", {}).items(), key=lambda item: (-item[1]["gold"], item[0]))
    for name, s in commonest[:relations_shown]:
        rows.append(f"relation/{name:<24}{s['gold']:5d} gold  P {s['precision']:6.2f}  R {s['recall']:6.2f}"
                    f"  F1 {s['f1']:6.2f}")
    missed = scores.get("missed_by_kind", {}).get("all", {})
    for kind, count in missed.items():
        rows.append(f"missed/{kind:<21}{count:5d} gold  ({100 * count / max(sum(missed.values()), 1):.1f}% of missed)")
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


def folder_report_names(folder: str, split: str, suffix: str = "") -> list[str]:
    """The names (without extension) that the scores of a folder's `split` may have beside a model:
    `evaluation_<folder>_<split>`, or, where that holds another folder's scores (two folders of one name),
    `evaluation_<folder>-<hash of its real path>_<split>`; `suffix` is the threshold's (`_t0.3`)."""
    real = os.path.realpath(folder)
    name = os.path.basename(real)
    digest = hashlib.sha1(real.encode("utf-8")).hexdigest()[:8]
    return [f"evaluation_{name}_{split}{suffix}", f"evaluation_{name}-{digest}_{split}{suffix}"]


def report_of(output_dir: str, names: list[str], data: str, written: bool = True) -> str | None:
    """The first of `names` whose `.json` under `output_dir` holds the scores of `data` (`"data"`; a report
    written before reports named their data counts as the first name's), or with `written=False` the first that
    holds no other data's scores either: where `data`'s scores are, or are to be written."""
    for index, name in enumerate(names):
        try:
            with open(os.path.join(output_dir, name + ".json"), encoding="utf-8") as f:
                scored = json.load(f).get("data", data if index == 0 else None)
        except FileNotFoundError:
            if not written:
                return name
            continue
        except (OSError, ValueError, AttributeError):
            scored = None  # Unreadable: not known to be data's.
        if scored == data:
            return name
    return None


def _output_dir() -> str:
    """Where the scores go: the training folder, or the folder of an extractor file."""
    return FLAGS.model_dir if os.path.isdir(FLAGS.model_dir) else os.path.dirname(os.path.abspath(FLAGS.model_dir))


def plot_breakdown(scores: dict, png: str) -> None:
    """Plots partial F1 per overlap category and per number of gold triples in the sentence (`breakdown`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {kind: [(name.split("/", 1)[1], s) for name, s in scores["breakdown"].items() if name.startswith(kind)]
              for kind in ("overlap", "triples")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 5]})
    for ax, (kind, rows) in zip(axes, groups.items()):
        # Bars at positions, named by tick labels: names such as "0" and "5+" are labels, not numbers.
        bars = ax.bar(range(len(rows)), [s["f1"] for _, s in rows], color="tab:blue",
                      tick_label=[name for name, _ in rows])
        for bar, (_, s) in zip(bars, rows):
            ax.annotate(f"{s['f1']:.1f}\n({s['sentences']})", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, 110)
        ax.set_ylabel("partial F1 (%)")
        ax.set_title("by overlap category" if kind == "overlap" else "by gold triples in the sentence")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"overall partial F1 {scores['partial']['f1']:.2f} (sentences in brackets)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _write_scores(scores: dict, name: str) -> None:
    """Writes `<name>.json`, the breakdown plot `<name>.png` and the example page `<name>.html` beside the model."""
    path = os.path.join(_output_dir(), name)
    sentences = scores.pop("sentences")
    with open(path + ".json", "w", encoding="utf-8") as f:
        json.dump(scores, f, indent=2)
    plot_breakdown(scores, path + ".png")
    write_examples_page(sentences, path + ".html", f"{name}: gold and predicted triples")
    logging.info("Wrote %s.json, %s.png and %s.html", path, path, path)


def _trained_folder(model_dir: str) -> str:
    """The folder of their own that the run in `model_dir` trained on, as its data file records it.

    Raises:
        SystemExit: no run folder records one that is there.
    """
    from rin_keras.train import DATA_FILE, run_data_folder  # Here: rin_keras.train imports this module.

    data_file = os.path.join(model_dir, DATA_FILE)
    folder = None
    if os.path.isfile(data_file):
        with open(data_file, encoding="utf-8") as f:
            folder = run_data_folder(f.read().strip())
    if not folder or not os.path.isdir(folder):
        trained_on = f" ({folder}, which is not there)" if folder else ""
        raise SystemExit(f"rin_keras.evaluate: this model was trained on a folder of your own{trained_on}: name it "
                         "with --dataset_dir.")
    logging.info("Scoring %s, the folder the model was trained on.", folder)
    return folder


def main(argv):
    del argv
    extractor = cli.load_extractor()
    dataset_dir = FLAGS.dataset_dir
    config = None if dataset_dir else Corpus.run_config(FLAGS.model_dir, extractor.config)
    if config is not None and config.dataset == "custom":
        dataset_dir = _trained_folder(FLAGS.model_dir)
    if dataset_dir:
        if FLAGS.split and FLAGS.split not in casrel.SPLIT_FILES:
            raise SystemExit(f"rin_keras.evaluate: a --dataset_dir folder has no {FLAGS.split} split: it holds "
                             f"{', '.join(casrel.SPLIT_FILES)} at most.")
        try:
            scores = evaluate_folder(extractor, dataset_dir, FLAGS.split)
        except (casrel.DataError, FileNotFoundError) as e:  # The file (and line) to mend, without a traceback.
            sys.exit(f"rin_keras.evaluate: {e}")
        scores["data"] = os.path.realpath(dataset_dir)
        names = folder_report_names(dataset_dir, scores["split"], _threshold_suffix())
        name = report_of(_output_dir(), names, scores["data"], written=False) or names[-1]
    else:
        if FLAGS.split and FLAGS.split.startswith("heldout") and not config.heldout_categories:
            raise SystemExit(f"rin_keras.evaluate: --split={FLAGS.split} scores a webnlg3 model trained with "
                             f"--heldout_categories; this one was trained on all of {config.dataset}.")
        try:
            corpus = Corpus.prepare(config.dataset, config.builder_config, FLAGS.tfds_data_dir, FLAGS.data_dir)
        except casrel.DataError as e:  # A published file to copy again, named.
            raise SystemExit(f"rin_keras.evaluate: {e}") from e
        split = FLAGS.split or ("test" if "test" in corpus.splits else "validation")
        try:
            corpus.raw(split)  # A missing split is reported before the train split is read.
        except ValueError as e:
            raise SystemExit(f"rin_keras.evaluate: {e}") from e
        scores = evaluate_split(extractor, corpus, split, breakdown=True,
                                seen_relations=train_relations(corpus) if "train" in corpus.splits else None)
        scores["data"] = f"{config.dataset}/{config.builder_config}"
        scores["split"] = split
        name = f"evaluation_{split}{_threshold_suffix()}"
    scores["threshold"] = extractor.threshold
    print(f"{scores['data']}, {scores['split']} split, threshold {extractor.threshold:g}:")
    print(format_table(scores))
    _write_scores(scores, name)


if __name__ == "__main__":
    cli.define_model_dir_flag()
    flags.DEFINE_enum("split", None, list(SPLITS),
                      "Split to score (default: test where the data has it, else validation; for --dataset_dir, "
                      "else the folder's first).")
    cli.define_threshold_flag()
    flags.adopt_module_key_flags(cli)  # --help lists the shared flags too.
    flags.DEFINE_string("dataset_dir", None, "Score this folder (CasRel JSON or JSON lines, e.g. "
                        "../shared/data/webnlg_ood_dev) instead of the model's benchmark, on its tokenised and raw "
                        "texts; default for a model trained on a folder of your own: that folder.")
    flags.DEFINE_string("data_dir", None, "Manual folder of the published data (default $RIN_DATA_DIR or ../shared/data).")
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS keeps prepared datasets.")
    cli.register_path_check("dataset_dir", casrel.find_split_files)
    app.run(main)
