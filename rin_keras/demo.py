"""A page to try a trained model: `python -m rin_keras.demo --model_dir=runs/webnlg_exact_k3`.

Serves, on http://127.0.0.1:8080/ by default, a page where a person pastes a
paragraph and sees every extracted triple highlighted in the text (from the
tokeniser's character spans) and drawn as a small graph of entities and
relations. The page calls `POST /extract` with `{"text": "..."}`, which answers
`RINTripleExtractor.predict_documents` for it: `{"sentences": [[start, end), ...],
"triples": [...], "truncated": [...]}` with document character offsets, and `read_limit`, what of a sentence the
model reads (`"100 tokens"`; the page says which sentences were longer). After each run the page's address ends in
`#text=...`, a link that fills in and runs the text on load (the browser keeps the part after `#`, so a link of
the longest text reaches no server limit); `/?text=...` does the same for texts whose address fits 8 KB
(URL-encoded: a few thousand characters; a longer address is answered 400). `/extract` reads JSON only, so that
no other site's page can send it texts.

It runs on `serving.web.WebServer`: slow clients cannot stall it, a body over
`MAX_BODY_BYTES` is answered 413 before it is read, and one text is read at a time.
"""

from __future__ import annotations

import functools
import json
import sys
import threading

from absl import app, flags, logging
from aiohttp import web as aiohttp_web

from rin_keras import cli
from serving import web

