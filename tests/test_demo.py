"""rin_keras.demo: the /extract API, and the page as headless Chromium renders it."""

import contextlib
import html
import http.client
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest

from rin_keras import demo
from rin_keras.data.vocab import Vocabulary
from rin_keras.model import build_rin
from rin_keras.preprocessor import RINPreprocessor
from rin_keras.triple_extractor import RINTripleExtractor

from conftest import tiny_config

TEXT = 'Alan Bean was born in Wheeler, Texas. Suárez <b>flew</b> to 東京 🚀.'
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def url():
    """A demo server on a free port, over a tiny untrained extractor whose relation head fires often."""
    keras.utils.set_random_seed(0)
    vocab = Vocabulary.build([TEXT.split()], ["birthPlace", "country"])
    config = tiny_config(vocab_size=vocab.vocab_size, num_relations=vocab.num_relations)
    model = build_rin(config)
    head = model.get_layer("relation_head")
    head.output_kernel.assign(np.random.default_rng(0).normal(0, 100, head.output_kernel.shape).astype("float32"))
    head.output_bias.assign(np.zeros(head.output_bias.shape, "float32"))
    extractor = RINTripleExtractor(model, RINPreprocessor.from_config_and_vocabulary(config, vocab), threshold=0.6)
    server = demo.make_server(extractor, port=0).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def _post(url, body: bytes):
    request = urllib.request.Request(url + "/extract", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_extract_answers_document_triples_with_char_spans(url):
    status, answer = _post(url, json.dumps({"text": TEXT}).encode())
    assert status == 200 and len(answer["sentences"]) == 2
    assert 0 < len(answer["triples"]) <= 2 * 17 * 17
    for triple in answer["triples"]:
        start, end = triple["subject_char_span"]
        assert TEXT[start:end] == triple["subject"]


@pytest.mark.parametrize("body,status,message", [
    (b"{not json", 400, "must be JSON"),
    (b"[" * 100_000, 400, "must be JSON"),  # Deeper than Python's JSON parser recurses.
    (b'{"sentence": "x"}', 400, 'Send {"text"'),
    (json.dumps({"text": "a" * (demo.MAX_TEXT_CHARS + 1)}).encode(), 413, "characters"),
])
def test_extract_rejects_bad_requests(url, body, status, message):
    got_status, answer = _post(url, body)
    assert got_status == status and message in answer["error"]


def test_extract_reads_only_json_so_that_no_other_sites_page_can_send_texts(url):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        request = urllib.request.Request(url + "/extract", data=json.dumps({"text": TEXT}).encode(),
                                         headers={"Content-Type": content_type} if content_type else {})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=60)
        assert error.value.code == 415 and "Content-Type: application/json" in json.loads(error.value.read())["error"]


def test_a_body_may_start_with_a_byte_order_mark(url):  # As some Windows tools write JSON.
    assert _post(url, b"\xef\xbb\xbf" + json.dumps({"text": TEXT}).encode())[0] == 200


def test_the_longest_text_is_read_however_json_escapes_it(url):
    status, _ = _post(url, json.dumps({"text": "\U0001f600" * demo.MAX_TEXT_CHARS}).encode())  # 12 bytes an emoji.
    assert status == 200


def test_texts_whose_clients_left_while_they_waited_are_not_read():
    """One text at a time: those queued behind a long one, whose clients hang up, cost no model time."""
    read = []

    class SlowExtractor:
        preprocessor = type("Preprocessor", (), {"read_limit": "100 tokens"})()

        def predict_documents(self, texts):
            read.extend(texts)
            time.sleep(1.5)
            return [{"sentences": [], "triples": [], "truncated": []}]

    server = demo.make_server(SlowExtractor(), port=0).start()
    try:
        first = threading.Thread(target=_post, args=(f"http://127.0.0.1:{server.port}", b'{"text": "first"}'))
        first.start()
        time.sleep(0.3)
        for index in range(3):  # Queued behind the first, and gone before it ends.
            connection = http.client.HTTPConnection("127.0.0.1", server.port)
            connection.request("POST", "/extract", json.dumps({"text": f"left {index}"}),
                               {"Content-Type": "application/json"})
            connection.sock.shutdown(socket.SHUT_RDWR)
            connection.close()
        first.join()
        assert _post(f"http://127.0.0.1:{server.port}", b'{"text": "last"}')[0] == 200
    finally:
        server.stop()
    assert read == ["first", "last"]


def test_page_and_not_found(url):
    with urllib.request.urlopen(url + "/", timeout=30) as response:
        assert "<textarea" in response.read().decode()
    connection = http.client.HTTPConnection(*urllib.parse.urlsplit(url).netloc.split(":"), timeout=30)
    connection.request("HEAD", "/")  # As uptime checks and link previews ask.
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b""
    connection.close()
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(url + "/nope", timeout=30)


def _render(page: str, profile) -> str:
    """The DOM of `page` after headless Chromium ran its script."""
    return subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         "--virtual-time-budget=20000", "--dump-dom", page],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout


class _PageServer(http.server.BaseHTTPRequestHandler):
    """A stand-in for the demo server in front of the page: its handlers answer with `_send`."""

    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serving(handler):
    """Serves `handler` on a free port for the block; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _encode_uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent."""
    return urllib.parse.quote(text, safe="!~*'()")


