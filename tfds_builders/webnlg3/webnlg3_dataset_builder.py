"""The WebNLG 3.0 English release (16 categories, 372 relations) as a TFDS dataset for joint extraction.

The manual directory holds the release as published: `webnlg3/en/train/{1..7}triples/<Category>.xml`,
`webnlg3/en/dev/...` and, when a user has put them there, the official 2020 test files in `webnlg3/en/test/`
(`semantic-parsing-test-data-with-refs-en.xml` and `rdf-to-text-generation-test-data-with-refs-en.xml`).
Every `<lex>` text of an `<entry>` is one example (multi-sentence texts included), tokenised with the project's
tokeniser; the entry's `modifiedtripleset` triples are located in it (`locating.locate_triples`). A triple that
cannot be located is dropped from its text, which is kept with the rest; the build log counts the drops by reason.

Configs `exact` (full entity spans as written) and `partial` (the last word, the paper's protocol);
`exact_heldout` and `partial_heldout` hold the categories `HELDOUT_CATEGORIES` out of train and validation, in a
split `heldout_categories` (their train and dev entries), and hold out entities of the other categories: one
subject in `HELDOUT_ENTITY_SHARE` (a fixed draw by the hash of its name), with every train and dev entry that
names it, in a split `heldout_entities`, so train never holds those entities.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from tfds_builders import casrel
from tfds_builders.webnlg3 import locating

FOLDER = "webnlg3"
HELDOUT_CATEGORIES = ("Artist", "CelestialBody", "Politician")
HELDOUT_ENTITY_SHARE = 20  # With held-out categories, 1 in 20 subjects of the other categories is held out too.
TEST_FILES = ("semantic-parsing-test-data-with-refs-en.xml", "rdf-to-text-generation-test-data-with-refs-en.xml")
_SPLIT_FOLDERS = {"train": "en/train", "validation": "en/dev", "test": "en/test"}
_HERE = epath.Path(__file__).parent


def _is_heldout_entity(name: str) -> bool:
    """Whether a subject is one of the ~1 in `HELDOUT_ENTITY_SHARE` held out (a fixed draw by its name's hash)."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % HELDOUT_ENTITY_SHARE == 0


def _entities(entry: locating.Entry) -> set[str]:
    return {name for subject, _, obj in entry.triples for name in (subject, obj)}


@dataclasses.dataclass
class WebNLG3Config(tfds.core.BuilderConfig):
    """One variant of the WebNLG 3.0 dataset.

    Attributes:
        variant: `"exact"` (full spans) or `"partial"` (last word).
        heldout_categories: categories kept out of train and validation, in their own split.
    """

    variant: str = "exact"
    heldout_categories: tuple[str, ...] = ()

    def split_file(self, split: str) -> str:
        """Returns what `split` is built from, relative to the manual directory: the folder of its XML files, for
        the test split the semantic-parsing file (the split is built from the other file where only it is there)."""
        return f"{FOLDER}/{_SPLIT_FOLDERS[split]}" + (f"/{TEST_FILES[0]}" if split == "test" else "")


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for WebNLG 3.0 joint extraction."""

    VERSION = tfds.core.Version("1.4.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Held-out entities: 1 in 20 subjects and every entry naming them, out of train and validation.",
        "1.2.0": "A period that ends a sentence inside a text is a token of its own (`Warsaw`, `.`; was `Warsaw.`).",
        "1.3.0": "Locating places fewer mentions wrongly: not inside another entity's longer mention where the entity "
                 "has another (`Acura` of `Acura TLX`), not across a sentence end (`Trenton. New Jersey`), not a "
                 "name without its plural ending before a noun (`Philippine dish`), not a date's year inside another "
                 "written date, not a list of numbers as its first item.",
        "1.4.0": "The held-out configs' test split keeps every category (the held-out ones were in no split); a text "
                 "that is empty is left out.",
    }
    BUILDER_CONFIGS = [
        WebNLG3Config(name="exact", description="Full entity spans.", variant="exact"),
        WebNLG3Config(name="partial", description="The last word of each entity.", variant="partial"),
        WebNLG3Config(name="exact_heldout", description="Full spans; three categories held out.",
                      variant="exact", heldout_categories=HELDOUT_CATEGORIES),
        WebNLG3Config(name="partial_heldout", description="Last words; three categories held out.",
                      variant="partial", heldout_categories=HELDOUT_CATEGORIES),
    ]
    DEFAULT_CONFIG_NAME = "exact"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the WebNLG 3.0 English release (`release_v3.0/en/` of the official WebNLG repository: `train/` and `dev/`,
    and `test/` with the 2020 test files if you have them) in the manual directory as `webnlg3/en/` (default:
    ../shared/data beside the checkout, or $RIN_DATA_DIR; `tfds build --manual_dir=...` overrides).
    """
    CHECKSUMS_FILE = "SHA256SUMS"  # sha256sum lines of the release files, relative to `en/`.
    RELATIONS_FILE = "relations.txt"

    def relation_names(self) -> list[str]:
        return [line for line in (_HERE / self.RELATIONS_FILE).read_text(encoding="utf-8").splitlines() if line]

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return self.dataset_info_from_configs(
            features=casrel.features(self.relation_names(), text=text, category=text, eid=text, lid=text,
                                     size=np.int32),
            supervised_keys=None,
            homepage="https://gitlab.com/shimorina/webnlg-dataset",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = epath.Path(dl_manager.manual_dir)
        entries = {split: self._read_split(manual_dir, split) for split in _SPLIT_FOLDERS}
        entries = {split: found for split, found in entries.items() if found is not None}
        if "train" not in entries or "validation" not in entries:
            raise FileNotFoundError(
                f"No WebNLG 3.0 train or dev XML under {manual_dir / FOLDER / 'en'}; "
                "see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS."
            )
        # Entries with the split they were read from, which keys their examples.
        entries = {split: [(split, e) for e in found] for split, found in entries.items()}
        heldout = set(self.builder_config.heldout_categories)
        # The official test set stays whole: held out from training means out of train and validation.
        splits = {split: [(s, e) for s, e in found if split == "test" or e.category not in heldout]
                  for split, found in entries.items()}
        if heldout:
            splits["heldout_categories"] = [(s, e) for split in ("train", "validation") for s, e in entries[split]
                                            if e.category in heldout]
            seen = splits["train"] + splits["validation"]
            unseen = {subject for _, e in seen for subject, _, _ in e.triples if _is_heldout_entity(subject)}
            splits["heldout_entities"] = [(s, e) for s, e in seen if _entities(e) & unseen]
            for split in ("train", "validation"):
                splits[split] = [(s, e) for s, e in splits[split] if not _entities(e) & unseen]
        return {split: self._generate_examples(found, split) for split, found in splits.items()}

    def _read_split(self, manual_dir: epath.Path, split: str) -> list[locating.Entry] | None:
        """Returns the entries of a split's XML files, checked against `CHECKSUMS_FILE`; None if it has none."""
        folder = manual_dir / FOLDER / _SPLIT_FOLDERS[split]
        if split == "test":  # The semantic-parsing file (text to triples) when both are there.
            paths = [folder / name for name in TEST_FILES if (folder / name).exists()][:1]
        else:
            paths = sorted(folder.glob("*triples/*.xml"))
        if not paths:
            if split == "test":
                logging.warning("Split 'test' is not built: no %s in %s.", " or ".join(TEST_FILES), folder)
            return None
        expected = self._expected_checksums()
        release = manual_dir / FOLDER / "en"
        found = {str(path.relative_to(release)): path for path in paths}
        for relative, path in found.items():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if relative in expected and expected[relative] != digest:
                raise casrel.DataError(f"Corrupt {path}: sha256 {digest}, expected {expected[relative]}. Copy it "
                                       "again, byte for byte, from the release.")
        if split != "test":
            self._check_whole(folder, set(found), {p for p in expected if p.startswith(_SPLIT_FOLDERS[split][3:] + "/")})
        return [entry for path in paths for entry in locating.read_entries(path)]

    @staticmethod
    def _check_whole(folder: epath.Path, found: set[str], published: set[str]) -> None:
        """Refuses a split folder that holds some of the release's files but not exactly them (a copy cut short, a
        stray copy of a file); logs a warning for a folder that holds none of them (not the published release)."""
        if not found & published:
            logging.warning("%s holds none of the WebNLG 3.0 release's files (%s): read without checksums.", folder,
                            Builder.CHECKSUMS_FILE)
            return

        def names(paths):
            shown = sorted(paths)[:5]
            return ", ".join(shown) + (f" and {len(paths) - len(shown)} more" if len(paths) > len(shown) else "")

        problems = ([f"missing {names(published - found)}"] if published - found else []) + (
            [f"not in the release: {names(found - published)}"] if found - published else [])
        if problems:
            raise casrel.DataError(f"{folder} is not the release's split as published ({'; '.join(problems)}). "
                                   "Copy the release's train/ and dev/ folders whole, byte for byte.")

    def _expected_checksums(self) -> dict[str, str]:
        """Returns {path relative to `en/`: sha256} of the published files."""
        lines = (_HERE / self.CHECKSUMS_FILE).read_text(encoding="utf-8").splitlines()
        return {path: digest for digest, path in (line.split() for line in lines if line.strip())}

    def _generate_examples(self, entries: list[tuple[str, locating.Entry]], split: str
                           ) -> Iterator[tuple[str, dict]]:
        """Yields one example per text of `(source split, entry)` pairs; logs the triples dropped by reason."""
        relation_names = set(self.relation_names())
        counts = collections.Counter()
        for source, entry in entries:
            triples = [t for t in entry.triples if t[1] in relation_names]
            counts["unknown relation"] += len(entry.triples) - len(triples)
            for index, (lid, text) in enumerate(entry.lexes):
                if not text:
                    counts["empty texts left out"] += 1
                    continue
                others = [other for j, (_, other) in enumerate(entry.lexes) if j != index and other]
                located = locating.locate_triples(text, triples, others)
                counts["texts"] += 1
                counts["triples"] += len(located.triples)
                counts.update(reason for _, reason in located.dropped)
                key = f"{source}_{entry.category}_{entry.size}_{entry.eid}_{lid}_{index}"
                yield key, self._example(entry, lid or "", text, located)
        logging.info("webnlg3/%s/%s: %s", self.builder_config.name, split, dict(counts.most_common()))
        if counts["unknown relation"]:
            logging.warning("webnlg3/%s/%s: %d triples of relations outside %s left out of the split's gold (no "
                            "model trained on the release returns them): its scores are not the official "
                            "evaluation's.", self.builder_config.name, split, counts["unknown relation"],
                            self.RELATIONS_FILE)

    def _example(self, entry: locating.Entry, lid: str, text: str, located: locating.LocatedText) -> dict:
        partial = self.builder_config.variant == "partial"

        def span(start_end):
            start, end = start_end
            return {"start": end - 1 if partial else start, "end": end, "head": end - 1}

        triples = [{"subject": span(s), "relation": r, "object": span(o)} for s, r, o in located.triples]
        entities = {(t[role]["start"], t[role]["end"]): t[role] for t in triples for role in ("subject", "object")}
        return {
            "tokens": [token.text for token in located.tokens],
            "entities": [entities[k] for k in sorted(entities)],
            "triples": triples,
            "text": text,
            "category": entry.category,
            "eid": entry.eid,
            "lid": lid,
            "size": entry.size,
        }
