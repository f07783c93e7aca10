"""An HTTP server that no client can stall or exhaust: aiohttp on an event loop in a background thread.

The REST API of `serving.server` and the demo page of `rin_keras.demo` run on it.
Connections cost no thread, so a thousand slow or idle clients hold sockets, not
workers, and the server keeps answering; each connection is closed after
`read_timeout` seconds without a complete request. Bodies larger than
`max_body_bytes` are refused with 413 before they are read, and a gzip or deflate
body is inflated outside the event loop up to `max_body_bytes` only (a small
body that inflates to gigabytes is refused, not inflated). Model work runs in a
pool of `workers` threads; beyond `max_pending` requests waiting for it, requests
are answered 503 at once rather than queued without bound. `stop` answers the
requests in progress for up to `shutdown_grace` seconds, then 503 to those left
(their work stops where it asks `wants_work`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
import zlib
from typing import Any, Awaitable, Callable

from aiohttp import http_exceptions, web, web_protocol


class RequestRefused(Exception):
    """A request answered with an HTTP error status and `{"error": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


SMALL_BODY_BYTES = 1 << 20  # Bodies up to this size are read without waiting for a slot (`WebServer.read_body`).
# The Content-Encodings of request bodies read, and their zlib window bits (gzip; deflate: zlib-wrapped, as HTTP has
# it; identity: none).
CONTENT_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS,
                     "identity": None}

Handler = Callable[["WebServer", web.Request], Awaitable[web.StreamResponse | dict]]


class _RequestErrorLog(logging.LoggerAdapter):
    """aiohttp's server log, where a request that is not valid HTTP (the client's error: gRPC sent to the REST port,
    a scanner, a body that its Content-Encoding does not decode) is one warning line instead of an ERROR with a
    traceback; other errors log as before."""

    def exception(self, msg, *args, exc_info=True, **kwargs):
        if isinstance(exc_info, http_exceptions.HttpProcessingError):
            reason = str(exc_info.message).strip().splitlines()[0] if exc_info.message else ""
            self.warning(msg + ": %s %s", *args, exc_info.code, reason)
        elif isinstance(exc_info, web_protocol.RequestPayloadError):
            self.warning(msg + ": %s", *args, " ".join(str(exc_info).split()))
        else:
            super().exception(msg, *args, exc_info=exc_info, **kwargs)


class WebServer:
    """aiohttp routes served from a background thread.

    Args:
        routes: `(method, path, handler)` triples; a handler is `async (server, request)` and returns
            an aiohttp response or a dict (answered as JSON), or raises `RequestRefused`.
        host: interface to bind.
        port: 0 picks a free port (then read `port`).
        max_body_bytes: largest request body read; larger ones get 413.
        read_timeout: seconds a connection may take to send a whole request (and may stay idle).
        workers: threads that run blocking work (`run`).
        max_pending: requests that may wait for or hold a worker; more get 503.
        shutdown_grace: seconds `stop` waits for the requests in progress to be answered; those left are
            answered 503.
    """

    STOP_SECONDS = 2.0  # After the grace: for the 503s to be written and the connections closed.

    def __init__(self, routes: list[tuple[str, str, Handler]], host: str = "127.0.0.1", port: int = 0,
                 max_body_bytes: int = 1 << 20, read_timeout: float = 30.0, workers: int = 4,
                 max_pending: int = 64, shutdown_grace: float = 1.0):
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.max_pending = max_pending
        self.shutdown_grace = shutdown_grace
        self._host, self.port = host, port
        self._pending = 0
        self._large_reads = 0
        self._loop = asyncio.new_event_loop()
        self._stopping = self._loop.create_future()  # Done when the grace has passed: the work left is answered 503.
        self._work_wanted = threading.Event()  # Cleared then, for the worker threads (`wants_work`).
        self._work_wanted.set()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="web")
        self._app = web.Application(client_max_size=max_body_bytes, middlewares=[self._errors_as_json])
        for method, path, handler in routes:
            if method == "GET":  # HEAD too, as HTTP servers answer it (uptime checks, link previews).
                self._app.router.add_get(path, self._bind(handler))
            else:
                self._app.router.add_route(method, path, self._bind(handler))
        self._runner = None
        self._thread = None

    def _bind(self, handler: Handler):
        async def bound(request):
            result = await handler(self, request)
            return result if isinstance(result, web.StreamResponse) else web.json_response(result)

        return bound

    @web.middleware
    async def _errors_as_json(self, request, handler):
        try:
            return await handler(request)
        except RequestRefused as error:
            return web.json_response({"error": str(error)}, status=error.status)
        except web.HTTPException as error:  # aiohttp's own: 404, 405, 413 on oversized bodies.
            if error.status < 400:
                raise
            return web.json_response({"error": error.text or error.reason}, status=error.status)

    def start(self) -> "WebServer":
        """Binds the port and starts serving in a daemon thread; returns self.

        Raises:
            OSError: the port cannot be listened on, in one line.
        """
        # Bodies are inflated by `read_body`, bounded: aiohttp's own inflation runs on the event loop to the end.
        self._runner = web.AppRunner(self._app, keepalive_timeout=self.read_timeout, access_log=None,
                                     logger=_RequestErrorLog(logging.getLogger("aiohttp.server"), {}),
                                     shutdown_timeout=self.STOP_SECONDS, auto_decompress=False)
        self._loop.run_until_complete(self._runner.setup())
        try:
            listener = socket.create_server((self._host, self.port), backlog=1024)
        except OSError as error:  # A port in use, an address not this machine's.
            raise OSError(f"cannot listen on {self._host}:{self.port} for HTTP: {error.strerror or error}.") from error
        self.port = listener.getsockname()[1]
        self._loop.run_until_complete(web.SockSite(self._runner, listener).start())
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="web-loop")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Closes the port, answers the requests in progress for up to `shutdown_grace` seconds and 503 to those
        left, then stops."""
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(
            timeout=self.shutdown_grace + 3 * self.STOP_SECONDS + 30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _shut_down(self) -> None:
        for site in list(self._runner.sites):  # No new connections.
            await site.stop()
        deadline = self._loop.time() + self.shutdown_grace
        while self._pending and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        self._work_wanted.clear()
        self._stopping.set_result(None)
        await self._runner.cleanup()

    def wants_work(self) -> bool:
        """Whether work in progress is still wanted: False once `stop`'s grace has passed (thread-safe)."""
        return self._work_wanted.is_set()

    async def read_body(self, request: web.Request) -> bytes:
        """The request body, refused (413) when over `max_body_bytes`, sent or inflated, (408) when slower than
        `read_timeout`, (415) in a Content-Encoding other than `CONTENT_ENCODINGS`, and (400) when it does not decode.

        Bodies of more than `SMALL_BODY_BYTES` (or of a length not given) are read `max_pending` at a time, later
        ones refused (503): slow senders of large bodies hold at most `max_pending` x `max_body_bytes` of memory,
        while small requests are read and answered as usual.
        """
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise RequestRefused(413, f"The request body has {request.content_length} bytes; this server reads "
                                      f"up to {self.max_body_bytes} (max_body_bytes).")
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in CONTENT_ENCODINGS:
            raise RequestRefused(415, f"Content-Encoding {encoding!r} is not read; send the body as it is, or in "
                                      f"{', '.join(e for e in CONTENT_ENCODINGS if e != 'identity')}.")
        large = request.content_length is None or request.content_length > SMALL_BODY_BYTES
        if large and self._large_reads >= self.max_pending:
            raise RequestRefused(503, f"The server is busy ({self.max_pending} large request bodies arriving); "
                                      "retry later.")
        self._large_reads += large
        try:
            body = await asyncio.wait_for(request.read(), self.read_timeout)
            if CONTENT_ENCODINGS[encoding] is None:
                return body
            return await asyncio.get_running_loop().run_in_executor(
                None, self._inflate, body, encoding, CONTENT_ENCODINGS[encoding])
        except asyncio.TimeoutError:
            raise RequestRefused(408, f"The request body did not arrive within {self.read_timeout} s.") from None
        except ConnectionError:  # The client left: nothing to answer.
            raise RequestRefused(400, "The connection closed before the request body arrived.") from None
        except web_protocol.RequestPayloadError as error:  # A chunked body cut short, or malformed.
            reason = str(error).strip().splitlines()[-1].strip()  # Its first line is "400, message:".
            raise RequestRefused(400, f"The request body could not be read: {reason}.") from None
        finally:
            self._large_reads -= large

    def _inflate(self, body: bytes, encoding: str, window_bits: int) -> bytes:
        """`body` inflated, at most `max_body_bytes` of it (413 beyond; 400 when it is not `encoding`)."""
        inflater = zlib.decompressobj(window_bits)
        try:
            data = inflater.decompress(body, self.max_body_bytes + 1)
        except zlib.error:
            raise RequestRefused(400, f"The request body could not be read: it is not {encoding} data.") from None
        if len(data) > self.max_body_bytes:
            raise RequestRefused(413, f"The request body inflates to more than {self.max_body_bytes} bytes; this "
                                      "server reads up to that (max_body_bytes).")
        if not inflater.eof:
            raise RequestRefused(400, f"The request body could not be read: its {encoding} data is cut short.")
        return data

    async def run(self, function: Callable[..., Any], *args) -> Any:
        """Runs blocking `function(*args)` in a worker thread; 503 when `max_pending` requests already wait, or when
        `stop`'s grace passes before it ends."""
        if self._pending >= self.max_pending:
            raise RequestRefused(503, f"The server is busy ({self.max_pending} requests in progress); retry later.")
        self._pending += 1
        try:
            work = asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
            await asyncio.wait((work, self._stopping), return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # The grace has passed: the work stops where it asks `wants_work`.
                raise RequestRefused(503, "The server is stopping; retry the request.")
            return work.result()
        finally:
            self._pending -= 1
