"""Shared reader for the CasRel JSON layout of the CopyRE NYT and WebNLG splits.

Each variant folder of the manual directory holds `train_triples.json`,
`val_triples.json`, `test_triples.json` (one JSON array of
`{"text": "<space-separated tokens>", "triple_list": [[subject, relation, object], ...]}`)
and `rel2id.json`. `CasRelBuilder` turns them into TFDS examples whose entity
strings are located in the token list; the `nyt` and `webnlg` builders only
name their folders.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import hashlib
import inspect
import json
import os
import re
from typing import Iterable, Iterator, NamedTuple

import ftfy
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from serving import contract

# The manual directory used when neither `--manual_dir` nor RIN_DATA_DIR is given:
# the `shared/data` folder that sits beside the project checkout.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR_ENV = "RIN_DATA_DIR"

SPLIT_FILES = {
    "train": "train_triples.json",
    "validation": "val_triples.json",
    "test": "test_triples.json",
}
# A user folder may hold each split as JSON lines of raw (untokenised) sentences instead.
JSONL_SPLIT_FILES = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
RELATIONS_FILE = "rel2id.json"


def default_manual_dir() -> str:
    """Returns the benchmark data folder: $RIN_DATA_DIR, else ../shared/data."""
    return os.environ.get(DATA_DIR_ENV) or os.path.normpath(
        os.path.join(_REPO_ROOT, "..", "shared", "data")
    )


class DataError(ValueError):
    """A data file that cannot be read as it is: the message names the file (and line) and what is wrong."""


# The rel2id.json layouts that `parse_relation_names` reads, for messages.
RELATIONS_LAYOUTS = ('[{"0": "birthPlace", ...}, {"birthPlace": 0, ...}], [{"0": "birthPlace", ...}] or '
                     '{"birthPlace": 0, ...}')


def parse_relation_names(rel2id: object) -> list[str]:
    """Returns relation names in id order from any published rel2id.json layout (`RELATIONS_LAYOUTS`).

    The files are `[{id: name}, {name: id}]`, `[{id: name}]`, `[{name: id}]` or
    `{name: id}`, ids being integers (or, as keys, their digits); both maps, where
    present, must agree.

    Raises:
        DataError: another layout, or ids that are not 0..n-1; the message does not name the file.
    """
    by_id = {}
    for mapping in rel2id if isinstance(rel2id, list) else [rel2id]:
        if not isinstance(mapping, dict):
            raise DataError(f"{mapping!r} is not a map of relation names and their ids: write {RELATIONS_LAYOUTS}.")
        for key, value in mapping.items():
            if isinstance(value, int) and not isinstance(value, bool):
                relation_id, name = value, key
            elif isinstance(value, str) and key.isdecimal():
                relation_id, name = int(key), value
            else:
                raise DataError(f"{key!r}: {value!r} is neither a name and its integer id nor an id and its name: "
                                f"write {RELATIONS_LAYOUTS}.")
            if by_id.setdefault(relation_id, name) != name:
                raise DataError(f"id {relation_id} names two relations, {by_id[relation_id]!r} and {name!r}.")
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"the ids are not 0..{len(by_id) - 1}, one a relation.")
    return [by_id[i] for i in range(len(by_id))]


def read_relation_names(path: str) -> list[str]:
    """Returns the relation names of a rel2id.json file in id order (`parse_relation_names`).

    Raises:
        DataError: the file is not UTF-8 JSON in one of `RELATIONS_LAYOUTS`; the message names it.
    """
    try:
        return parse_relation_names(json.loads(read_text(path)))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}.") from e
    except DataError as e:
        raise DataError(f"{path}: {e}") from e


def read_text(path: str) -> str:
    """Returns the text of a UTF-8 file (a byte order mark allowed).

    Raises:
        DataError: the file is not UTF-8 (e.g. latin-1, or UTF-16 as Notepad's "Unicode" saves), naming the
            line and byte.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: the byte at offset {e.start} (0x{data[e.start]:02x}) is not UTF-8: save the "
                        "file as UTF-8.") from e


