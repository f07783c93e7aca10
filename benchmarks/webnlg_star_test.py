"""WebNLG* test F1 of models trained on WebNLG* or on WebNLG 3.0, on the same texts and relation names.

    python benchmarks/webnlg_star_test.py --model_dirs=runs/webnlg3_exact,runs/webnlg_exact_k3 \\
        [--data_dir=../shared/data]

WebNLG* test without its texts that WebNLG 3.0 train holds (34 of 703, compared by letters and digits,
case-insensitive), so a `webnlg3` model is scored only on text it did not train on. Triples are compared as
WebNLG* writes them (partial: the last word of each entity, case-folded), with relation names mapped to
WebNLG*'s: a `webnlg3` model's predictions through `relation_names_v3_to_webnlg_star.json`'s renames, and, for
every model and the gold alike, the names that file merges into one class read as one. Prints precision, recall
and F1 per model.
"""

import os

from absl import app, flags

from rin_keras.triple_extractor import RINTripleExtractor
from tfds_builders.webnlg3.locating import read_entries

# The comparison with WebNLG*'s texts, words and relation names is the locating benchmark's.
from webnlg3_locating import _name_word, _relation_mapper, _text_key, _word, define_data_dir_flag, star_split

FLAGS = flags.FLAGS


def webnlg3_train_keys(data_dir: str) -> set[str]:
    """The letters-and-digits keys of every WebNLG 3.0 train text."""
    keys = set()
    for root, _, files in os.walk(os.path.join(data_dir, "webnlg3", "en", "train")):
        for name in files:
            if name.endswith(".xml"):
                keys.update(_text_key(text) for entry in read_entries(os.path.join(root, name))
                            for _, text in entry.lexes)
    return keys


def star_test(data_dir: str, excluded: set[str]) -> tuple[list[dict], int]:
    """WebNLG* test examples (repaired) whose text is not in `excluded`, and how many were left out."""
    examples = star_split(data_dir, "test")
    kept = [e for e in examples if _text_key(e["text"]) not in excluded]
    return kept, len(examples) - len(kept)


def score(extractor: RINTripleExtractor, examples: list[dict], v3, star) -> dict:
    """Partial-match precision, recall and F1 of `extractor` on `examples` (WebNLG* relation names)."""
    rename = v3 if extractor.config.dataset == "webnlg3" else star
    results = extractor.predict_tokens([e["text"].split() for e in examples])
    correct = predicted = gold = 0
    for example, result in zip(examples, results):
        truth = {(_word(s), star(r), _word(o)) for s, r, o in example["triple_list"]}
        found = {(_name_word(t["subject"]), rename(t["relation"]), _name_word(t["object"])) for t in result["triples"]}
        correct += len(truth & found)
        predicted += len(found)
        gold += len(truth)
    precision, recall = correct / max(predicted, 1), correct / max(gold, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1}


def main(argv):
    del argv
    v3, star = _relation_mapper(FLAGS.data_dir)
    examples, left_out = star_test(FLAGS.data_dir, webnlg3_train_keys(FLAGS.data_dir))
    print(f"WebNLG* test: {len(examples)} texts ({left_out} in WebNLG 3.0 train left out), partial match")
    print(f"{'model':<40}{'trained on':>12}{'P':>8}{'R':>8}{'F1':>8}")
    for model_dir in FLAGS.model_dirs:
        extractor = RINTripleExtractor.from_preset(model_dir)
        scores = score(extractor, examples, v3, star)
        print(f"{model_dir:<40}{extractor.config.dataset:>12}"
              + "".join(f"{scores[m]:8.2f}" for m in ("precision", "recall", "f1")))


if __name__ == "__main__":
    define_data_dir_flag()
    flags.DEFINE_list("model_dirs", None, "Training output folders (or extractor .keras files) to score.",
                      required=True)
    app.run(main)
