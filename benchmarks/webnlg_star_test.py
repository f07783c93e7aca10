"""WebNLG* test F1 of models trained on WebNLG* or on WebNLG 3.0, on the same texts and relation names.

    python benchmarks/webnlg_star_test.py --model_dirs=runs/webnlg3_exact,runs/webnlg_exact_k3 \\
        [--data_dir=../shared/data]

WebNLG* test without its texts that WebNLG 3.0 train holds (34 of 703, compared by letters and digits,
case-insensitive), so a `webnlg3` model is scored only on text it did not train on. Triples are compared as
WebNLG* writes them (partial: the last word of each entity, case-folded), with relation names mapped to
WebNLG*'s: a `webnlg3` model's predictions through `relation_names_v3_to_webnlg_star.json`'s renames, and, for
every model and the gold alike, the names that file merges into one class read as one. Prints precision, recall
and F1 per model, of all its predictions and of those of the relations WebNLG* train holds (WebNLG* dropped every
triple of the other relations, such as `birthDate`, from its texts, so those predictions cannot be right there).

WebNLG* also dropped triples whose entities its last-word matching did not find in the text. Most of its test
texts are in WebNLG 3.0 dev, so each model is scored there twice: against WebNLG*'s triples, and against the
triples the texts' WebNLG 3.0 entries state, placed by the `webnlg3` builder. (A `webnlg3` model chose its epoch
on a dev split that holds some of those texts.)
"""

import os

from absl import app, flags

from rin_keras import cli, metrics
from rin_keras.triple_extractor import RINTripleExtractor, artifact_file
from tfds_builders.webnlg3.locating import read_entries

# The comparison with WebNLG*'s texts, words and relation names is the locating benchmark's.
from webnlg3_locating import (_name_word, _relation_mapper, _text_key, _word, define_data_dir_flag, locate_split,
                              star_split)

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


def with_entry_triples(data_dir: str, examples: list[dict], v3) -> list[dict]:
    """The examples whose text WebNLG 3.0 dev holds, each with the triples its WebNLG 3.0 entry states instead of
    WebNLG*'s: placed in the text as the `webnlg3` builder places them (its unplaced triples left out), as last
    words with WebNLG*'s relation names."""
    placed = {}
    for text, located, _ in locate_split(data_dir, "dev"):
        words = [token.text for token in located.tokens]
        placed.setdefault(_text_key(text), [(words[s[1] - 1], r, words[o[1] - 1]) for s, r, o in located.triples])
    return [{"text": e["text"], "triple_list": [(s, v3(r), o) for s, r, o in placed[_text_key(e["text"])]]}
            for e in examples if _text_key(e["text"]) in placed]


def predict(extractor: RINTripleExtractor, examples: list[dict], v3, star) -> list[set]:
    """`extractor`'s triples for each example as WebNLG* writes them: last words, WebNLG*'s relation names."""
    rename = v3 if extractor.config.dataset == "webnlg3" else star
    results = extractor.predict_tokens([e["text"].split() for e in examples])
    return [{(_name_word(t["subject"]), rename(t["relation"]), _name_word(t["object"])) for t in result["triples"]}
            for result in results]


def score(predictions: list[set], examples: list[dict], star, relations: set | None = None) -> dict:
    """Partial-match precision, recall and F1 of `predictions` on `examples`.

    With `relations`, predicted triples of other relations are left out first: WebNLG* holds no triple of a relation
    its train split lacks (`birthDate`, `deathDate`, ...), so such a prediction counts as wrong whatever the text says.
    """
    gold = [{(_word(s), star(r), _word(o)) for s, r, o in example["triple_list"]} for example in examples]
    return metrics.score_sets(gold, [{t for t in found if relations is None or t[1] in relations}
                                     for found in predictions])


def main(argv):
    del argv
    v3, star = _relation_mapper(FLAGS.data_dir)
    examples, left_out = star_test(FLAGS.data_dir, webnlg3_train_keys(FLAGS.data_dir))
    star_relations = {star(r) for example in star_split(FLAGS.data_dir, "train") for _, r, _ in example["triple_list"]}
    restated = with_entry_triples(FLAGS.data_dir, examples, v3)
    restated_keys = {_text_key(e["text"]) for e in restated}
    in_dev = [e for e in examples if _text_key(e["text"]) in restated_keys]
    rows = [("WebNLG*", "all", examples, None), ("WebNLG*", "WebNLG* relations", examples, star_relations),
            ("WebNLG*, in 3.0 dev", "all", in_dev, None), ("3.0 entries", "all", restated, None)]
    print(f"WebNLG* test: {len(examples)} texts ({left_out} in WebNLG 3.0 train left out), partial match. Gold: "
          f"WebNLG*'s triples ({sum(len(e['triple_list']) for e in examples)}); of its {len(in_dev)} texts that "
          f"WebNLG 3.0 dev holds, WebNLG*'s triples ({sum(len(e['triple_list']) for e in in_dev)}) and those their "
          f"WebNLG 3.0 entries state ({sum(len(e['triple_list']) for e in restated)}). 'WebNLG* relations': only "
          f"predictions of the {len(star_relations)} relations WebNLG* train holds")
    print(f"{'model':<40}{'trained on':>12}{'gold':>22}{'predictions':>20}{'P':>8}{'R':>8}{'F1':>8}")
    for model_dir in FLAGS.model_dirs:
        extractor = RINTripleExtractor.from_preset(model_dir)
        predictions = dict(zip((e["text"] for e in examples), predict(extractor, examples, v3, star)))
        for gold, kept, gold_examples, relations in rows:
            scores = score([predictions[e["text"]] for e in gold_examples], gold_examples, star, relations)
            print(f"{model_dir:<40}{extractor.config.dataset:>12}{gold:>22}{kept:>20}"
                  + "".join(f"{scores[m]:8.2f}" for m in ("precision", "recall", "f1")))


if __name__ == "__main__":
    define_data_dir_flag()
    flags.DEFINE_list("model_dirs", None, "Training output folders (or extractor .keras files) to score.",
                      required=True)
    cli.register_path_check("model_dirs", artifact_file)
    app.run(main)