_LINE_BREAK = re.compile(r"\r\n?|\n")


def split_lines(text: str) -> list[str]:
    """Returns the lines of a JSON-lines text, split at `\n`, `\r\n` or `\r` only: JSON strings hold no raw line
    feed or carriage return, but may hold U+2028, U+2029 or U+0085 (`str.splitlines` would split there)."""
    return _LINE_BREAK.split(text)


class RecordPosition(NamedTuple):
    """Where a record starts in its split file: its line, and its column where another record starts on that
    line too (a JSON array written on one line). `str()` gives `line` or `line:column`, for messages."""

    line: int
    column: int | None = None

    def __str__(self) -> str:
        return str(self.line) if self.column is None else f"{self.line}:{self.column}"


def read_records(path: str) -> list[tuple[RecordPosition, dict]]:
    """Reads a split file: a JSON array of records (the CasRel layout) or JSON lines (`.jsonl`).

    Each record is an object with a `text` string and a `triple_list` of
    `[subject, relation, object]` strings. JSON lines are split by `split_lines`.

    Returns:
        `(position, record)` pairs in file order, `position` being where the record starts.

    Raises:
        DataError: a file that is not UTF-8, malformed JSON or a malformed record, naming `path:position`.
    """
    content = read_text(path)
    if path.endswith(".jsonl") and content.lstrip().startswith("["):
        raise DataError(f"{path}:1: a JSON array, where a .jsonl file holds one record (a JSON object) a line: write "
                        "each record on a line of its own (`f.write(json.dumps(record) + \"\\n\")`).")
    if path.endswith(".jsonl"):
        records = [(RecordPosition(number), _parse(line, path, number))
                   for number, line in enumerate(split_lines(content), 1) if line.strip()]
    else:
        parsed = _parse(content, path, 1)
        if not isinstance(parsed, list):
            raise DataError(f"{path}:1: expected a JSON array of records, got {type(parsed).__name__}.")
        records = list(zip(_record_positions(content, len(parsed)), parsed))
    for position, record in records:
        _check_record(record, f"{path}:{position}")
    return records


def _parse(text: str, path: str, first_line: int):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{first_line + e.lineno - 1}:{e.colno}: malformed JSON: {e.msg}.") from e


def _record_positions(content: str, count: int) -> list[RecordPosition]:
    """Returns where each of the `count` records of a valid JSON array starts: its line, with its column (1-based)
    where several records start on that line."""
    decoder = json.JSONDecoder()
    starts, line, counted, position = [], 1, 0, content.index("[") + 1
    for _ in range(count):
        while content[position] in " \t\r\n,":
            position += 1
        line += content.count("\n", counted, position)
        counted = position
        starts.append((line, position - content.rfind("\n", 0, position)))
        _, position = decoder.raw_decode(content, position)
    per_line = collections.Counter(line for line, _ in starts)
    return [RecordPosition(line, column if per_line[line] > 1 else None) for line, column in starts]


def _check_record(record, where: str) -> None:
    if not isinstance(record, dict):
        raise DataError(f"{where}: a record must be a JSON object, got {type(record).__name__}.")
    if not isinstance(record.get("text"), str):
        raise DataError(f'{where}: the record has no "text" string.')
    triples = record.get("triple_list")
    if not isinstance(triples, list):
        raise DataError(f'{where}: the record has no "triple_list" list.')
    for triple in triples:
        if not (isinstance(triple, list) and len(triple) == 3 and all(isinstance(x, str) and x.strip()
                                                                      for x in triple)):
            raise DataError(f"{where}: a triple must be [subject, relation, object] strings, got {triple!r}.")
    for string in [record["text"], *(x for triple in triples for x in triple)]:
        surrogate = contract.LONE_SURROGATE.search(string)
        if surrogate:
            raise DataError(f"{where}: {string[:60]!r} holds {surrogate.group()!r}, half of a character written as a "
                            "UTF-16 pair (an emoji cut in two): mend or remove it.")


