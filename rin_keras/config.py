"""RINConfig: every hyper-parameter of a RIN model and its training, in one place."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os

import numpy as np

from rin_keras.files import write_atomically
from rin_keras.layers.gru_updater import MODES as UPDATERS

BENCHMARKS = ("webnlg", "webnlg3", "nyt")  # webnlg3: the WebNLG 3.0 release (16 categories, 372 relations).
DATASETS = BENCHMARKS + ("custom",)  # custom: a user's folder (train --dataset_dir), with WebNLG's defaults.
VARIANTS = ("partial", "exact")
WORD_PIECES = ("first", "last")
ENCODERS = ("bilstm", "bert")
LR_SCHEDULES = ("constant", "cosine")
# How a run trains and reads its data, not what the network is: these stay with the run
# (its config.json) and out of a saved model's config; a loaded model gets the defaults.
TRAINING_FIELDS = (
    "learning_rate", "clipnorm", "lr_schedule", "lr_final_fraction", "lr_decay_factor", "lr_decay_patience",
    "batch_size", "max_batch_pairs", "epochs", "seed", "entity_substitution_rate", "entity_substitution_neighbours",
    "entity_substitution_unrelated_share", "max_length", "threshold", "heldout_categories",
)

# Fields added after models were saved without them, with the value such a model was trained with.
ADDED_FIELDS = {"pretrained_int8": False}
# Options of earlier versions with the value that meant "off" (docs/experiments.md): configs saved with them off
# (every model saved while they existed) still load.
RETIRED_FIELDS = {"relation_name_embeddings": False, "entity_unknown_rate": 0.0, "entity_unknown_features": False,
                  "piece_mask_rate": 0.0, "lr_backbone_fraction": 1.0}

# Paper defaults that differ per dataset (Section 5.1 and the official release).
_DATASET_DEFAULTS = {
    "webnlg": {"batch_size": 50, "learning_rate": 1e-3, "epochs": 150, "rounds": 3},
    "nyt": {"batch_size": 50, "learning_rate": 1e-3, "epochs": 100, "rounds": 3},
    # ~7x WebNLG*'s sentences, full names by default. 12 cosine epochs (about twice the steps of 44 WebNLG* epochs):
    # dev exact 77.70 against 70.45 with 6 (docs/experiments.md).
    "webnlg3": {"batch_size": 50, "learning_rate": 1e-3, "epochs": 12, "rounds": 3, "lr_schedule": "cosine",
                "variant": "exact"},
}
_DATASET_DEFAULTS["custom"] = {**_DATASET_DEFAULTS["webnlg"], "variant": "exact"}  # A folder: full names.
# The paper's BERT setting (Section 5.1): a smaller learning rate. For the BiLSTM, the
# unseen-word features (docs/benchmarks/robustness.md, "What the models read"); the dataclass defaults keep them
# off, so configs saved before they existed load as they were trained.
_ENCODER_DEFAULTS = {
    "bilstm": {"unknown_word_rate": 0.15, "shape_dim": 8, "char_dim": 50, "pretrained_dim": 50},
    "bert": {"learning_rate": 2e-4},
}
# The exact-match BiLSTM (full names: the model users get) learns unseen names from GloVe stand-ins of its train
# entities (docs/benchmarks/robustness.md, "What the models read"); stand-ins need the GloVe table.
_EXACT_BILSTM_DEFAULTS = {"entity_substitution_rate": 0.5}
# A BERT encoder trained with entity substitution takes half its stand-ins from any train entity word of the same
# kind and case (MiniLM, 30 cosine epochs: +3.5 `webnlg_ood_dev` F1 at -0.2 test; docs/benchmarks/robustness.md).
_BERT_SUBSTITUTION_DEFAULTS = {"entity_substitution_unrelated_share": 0.5}


def _flag(default, help: str, *, choices: tuple[str, ...] | None = None, recipe: bool = False):
    """A field that is also a command-line flag of `rin_keras.train` (`flag_fields`).

    Args:
        default: the field's default.
        help: the flag's help text.
        choices: the values an enum flag takes.
        recipe: the flag is unset (None) by default, and `RINConfig.for_dataset` then chooses the value by
            dataset, encoder and variant (or the field's default).
    """
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "recipe": recipe})


def flag_fields() -> list[dataclasses.Field]:
    """The RINConfig fields that `rin_keras.train` has a flag for, with their help in `field.metadata`."""
    return [f for f in dataclasses.fields(RINConfig) if "help" in f.metadata]


@dataclasses.dataclass
class RINConfig:
    """Hyper-parameters of a RIN model and its training.

    Args:
        dataset: `"webnlg"`, `"webnlg3"`, `"nyt"` or `"custom"` (a user's folder).
        variant: `"partial"` (last-word entities, the paper's protocol) or `"exact"`.
        encoder: `"bilstm"` (word + BiLSTM, the paper's main setting) or `"bert"`
            (a keras-hub BERT-family backbone read at word level).
        preset: for `bert`, a keras-hub preset name or a local preset folder.
        word_piece: for `bert`, which sub-token represents a word: `"last"` (the
            annotated word is an entity's last) or `"first"`.
        vocab_size: number of word ids, `<pad>` and `<unk>` included (set from the vocabulary).
        num_relations: number of relation types `l` (set from the dataset).
        word_dim: word embedding size (100 in the paper).
        lstm_units: BiLSTM units per direction (50, so H is 100-d).
        input_dropout: dropout on the word embeddings (0.1).
        unknown_word_rate: in training, the share of real words read as `<unk>`,
            so that words never seen in train are read from context and features.
        entity_substitution_rate: in training, the share of words inside gold entities
            read as a stand-in, one of their nearest neighbours in the pretrained table
            (`rin_keras.data.substitution`; the BiLSTM needs `pretrained_dim`, a BERT
            encoder reads the stand-ins' word pieces).
        entity_substitution_neighbours: how many nearest neighbours of each train
            entity word may stand in for it (more: stand-ins less like the word).
        entity_substitution_unrelated_share: the share of the substitutions whose
            stand-in is any train entity word's, of the same kind and case, rather
            than a neighbour's: the sentence alone then tells what the entity is.
        pretrained_dim: size of the frozen pretrained word vectors (GloVe); 0: none.
        pretrained_rows: rows of the pretrained table (set from the vocabulary).
        pretrained_int8: the frozen pretrained table is kept as int8 with a scale per row (a quarter of its
            float32 size; `WordFeatures`); models saved before this field have float32 tables.
        shape_dim: size of the word-shape (case) embedding; 0: none.
        pos_dim: size of the part-of-speech tag embedding (`rin_keras.data.pos`); 0: none.
        char_dim: size of the character-CNN word features; 0: none.
        num_chars: character ids (set from the vocabulary).
        hidden_dim: size of the task features H~ and H-, of the pair features m and of x.
        rounds: K, the number of interaction rounds; 0 gives the paper's BiLSTM_s baseline (no rounds).
        updater: `"gru"` (eqs. 4-7), `"rnn"` (vanilla RNN updater, Figure 3) or
            `"linear"` (INT and both GRUs replaced by linear maps, Table 5).
        use_relation_input: feed y^ to the interaction layer (ablation "without y^").
        use_entity_input: feed y- to the interaction layer (ablation "without y-").
        use_hidden_input: feed H to the interaction layer (ablation "without H").
        task_features: compute H~ and H- (eq. 11); False is the plain BiLSTM
            baseline with both heads straight on H (requires rounds=0).
        learning_rate: Adam learning rate.
        clipnorm: gradient clipping norm (5.0, as the official release).
        lr_schedule: `"constant"` (the paper), or `"cosine"`: the learning rate
            follows a half cosine from `learning_rate` at the first epoch down to
            `learning_rate * lr_final_fraction` at the last (`epochs`), so that a
            fixed epoch budget ends on a settled model.
        lr_final_fraction: for `"cosine"`, the last epoch's share of the starting rate.
        lr_decay_factor: multiply the learning rate by this when the dev F1 has not
            improved for `lr_decay_patience` epochs; 1.0 keeps it constant (the paper).
        lr_decay_patience: epochs without a better dev F1 before the learning rate decays.
        batch_size: sentences per batch.
        max_batch_pairs: word pairs per training batch at most: a length bucket whose sentences have up to n
            words gets `min(batch_size, max_batch_pairs // n**2)` sentences a batch; 0: no cap. Without
            bucketing (`rin_keras.train --nobucketing`) every batch holds `batch_size`.
        epochs: maximum training epochs (early stopping on dev F1 may end sooner).
        max_length: sentences are truncated to this many tokens.
        threshold: a triple is extracted when its probability is >= threshold.
        seed: random seed for initialisation and shuffling.
        heldout_categories: for `webnlg3`, train without three categories and score them (`builder_config`).
    """

    dataset: str = "webnlg"
    variant: str = _flag(
        "partial", "partial: last-word entities (the paper's benchmark protocol, the default for webnlg and nyt); "
        "exact: full phrases (the default for webnlg3 and --dataset_dir, whose entities are read as written). "
        "Selects the dev F1 too.",
        choices=VARIANTS, recipe=True,
    )
    encoder: str = _flag("bilstm", "Sentence encoder: BiLSTM, or a keras-hub BERT backbone.", choices=ENCODERS)
    preset: str = _flag("", "For --encoder=bert: keras-hub preset name or local preset folder.", recipe=True)
    word_piece: str = _flag("last", "For --encoder=bert: sub-token that represents a word.", choices=WORD_PIECES)
    vocab_size: int = 0
    num_relations: int = 0
    word_dim: int = _flag(100, "Word embedding size.")
    lstm_units: int = _flag(50, "BiLSTM units per direction.")
    input_dropout: float = 0.1
    unknown_word_rate: float = _flag(
        0.0, "In training, the share of real words read as <unk> (so unseen words are read from context and "
        "features). Default: 0.15 for the BiLSTM.", recipe=True,
    )
    entity_substitution_rate: float = _flag(
        0.0, "In training, the share of words inside gold entities read as one of their nearest GloVe neighbours "
        "(Bean -> Collins, Texas -> Ohio), so the model sees its contexts with names train never shows; with "
        "--encoder=bert too (stand-ins from --pretrained_vectors). "
        "Default: 0.5 for the BiLSTM --variant=exact (with GloVe), else 0.", recipe=True,
    )
    entity_substitution_neighbours: int = _flag(
        20, "How many nearest GloVe neighbours of each train entity word may stand in for it."
    )
    entity_substitution_unrelated_share: float = _flag(
        0.0, "The share of substitutions whose stand-in is any train entity word's of the same kind and case "
        "(Texas -> Collins), not a neighbour's, so that only the sentence tells what the entity is. "
        "Default: 0.5 for --encoder=bert with --entity_substitution_rate, else 0.", recipe=True,
    )
    pretrained_dim: int = 0
    pretrained_rows: int = 0
    pretrained_int8: bool = True
    shape_dim: int = _flag(0, "Word-shape (case) embedding size; 0: none. Default: 8 for the BiLSTM.", recipe=True)
    pos_dim: int = _flag(
        0, "Part-of-speech tag embedding size (the paper's encoder: 10); 0: none, the default (with the "
        "unseen-word features the tags measured no better: docs/benchmarks/accuracy_and_ablations.md).",
    )
    char_dim: int = _flag(0, "Character-CNN word feature size; 0: none. Default: 50 for the BiLSTM.", recipe=True)
    num_chars: int = 0
    hidden_dim: int = _flag(100, "Size of the task and pair features.")
    rounds: int = _flag(3, "Interaction rounds K (dataset default when unset); 0: no rounds, the heads read the "
                        "encoder directly (the paper's BiLSTM_s baseline).", recipe=True)
    updater: str = _flag("gru", "Feature updater (gru = eqs. 4-7).", choices=UPDATERS)
    use_relation_input: bool = _flag(True, "Ablation: feed y^ to the interaction layer.")
    use_entity_input: bool = _flag(True, "Ablation: feed y- to the interaction layer.")
    use_hidden_input: bool = _flag(True, "Ablation: feed H to the interaction layer.")
    task_features: bool = _flag(True, "False: plain BiLSTM baseline (needs --rounds=0).")
    learning_rate: float = _flag(1e-3, "Adam learning rate (dataset default when unset).", recipe=True)
    clipnorm: float = 5.0
    lr_schedule: str = _flag(
        "constant", "constant (the paper), or cosine: a half cosine over --epochs, down to --lr_final_fraction of "
        "the rate (dataset default when unset: cosine for webnlg3).", choices=LR_SCHEDULES, recipe=True,
    )
    lr_final_fraction: float = _flag(0.01, "For --lr_schedule=cosine: the last epoch's share of the rate.")
    lr_decay_factor: float = _flag(
        1.0, "Multiply the learning rate by this after --lr_decay_patience epochs without a better dev F1 "
        "(1 = constant).",
    )
    lr_decay_patience: int = _flag(5, "Epochs without a better dev F1 before the LR decays.")
    batch_size: int = _flag(50, "Sentences per batch (dataset default when unset).", recipe=True)
    max_batch_pairs: int = _flag(
        80_000, "Word pairs per training batch at most: batches of long sentences hold fewer than --batch_size, "
        "so that sentences x longest length^2 stays under this (the pair tensors set the peak memory); 0: no cap. "
        "Batches of length buckets only: with --nobucketing every batch holds --batch_size.",
    )
    epochs: int = _flag(150, "Maximum epochs (dataset default when unset).", recipe=True)
    max_length: int = _flag(100, "Truncate sentences to this many tokens.")
    threshold: float = 0.5
    seed: int = _flag(42, "Random seed.")
    heldout_categories: bool = _flag(
        False, "webnlg3 only: train without the categories Artist, CelestialBody and Politician and score them, "
        "and the dev entries whose subject train never holds, as splits of their own.",
    )

    def __post_init__(self):
        # A number or text field given another kind (`hidden_dim="8"`, `hidden_dim=True`) is refused; NumPy numbers
        # are read as Python's, which Keras layers and JSON take.
        for field in dataclasses.fields(self):
            kind = next((kind for kind in (bool, numbers.Integral, numbers.Real, str) if isinstance(field.default, kind)),
                        None)
            value = getattr(self, field.name)
            if kind is None:
                continue
            if not isinstance(value, (numbers.Integral, np.bool_) if kind is bool else kind) or (
                    kind is not bool and isinstance(value, (bool, np.bool_))):
                expected = {bool: "a bool", numbers.Integral: "an integer", numbers.Real: "a number", str: "a string"}
                raise TypeError(f"{field.name} must be {expected[kind]}, got {value!r}.")
            convert = {bool: bool, numbers.Integral: int, numbers.Real: float, str: str}[kind]
            setattr(self, field.name, convert(value))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}.")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}.")
        if self.heldout_categories and self.dataset != "webnlg3":
            raise ValueError("heldout_categories needs dataset='webnlg3'.")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}.")
        if self.encoder == "bert" and not self.preset:
            raise ValueError("encoder='bert' needs a preset (a keras-hub preset name or folder).")
        if self.word_piece not in WORD_PIECES:
            raise ValueError(f"word_piece must be 'first' or 'last', got {self.word_piece!r}.")
        if self.updater not in UPDATERS:
            raise ValueError(f"updater must be one of {UPDATERS}, got {self.updater!r}.")
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}.")
        if not self.task_features and self.rounds:
            raise ValueError("task_features=False (plain BiLSTM) needs rounds=0.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}.")
        if self.lr_schedule == "cosine" and self.lr_decay_factor < 1.0:
            raise ValueError("lr_schedule='cosine' sets the rate of every epoch; it cannot be combined with "
                             "lr_decay_factor < 1 (decay on a dev plateau).")
        if not 0.0 <= self.lr_final_fraction <= 1.0:
            raise ValueError(f"lr_final_fraction must be in [0, 1], got {self.lr_final_fraction}.")
        if not 0.0 < self.lr_decay_factor <= 1.0:
            raise ValueError(f"lr_decay_factor must be in (0, 1], got {self.lr_decay_factor}.")
        if self.lr_decay_patience < 1:
            raise ValueError(f"lr_decay_patience must be >= 1, got {self.lr_decay_patience}.")
        for name in ("unknown_word_rate", "entity_substitution_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        if self.entity_substitution_rate and not self.pretrained_dim and self.encoder == "bilstm":
            raise ValueError("entity_substitution_rate draws stand-ins from the pretrained table: it needs "
                             "pretrained_dim > 0.")
        if not 0.0 <= self.entity_substitution_unrelated_share <= 1.0:
            raise ValueError("entity_substitution_unrelated_share must be in [0, 1], got "
                             f"{self.entity_substitution_unrelated_share}.")
        if self.entity_substitution_unrelated_share and not self.entity_substitution_rate:
            raise ValueError("entity_substitution_unrelated_share chooses among the stand-ins of "
                             "entity_substitution_rate: set that rate too.")
        if self.entity_substitution_neighbours < 1:
            raise ValueError(f"entity_substitution_neighbours must be >= 1, got {self.entity_substitution_neighbours}.")
        if min(self.pretrained_dim, self.shape_dim, self.pos_dim, self.char_dim) < 0:
            raise ValueError("pretrained_dim, shape_dim, pos_dim and char_dim must be >= 0.")
        if self.max_batch_pairs < 0:
            raise ValueError(f"max_batch_pairs must be >= 0, got {self.max_batch_pairs}.")
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}.")
        for name in ("word_dim", "lstm_units", "hidden_dim", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0.0 < self.learning_rate < math.inf or not 0.0 < self.clipnorm < math.inf:
            raise ValueError(f"learning_rate and clipnorm must be finite and > 0, got {self.learning_rate} and "
                             f"{self.clipnorm}.")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError(f"input_dropout must be in [0, 1), got {self.input_dropout}.")
        for name in ("vocab_size", "num_relations", "num_chars", "pretrained_rows"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if (self.rounds and self.updater != "linear"
                and not (self.use_relation_input or self.use_entity_input or self.use_hidden_input)):
            raise ValueError("The interaction rounds read at least one of use_relation_input, use_entity_input "
                             "and use_hidden_input.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}.")

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "RINConfig":
        """Returns the defaults for `dataset`, the encoder and the variant, with `overrides` applied.

        These are the paper's per dataset and encoder; the exact-match BiLSTM adds entity
        substitution, and a BERT encoder given `entity_substitution_rate` takes half its
        stand-ins unrelated (`entity_substitution_unrelated_share` 0.5) unless told otherwise.
        """
        if dataset not in _DATASET_DEFAULTS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")
        encoder = overrides.get("encoder", "bilstm")
        defaults = {**_DATASET_DEFAULTS[dataset], **_ENCODER_DEFAULTS.get(encoder, {})}
        variant = overrides.get("variant", defaults.get("variant", "partial"))
        if encoder == "bilstm" and variant == "exact" and overrides.get("pretrained_dim", 1):
            defaults.update(_EXACT_BILSTM_DEFAULTS)
        if encoder == "bert" and overrides.get("entity_substitution_rate"):
            defaults.update(_BERT_SUBSTITUTION_DEFAULTS)
        return cls(dataset=dataset, **{**defaults, **overrides})

    @property
    def word_feature_inputs(self) -> tuple[str, ...]:
        """The featurizer's inputs beyond `token_ids` that the BiLSTM encoder reads."""
        if self.encoder != "bilstm":
            return ()
        return tuple(name for name, size in (("pretrained_ids", self.pretrained_dim and self.pretrained_rows),
                                             ("shape_ids", self.shape_dim), ("pos_ids", self.pos_dim),
                                             ("char_ids", self.char_dim and self.num_chars)) if size)

    def with_vocabulary(self, vocab, pretrained_dim: int | None = None) -> "RINConfig":
        """Returns a copy sized for `vocab` (a `rin_keras.data.vocab.Vocabulary`): word, relation and
        character counts, and the pretrained table's rows (`pretrained_dim` is the table's width; without a
        table in the vocabulary the pretrained feature and the BiLSTM's entity substitution are off)."""
        dim = self.pretrained_dim if pretrained_dim is None else pretrained_dim
        return self.replace(
            vocab_size=vocab.vocab_size, num_relations=vocab.num_relations, num_chars=len(vocab.chars) + 2,
            pretrained_rows=len(vocab.pretrained_words) + 2 if vocab.pretrained_words else 0,
            pretrained_dim=dim if vocab.pretrained_words else 0,
            entity_substitution_rate=(self.entity_substitution_rate
                                      if vocab.pretrained_words or self.encoder != "bilstm" else 0.0),
        )

    @property
    def builder_config(self) -> str:
        """The name of the dataset's TFDS builder config: the variant, `_heldout` with held-out categories."""
        return self.variant + ("_heldout" if self.heldout_categories else "")

    def network_fields(self) -> dict:
        """The fields that define the network (all but `TRAINING_FIELDS`), as saved with a model."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in TRAINING_FIELDS}

    def replace(self, **changes) -> "RINConfig":
        """Returns a copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def save(self, path: str) -> None:
        """Writes the config as JSON (renamed into place when whole)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

        def write(temporary):
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump(dataclasses.asdict(self), f, indent=2)

        write_atomically(path, write)

    @classmethod
    def load(cls, path: str) -> "RINConfig":
        """Reads a config written by `save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def from_dict(cls, values: dict) -> "RINConfig":
        """Returns the config of saved `values`; `RETIRED_FIELDS` are dropped where they were off, and
        `ADDED_FIELDS` that a config saved before them lacks take the value its model was trained with.

        Raises:
            ValueError: the config has a retired option on (a model this version cannot rebuild).
        """
        values = {**ADDED_FIELDS, **values}
        for name, off in RETIRED_FIELDS.items():
            if name in values and values.pop(name) != off:
                raise ValueError(f"This model was trained with {name}, an option this version no longer has "
                                 "(docs/experiments.md): load it with the version that trained it.")
        return cls(**values)
