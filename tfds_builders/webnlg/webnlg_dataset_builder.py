"""WebNLG (CopyRE split, CasRel layout) as a TFDS dataset."""

from tfds_builders import casrel


class Builder(casrel.CasRelBuilder):
    """DatasetBuilder for WebNLG joint extraction."""

    BUILDER_CONFIGS = [
        casrel.CasRelConfig(
            name="partial",
            description="Entities are the last word of the phrase (webnlg_star).",
            folder="webnlg_star",
            relations_file="relations_partial.txt",
        ),
        casrel.CasRelConfig(
            name="exact",
            description="Entities are full phrases (webnlg).",
            folder="webnlg",
            relations_file="relations_exact.txt",
        ),
    ]
    DEFAULT_CONFIG_NAME = "partial"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the folders `webnlg_star/` and `webnlg/` of the PRGC repository's data
    (hy-struggle/PRGC, data/WebNLG-star and data/WebNLG), each holding
    train_triples.json, val_triples.json, test_triples.json and rel2id.json,
    in the manual directory (default: ../shared/data beside the checkout, or
    $RIN_DATA_DIR; `tfds build --manual_dir=...` overrides).
    """