def locate(tokens: list[str], phrase: str) -> list[int]:
    """Returns the start index of every occurrence of `phrase` in `tokens`."""
    words = phrase.split(" ")
    width = len(words)
    return [i for i in range(len(tokens) - width + 1) if tokens[i : i + width] == words]


@dataclasses.dataclass
class CasRelConfig(tfds.core.BuilderConfig):
    """One variant of a CasRel-layout dataset.

    Attributes:
        folder: the variant's folder inside the manual directory.
        relations_file: file beside the builder listing relation names in id order.
    """

    folder: str = ""
    relations_file: str = ""

    def split_file(self, split: str) -> str:
        """Returns the path of `split`'s file relative to the manual directory."""
        return os.path.join(self.folder, SPLIT_FILES[split])


_SPAN = {"start": np.int32, "end": np.int32, "head": np.int32}


def features(relation_names: list[str], **extra) -> tfds.features.FeaturesDict:
    """Returns the features of every joint-extraction dataset: tokens, entity spans and triples, and `extra`
    features of a dataset that has more (e.g. the raw text)."""
    return tfds.features.FeaturesDict(
        {
            "tokens": tfds.features.Sequence(tfds.features.Text()),
            "entities": tfds.features.Sequence(_SPAN),
            "triples": tfds.features.Sequence(
                {"subject": _SPAN, "relation": tfds.features.ClassLabel(names=relation_names), "object": _SPAN}
            ),
            **extra,
        }
    )


class CasRelBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base builder for the CasRel layout; subclasses set configs and metadata."""

    VERSION = tfds.core.Version("1.3.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "UTF-8 mis-decoded as cp1252 (SuÃ¡rez) repaired in tokens and triples (Suárez).",
        "1.2.0": "An entity found more than once is placed outside another entity's longer name where it stands "
                 "elsewhere (`Cesena` of `A.C. Cesena ground is in Cesena`), as in a user's folder: exact configs "
                 "only (webnlg 444 of 14,144 triples, nyt 263 of 17,014); partial ones are unchanged.",
        "1.3.0": "Mis-decodings that ftfy leaves repaired by reading the word back through cp1252 "
                 "(`DavutoÄŸlu` -> `Davutoğlu`): webnlg 13 words of WebNLG* (11 train, 1 dev, 1 test), as WebNLG's "
                 "exact texts write them; nyt unchanged.",
    }
    # Splits whose file may be absent: the split is then left out of the build.
    OPTIONAL_SPLITS: tuple[str, ...] = ()
    # sha256 table of the published files, relative to the builder's folder.
    CHECKSUMS_FILE = "checksums.tsv"

    def _builder_dir(self) -> str:
        return os.path.dirname(os.path.abspath(inspect.getfile(type(self))))

    def relation_names(self) -> list[str]:
        path = os.path.join(self._builder_dir(), self.builder_config.relations_file)
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]

    def expected_checksums(self) -> dict[str, tuple[int, str]]:
        """Returns {relative path: (size, sha256)} from the builder's checksums.tsv."""
        table = {}
        with open(os.path.join(self._builder_dir(), self.CHECKSUMS_FILE), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    path, size, sha256 = line.rstrip("\n").split("\t")
                    table[path] = (int(size), sha256)
        return table

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=features(self.relation_names()), supervised_keys=None)

    def _checked_file(self, manual_dir: str, name: str) -> str:
        """Returns the path of a manual file after checking presence and sha256."""
        relative = f"{self.builder_config.folder}/{name}"
        path = os.path.join(manual_dir, relative)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Missing {path}. Put the file `{relative}` of the published data under the "
                f"manual directory ({manual_dir}); see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS."
            )
        expected = self.expected_checksums().get(relative)
        if expected is None:
            logging.warning("No recorded sha256 for %s; it is read unchecked.", path)
            return path
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != expected[1]:
            raise DataError(
                f"Corrupt {path}: sha256 {digest}, expected {expected[1]}. Copy `{relative}` "
                "again, byte for byte, from the published data."
            )
        return path

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = os.fspath(dl_manager.manual_dir)
        relations_path = self._checked_file(manual_dir, RELATIONS_FILE)
        if read_relation_names(relations_path) != self.relation_names():
            raise DataError(
                f"{relations_path} does not match {self.builder_config.relations_file}: "
                "the builder's relation list and the data disagree."
            )
        generators = {}
        for split, name in SPLIT_FILES.items():
            path = os.path.join(manual_dir, self.builder_config.folder, name)
            if split in self.OPTIONAL_SPLITS and not os.path.exists(path):
                logging.warning("Split %r is not built: %s is missing.", split, path)
                continue
            generators[split] = self._generate_examples(self._checked_file(manual_dir, name), split)
        return generators

    def _generate_examples(self, path: str, split: str) -> Iterator[tuple[str, dict]]:
        """Yields examples of one split file.

        Words holding UTF-8 mis-decoded as cp1252 are repaired (`repair_word`), in
        the text and in the triples alike. Entity strings are located in the
        whitespace tokens; when a string occurs more than once the first occurrence
        outside another entity's longer name is taken (`place_entities`), and a
        triple whose subject or object cannot be found is dropped. Both cases are
        counted and logged at the end of the split.

        Args:
            path: a `*_triples.json` file (CasRel layout).
            split: split name, used in keys and messages.

        Yields:
            (`"<split>_<index>"`, example dict).
        """
        relations = set(self.relation_names())
        records = [record for _, record in read_records(path)]
        counts = collections.Counter()
        for index, record in enumerate(records):
            key = f"{split}_{index}"
            example, example_counts = to_example(record, relations, key)
            counts.update(example_counts)
            yield key, example
        logging.info(
            "%s/%s: %d sentences, %d triples kept, %d mis-decoded words repaired in %d sentences, "
            "%d entity strings found more than once (placed by place_entities), "
            "%d triples dropped (entity not found).",
            self.builder_config.name,
            split,
            len(records),
            counts["triples"],
            counts["repaired_words"],
            counts["repaired_sentences"],
            counts["ambiguous"],
            counts["not_found"],
        )


