"""RIN's custom Keras layers: one public class per file, keras.ops only."""

from rin_keras.layers.encoders import BiLSTMEncoder, TransformerWordEncoder
from rin_keras.layers.gru_updater import GRUUpdater
from rin_keras.layers.interaction import InteractionLayer
from rin_keras.layers.pairwise_relation_head import PairwiseRelationHead
from rin_keras.layers.word_features import WordFeatures

__all__ = ["BiLSTMEncoder", "GRUUpdater", "InteractionLayer", "PairwiseRelationHead", "TransformerWordEncoder",
           "WordFeatures"]
