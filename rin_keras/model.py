"""The RIN model, assembled functionally from the custom layers."""

from __future__ import annotations

import os

import keras
from keras import ops

from rin_keras.config import RINConfig
from rin_keras.decoding import TAGS
from rin_keras.files import is_local_path, write_atomically
from rin_keras.layers import (
    BiLSTMEncoder,
    GRUUpdater,
    InteractionLayer,
    PairwiseRelationHead,
    TransformerWordEncoder,
    WordFeatures,
)
from rin_keras.losses import MaskedPairwiseBinaryCrossEntropy, MaskedTagCrossEntropy

# Sentences per pair-round call at inference (`RINModel.split_at_encoder`): small chunks of length-sorted sentences
# waste little on padding and keep the `[chunk, n, n, l]` pair tensors in cache. The serving graph at batch 64 on
# WebNLG* test: 4 gave 510-555 sentences/s, 8 gave 440-535, 16 gave 375-400 and 1 gave 350-400 (first AVX-512 host);
# 672 / 643 / 483 for 4 / 8 / 16 and 722 / 684 / 712 for 4 / 2 / 3 (Xeon AMX; docs/benchmarks/serving_latency.md).
PAIR_CHUNK_SIZE = 4
# `RINTripleExtractor.predict` on backends other than TensorFlow (which runs the serving graph's loop) calls the pair
# rounds from Python, ~3 ms of overhead a call where a step of the graph's loop costs ~0.1 ms, so it takes larger
# chunks. Measured on TensorFlow before predict ran the graph there, its sentences/s at batch 64 for chunks of 4 / 8 /
# 16: WebNLG* test 107-144 / 144-154 / 122-129, webnlg_ood_dev 371-404 / 465-492 / 532-539, two of those sentences a
# text 195-215 / 221-237 / 217-232 (AVX2 host; docs/experiments.md).
PREDICT_CHUNK_SIZE = 8


@keras.saving.register_keras_serializable(package="rin_keras")
def tag_softmax(logits):
    """Softmax over the last axis, written out. TensorFlow's fused oneDNN softmax builds a kernel for each new
    shape, and the serving graph meets a new shape in every length-sorted chunk: there the fused op took ~8% of the
    op time at batch 64."""
    exps = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
    return exps / ops.sum(exps, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="rin_keras")
