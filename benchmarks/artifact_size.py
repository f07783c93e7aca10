"""Artifact size: a model's `extractor.keras` with a float32 and with an int8 pretrained table, and F1 of each.

    python benchmarks/artifact_size.py --model_dir=runs/webnlg3_exact_heldout_k3
    python benchmarks/artifact_size.py --model_dir=runs/webnlg_exact_k3 --dataset_dir=../shared/data/webnlg_ood_dev

For a model saved with a float32 table (`RINConfig.pretrained_int8` off), the int8 copy is made by
`rin_keras.model.quantize_pretrained_table` (every other weight the same), so the two differ only in the table.
Prints each artifact's size (and its largest members), then partial and exact F1 of both on every split of the
model's dataset but train (held-out ones included) and, with --dataset_dir, on that folder. A model saved with an
int8 table (the default) or none is measured and scored as saved.
"""

import os
import tempfile
import zipfile

from absl import app, flags

from rin_keras import cli, evaluate
from rin_keras.data.corpus import Corpus
from rin_keras.model import quantize_pretrained_table
from rin_keras.triple_extractor import RINTripleExtractor

FLAGS = flags.FLAGS
cli.define_model_dir_flag()
flags.adopt_module_key_flags(cli)  # --helpshort lists --model_dir too.
flags.DEFINE_string("dataset_dir", None, "A CasRel-layout folder to score too (e.g. webnlg_ood_dev).")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data folder.")


def _size_report(name: str, path: str) -> None:
    with zipfile.ZipFile(path) as archive:
        members = sorted(archive.infolist(), key=lambda m: -m.file_size)[:3]
    largest = ", ".join(f"{os.path.basename(m.filename)} {m.file_size / 1e6:.1f}" for m in members)
    print(f"{name:<8} {os.path.getsize(path) / 1e6:7.1f} MB   (largest, MB: {largest})")


def main(argv):
    del argv
    extractor = RINTripleExtractor.from_preset(FLAGS.model_dir)
    quantized = RINTripleExtractor(quantize_pretrained_table(extractor.model), extractor.preprocessor,
                                   extractor.threshold)
    if quantized.model is extractor.model:
        print("Its pretrained table is int8 already (the default since ddddad8), or it has none: no float32 copy to "
              "compare with; the model as saved is measured and scored.")
        extractors = {"as saved": extractor}
    else:
        extractors = {"float32": extractor, "int8": quantized}
    with tempfile.TemporaryDirectory() as tmp:
        for name, each in extractors.items():
            _size_report(name, each.save_to_preset(os.path.join(tmp, name)))
    config = extractor.config
    corpus = Corpus.for_model(FLAGS.model_dir, config, FLAGS.tfds_data_dir)
    print(f"{'split':<22}" + "".join(f"{name + ' ' + match:>16}" for name in extractors for match in ("partial",
                                                                                                      "exact")))
    for split in [s for s in corpus.splits if s != "train"]:
        scores = {name: evaluate.evaluate_split(each, corpus, split) for name, each in extractors.items()}
        print(f"{split:<22}" + "".join(f"{scores[n][m]['f1']:16.2f}" for n in extractors for m in ("partial", "exact")))
    if FLAGS.dataset_dir:
        scores = {name: evaluate.evaluate_folder(each, FLAGS.dataset_dir, "validation")
                  for name, each in extractors.items()}
        print(f"{os.path.basename(os.path.normpath(FLAGS.dataset_dir)):<22}"
              + "".join(f"{scores[n][m]['f1']:16.2f}" for n in extractors for m in ("partial", "exact")))


if __name__ == "__main__":
    app.run(main)
