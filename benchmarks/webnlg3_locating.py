"""How well `tfds_builders.webnlg3.locating` places WebNLG 3.0 entities in their texts.

    python benchmarks/webnlg3_locating.py [--data_dir=../shared/data] [--samples=20]

Prints, for the train and dev splits of `webnlg3/en`: the share of triple mentions
(triple x text) located with full spans, and the dropped ones by reason; for train, the
periods inside texts that the tokeniser splits off and the words that keep one. Then, on
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

from rin_keras.data.tokenizer import ABBREVIATION, WORD_AND_PERIOD, tokenize  # noqa: E402
from tfds_builders.casrel import default_manual_dir, repair_phrase  # noqa: E402
from tfds_builders.webnlg3.locating import fold, locate_triples, read_entries  # noqa: E402

FLAGS = flags.FLAGS


def define_data_dir_flag() -> None:
    """--data_dir, which the benchmarks that compare with WebNLG* share (defined when run, not when imported)."""
    flags.DEFINE_string("data_dir", default_manual_dir(), "The shared data folder (holds webnlg3/ and webnlg_star/; "
                        "default $RIN_DATA_DIR, else ../shared/data beside the checkout).")
    flags.register_validator("data_dir", lambda path: all(os.path.isdir(os.path.join(path, d))
                                                          for d in ("webnlg3", "webnlg_star")),
                             "--data_dir must hold webnlg3/ and webnlg_star/ (the shared benchmark data).")


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
    if not results:
        raise SystemExit(f"{data_dir} holds no webnlg3/en/{split}/*triples/*.xml: give the folder of webnlg3/.")
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


def _name_word(entity):
    """The last word of an entity's name, as CopyRE took it (`English_language` -> `language`)."""
    return _word(entity.replace("_", " ").strip('"').split()[-1]) if entity.strip('"').strip() else ""


def _placed(located, entry):
    """(original triple, located triple or None) for each triple of the entry, in order."""
    dropped = iter(located.dropped)
    placed = iter(located.triples)
    next_dropped = next(dropped, None)
    pairs = []
    for triple in entry.triples:
        if next_dropped and next_dropped[0] == triple:
            pairs.append((triple, None))
            next_dropped = next(dropped, None)
        else:
            pairs.append((triple, next(placed)))
    return pairs


def star_split(data_dir, split="train"):
    """A WebNLG* split (`train`, `val`, `test`), its texts and entities read as the builders read them
    (`casrel.repair_phrase`: mojibake undone word by word, `SuÃ¡rez` -> `Suárez`)."""
    with open(os.path.join(data_dir, "webnlg_star", f"{split}_triples.json"), encoding="utf-8") as f:
        return [{"text": repair_phrase(example["text"]),
                 "triple_list": [[repair_phrase(s), r, repair_phrase(o)] for s, r, o in example["triple_list"]]}
                for example in json.load(f)]


def _best_entry(candidates, gold, v3):
    """Of the entries holding a text, `(hits, last-word triples, (triple, last-word triple) pairs, located)` of
    the one whose located triples agree best with the WebNLG* triples `gold`."""
    best = None
    for located, entry in candidates:
        words = [token.text for token in located.tokens]
        pairs = [(triple, placed and (_word(words[placed[0][1] - 1]), v3(placed[1]), _word(words[placed[2][1] - 1])))
                 for triple, placed in _placed(located, entry)]
        predicted = collections.Counter(word_triple for _, word_triple in pairs if word_triple)
        hits = sum((gold & predicted).values())
        if best is None or hits > best[0]:
            best = (hits, predicted, pairs, located)
    return best