class RINModel(keras.Model):
    """Recurrent Interaction Network for joint entity and relation extraction.

    Encoder -> task features H~ (relations) and H- (entities) (eq. 11) -> K rounds
    of NER head, relation head, interaction layer and two GRU updaters, with
    parameters shared across rounds -> final NER and relation predictions.

    The interaction layer reads each round's y^ as an input: no gradient flows
    back through it, so the relation head trains through its final call only.
    The official code trains through every call; cutting that path makes the
    CPU training step ~1.2x faster at the same F1 (docs/benchmarks/speed.md).

    Args:
        config: RINConfig. All hyper-parameters; `num_relations` (and for the
            BiLSTM encoder `vocab_size`) must be set.
        dtype: optional dtype policy for every sublayer (the heads' outputs stay float32).
        backbone: for `config.encoder == "bert"`, the keras-hub backbone (default:
            loaded from `config.preset`). Saved with the model, so loading a
            `.keras` file needs no preset.
        **kwargs: other keyword arguments passed to `keras.Model`.

    Call arguments:
        inputs: `{"token_ids": int [batch, n]}`, 0 on padding, with the inputs of
            `config.word_feature_inputs` (BiLSTM encoder; see `WordFeatures`), or
            `{"piece_ids": int [batch, pieces], "word_pieces": int [batch, n]}`
            (BERT encoder; see `rin_keras.data.features.WordPieces`).

    Returns:
        `{"entity_tags": [batch, n, 5] BIESO probabilities,
          "relations": [batch, n, n, l] pair probabilities}`, float32.

    Example:
    >>> config = RINConfig(vocab_size=20, num_relations=3, word_dim=8, lstm_units=4, hidden_dim=8)
    >>> model = RINModel(config)
    >>> tuple(model({"token_ids": np.array([[2, 5, 7, 0]])})["relations"].shape)
    (1, 4, 4, 3)

    Reference:
        Sun et al., Recurrent Interaction Network for Jointly Extracting Entities
        and Classifying Relations, EMNLP 2020.
    """

    def __init__(self, config: RINConfig, dtype=None, backbone=None, **kwargs):
        if isinstance(config, dict):
            config = RINConfig.from_dict(config)
        if not isinstance(config, RINConfig):
            raise TypeError(f"config must be a RINConfig (or its dict), got {type(config).__name__}.")
        if (config.encoder == "bilstm" and config.vocab_size < 3) or config.num_relations < 1:
            raise ValueError("RINConfig.vocab_size and num_relations must be set before building.")
        c = config

        # === Layers ===
        if c.encoder == "bert":
            if backbone is None:
                import keras_hub

                backbone = keras_hub.models.Backbone.from_preset(c.preset)
            encoder = TransformerWordEncoder(backbone, dtype=dtype, name="encoder")
        else:
            word_features = None
            if c.word_feature_inputs:
                inputs = c.word_feature_inputs
                word_features = WordFeatures(
                    c.pretrained_rows if "pretrained_ids" in inputs else 0, c.pretrained_dim, c.shape_dim,
                    c.num_chars if "char_ids" in inputs else 0, c.char_dim, pretrained_int8=c.pretrained_int8,
                    pos_dim=c.pos_dim, dtype=dtype, name="word_features",
                )
            encoder = BiLSTMEncoder(
                c.vocab_size, c.word_dim, c.lstm_units, c.input_dropout,
                feature_dim=word_features.output_dim if word_features else 0,
                unknown_word_rate=c.unknown_word_rate, dtype=dtype, name="encoder",
            )
        if c.task_features:
            relation_features = keras.layers.Dense(
                c.hidden_dim, activation="relu", dtype=dtype, name="relation_features"
            )
            entity_features = keras.layers.Dense(
                c.hidden_dim, activation="relu", dtype=dtype, name="entity_features"
            )
        ner_logits = keras.layers.Dense(len(TAGS), dtype=dtype, name="ner_head")
        ner_softmax = keras.layers.Activation(tag_softmax, dtype="float32", name="entity_tags")
        relation_head = PairwiseRelationHead(c.num_relations, c.hidden_dim, dtype=dtype, name="relation_head")
        uses_interaction = c.rounds > 0 and c.updater != "linear"
        if uses_interaction:
            interaction = InteractionLayer(
                c.hidden_dim,
                c.use_relation_input,
                c.use_entity_input,
                c.use_hidden_input,
                dtype=dtype,
                name="interaction",
            )
        if c.rounds:
            relation_updater = GRUUpdater(c.updater, dtype=dtype, name="relation_updater")
            entity_updater = GRUUpdater(c.updater, dtype=dtype, name="entity_updater")

        # === Functional model ===
        if c.encoder == "bert":
            inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                      for name in ("piece_ids", "word_pieces")}
            token_mask = ops.greater_equal(inputs["word_pieces"], 0)
            hidden = encoder(inputs["piece_ids"], inputs["word_pieces"])
        else:
            inputs = {"token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids")}
            for name in c.word_feature_inputs:
                shape = (None, None) if name == "char_ids" else (None,)
                inputs[name] = keras.Input(shape=shape, dtype="int32", name=name)
            token_mask = ops.not_equal(inputs["token_ids"], 0)
            extra = word_features({k: inputs[k] for k in c.word_feature_inputs}) if word_features else None
            hidden = encoder(inputs["token_ids"], extra)
        h_rel = relation_features(hidden) if c.task_features else hidden
        h_ent = entity_features(hidden) if c.task_features else hidden
        for _ in range(c.rounds):
            signal = None
            if uses_interaction:
                # y^ is an input here: the relation head's gradient skips these calls' pair cells.
                signal = interaction(
                    ops.stop_gradient(relation_head(h_rel, token_mask=token_mask, output="best_logits")),
                    ner_softmax(ner_logits(h_ent)),
                    hidden,
                    token_mask=token_mask,
                )
            h_rel = relation_updater(h_rel, signal)
            h_ent = entity_updater(h_ent, signal)
        outputs = {
            "entity_tags": ner_softmax(ner_logits(h_ent)),
            "relations": relation_head(h_rel, token_mask=token_mask),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # The final relation features, from which `split_at_encoder` reads the final call's logits.
        self._final_relation_features = h_rel

        # === Config ===
        self.config = config

    @property
    def encoder(self) -> BiLSTMEncoder | TransformerWordEncoder:
        return self.get_layer("encoder")

    @property
    def word_features(self) -> WordFeatures | None:
        """The unseen-word features of the BiLSTM encoder, if it has any."""
        return self.get_layer("word_features") if self.config.word_feature_inputs else None

    @property
    def word_input(self) -> str:
        """The input with one entry per word, from which the token mask is read."""
        return "word_pieces" if self.config.encoder == "bert" else "token_ids"

    def split_at_encoder(self, relation_logits: bool = False) -> tuple[keras.Model, keras.Model]:
        """Splits the model into its encoder and everything after it (same weights).

        For callers that encode a whole batch at once and run the pair rounds,
        whose cost grows with n^2, on parts of it: the serving graph (and
        `RINTripleExtractor.predict` through it) and `predict` on other
        backends do, on length-sorted chunks (`PAIR_CHUNK_SIZE`,
        `PREDICT_CHUNK_SIZE`).

        Args:
            relation_logits: bool. If True, `interact` returns the final relation
                head's logits (`PairwiseRelationHead` `output="logits"`: compute
                dtype, padding not masked) as `"relation_logits"` in place of
                `"relations"`, for callers that threshold them and take the
                sigmoid of the few cells above (`RINTripleExtractor.predict`, the
                serving graph).

        Returns:
            `(encode, interact)`: `encode` maps the model inputs to the encoder
            states H `[batch, n, d]`; `interact` maps `[inputs[word_input], H]`
            to the model outputs.
        """
        hidden = self.encoder.output
        encode = keras.Model(self.input, hidden, name="encode")
        outputs = self.output
        if relation_logits:
            logits = self.get_layer("relation_head")(self._final_relation_features, output="logits")
            outputs = {"entity_tags": outputs["entity_tags"], "relation_logits": logits}
        interact = keras.Model([self.input[self.word_input], hidden], outputs, name="interact")
        return encode, interact

    def compile(self, optimizer="auto", loss="auto", metrics=None, **kwargs):
        """Configures training; `"auto"` gives the paper's setting.

        Adam with the config's learning rate and gradient clipping, and the
        masked losses of eq. 14. No metric by default: counting the train
        batches' `[batch, n, n, l]` pair cells took ~8% of a CPU training step,
        and `rin_keras.train` scores the dev split after every epoch instead
        (`rin_keras.callbacks.DevEvaluation`). For a running train-batch figure
        pass `metrics={"relations": [PartialMatchF1(model.config.threshold)]}`
        (`rin_keras.metrics.PartialMatchF1`).
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(self.config.learning_rate, clipnorm=self.config.clipnorm)
        if loss == "auto":
            loss = {"entity_tags": MaskedTagCrossEntropy(), "relations": MaskedPairwiseBinaryCrossEntropy()}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """`keras.Model.save`; a local `.keras` file is written beside its path and renamed into place, so that
        an interrupted run never leaves a damaged `best.keras` (`ModelCheckpoint` saves through this)."""
        if not (overwrite and zipped is not False and is_local_path(filepath)
                and os.fspath(filepath).endswith(".keras")):  # Keras answers other names itself, naming them.
            return super().save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)
        write_atomically(os.fspath(filepath),
                         lambda temporary: keras.Model.save(self, temporary, zipped=zipped, **kwargs))

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """`keras.Model.save_weights`, written like `save`: an interrupted run keeps its last whole
        `backup/latest.weights.h5` (`keras.callbacks.BackupAndRestore` saves through this)."""
        if not (overwrite and max_shard_size is None and is_local_path(filepath)
                and os.fspath(filepath).endswith(".weights.h5")):
            return super().save_weights(filepath, overwrite=overwrite, max_shard_size=max_shard_size)
        write_atomically(os.fspath(filepath), lambda temporary: keras.Model.save_weights(self, temporary))

    def compile_from_config(self, config):
        """Compiles a loaded model as the saved one was compiled (`keras.saving.load_model`); its optimizer is built
        here, so that the saved optimizer state (Adam's moments, the step count) is restored after."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = {"config": self.config.network_fields(), "name": self.name, "trainable": self.trainable}
        if self.config.encoder == "bert":
            config["backbone"] = keras.saving.serialize_keras_object(self.encoder.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "backbone" in config:
            # The backbone is stored with the dtype policy it trained under; like every other layer it is rebuilt
            # under the global policy, so a model trained in mixed precision serves in float32 unless asked.
            backbone = dict(config["backbone"], config={**config["backbone"]["config"], "dtype": None})
            config["backbone"] = keras.saving.deserialize_keras_object(backbone)
        return cls(**config)


def predict_on_batch(model: keras.Model, x):
    """`model.predict_on_batch(x)`, traced once for inputs of any shape on TensorFlow.

    Keras traces its predict function again for each new input shape until a
    trace generalizes (up to three, and TensorFlow warns of frequent retracing);
    callers that meet a new shape in every batch trace it once here instead.
    """
    if keras.backend.backend() == "tensorflow" and model.predict_function is None:
        import tensorflow as tf

        model.make_predict_function()
        spec = keras.tree.map_structure(lambda a: tf.TensorSpec([None] * a.ndim, tf.as_dtype(a.dtype)), x)
        model.predict_function.get_concrete_function([(spec,)])
    return model.predict_on_batch(x)


def build_rin(config: RINConfig, dtype=None, backbone=None) -> RINModel:
    """Returns a compiled RIN model for `config` (see `RINModel`)."""
    model = RINModel(config, dtype=dtype, backbone=backbone, name="rin")
    model.compile()
    return model


def quantize_pretrained_table(model: RINModel) -> RINModel:
    """Returns `model` with its frozen pretrained table as int8 with a scale per row (`RINConfig.pretrained_int8`).

    For models saved with a float32 table: the copy's table takes a quarter of the bytes; every other weight is
    the same. A model without a float32 table is returned as it is.
    """
    if model.word_features is None or model.word_features.pretrained is None or model.config.pretrained_int8:
        return model
    quantized = build_rin(model.config.replace(pretrained_int8=True))
    for layer in model.layers:
        if layer.name != "word_features" and layer.weights:
            quantized.get_layer(layer.name).set_weights(layer.get_weights())
    source, target = model.word_features, quantized.word_features
    for part in ("shapes", "pos", "chars", "char_conv"):
        if getattr(source, part) is not None:
            getattr(target, part).set_weights(getattr(source, part).get_weights())
    target.set_pretrained_vectors(source.pretrained_vectors())
    return quantized
