"""Triples from raw text with a trained model: the command line of `RINTripleExtractor`.

Sentences are tokenised the way the benchmark texts are (`rin_keras.data.tokenizer`:
punctuation and clitics split off, the sentence-final period split, `U.S.` kept),
and every triple carries `subject_char_span` / `object_char_span`, `[start, end)`
character offsets into the string given, so a caller can highlight it. Documents
are split into sentences first (pysbd), and their triples carry the sentence index
and offsets into the document. Pre-tokenised input (`--pretokenized`) is read as given.

    python -m rin_keras.predict --model_dir=runs/webnlg_partial_k3 "Alan Bean was born in Wheeler, Texas."
    python -m rin_keras.predict --model_dir=runs/webnlg_partial_k3 --documents --input=docs.jsonl --output=triples.jsonl

Results are written as they are made, in UTF-8 whatever the locale; a run stopped on a long `--input` goes on where
it stopped with the same command and `--resume`. A reader that leaves early (`| head`) stops the command quietly.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator

from rin_keras import cli
from rin_keras.data.tokenizer import tokenize_with_offsets
from serving import contract


JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")  # Files of one JSON object a line, each with its "text".


class InputError(ValueError):
    """A text file that cannot be read as texts; the message names the file (and the line or item)."""


def read_texts(path: str) -> Iterator[str]:
    """The texts of a file, as `--input` reads them: one a line (`.jsonl`: each line's "text"), or a `.json` list.

    Text is UTF-8, or UTF-16 or UTF-32 with its byte-order mark (Windows tools write UTF-16); invalid UTF-8 and lone
    surrogates read as U+FFFD and a byte-order mark is dropped; lines end at `\\n`, `\\r\\n` or `\\r`.

    Raises:
        InputError: malformed JSON or another layout, when it is reached (the texts before it have been yielded).
    """
    return iter(_json_texts(path)) if _suffix(path) == ".json" else _read_lines(path)


def _inputs(path: str | None, argv: list[str]) -> tuple[Iterator[str], int | None]:
    """The texts to read, each read once, and how many there are for the progress bar (None: stdin, not counted).

    The texts are argv, else the lines of `path` or stdin (`.jsonl`: each line's "text"), read as they are needed;
    a `.json` file is parsed here, once (`_json_texts`).
    """
    if argv:
        return iter([contract.readable_text(text) for text in argv]), len(argv)
    if _suffix(path) == ".json":
        texts = _json_texts(path)
        return iter(texts), len(texts)
    return _read_lines(path), _count_lines(path) if path else None


def _read_lines(path: str | None) -> Iterator[str]:
    """Yields the texts of the lines of `path` (`.jsonl`: each line's "text"), or of stdin, as they are read.

    Raises:
        InputError: a `.jsonl` line that is not an object with a "text" string, named by file and line, when it is
            reached (the texts before it have been yielded).
    """
    jsonl = _suffix(path) in JSON_LINES_SUFFIXES
    with contract.open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\r\n")
            if not jsonl:
                yield line
            elif line.strip():
                try:
                    text = json.loads(line)["text"]
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{number}: malformed JSON ({e}).")
                except (KeyError, TypeError):
                    text = None
                if not isinstance(text, str):
                    raise InputError(f"{path}:{number}: expected a JSON object with a \"text\" string.")
                yield contract.readable_text(text)


def _resume_point(texts: Iterator[str], input_path: str, output_path: str, documents: bool,
                  pretokenized: bool = False) -> int:
    """How many texts of `input_path` an earlier run already wrote to `output_path`, read line by line; a partly
    written last line (a run stopped while writing it) is cut off. Those texts are taken from `texts` (the
    input's, from its start), which goes on with the first text to read.

    Raises:
        SystemExit: a line of the output that is not the result of the input's text at its place, or one written
            with(out) `--documents`, or with tokens split otherwise (`--pretokenized`), than this run reads texts.
    """
    if not os.path.exists(output_path):
        return 0
    done = kept_bytes = 0
    with open(output_path, "rb+") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            text = next(texts, None)
            if text is None:
                raise SystemExit(f"rin_keras.predict: {output_path} holds more results than {input_path} has texts.")
            try:
                record = json.loads(line)
                written = record["text"] if ("sentences" in record) == documents else None
                if not documents and written == text and not _split_as(record["tokens"], text, pretokenized):
                    written = None
            except (ValueError, KeyError, TypeError):
                written = None
            done += 1
            if written != text:
                way = ("as a document (--documents)" if documents else
                       f"as a sentence {'of tokens as given' if pretokenized else 'to tokenise'} (--documents, "
                       "--pretokenized)")
                raise SystemExit(f"rin_keras.predict: line {done} of {output_path} is not the result of text {done} "
                                 f"of {input_path} {way}: give another --output, or leave out --resume to write it "
                                 "anew.")
            kept_bytes += len(line)
        f.truncate(kept_bytes)
    return done


def _split_as(tokens: list[str], text: str, pretokenized: bool) -> bool:
    """Whether `tokens`, the tokens a result records as read, are the first tokens of `text` as this run splits it:
    at whitespace as given (`--pretokenized`), else by the tokeniser."""
    if pretokenized:
        split = [match.group() for match in itertools.islice(contract.TOKEN.finditer(text), len(tokens))]
    else:
        # One token more than recorded, as the model reads a sentence (a final period is split off at its end).
        split = [token.text for token in tokenize_with_offsets(text, len(tokens) + 1)][: len(tokens)]
    return split == tokens


def _chunks(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    """Yields lists of up to `size` texts; an error in reading is raised once the texts before it are yielded."""
    while True:
        part = []
        try:
            part.extend(itertools.islice(texts, size))
        except InputError:
            if part:
                yield part
            raise
        if not part:
            return
        yield part


def _json_texts(path: str) -> list[str]:
    """The texts of a `.json` file: a list of strings, or of objects with a "text" string (a CasRel split such as
    `test_triples.json`).

    Raises:
        InputError: malformed JSON, or another layout, naming the file (and the item).
    """
    with contract.open_text(path) as f:
        try:
            items = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: malformed JSON ({e}).")
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON list of texts, or of objects with a \"text\" string (one object "
                         "a line is a .jsonl file).")
    texts = [item.get("text") if isinstance(item, dict) else item for item in items]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"{path}: item {index}: expected a text, or an object with a \"text\" string.")
    return [contract.readable_text(text) for text in texts]


def _suffix(path: str | None) -> str:
    return os.path.splitext(path)[1].lower() if path else ""


def _count_lines(path: str) -> int:
    """The texts `_read_lines` will yield from `path`, counted in one quick pass."""
    jsonl = _suffix(path) in JSON_LINES_SUFFIXES
    with contract.open_text(path) as lines:
        return sum(1 for line in lines if line.strip() or not jsonl)


def main(argv):
    from absl import flags

    FLAGS = flags.FLAGS
    if FLAGS.input and argv[1:]:
        sys.exit("rin_keras.predict: give the texts as arguments or as --input, not both.")
    if FLAGS.documents and FLAGS.pretokenized:
        sys.exit("rin_keras.predict: --documents splits raw text into sentences; --pretokenized reads tokens as "
                 "given: choose one.")
    if FLAGS.resume and not (FLAGS.input and FLAGS.output):
        sys.exit("rin_keras.predict: --resume goes on with an --output from an --input file: give both.")
    try:
        with contract.json_lines_stdout():
            _predict_inputs(FLAGS, argv[1:])
    except InputError as e:
        sys.exit(str(e))
    except OSError as e:  # A full disk, a file gone: one line (--resume cuts a partly written last result).
        sys.exit(f"rin_keras.predict: {e.strerror or e} ({e.filename or FLAGS.output or 'standard output'}).")
    except KeyboardInterrupt:
        resume = (f" Run the same command with --resume to go on after the results in {FLAGS.output}."
                  if FLAGS.input and FLAGS.output else "")
        print(f"rin_keras.predict: stopped.{resume}", file=sys.stderr)
        sys.exit(130)


def _predict_inputs(FLAGS, argv: list[str]) -> None:
    """Writes the results of the texts of `argv`, `--input` or stdin, as the flags say (see `main`)."""
    from absl import logging
    from tqdm import tqdm

    texts, total = _inputs(FLAGS.input, argv)
    done = (_resume_point(texts, FLAGS.input, FLAGS.output, FLAGS.documents, FLAGS.pretokenized)
            if FLAGS.resume else 0)
    extractor = cli.load_extractor()
    if extractor.config.variant == "partial":
        logging.warning("This model was trained on the partial-match protocol: its entities are single (last) words "
                        "('Bean' for 'Alan Bean'). A model trained with --variant=exact returns full names.")
    out = open(FLAGS.output, "a" if done else "w", encoding="utf-8") if FLAGS.output else sys.stdout
    if done:
        logging.info("Resuming after the %d texts whose results %s holds.", done, FLAGS.output)
    truncated = 0
    with tqdm(total=total, initial=done, unit="text", disable=not FLAGS.input, file=sys.stderr) as progress:
        # Texts are read a chunk at a time, so memory does not grow with the input and results come as they are made.
        for part in _chunks(texts, FLAGS.batch_size * 4):
            if FLAGS.documents:
                results = extractor.predict_documents(part, FLAGS.batch_size)
            elif FLAGS.pretokenized:
                results = extractor.predict_pretokenized(part, FLAGS.batch_size)
            else:
                results = extractor.predict_detailed(part, FLAGS.batch_size)
            for text, result in zip(part, results):
                out.write(json.dumps({"text": text, **result}, ensure_ascii=False) + "\n")
                truncated += bool(result.get("truncated"))
            out.flush()
            progress.update(len(part))
    if FLAGS.output:
        out.close()
    if truncated and FLAGS.documents:
        logging.warning("%d document(s) hold sentences longer than the model reads (%s), of which the rest was not "
                        "read (their indices are under \"truncated\").", truncated, extractor.preprocessor.read_limit)
    elif truncated:
        logging.warning("%d text(s) were longer than the model reads (%s) and were cut (\"truncated\": true)%s",
                        truncated, extractor.preprocessor.read_limit,
                        "." if FLAGS.pretokenized else ": --documents splits texts into sentences first.")


if __name__ == "__main__":
    from absl import app, flags

    cli.define_model_dir_flag()
    cli.define_threshold_flag()
    flags.adopt_module_key_flags(cli)  # --help lists the shared flags too.
    flags.DEFINE_integer("batch_size", 64, "Sentences per model call.", lower_bound=1)
    flags.DEFINE_string("input", None, "Text file (one text a line), .jsonl or .ndjson ({\"text\": ...} a line) or "
                        ".json (a list of texts or of {\"text\": ...}, e.g. a CasRel split); default: the arguments, "
                        "else stdin.")
    flags.DEFINE_string("output", None, "JSON lines output file (default stdout).")
    flags.DEFINE_bool("documents", False, "Each text is a document: split it into sentences first.")
    flags.DEFINE_bool("pretokenized", False, "Texts are tokens separated by whitespace: read them as given.")
    flags.DEFINE_bool("resume", False, "Go on with an --output that a stopped run wrote from the same --input: its "
                      "results are kept and the texts after them read.")
    cli.register_path_check("input", cli.existing_file)
    cli.register_path_check("output", cli.file_to_write)
    flags.register_multi_flags_validator(
        ["input", "output"],
        lambda f: not (f["input"] and f["output"] and os.path.exists(f["output"])
                       and os.path.samefile(f["input"], f["output"])),
        "--output names the --input file, which writing would empty first; name another file.")
    app.run(main)
