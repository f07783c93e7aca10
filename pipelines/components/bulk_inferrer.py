"""BulkInferrer: a Beam pipeline running an exported model over text files with RunInference.

Reads the texts of its input files as `rin_keras.predict --input` does (one a line, `.jsonl` or `.ndjson`, or
`.json`: `read_texts`), batches them (`BatchElements` inside RunInference), runs the SavedModel's
`serving_default` signature, and writes JSON lines `{"text", "triples", "truncated"}`
(the `serving.contract.triples_from_outputs` triple structure, as `rin_keras.predict`
and `serving.client` write it; `truncated`: the text had more than the model's maximum
of tokens, and the rest was not read). The same code runs on Flink, Spark or Dataflow
through the Beam pipeline options, each file read by one worker (the input files and
the model path must then be readable by the workers).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Iterable, Sequence

import apache_beam as beam
from absl import logging
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from rin_keras.predict import read_texts
from serving import contract

OUTPUT_PREFIX = "predictions"


@dataclasses.dataclass
class Config:
    """BulkInferrer settings.

    Attributes:
        input_pattern: text files to read (default: ExampleGen's test sentences).
        max_batch_size: largest batch RunInference sends to the model.
    """

    input_pattern: str | None = None
    max_batch_size: int = 64


class SavedModelTextHandler(ModelHandler[str, PredictionResult, Any]):
    """RunInference handler for a rin_keras SavedModel: sentences in, triples out.

    Args:
        saved_model_dir: the exported version folder.
        max_batch_size: largest batch per call.
    """

    def __init__(self, saved_model_dir: str, max_batch_size: int = 64):
        super().__init__()
        self._saved_model_dir = saved_model_dir
        self._max_batch_size = max_batch_size

    def load_model(self):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (TF Text ops of BERT-encoder exports)

        return tf.saved_model.load(self._saved_model_dir).signatures[contract.SENTENCES_SIGNATURE]

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        import tensorflow as tf

        outputs = model(**{contract.input_name(contract.SENTENCES_SIGNATURE): tf.constant(list(batch), tf.string)})
        outputs = {k: v.numpy() for k, v in outputs.items()}
        results = [{"triples": triples, "truncated": bool(truncated)}
                   for triples, truncated in zip(contract.triples_from_outputs(outputs), outputs["truncated"])]
        return [PredictionResult(sentence, result) for sentence, result in zip(batch, results)]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}


def input_files(pattern: str) -> list[str]:
    """The files `pattern` matches, each read through once: a file that is not texts fails here, in one line, before
    a worker reads it.

    Raises:
        FileNotFoundError: no file matches.
        rin_keras.predict.InputError: a file is not texts (malformed JSON lines), naming the file and line.
    """
    files = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
    if not files:
        raise FileNotFoundError(f"--inference_input: no file matches {pattern!r}.")
    for path in files:
        for _ in read_texts(path):
            pass
    return files


def run(config: Config, saved_model_dir: str, default_input: str, output_dir: str, beam_options=None) -> dict:
    """Writes `predictions-SSSSS-of-NNNNN.jsonl`; returns the counts of sentences, triples and truncated texts.

    Raises:
        FileNotFoundError: no input file matches.
        rin_keras.predict.InputError: an input file is not texts (malformed JSON lines), naming the file and line.
    """
    files = input_files(config.input_pattern or default_input)
    with beam.Pipeline(options=beam_options) as pipeline:
        _ = (
            pipeline
            | "Files" >> beam.Create(files)
            | "Read" >> beam.FlatMap(read_texts)
            | "RunInference" >> RunInference(SavedModelTextHandler(saved_model_dir, config.max_batch_size))
            | "Json" >> beam.Map(lambda r: json.dumps({"text": r.example, **r.inference}, ensure_ascii=False))
            | "Write" >> beam.io.WriteToText(os.path.join(output_dir, OUTPUT_PREFIX), file_name_suffix=".jsonl")
        )
    counts = {"sentences": 0, "triples": 0, "truncated": 0}
    for path in glob.glob(os.path.join(output_dir, f"{OUTPUT_PREFIX}-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                counts["sentences"] += 1
                counts["triples"] += len(record["triples"])
                counts["truncated"] += record["truncated"]
    if counts["truncated"]:
        logging.warning("BulkInferrer: %d text(s) had more than the model's maximum of tokens and were cut "
                        "(\"truncated\": true).", counts["truncated"])
    return counts
