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
    """

    min_partial_f1: float = 50.0
    max_f1_drop: float = 1.0
    split: str = "validation"


def blessing_refusals(config: Config, f1: float, baseline_f1: float | None) -> list[str]:
    """Why a model of partial F1 `f1` on `config.split` is not blessed (none: blessed), against the last blessed
    model's `baseline_f1` (None: no other model was blessed)."""
    reasons = []
    if f1 < config.min_partial_f1:
        reasons.append(f"{config.split} partial F1 {f1:.2f} < threshold {config.min_partial_f1:.2f}")
    if baseline_f1 is not None and f1 < baseline_f1 - config.max_f1_drop:
        reasons.append(f"{config.split} partial F1 {f1:.2f} is more than {config.max_f1_drop} below "
                       f"the last blessed model's {baseline_f1:.2f}")
    return reasons


def run(config: Config, examples_dir: str, model_dir: str, output_dir: str, baseline_f1: float | None = None) -> dict:
    """Scores every split but train (test and held-out ones are reported figures); returns their partial F1 and the
    blessing.

    Args:
        baseline_f1: partial F1 of the last blessed model, or None for the first one. It is recorded, not part of
            the run's fingerprint: a rerun of the same model reuses its evaluation.
    """
    corpus = RecordCorpus(examples_dir)
    extractor = RINTripleExtractor.from_preset(model_dir)
    scores = {split: evaluate_split(extractor, corpus, split) for split in corpus.splits if split != "train"}
    f1 = scores[config.split]["partial"]["f1"]
    reasons = blessing_refusals(config, f1, baseline_f1)
    blessed = not reasons
    with open(os.path.join(output_dir, "evaluation.json"), "w", encoding="utf-8") as f:
        json.dump({"scores": scores, "blessed": blessed, "reasons": reasons, "baseline_f1": baseline_f1}, f, indent=2)
    open(os.path.join(output_dir, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    return {
        "blessed": blessed,
        "reasons": reasons,
        "partial_f1": f1,
        "baseline_f1": baseline_f1,
        **{f"{split}_partial_f1": split_scores["partial"]["f1"] for split, split_scores in scores.items()},
    }
