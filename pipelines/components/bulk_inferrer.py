"""BulkInferrer: a Beam pipeline running an exported model over text files with RunInference.

Reads one sentence per line, batches them (`BatchElements` inside RunInference),
runs the SavedModel's `serving_default` signature, and writes JSON lines
`{"text", "triples"}` (as `rin_keras.predict` and `serving.client` write) with the
`serving.contract.triples_from_outputs` triple structure. The same code runs on
Flink, Spark or Dataflow through the Beam pipeline options (the model path must
then be readable by the workers, e.g. on GCS).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Iterable, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

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
        triples = contract.triples_from_outputs({k: v.numpy() for k, v in outputs.items()})
        return [PredictionResult(sentence, result) for sentence, result in zip(batch, triples)]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}


def run(config: Config, saved_model_dir: str, default_input: str, output_dir: str, beam_options=None) -> dict:
    """Writes `predictions-SSSSS-of-NNNNN.jsonl`; returns the sentence and triple counts."""
    pattern = config.input_pattern or default_input
    if not glob.glob(pattern):
        raise FileNotFoundError(f"BulkInferrer: no input file matches {pattern!r}.")
    with beam.Pipeline(options=beam_options) as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromText(pattern)
            | "RunInference" >> RunInference(SavedModelTextHandler(saved_model_dir, config.max_batch_size))
            | "Json" >> beam.Map(lambda r: json.dumps({"text": r.example, "triples": r.inference}, ensure_ascii=False))
            | "Write" >> beam.io.WriteToText(os.path.join(output_dir, OUTPUT_PREFIX), file_name_suffix=".jsonl")
        )
    sentences = triples = 0
    for path in glob.glob(os.path.join(output_dir, f"{OUTPUT_PREFIX}-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                sentences += 1
                triples += len(json.loads(line)["triples"])
    return {"sentences": sentences, "triples": triples}