MAX_TEXT_CHARS = 20_000  # A paragraph or a page; longer texts belong to `rin_keras.predict --documents`.
# Room for JSON's escapes of the longest text: an emoji written as `\ud83d\ude00` is 12 bytes.
MAX_BODY_BYTES = 12 * MAX_TEXT_CHARS + 1024

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RIN: relations in your text</title>
<style>
body { font-family: sans-serif; max-width: 62em; margin: 1.5em auto; color: #222; }
textarea { width: 100%; height: 7em; font-size: 1em; }
#text { line-height: 1.9; font-size: 1.1em; white-space: pre-wrap; }
mark { border-radius: .25em; padding: .05em .15em; }
mark.subject { background: #a8d5ff; } mark.object { background: #ffd59a; } mark.both { background: #c9b3f5; }
table { border-collapse: collapse; margin: .8em 0; } td, th { padding: .15em .7em; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } #status { color: #666; }
svg text { font-size: 12px; } svg .relation { fill: #555; font-style: italic; }
</style></head>
<body>
<h1>Relations in your text</h1>
<p>Paste a paragraph; each sentence is read by the Recurrent Interaction Network.
<mark class="subject">subject</mark> <mark class="object">object</mark> <mark class="both">both</mark></p>
<textarea id="input">Alan Bean was born in Wheeler, Texas. He was a crew member of Apollo 12.</textarea>
<p><button id="run">Extract</button> <span id="status"></span> <a id="share" hidden>link to this text</a></p>
<div id="text"></div>
<table id="triples"></table>
<svg id="graph" width="900" height="420" role="img" aria-label="entity graph"></svg>
<script>
const $ = (id) => document.getElementById(id);

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function highlight(text, triples) {
  // Python's character offsets count code points; so do Array.from's elements.
  const chars = Array.from(text), roles = new Array(chars.length).fill(0);
  for (const t of triples) {
    for (const [role, bit] of [["subject", 1], ["object", 2]]) {
      const [start, end] = t[role + "_char_span"];
      for (let i = start; i < end; i++) roles[i] |= bit;
    }
  }
  const names = ["", "subject", "object", "both"];
  let html = "", i = 0;
  while (i < chars.length) {
    let j = i;
    while (j < chars.length && roles[j] === roles[i]) j++;
    const piece = escapeHtml(chars.slice(i, j).join(""));
    html += roles[i] ? `<mark class="${names[roles[i]]}">${piece}</mark>` : piece;
    i = j;
  }
  $("text").innerHTML = html;
}

function table(triples) {
  const rows = triples.map((t) => `<tr><td>${t.sentence + 1}</td><td>${escapeHtml(t.subject)}</td>
    <td>${escapeHtml(t.relation)}</td><td>${escapeHtml(t.object)}</td><td>${t.score.toFixed(2)}</td></tr>`);
  $("triples").innerHTML = triples.length
    ? "<tr><th>sentence</th><th>subject</th><th>relation</th><th>object</th><th>score</th></tr>" + rows.join("")
    : "";
}

function graph(triples) {
  const svg = $("graph"), width = +svg.getAttribute("width"), height = +svg.getAttribute("height");
  const names = [...new Set(triples.flatMap((t) => [t.subject, t.object]))];
  const radius = Math.min(width, height) / 2 - 60, at = {};
  names.forEach((name, k) => {
    const angle = 2 * Math.PI * k / Math.max(names.length, 1) - Math.PI / 2;
    at[name] = [width / 2 + radius * Math.cos(angle), height / 2 + radius * Math.sin(angle)];
  });
  let body = `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"
    orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>`;
  for (const t of triples) {
    const [x1, y1] = at[t.subject], [x2, y2] = at[t.object];
    body += `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#999" marker-end="url(#arrow)"/>`;
    body += `<text class="relation" x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle">`
      + `${escapeHtml(t.relation)}</text>`;
  }
  for (const name of names) {
    const [x, y] = at[name];
    body += `<circle cx="${x}" cy="${y}" r="5" fill="#3577c4"/>`
      + `<text class="entity" x="${x}" y="${y - 9}" text-anchor="middle">${escapeHtml(name)}</text>`;
  }
  svg.innerHTML = body;
}

async function run() {
  const text = $("input").value;
  $("status").textContent = "reading...";
  let response, answer;
  try {
    response = await fetch("/extract", {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify({text})});
    answer = await response.json();
  } catch (error) {  // No server, or an answer that is not the server's JSON (a proxy's error page).
    $("status").textContent = `No answer from the server (${error.message}).`;
    return;
  }
  if (!response.ok) { $("status").textContent = answer.error; return; }
  highlight(text, answer.triples);
  table(answer.triples);
  graph(answer.triples);
  const cut = answer.truncated.map((i) => i + 1);
  $("status").textContent = `${answer.sentences.length} sentences, ${answer.triples.length} triples`
    + (cut.length ? `; sentence${cut.length > 1 ? "s" : ""} ${cut.join(", ")} read only in part `
                    + `(the model reads the first ${answer.read_limit} of a sentence)` : "");
  const link = "#text=" + encodeURIComponent(text);
  history.replaceState(null, "", link);
  $("share").href = link;
  $("share").hidden = false;
  document.body.dataset.done = "true";
}

function readLink(text) {
  if (text !== null) { $("input").value = text; run(); }
}

$("run").addEventListener("click", run);
// A link's text: after `#` (what the page writes; browsers send it to no server) or in the query.
readLink(new URLSearchParams(location.hash.slice(1)).get("text") ?? new URLSearchParams(location.search).get("text"));
// Another link opened in the same tab changes only what follows `#`, for which browsers do not load the page again.
window.addEventListener("hashchange", () => readLink(new URLSearchParams(location.hash.slice(1)).get("text")));
</script>
</body></html>
"""


async def _page(server: web.WebServer, request) -> aiohttp_web.Response:
    return aiohttp_web.Response(text=PAGE, content_type="text/html", charset="utf-8")


async def _extract(extractor, lock: threading.Lock, server: web.WebServer, request) -> dict:
    """`POST /extract` with `{"text": ...}`: `predict_documents` of the text."""
    # Only JSON: a browser asks this server before it sends JSON from another site's page (a CORS preflight, which
    # it does not answer), so no page a visitor opens can queue texts here; a form or `text/plain` it would send.
    if request.content_type != "application/json":
        raise web.RequestRefused(415, "Send the text as JSON (Content-Type: application/json).")
    body = await server.read_body(request)
    try:
        payload = json.loads(body.decode("utf-8-sig")) if body else None  # JSON readers may skip a byte-order mark.
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # Recursion: JSON nested too deep to parse.
        raise web.RequestRefused(400, f"The body must be JSON: {e}") from e
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise web.RequestRefused(400, 'Send {"text": "your paragraph"}.')
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON can escape lone surrogates, which no UTF-8 text holds.
        raise web.RequestRefused(400, f"The text is not valid Unicode: {e}") from e
    if len(text) > MAX_TEXT_CHARS:
        raise web.RequestRefused(413, f"The text has {len(text)} characters; the page reads up to {MAX_TEXT_CHARS} "
                                      "(use rin_keras.predict --documents for files).")

    def predict():
        with lock:  # One prediction at a time on the shared model.
            if request.transport is None or request.transport.is_closing():  # The client left while this waited.
                return None
            return {**extractor.predict_documents([text])[0], "read_limit": extractor.preprocessor.read_limit}

    result = await server.run(predict)
    if result is None:
        raise web.RequestRefused(503, "The client closed the connection before its text was read.")
    return result


def make_server(extractor, host: str = "127.0.0.1", port: int = 8080) -> web.WebServer:
    """Returns the demo's server for `extractor` (port 0: any free port, then read `.port`); call `start()`."""
    extract = functools.partial(_extract, extractor, threading.Lock())
    routes = [("GET", "/", _page), ("GET", "/index.html", _page), ("POST", "/extract", extract)]
    return web.WebServer(routes, host, port, max_body_bytes=MAX_BODY_BYTES, workers=1, max_pending=16)


def main(argv):
    del argv
    extractor = cli.load_extractor()
    if extractor.config.variant == "partial":
        logging.warning("A partial-match model marks entities by their last word; a --variant=exact model "
                        "highlights full names.")
    try:
        server = make_server(extractor, FLAGS.host, FLAGS.port).start()
    except OSError as error:
        sys.exit(f"rin_keras.demo: {error}")
    print(f"Open http://{FLAGS.host}:{server.port}/ (Ctrl-C stops).", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


FLAGS = flags.FLAGS

if __name__ == "__main__":
    cli.define_model_dir_flag()
    cli.define_threshold_flag()
    flags.adopt_module_key_flags(cli)  # --help lists the shared flags too.
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: reachable from other machines).")
    flags.DEFINE_integer("port", 8080, "Port to listen on.", lower_bound=0, upper_bound=65535)
    app.run(main)