def undo_cp1252_decoding(word: str) -> str:
    """Returns `word` read back as the UTF-8 bytes that cp1252 decoded into it (`DavutoÄŸlu` -> `Davutoğlu`).

    For the mis-decodings `ftfy.fix_encoding` leaves because their characters also occur in real text (`ÄŸ`,
    `Åž`). `word` is returned as is unless all of it encodes in cp1252 and those bytes are valid UTF-8, which
    text written in cp1252 itself almost never is.
    """
    try:
        return word.encode("cp1252").decode("utf-8")
    except UnicodeError:
        return word


def repair_word(word: str) -> str:
    """Returns `word` with UTF-8 mis-decoded as cp1252 undone (`SuÃ¡rez` -> `Suárez`).

    Uses `ftfy.fix_encoding` on the word alone, so token boundaries never move, then
    `undo_cp1252_decoding` for what it leaves. A repair that would leave a U+FFFD
    (a byte lost in the published file) is not made.
    """
    repaired = undo_cp1252_decoding(ftfy.fix_encoding(word))
    return word if "\ufffd" in repaired else repaired


def repair_text(text: str) -> str:
    """Returns raw `text` with UTF-8 mis-decoded as cp1252 undone: `ftfy.fix_encoding` on the whole text, then
    `undo_cp1252_decoding` word by word (whitespace kept as written)."""
    return re.sub(r"\S+", lambda word: undo_cp1252_decoding(word.group()), ftfy.fix_encoding(text))


def repair_phrase(phrase: str) -> str:
    """Returns `phrase` as the builders read it: its words (`contract.split_tokens`), each repaired (`repair_word`),
    one space apart."""
    return " ".join(repair_word(word) for word in contract.split_tokens(phrase))


