"""NYT (CopyRE split, CasRel layout) as a TFDS dataset."""

from tfds_builders import casrel


class Builder(casrel.CasRelBuilder):
    """DatasetBuilder for NYT joint extraction."""

    BUILDER_CONFIGS = [
        casrel.CasRelConfig(
            name="partial",
            description="Entities are the last word of the phrase (nyt_star).",
            folder="nyt_star",
            relations_file="relations_partial.txt",
        ),
        casrel.CasRelConfig(
            name="exact",
            description="Entities are full phrases (nyt).",
            folder="nyt",
            relations_file="relations_exact.txt",
        ),
    ]
    DEFAULT_CONFIG_NAME = "partial"
    # Without train_triples.json the build holds validation and test only
    # (rin_keras.data names the missing file when train is asked for).
    OPTIONAL_SPLITS = ("train",)
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the folders `nyt_star/` and `nyt/` of the PRGC repository's data
    (hy-struggle/PRGC, data/NYT-star and data/NYT), each holding
    train_triples.json, val_triples.json, test_triples.json and rel2id.json,
    in the manual directory (default: ../shared/data beside the checkout, or
    $RIN_DATA_DIR; `tfds build --manual_dir=...` overrides).
    """