def compare_with_star(data_dir, train, samples):
    """Prints the agreement of the located train triples with WebNLG* train, by last word, and why they differ."""
    v3, star = _relation_mapper(data_dir)
    by_key = collections.defaultdict(list)
    for text, located, entry in train:
        by_key[_text_key(text)].append((located, entry))
    star_data = star_split(data_dir)
    gold_total = reproduced = predicted_total = matched_texts = 0
    missed, extra_kinds = collections.Counter(), collections.Counter()
    disagreements = []
    for example in star_data:
        candidates = by_key.get(_text_key(example["text"]))
        if not candidates:
            continue
        matched_texts += 1
        gold = collections.Counter((_word(s), star(r), _word(o)) for s, r, o in example["triple_list"])
        hits, predicted, pairs, located = _best_entry(candidates, gold, v3)
        gold_total += sum(gold.values())
        predicted_total += sum(predicted.values())
        reproduced += hits
        extra = predicted - gold
        for s, r, o in (gold - predicted).elements():
            by_name = [word_triple for (subject, relation, object_), word_triple in pairs
                       if (_name_word(subject), v3(relation), _name_word(object_)) == (s, r, o)]
            if any((s, o) == (ps, po) for ps, _, po in extra):
                missed["the relation names differ"] += 1
            elif any(by_name):
                missed["WebNLG* has the name's last word, the text writes it otherwise"] += 1
            elif by_name:
                missed["dropped here"] += 1
            else:
                missed["no such triple in the WebNLG 3.0 entry"] += 1
        for s, r, o in extra.elements():
            same_relation = any(r == gold_relation for _, gold_relation, _ in (gold - predicted))
            extra_kinds["WebNLG* has another word for it" if same_relation else "WebNLG* lacks the triple"] += 1
        if gold - predicted:
            disagreements.append((example["text"], sorted(gold - predicted), sorted(extra), located.dropped))
    print(f"WebNLG* train texts in WebNLG 3.0 train: {matched_texts} of {len(star_data)}")
    print(f"  WebNLG* triples reproduced: {reproduced} of {gold_total} ({100 * reproduced / gold_total:.1f}%)")
    for kind, count in missed.most_common():
        print(f"    not reproduced, {kind}: {count} ({100 * count / gold_total:.1f}%)")
    mentions = gold_total - missed["WebNLG* has the name's last word, the text writes it otherwise"] - missed[
        "the relation names differ"] - missed["no such triple in the WebNLG 3.0 entry"]
    print(f"  reproduced of the WebNLG* triples that name text mentions and WebNLG 3.0 relations: {reproduced} of "
          f"{mentions} ({100 * reproduced / mentions:.1f}%)")
    print(f"  located triples in WebNLG*: {reproduced} of {predicted_total} ({100 * reproduced / predicted_total:.1f}%)")
    for kind, count in extra_kinds.most_common():
        print(f"    not in WebNLG*, {kind}: {count} ({100 * count / predicted_total:.1f}%)")
    print(f"  texts with a WebNLG* triple not reproduced: {len(disagreements)}")
    for text, missing, extra, dropped in random.Random(0).sample(disagreements, min(samples, len(disagreements))):
        print(f"\n  {text}\n    WebNLG* only: {missing}\n    located only: {extra}\n    dropped: {dropped}")


def count_sentence_periods(results):
    """Prints how many periods inside the texts end a sentence as tokens of their own, and which words keep one."""
    kept = collections.Counter()
    periods = texts_keeping = 0
    for text, _, _ in results:
        tokens = tokenize(text)[:-1]  # Inside the text: its final period is split off anyway.
        periods += tokens.count(".")
        words = [t for t in tokens if re.fullmatch(WORD_AND_PERIOD, t) and not re.fullmatch(ABBREVIATION, t)]
        texts_keeping += bool(words)
        kept.update(words)
    print(f"periods inside texts split off: {periods}; words keeping a period: {sum(kept.values())} in "
          f"{texts_keeping} texts {kept.most_common(5)}")


def main(_):
    train = locate_split(FLAGS.data_dir, "train")
    count_sentence_periods(train)
    locate_split(FLAGS.data_dir, "dev")
    compare_with_star(FLAGS.data_dir, train, FLAGS.samples)


if __name__ == "__main__":
    define_data_dir_flag()
    flags.DEFINE_integer("samples", 20, "Disagreements with WebNLG* to print.")
    app.run(main)