def to_example(record: dict, relations: set[str], key: str) -> tuple[dict, collections.Counter]:
    """Converts one CasRel record to a TFDS example; returns it and its counts."""
    text = record["text"].strip()
    # Words are written one space apart; a double space or a tab reads as one; split as pre-tokenised text is
    # at prediction (`contract.split_tokens`: ASCII whitespace, so `10\xa0km` is one word).
    published = contract.split_tokens(text)
    tokens = [repair_word(token) for token in published]
    counts = collections.Counter()
    counts["repaired_words"] = sum(a != b for a, b in zip(published, tokens))
    counts["repaired_sentences"] = int(counts["repaired_words"] > 0)
    spans = {}
    triples = []
    entity_triples = [(repair_phrase(subject), repair_phrase(obj), relation)
                      for subject, relation, obj in record["triple_list"]]
    occurrences = {phrase: [(start, start + len(phrase.split(" "))) for start in locate(tokens, phrase)]
                   for subject, obj, _ in entity_triples for phrase in (subject, obj)}
    # Entities of the triples that are kept: one whose partner is not in the text names nothing here.
    placements = place_entities({phrase: occurrences[phrase] for subject, obj, _ in entity_triples
                                 if occurrences[subject] and occurrences[obj] for phrase in (subject, obj)})
    for subject, obj, relation in entity_triples:
        if relation not in relations:
            raise DataError(f"Example {key}: unknown relation {relation!r} (not in rel2id.json).")
        located = []
        for phrase in (subject, obj):
            counts["ambiguous"] += len(occurrences[phrase]) > 1
            if phrase in placements:
                start, end = placements[phrase]
                located.append({"start": start, "end": end, "head": end - 1})
        if len(located) < 2:
            counts["not_found"] += 1
            continue
        for span in located:
            spans[(span["start"], span["end"])] = span
        triples.append({"subject": located[0], "relation": relation, "object": located[1]})
    counts["triples"] += len(triples)
    entities = [spans[k] for k in sorted(spans)]
    return {"tokens": tokens, "entities": entities, "triples": triples}, counts


