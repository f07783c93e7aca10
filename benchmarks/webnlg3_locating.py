"""How well `tfds_builders.webnlg3.locating` places WebNLG 3.0 entities in their texts.

    python benchmarks/webnlg3_locating.py [--data_dir=../shared/data] [--samples=20]

Prints, for the train and dev splits of `webnlg3/en`: the share of triple mentions
(triple x text) located with full spans, and the dropped ones by reason. Then, on
the WebNLG* (CopyRE, partial: last word) train texts that are also WebNLG 3.0 train
texts (compared by letters and digits, case-insensitive): the share of WebNLG*
triples that the located triples, reduced to last words and with relations mapped
to WebNLG* names (`relation_names_v3_to_webnlg_star.json`), reproduce (recall), the
share of those located triples that are WebNLG* triples (precision), and a sample
of disagreements.
"""

import collections
import glob
import json
import os
import random
import re
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfds_builders.webnlg3.locating import fold, locate_triples, read_entries  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"),
                    "The shared data folder (holds webnlg3/ and webnlg_star/).")
flags.DEFINE_integer("samples", 20, "Disagreements with WebNLG* to print.")


def _text_key(text):
    return re.sub(r"[^a-z0-9]+", "", fold(text))


def _word(word):
    """A last word as compared: case folded (WebNLG* writes `Airport` where its text has `airport`), without a
    final period (`Thakur.` mid-text is one token here, two in WebNLG*)."""
    return fold(word.rstrip(".") or word)


def locate_split(data_dir, split):
    """Locates every text of one split: returns [(text, located, entry)] and prints coverage."""
    results = []
    for path in sorted(glob.glob(os.path.join(data_dir, "webnlg3", "en", split, "*triples", "*.xml"))):
        for entry in read_entries(path):
            texts = [text for _, text in entry.lexes]
            for index, text in enumerate(texts):
                located = locate_triples(text, entry.triples, texts[:index] + texts[index + 1:])
                results.append((text, located, entry))
    mentions = sum(len(entry.triples) for _, _, entry in results)
    found = sum(len(located.triples) for _, located, _ in results)
    reasons = collections.Counter(reason for _, located, _ in results for _, reason in located.dropped)
    print(f"{split}: {len(results)} texts, {mentions} triple mentions, located {found} ({100 * found / mentions:.1f}%)")
    for reason, count in reasons.most_common():
        print(f"  dropped, {reason}: {count} ({100 * count / mentions:.1f}%)")
    return results


def _relation_mapper(data_dir):
    """v3 relation name -> a canonical WebNLG* name (renames, then equivalence classes)."""
    with open(os.path.join(data_dir, "webnlg3", "relation_names_v3_to_webnlg_star.json")) as f:
        names = json.load(f)
    canonical = {name: names_[0] for names_ in names["equivalence_classes"] for name in names_}

    def star(relation):
        return canonical.get(relation, relation)

    def v3(relation):
        return star(names["renames_v3_to_webnlg_star"].get(relation, relation))

    return v3, star


def compare_with_star(data_dir, train, samples):
    """Prints the agreement of the located train triples with WebNLG* train, by last word."""
    v3, star = _relation_mapper(data_dir)
    by_key = collections.defaultdict(list)
    for text, located, _ in train:
        by_key[_text_key(text)].append(located)
    with open(os.path.join(data_dir, "webnlg_star", "train_triples.json")) as f:
        star_data = json.load(f)
    gold_total = reproduced = predicted_total = correct = matched_texts = 0
    disagreements = []
    for example in star_data:
        candidates = by_key.get(_text_key(example["text"]))
        if not candidates:
            continue
        matched_texts += 1
        gold = collections.Counter((_word(s), star(r), _word(o)) for s, r, o in example["triple_list"])
        best = None
        for located in candidates:  # A text in several entries: the entry whose triples agree best.
            words = [token.text for token in located.tokens]
            predicted = collections.Counter(
                (_word(words[s[1] - 1]), v3(r), _word(words[o[1] - 1])) for s, r, o in located.triples)
            hits = sum((gold & predicted).values())
            if best is None or hits > best[0]:
                best = (hits, predicted, located)
        hits, predicted, located = best
        gold_total += sum(gold.values())
        predicted_total += sum(predicted.values())
        reproduced += hits
        correct += hits
        if gold - predicted:
            disagreements.append((example["text"], sorted(gold - predicted), sorted(predicted - gold), located.dropped))
    print(f"WebNLG* train texts in WebNLG 3.0 train: {matched_texts} of {len(star_data)}")
    print(f"  WebNLG* triples reproduced: {reproduced} of {gold_total} ({100 * reproduced / gold_total:.1f}%)")
    print(f"  located triples in WebNLG*: {correct} of {predicted_total} ({100 * correct / predicted_total:.1f}%)")
    print(f"  texts with a WebNLG* triple not reproduced: {len(disagreements)}")
    for text, missing, extra, dropped in random.Random(0).sample(disagreements, min(samples, len(disagreements))):
        print(f"\n  {text}\n    WebNLG* only: {missing}\n    located only: {extra}\n    dropped: {dropped}")


def main(_):
    train = locate_split(FLAGS.data_dir, "train")
    locate_split(FLAGS.data_dir, "dev")
    compare_with_star(FLAGS.data_dir, train, FLAGS.samples)


if __name__ == "__main__":
    app.run(main)
