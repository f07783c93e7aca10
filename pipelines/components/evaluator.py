"""Evaluator: scores the trained model and decides whether to bless it (as TFX's Evaluator).

A model is blessed when its partial F1 on `split` is at least `min_partial_f1`
(the value threshold) and not lower than the last blessed model's by more than
`max_f1_drop` points (the change threshold). Writes `evaluation.json` and an
empty `BLESSED` or `NOT_BLESSED` file.
"""

from __future__ import annotations

import dataclasses
import json
import os

from rin_keras.data.corpus import RecordCorpus
from rin_keras.evaluate import evaluate_split
from rin_keras.triple_extractor import RINTripleExtractor


@dataclasses.dataclass
class Config:
    """Evaluator settings.

    Attributes:
        min_partial_f1: value threshold on partial F1 (percent).
        max_f1_drop: change threshold: allowed drop below the last blessed model (points).
        split: the split that decides (validation: test stays a reported figure).
        baseline_f1: partial F1 of the last blessed model, or None for the first one.
    """

    min_partial_f1: float = 50.0
    max_f1_drop: float = 1.0
    split: str = "validation"
    baseline_f1: float | None = None


def run(config: Config, examples_dir: str, model_dir: str, output_dir: str) -> dict:
    """Scores validation and test; returns both partial F1 and the blessing."""
    corpus = RecordCorpus(examples_dir)
    extractor = RINTripleExtractor.from_preset(model_dir)
    scores = {split: evaluate_split(extractor, corpus, split) for split in ("validation", "test")}
    f1 = scores[config.split]["partial"]["f1"]
    reasons = []
    if f1 < config.min_partial_f1:
        reasons.append(f"{config.split} partial F1 {f1:.2f} < threshold {config.min_partial_f1:.2f}")
    if config.baseline_f1 is not None and f1 < config.baseline_f1 - config.max_f1_drop:
        reasons.append(f"{config.split} partial F1 {f1:.2f} is more than {config.max_f1_drop} below "
                       f"the last blessed model's {config.baseline_f1:.2f}")
    blessed = not reasons
    with open(os.path.join(output_dir, "evaluation.json"), "w", encoding="utf-8") as f:
        json.dump({"scores": scores, "blessed": blessed, "reasons": reasons}, f, indent=2)
    open(os.path.join(output_dir, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    return {
        "blessed": blessed,
        "reasons": reasons,
        "partial_f1": f1,
        "validation_partial_f1": scores["validation"]["partial"]["f1"],
        "test_partial_f1": scores["test"]["partial"]["f1"],
    }
