"""Input side of rin-keras: vocabularies, word vectors and tf.data pipelines."""
