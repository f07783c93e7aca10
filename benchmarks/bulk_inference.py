"""BulkInferrer throughput: sentences/s of the Beam RunInference pipeline on WebNLG test text.

    python benchmarks/bulk_inference.py --model_dir=runs/webnlg_partial_k3 -- \
        --direct_num_workers=2 --direct_running_mode=multi_processing

Exports the model to a temporary base path, writes the test sentences one a line,
and times `pipelines.components.bulk_inferrer.run` (pipeline start-up included).
Arguments after `--` are Beam pipeline options; one that Beam does not read stops the
benchmark before any work, as it stops `pipelines.local_runner`.
"""

import atexit
import os
import shutil
import tempfile
import time

from absl import app, flags
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import bulk_inferrer
from pipelines.local_runner import unknown_to_beam
from rin_keras import cli, export
from rin_keras.data.corpus import Corpus
from rin_keras.triple_extractor import RINTripleExtractor

FLAGS = flags.FLAGS
cli.define_model_dir_flag()
flags.adopt_module_key_flags(cli)  # --helpshort lists --model_dir too.
flags.DEFINE_integer("max_batch_size", 64, "Largest RunInference batch.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data folder.")


def main(argv):
    beam_args = argv[1:]  # absl leaves the arguments after `--` unparsed.
    try:
        unknown = unknown_to_beam(beam_args)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if unknown:
        raise app.UsageError(f"{' '.join(unknown)}: not a Beam pipeline option.")
    extractor = RINTripleExtractor.from_preset(FLAGS.model_dir)
    config = extractor.config
    corpus = Corpus.for_model(FLAGS.model_dir, config, FLAGS.tfds_data_dir)
    work = tempfile.mkdtemp(prefix="rin_bulk_")
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    path = export.export_version(extractor, os.path.join(work, "models"), 1)
    text = os.path.join(work, "test.txt")
    with open(text, "w", encoding="utf-8") as f:
        for x in corpus.examples("test"):
            f.write(" ".join(t.decode("utf-8") for t in x["tokens"]) + "\n")
    start = time.perf_counter()
    counts = bulk_inferrer.run(bulk_inferrer.Config(max_batch_size=FLAGS.max_batch_size), path, text,
                               os.path.join(work, "out"), PipelineOptions(beam_args))
    seconds = time.perf_counter() - start
    print(f"BulkInferrer {' '.join(beam_args) or 'with Beam defaults'}: {counts['sentences']} sentences, "
          f"{counts['triples']} triples in {seconds:.1f}s = {counts['sentences'] / seconds:.0f} sentences/s")


if __name__ == "__main__":
    app.run(main)
