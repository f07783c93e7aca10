"""Training throughput: sentences/s of model.fit steps on WebNLG train, and peak RSS.

    python benchmarks/train_throughput.py                                                       # both models
    python benchmarks/train_throughput.py --features=without --mixed_precision=mixed_bfloat16
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --jit_compile --warmup=30 --steps=40
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --jit_compile --warmup=30 --steps=40 --bilstm=keras_loop

The BiLSTM is timed as `rin_keras.train` builds it (`--features=with`: the unseen-word features, GloVe rows
included, and the variant's entity substitution in tf.data) and without those features (`--features=without`);
the default, `both`, times the two one after the other in one process and prints the ratio of their steps.
The warm-up steps (tracing, cache filling) are excluded from the rate. `--profile_steps=N` then traces N more steps
with TensorFlow's profiler and prints where the CPU's op time went (`op_profile.py`): by layer (forward and gradient
apart), by op type and by both, in ms per step.
"""

import resource
import time

import keras
from absl import app, flags

from rin_keras import RINConfig, train
from rin_keras.data import embeddings
from rin_keras.data.corpus import Corpus
from rin_keras.data_parallel import SINGLE_PROCESS
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor

from op_profile import print_op_time  # This script's folder.

FLAGS = flags.FLAGS
BILSTM_KERNELS = {"fused": True, "keras_loop": False}
flags.DEFINE_enum("features", "both", ["both", "with", "without"], "BiLSTM unseen-word features to time.")
flags.DEFINE_enum("variant", "partial", ["partial", "exact"], "WebNLG variant (exact adds entity substitution).")
flags.DEFINE_integer("rounds", 3, "Interaction rounds K.", lower_bound=1)
flags.DEFINE_integer("batch_size", 50, "Batch size.", lower_bound=1)
flags.DEFINE_integer("steps", 80, "Timed steps.", lower_bound=1)
flags.DEFINE_integer("warmup", 30, "Untimed steps first: they trace the bucket shapes, which a short window would otherwise time.", lower_bound=0)
flags.DEFINE_bool("bucketing", True, "Bucket batches by length.")
flags.DEFINE_bool("jit_compile", False, "XLA (batches padded to bucket edges).")
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"], "Dtype policy.")
flags.DEFINE_enum("encoder", "bilstm", ["bilstm", "bert"], "Sentence encoder.")
flags.DEFINE_string("preset", "", "keras-hub preset (name or folder) for --encoder=bert.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data folder.")
flags.DEFINE_enum("bilstm", "fused", list(BILSTM_KERNELS), "BiLSTM kernel (`BiLSTMEncoder(fused=...)`).")
flags.DEFINE_integer("profile_steps", 0, "Then trace this many steps (TensorFlow backend) and print op time by layer "
                     "and op type.", lower_bound=0)
flags.register_multi_flags_validator(["encoder", "preset"], lambda f: f["encoder"] != "bert" or f["preset"],
                                     "--encoder=bert needs --preset (a keras-hub preset name or folder).")
flags.register_validator("profile_steps", lambda steps: not steps or keras.backend.backend() == "tensorflow",
                         "traces TensorFlow's ops: run it with KERAS_BACKEND=tensorflow (the default).")
flags.DEFINE_integer("scan_unroll", None, "Time steps per loop iteration of the JAX scan (`--bilstm=fused`; unset: the "
                     "encoder's default, 4 on a GPU and 1 elsewhere).")


def _time_model(corpus: Corpus, config: RINConfig, vocab, pretrained) -> float:
    """Times `FLAGS.steps` training steps of the model `config` describes; prints and returns ms per step."""
    preprocessor = RINPreprocessor.from_config_and_vocabulary(config, vocab)
    # The batches `rin_keras.train` makes (entity substitution for the BiLSTM only, as a BERT run here has no table).
    substitute = (train._entity_substitution(config, corpus, vocab, pretrained, "none")
                  if config.encoder == "bilstm" else None)
    dataset = train._train_data(config, corpus, preprocessor, substitute, bucketing=FLAGS.bucketing,
                                jit_compile=FLAGS.jit_compile, limit=None, cluster=SINGLE_PROCESS, seed=0).repeat()
    model = build_rin(config)
    if config.encoder == "bilstm":
        model.encoder.fused, model.encoder.scan_unroll = BILSTM_KERNELS[FLAGS.bilstm], FLAGS.scan_unroll
    if FLAGS.jit_compile:
        model.compile(jit_compile=True)
    batches = dataset.as_numpy_iterator()  # NumPy: what every Keras backend takes.
    for _ in range(FLAGS.warmup):
        model.train_on_batch(*next(batches))
    sentences = 0
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        inputs, targets = next(batches)
        model.train_on_batch(inputs, targets)
        sentences += int(targets["entity_tags"].shape[0])
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    features = ",".join(config.word_feature_inputs) or "none"
    print(
        f"{config.encoder} {config.variant} features={features} K={config.rounds} batch={FLAGS.batch_size} "
        f"bucketing={FLAGS.bucketing} jit={FLAGS.jit_compile} policy={FLAGS.mixed_precision} bilstm={FLAGS.bilstm} "
        f"unroll={FLAGS.scan_unroll}: {FLAGS.steps} steps in {seconds:.1f}s = {sentences / seconds:.1f} "
        f"sentences/s ({1000 * seconds / FLAGS.steps:.0f} ms/step), peak RSS so far {peak_gib:.2f} GiB; "
        f"params {model.count_params():,}", flush=True,
    )
    if FLAGS.profile_steps:
        print_op_time(lambda: model.train_on_batch(*next(batches)), FLAGS.profile_steps, _layer, unit="step")
    return 1000 * seconds / FLAGS.steps


def _layer(op_name: str) -> str:
    """The model layer an op of the train step belongs to, forward or gradient (`relation_head (gradient)`)."""
    backward = op_name.startswith("gradient_tape/")
    parts = op_name.removeprefix("gradient_tape/").split("/")
    layer = parts[1] if len(parts) > 2 and parts[0].startswith("rin") else parts[0]
    layer = layer.rsplit("_", 1)[0] if layer.rsplit("_", 1)[-1].isdigit() else layer
    return f"{layer} ({'gradient' if backward else 'forward'})"


def main(argv):
    del argv
    keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
    corpus = Corpus.prepare("webnlg", FLAGS.variant, FLAGS.tfds_data_dir)
    vocab = corpus.build_vocabulary()
    config = RINConfig.for_dataset(
        "webnlg", variant=FLAGS.variant, rounds=FLAGS.rounds, batch_size=FLAGS.batch_size, encoder=FLAGS.encoder,
        preset=FLAGS.preset, vocab_size=vocab.vocab_size, num_relations=vocab.num_relations,
    )
    if FLAGS.encoder == "bert":
        _time_model(corpus, config, vocab, None)
        return
    step_ms = {}
    if FLAGS.features in ("both", "with"):
        words, pretrained = embeddings.load_pretrained_table("glove")
        with_table = vocab.with_pretrained_words(words)
        step_ms["with"] = _time_model(corpus, config.with_vocabulary(with_table, pretrained.shape[1]), with_table,
                                      pretrained)
        del pretrained
    if FLAGS.features in ("both", "without"):
        plain = config.replace(pretrained_dim=0, shape_dim=0, char_dim=0, entity_substitution_rate=0.0)
        step_ms["without"] = _time_model(corpus, plain.with_vocabulary(vocab, 0), vocab, None)
    if len(step_ms) == 2:
        print(f"with / without features: {step_ms['with'] / step_ms['without']:.2f}x the step time")


if __name__ == "__main__":
    app.run(main)