@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (Debian package `chromium`)")
@pytest.mark.parametrize("link", ["/?text=", "/#text="])
def test_headless_chromium_shows_the_triples(url, tmp_path, link):
    _, answer = _post(url, json.dumps({"text": TEXT}).encode())
    dom = _render(url + link + urllib.parse.quote(TEXT), tmp_path)
    assert 'data-done="true"' in dom
    status = re.search(r'<span id="status">([^<]*)</span>', dom).group(1)
    assert status == f"2 sentences, {len(answer['triples'])} triples"
    text = re.search(r'<div id="text">(.*?)</div>', dom, re.S).group(1)
    highlighted = re.findall(r'<mark class="(?:subject|object|both)">([^<]*)</mark>', text)
    assert highlighted and all(html.unescape(piece) in TEXT for piece in highlighted)
    spans = [t[f"{role}_char_span"] for t in answer["triples"] for role in ("subject", "object")]
    covered = {i for start, end in spans for i in range(start, end)}
    assert sum(len(html.unescape(piece)) for piece in highlighted) == len(covered)  # Every spanned character.
    assert html.unescape(re.sub(r"</?mark[^>]*>", "", text)) == TEXT  # The text as written, markup escaped.
    svg = re.search(r'<svg id="graph"[^>]*>(.*?)</svg>', dom, re.S).group(1)
    relations = set(re.findall(r'<text class="relation"[^>]*>([^<]*)</text>', svg))
    assert relations == {t["relation"] for t in answer["triples"]}
    entities = set(re.findall(r'<text class="entity"[^>]*>([^<]*)</text>', svg))
    assert len(entities) == len({t[r] for t in answer["triples"] for r in ("subject", "object")})


@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (Debian package `chromium`)")
def test_the_page_links_a_text_longer_than_a_request_line_may_be(url, tmp_path):
    text = " ".join([TEXT] * 150)  # 31 KB as a link: aiohttp refuses request lines over 8,190 bytes.
    link = "#text=" + _encode_uri_component(text)
    assert len(link.encode()) > 8190
    _, answer = _post(url, json.dumps({"text": text}).encode())
    dom = _render(url + "/" + link, tmp_path)
    assert re.search(r'<span id="status">([^<]*)</span>', dom).group(1) == (
        f"300 sentences, {len(answer['triples'])} triples")
    assert f'<a id="share" href="{html.escape(link)}">' in dom  # The link to share is the one that ran.


@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (Debian package `chromium`)")
def test_the_page_says_which_sentences_it_read_only_in_part(url, tmp_path):
    text = "Alan Bean was born in Wheeler, Texas. " + "Texas " * 120 + ". He flew."
    _, answer = _post(url, json.dumps({"text": text}).encode())
    assert answer["truncated"] == [1] and answer["read_limit"] == "100 tokens"
    dom = _render(url + "/#text=" + _encode_uri_component(text), tmp_path)
    assert re.search(r'<span id="status">([^<]*)</span>', dom).group(1) == (
        f"3 sentences, {len(answer['triples'])} triples; sentence 2 read only in part (the model reads the first "
        "100 tokens of a sentence)")


@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (Debian package `chromium`)")
def test_another_link_opened_in_the_same_tab_reads_its_text(url, tmp_path):
    """Only the part after `#` changes, so the browser does not load the page again: the page reads the new text."""
    second = "Marie Curie was born in Warsaw."
    # The page as served, and a script that opens the second text's link once the first text is read.
    follow = ('<script>const wait = setInterval(() => { if (document.body.dataset.done) { clearInterval(wait); '
              f'location.hash = "#text=" + encodeURIComponent({json.dumps(second)}); }} }}, 50);</script></body>')
    demo_url = url

    class Page(_PageServer):
        def do_GET(self):
            self._send(200, demo.PAGE.replace("</body>", follow))

        def do_POST(self):  # /extract, from the demo server.
            status, answer = _post(demo_url, self.rfile.read(int(self.headers["Content-Length"])))
            self._send(status, json.dumps(answer), "application/json")

    with _serving(Page) as page_url:
        dom = _render(page_url + "/#text=" + _encode_uri_component(TEXT), tmp_path)
    text = re.search(r'<div id="text">(.*?)</div>', dom, re.S).group(1)
    assert html.unescape(re.sub(r"</?mark[^>]*>", "", text)) == second
    assert f'<a id="share" href="#text={html.escape(_encode_uri_component(second))}">' in dom


@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (Debian package `chromium`)")
def test_the_page_says_when_the_answer_is_not_the_servers(tmp_path):
    """A proxy's error page in place of the server's JSON: the page says so instead of reading on."""

    class Proxy(_PageServer):
        def do_GET(self):
            self._send(200, demo.PAGE)

        def do_POST(self):
            self._send(502, "<html><body>Bad gateway</body></html>")

    with _serving(Proxy) as proxy_url:
        dom = _render(proxy_url + "/#text=Alan", tmp_path)
    assert re.search(r'<span id="status">([^<]*)</span>', dom).group(1).startswith("No answer from the server (")