def place_entities(occurrences: dict[str, list[tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    """The `(start, end)` token span each entity of a sentence takes, of the occurrences found for it: the first
    that lies inside no longer occurrence of another of the sentence's entities (`Paris` of `Paris Hilton`), else
    the first. Entities found nowhere are left out."""
    mentions = {span for spans in occurrences.values() for span in spans}

    def inside_longer(start, end):
        return any(other_start <= start and end <= other_end and other_end - other_start > end - start
                   for other_start, other_end in mentions)

    return {phrase: next((span for span in spans if not inside_longer(*span)), spans[0])
            for phrase, spans in occurrences.items() if spans}


def split_file_name(split: str, present: Iterable[str]) -> str:
    """The file name of `split` in a folder whose split files are `present` (names or paths): the folder's format,
    JSON lines where one of them is, else CasRel JSON."""
    in_lines = any(name.endswith(".jsonl") for name in present)
    return (JSONL_SPLIT_FILES if in_lines else SPLIT_FILES)[split]


def find_split_files(directory: str, required: tuple[str, ...] = ()) -> dict[str, str]:
    """Returns {split: path} of the split files in a user folder (CasRel JSON or JSON lines).

    Args:
        directory: the folder.
        required: splits it must hold (e.g. `("train",)` to train on it).

    Raises:
        FileNotFoundError: the folder is missing or lacks a required split.
        ValueError: a split is there in both formats.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No folder {directory}.")
    found = {}
    for split in SPLIT_FILES:
        paths = [os.path.join(directory, names[split]) for names in (SPLIT_FILES, JSONL_SPLIT_FILES)]
        present = [path for path in paths if os.path.exists(path)]
        if len(present) > 1:
            raise DataError(f"{directory} holds split {split!r} twice ({' and '.join(present)}): keep one.")
        if present:
            found[split] = present[0]
        elif split in required:
            raise FileNotFoundError(
                f"{directory} has no {split} split: add {SPLIT_FILES[split]} (tokenised CasRel JSON) or "
                f"{JSONL_SPLIT_FILES[split]} (JSON lines of raw sentences); see docs/custom_data.md."
            )
    return found


def _occurrences_as_tokens(text: str, tokens: list, phrase: str) -> list[tuple[int, int]]:
    """Returns the `(start, end)` token spans where `phrase` occurs in `text` on token boundaries."""
    starts = {token.start: i for i, token in enumerate(tokens)}
    ends = {token.end: i for i, token in enumerate(tokens)}
    spans = []
    position = text.find(phrase)
    while position >= 0:
        end = position + len(phrase)
        if position in starts and end in ends:
            spans.append((starts[position], ends[end] + 1))
        position = text.find(phrase, position + 1)
    return spans


_TRAILING_PUNCTUATION = frozenset([".", ",", ";", ":", "!", "?", "...", "\u2026"])  # U+2026: an ellipsis.


def _without_trailing_punctuation(words: list[str], start: int, end: int) -> int:
    """The end of the span `words[start:end]` without the punctuation tokens that close it (an entity copied with
    the sentence's period, `London.`), keeping at least one token."""
    while end - start > 1 and words[end - 1] in _TRAILING_PUNCTUATION:
        end -= 1
    return end


def _names_near(name: str, names: set[str], listed: int = 12) -> str:
    """The `names` for a message: all of them when few, else the closest to `name` and how many there are."""
    if len(names) <= listed:
        return ", ".join(sorted(names))
    close = difflib.get_close_matches(name, names, n=3)
    return (f"the closest are {', '.join(close)} " if close else "") + f"(of {len(names)})"


def relation_name(name: str, where: str) -> str:
    """Returns a relation name of a user's folder as read, in a triple or in rel2id.json: mis-decoded UTF-8
    repaired (`repair_text`) and the spaces around it removed.

    Raises:
        DataError: the name holds a line break (a model stores its relation names one a line).
    """
    name = repair_text(name).strip()
    if len(name.splitlines()) > 1:
        raise DataError(f"{where}: the relation name {name!r} holds a line break: write it on one line.")
    return name


def folder_example(record: dict, relations: set[str], where: str, pretokenized: bool
                   ) -> tuple[dict, collections.Counter]:
    """Converts one user record to a TFDS example, strictly: any triple it cannot place is an error.

    Args:
        record: `{"text", "triple_list"}` (checked by `read_records`).
        relations: the folder's relation names.
        where: `path:line` (or `path:line:column`, `RecordPosition`) of the record, for messages.
        pretokenized: the text is space-separated tokens (the CasRel JSON layout);
            else it is raw text, tokenised with `rin_keras.data.tokenizer`, and each
            entity is found in it as written (on token boundaries) or as tokens.

    Returns:
        The example and its counts: `repaired` (mis-decoded UTF-8 repaired),
        `ambiguous` (an entity found more than once: the first occurrence taken that lies inside no longer
        mention of another of the record's entities, else the first),
        `trimmed` (an entity written with the punctuation after it: left out of its span),
        `duplicates` (a triple given twice: kept once), `triples`, `overlapping` (entities that overlap
        another of the sentence, `Wheeler, Texas` and `Texas`: the entity tags cannot mark both).

    Raises:
        ValueError: a relation not in `relations`, or an entity not in the text.
    """
    from rin_keras.data.tokenizer import tokenize, tokenize_with_offsets  # The project's tokeniser.

    counts = collections.Counter()
    text = repair_text(record["text"]).strip()
    counts["repaired"] = int(text != record["text"].strip())
    tokens = None if pretokenized else tokenize_with_offsets(text)
    words = contract.split_tokens(text) if pretokenized else [token.text for token in tokens]
    occurrences = {}

    def occurrences_of(phrase):
        if phrase not in occurrences:
            found = [] if pretokenized else _occurrences_as_tokens(text, tokens, phrase)
            if not found:  # As tokens: a pre-tokenised text, or a quote written differently.
                pieces = contract.split_tokens(phrase) if pretokenized else tokenize(phrase)
                found = [(start, start + len(pieces)) for start in locate(words, " ".join(pieces))]
            occurrences[phrase] = found
        return occurrences[phrase]

    entity_triples = [(*(repair_text(x).strip() for x in (triple[0], triple[2])), triple)
                      for triple in record["triple_list"]]
    # Mentions without the punctuation an entity may be written with.
    trimmed = {phrase: [(start, _without_trailing_punctuation(words, start, end))
                        for start, end in occurrences_of(phrase)]
               for subject, obj, _ in entity_triples for phrase in (subject, obj)}
    placements = place_entities(trimmed)
    spans, triples, seen = {}, [], set()
    for subject, obj, triple in entity_triples:
        relation = relation_name(triple[1], where)
        if relation not in relations:
            raise DataError(f"{where}: relation {relation!r} is not one of the folder's relations "
                             f"(rel2id.json, or those of the train split when the folder has none): "
                             f"{_names_near(relation, relations)}.")
        located = []
        for role, phrase in (("subject", subject), ("object", obj)):
            found = occurrences_of(phrase)
            if not found:
                _raise_not_located(where, role, phrase, triple, text, tokens)
            counts["ambiguous"] += len(found) > 1
            start, end = placements[phrase]
            counts["trimmed"] += (start, end) not in found  # Its own occurrence, less the punctuation.
            located.append({"start": start, "end": end, "head": end - 1})
        key = ((located[0]["start"], located[0]["end"]), relation, (located[1]["start"], located[1]["end"]))
        if key in seen:  # The same triple, written twice (`Paris.` and `Paris`, or accents composed otherwise).
            counts["duplicates"] += 1
            continue
        seen.add(key)
        for span in located:
            spans[(span["start"], span["end"])] = span
        triples.append({"subject": located[0], "relation": relation, "object": located[1]})
    counts["triples"] = len(triples)
    counts["overlapping"] = sum(any(start < other_end and other_start < end for other_start, other_end in spans
                                    if (other_start, other_end) != (start, end)) for start, end in spans)
    return {"tokens": words, "entities": [spans[k] for k in sorted(spans)], "triples": triples}, counts


def _raise_not_located(where: str, role: str, phrase: str, triple, text: str, tokens) -> None:
    """Raises the `DataError` of an entity that `folder_example` cannot place: not in the text, or only inside a
    token (`Paris` in `Paris-born`); `tokens` is None for a tokenised (CasRel JSON) text."""
    position = text.find(phrase) if tokens is not None else -1
    if position >= 0:
        inside = " ".join(t.text for t in tokens if t.start < position + len(phrase) and t.end > position)
        why = ("a straight quote that opens a word stays on it, as in the benchmark texts: annotate it with the "
               "quote, or quote the text with ‘ ’" if inside.startswith("'") else "a hyphenated word is one token")
        raise DataError(f"{where}: the {role} {phrase!r} of {list(triple)} is in the text only as part of "
                        f"{inside!r}: an entity is whole tokens ({why}).")
    if phrase not in text and phrase.translate(_PLAIN_QUOTES) in text.translate(_PLAIN_QUOTES):
        hint = " as written: the text has other quote marks in it (’ for ', “ for \"); write the entity as the text does"
    elif tokens is None:
        hint = " (a .json split holds tokenised text; put raw sentences in a .jsonl split)"
    else:
        hint = ""
    raise DataError(f"{where}: the {role} {phrase!r} of {list(triple)} is not in the text{hint}.")


# Curly and straight quote marks as one, character for character, for `_raise_not_located`'s hint.
_PLAIN_QUOTES = str.maketrans("‘’‚‛“”„‟", "''''\"\"\"\"")
