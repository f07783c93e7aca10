"""How often the model's part-of-speech tagger agrees with an averaged-perceptron tagger.

    pip install -e ".[benchmarks]"
    python benchmarks/pos_agreement.py --release_dir=../shared/data/webnlg3/en --split=dev

Tokenises every text of the WebNLG 3.0 split with the project's tokeniser, tags the tokens with
`rin_keras.data.pos.PosTagger` (Brill's lexicon and the unknown-word rules) and with the averaged
perceptron that `textblob-aptagger` ships (Honnibal's, trained on the WSJ; it reads context), and prints
the share of equal tags: over all tokens, over the words the lexicon holds and over the rest, and the
most frequent disagreements. Neither tagger has seen this text.
"""

import collections
import os
import pathlib
import sys
import types

from absl import app, flags

from rin_keras.data import pos
from rin_keras.data.tokenizer import tokenize
from tfds_builders.casrel import default_manual_dir
from tfds_builders.webnlg3.locating import read_entries

FLAGS = flags.FLAGS
flags.DEFINE_string("release_dir", os.path.join(default_manual_dir(), "webnlg3", "en"),
                    "The release folder that holds train/ and dev/ (default: webnlg3/en of $RIN_DATA_DIR, else of "
                    "../shared/data beside the checkout).")
flags.DEFINE_string("split", "dev", "The release split whose texts are tagged.")
flags.DEFINE_integer("confusions", 15, "How many of the most frequent disagreements to print.")


def perceptron_tagger():
    """textblob-aptagger's tagger. It imports `textblob.packages`, which textblob 0.20 no longer has: that
    module was NLTK re-exported, so NLTK stands in for it."""
    import nltk

    sys.modules.setdefault("textblob.packages", types.SimpleNamespace(nltk=nltk))
    from textblob_aptagger import PerceptronTagger

    return PerceptronTagger()


def main(argv):
    del argv
    sentences = []
    for path in sorted(pathlib.Path(FLAGS.release_dir, FLAGS.split).glob("*triples/*.xml")):
        for entry in read_entries(path):
            sentences.extend(tokens for tokens in (tokenize(text) for _, text in entry.lexes) if tokens)
    if not sentences:
        raise app.UsageError(f"No WebNLG 3.0 texts in {os.path.join(FLAGS.release_dir, FLAGS.split)}/*triples/*.xml.")
    lexicon = pos.brill_lexicon()
    tagger, reference = pos.PosTagger(lexicon), perceptron_tagger()
    words = [word for tokens in sentences for word in tokens]
    ours = tagger.tag(words)  # The tagger reads no context: one call for every token.
    theirs = [tag for tokens in sentences for _, tag in reference.tag(" ".join(tokens), tokenize=False)]
    if len(theirs) != len(words):
        raise ValueError("The perceptron tagger split the tokens differently.")
    equal, total, confusions = collections.Counter(), collections.Counter(), collections.Counter()
    for word, mine, other in zip(words, ours, theirs):
        kind = "lexicon" if word in lexicon else "rules"
        total[kind] += 1
        equal[kind] += mine == other
        if mine != other:
            confusions[(word if kind == "lexicon" else f"<{kind}>", mine, other)] += 1
    print(f"{len(sentences)} texts, {len(words)} tokens of webnlg3 {FLAGS.split}")
    for kind in ("lexicon", "rules"):
        print(f"{kind:<8} {total[kind]:7d} tokens   {100 * equal[kind] / max(total[kind], 1):6.2f}% equal")
    print(f"{'all':<8} {len(words):7d} tokens   {100 * sum(equal.values()) / len(words):6.2f}% equal")
    print("most frequent disagreements (word, ours, perceptron's): count")
    for (word, mine, other), count in confusions.most_common(FLAGS.confusions):
        print(f"  {word} {mine} {other}: {count}")


if __name__ == "__main__":
    app.run(main)
