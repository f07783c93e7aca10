"""rin_keras.predict's input: the texts of a file or of standard input, in the encodings Windows and Unix tools
write."""

import io
import json
import sys

import pytest

from rin_keras import predict

TEXTS = ["Alan Bean was born in Wheeler, Texas.", "José Müller flew to 東京 🚀."]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".json"])
def test_a_file_reads_as_utf8_or_as_utf16_or_utf32_with_its_byte_order_mark(tmp_path, encoding, suffix):
    content = {".txt": "\r\n".join(TEXTS) + "\r\n",
               ".jsonl": "".join(json.dumps({"text": t}) + "\n" for t in TEXTS),
               ".json": json.dumps(TEXTS, ensure_ascii=False)}[suffix]
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"")  # Windows tools write one.
    path = tmp_path / f"texts{suffix}"
    path.write_bytes(bom + content.encode(encoding))
    assert list(predict.read_texts(str(path))) == TEXTS
    texts, count = predict._inputs(str(path), [])
    assert list(texts) == TEXTS and count == len(TEXTS)


def test_standard_input_reads_utf16_with_its_byte_order_mark(monkeypatch):  # As serving.client reads it too.
    data = "\n".join(TEXTS).encode("utf-16")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert list(predict._read_lines(None)) == TEXTS
