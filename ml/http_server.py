"""The local HTTP server: sockets, the worker pool and the timeouts, around one `invoke` function (ml/serve.py).

`GET /ping` answers 200; `POST /invocations` hands the body to `invoke`. Every bad request gets a 4xx with a
JSON body `{"error": "..."}`: 400 malformed, 404 unknown path, 405 wrong method, 408 request not received
within the timeout, 411 no Content-Length (chunked bodies are refused), 413 body over 6 MiB, 415 content
type, 503 all workers busy past the queue wait.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ml.request_parsing import MAX_BODY_BYTES, BadRequest, content_kind, shown

MAX_REQUEST_LINE_BYTES = 8192  # the only routes are /ping and /invocations: a long line is garbage
DEFAULT_TIMEOUT_SECONDS = 10.0  # to receive a whole request (line, headers, body), and for each reply write
DEFAULT_WORKERS = 8
DEFAULT_QUEUE_WAIT_SECONDS = 5.0  # a connection waits this long for a free worker, then gets a 503
MAX_PENDING_CONNECTIONS = 64
LINGER_SECONDS = 1.0  # after a reply, how long to read and discard what the client still sends
ROUTES = {"/ping": "GET", "/invocations": "POST"}


class _DeadlineReader(io.RawIOBase):
    """Socket input under one deadline for the whole request. A per-recv timeout alone would let a client
    that trickles a byte every few seconds keep a worker forever."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        super().__init__()
        self._sock = sock
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the request was not received within {self._seconds:g} s")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError as error:
            raise TimeoutError(f"the request was not received within {self._seconds:g} s") from error


def _linger(sock: socket.socket, seconds: float, limit: int = MAX_BODY_BYTES + 65536) -> None:
    """Half-close, then read and discard what the client still sends, for a bounded time. Closing with unread
    input makes the kernel reset the connection, which can discard the reply before the client reads it
    (an early 413, or a body longer than its Content-Length)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline, drained = time.monotonic() + seconds, 0
        if seconds <= 0:  # the request was read whole: only what already arrived beyond it
            sock.setblocking(False)
        while drained < limit:
            if seconds > 0:
                if (remaining := deadline - time.monotonic()) <= 0:
                    break
                sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                break
            drained += len(chunk)
    except OSError:  # BlockingIOError and TimeoutError included: nothing more to read now
        pass


class InvocationHandler(BaseHTTPRequestHandler):
    """One request per connection (HTTP/1.0 replies with Connection: close): after an error nothing is left
    half-read to resynchronise on. `invoke` and `request_timeout` are set by `make_handler`."""

    server_version = "flightdelay-serve"
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # so that even a reply to a garbled request line has a status line
    # (body, Content-Type, Accept) -> (reply body, its content type); BadRequest for a client error
    invoke: Callable[[bytes, str, str], tuple[str, str]]
    request_timeout: float = DEFAULT_TIMEOUT_SECONDS
    answer_headers: tuple[tuple[str, str], ...] = ()  # on every /invocations answer (the model's id)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket stays open until its makefile() readers are closed
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.request_timeout))
        self._input_read = False

    def finish(self) -> None:
        super().finish()
        _linger(self.connection, 0.0 if self._input_read else min(LINGER_SECONDS, self.request_timeout))

    # -- replies

    def _send(self, status: int, body: str, content_type: str = "application/json",
              headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = body.encode()
        self.close_connection = True
        try:
            self.connection.settimeout(self.request_timeout)  # sendall's timeout bounds the whole write
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client left or stopped reading: nobody to tell

    def _error(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._send(status, json.dumps({"error": message}), headers=headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (header line too long, too many headers) as JSON too."""
        text = message or HTTPStatus(code).phrase
        self._error(code, f"{text}: {explain}" if explain else text)

    # -- request

    def handle_one_request(self) -> None:
        self.command, self.path, self.requestline, self.request_version = "", "", "", "HTTP/1.0"
        self._target = ""
        self.close_connection = True
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE_BYTES + 1)
            if not self.raw_requestline:
                return  # connected and left without a byte
            if len(self.raw_requestline) > MAX_REQUEST_LINE_BYTES:
                self._error(HTTPStatus.REQUEST_URI_TOO_LONG,
                            f"request line longer than {MAX_REQUEST_LINE_BYTES} bytes")
                return
            if self.parse_request():
                self._route()
        except TimeoutError as error:
            self._error(HTTPStatus.REQUEST_TIMEOUT, str(error))
        except ConnectionError:
            pass  # the client reset the connection: nobody to answer
        except Exception as error:  # a bug here, not the client's fault: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(error).__name__}")

    def parse_request(self) -> bool:
        words = self.raw_requestline.rstrip(b"\r\n").split()
        if len(words) != 3 or not re.fullmatch(rb"HTTP/1\.[01]", words[2]):
            # HTTP/0.9 (two words) would get a reply without a status line; HTTP/2+ is not spoken here
            self._error(HTTPStatus.BAD_REQUEST, f"request line {shown(self.raw_requestline.decode('latin-1'))} is "
                        "not 'METHOD /path HTTP/1.1'")
            return False
        # Routed on the target as sent: the standard library turns a leading "//" into "/" (against open
        # redirects), which would answer POST //invocations as if it were /invocations.
        self._target = words[1].decode("latin-1")
        return super().parse_request()

    def _route(self) -> None:
        path = self._target.split("?", 1)[0]
        allowed = ROUTES.get(path)
        if allowed is None:
            self._error(HTTPStatus.NOT_FOUND, f"no route {shown(path)}; use GET /ping or POST /invocations")
        elif self.command != allowed:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{shown(self.command)} is not allowed on {path}; use "
                        f"{allowed}", headers=(("Allow", allowed),))
        elif path == "/ping":
            self._input_read = not self.headers.get("Content-Length") and not self.headers.get("Transfer-Encoding")
            self._send(HTTPStatus.OK, "{}")
        else:
            try:
                body, content_type = self._invoke()
            except BadRequest as error:
                self._error(error.status, str(error), headers=self.answer_headers)
            else:
                self._send(HTTPStatus.OK, body, content_type, headers=self.answer_headers)

    def _content_length(self) -> int:
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get_all("Transfer-Encoding"):
            if lengths:  # which one frames the body is how requests get smuggled: refuse both
                raise BadRequest("both Transfer-Encoding and Content-Length were sent; send only Content-Length")
            raise BadRequest(f"Transfer-Encoding {shown(self.headers['Transfer-Encoding'])} is not supported; "
                             "send the body with a Content-Length", HTTPStatus.LENGTH_REQUIRED)
        if not lengths:
            raise BadRequest("no Content-Length header; send the body's size in bytes", HTTPStatus.LENGTH_REQUIRED)
        if len(lengths) > 1:
            raise BadRequest(f"Content-Length sent {len(lengths)} times ({shown(lengths)}); send it once")
        text = lengths[0].strip()
        if not re.fullmatch(r"[0-9]+", text):  # int() would take '-1', '+5', ' 5', '1_0'
            raise BadRequest(f"Content-Length {shown(text)} is not a byte count (expected digits only)")
        if len(text.lstrip("0")) > len(str(MAX_BODY_BYTES)) or int(text) > MAX_BODY_BYTES:
            raise BadRequest(f"body of {shown(text.lstrip('0'))} bytes exceeds the limit of {MAX_BODY_BYTES}",
                             HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return int(text)

    def _invoke(self) -> tuple[str, str]:
        length = self._content_length()
        if len(types := self.headers.get_all("Content-Type") or []) > 1:  # which one would count is ambiguous
            raise BadRequest(f"Content-Type sent {len(types)} times ({shown(types, 200)}); send it once")
        content_kind(self.headers.get("Content-Type"))  # before reading a body that cannot be used
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise BadRequest(f"body ended after {len(body)} of the {length} bytes its Content-Length announced")
        self._input_read = True
        return self.invoke(body, self.headers.get("Content-Type", ""), self.headers.get("Accept", ""))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet; errors go in the body
        pass



def make_handler(invoke: Callable[[bytes, str, str], tuple[str, str]],
                 timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 headers: tuple[tuple[str, str], ...] = ()) -> type[InvocationHandler]:
    return type("Handler", (InvocationHandler,), {"invoke": staticmethod(invoke), "request_timeout": timeout,
                                                  "answer_headers": headers})


class BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """A fixed pool of worker threads instead of a thread per connection, so slow or numerous clients
    cannot exhaust the machine. Connections beyond the pool wait in a queue of at most `max_pending` for
    at most `queue_wait` seconds (checked each accept-loop poll, 0.5 s), then get a 503."""

    request_queue_size = 128  # listen backlog: accepting is quick, the queue below does the waiting

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *,
                 workers: int = DEFAULT_WORKERS, queue_wait: float = DEFAULT_QUEUE_WAIT_SECONDS,
                 max_pending: int = MAX_PENDING_CONNECTIONS) -> None:
        if workers < 1 or queue_wait < 0 or max_pending < 1:
            raise ValueError(f"need workers >= 1, queue_wait >= 0, max_pending >= 1; got {workers}, {queue_wait}, "
                             f"{max_pending}")
        self.workers, self.queue_wait, self.max_pending = workers, queue_wait, max_pending
        self._pending: deque[tuple[socket.socket, Any, float]] = deque()
        self._ready = threading.Condition()
        self._closing = False
        super().__init__(address, handler)
        self._workers = [threading.Thread(target=self._work, name=f"serve-worker-{n}", daemon=True)
                         for n in range(workers)]
        for thread in self._workers:
            thread.start()

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._ready:
            if len(self._pending) < self.max_pending and not self._closing:
                self._pending.append((request, client_address, time.monotonic()))
                self._ready.notify()
                return
        self._refuse(request, f"{len(self._pending)} connections already wait for {self.workers} workers")

    def service_actions(self) -> None:
        now, expired = time.monotonic(), []
        with self._ready:
            while self._pending and now - self._pending[0][2] > self.queue_wait:
                expired.append(self._pending.popleft())
        for request, _, _ in expired:
            self._refuse(request, f"no worker free within {self.queue_wait:g} s")

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closing:
                    self._ready.wait()
                if not self._pending:
                    return
                request, client_address, queued_at = self._pending.popleft()
            if time.monotonic() - queued_at > self.queue_wait:
                self._refuse(request, f"no worker free within {self.queue_wait:g} s")
                continue
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def _refuse(self, request: socket.socket, why: str) -> None:
        body = json.dumps({"error": f"server busy: {why}; retry later"}).encode()
        head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
        try:
            request.settimeout(0.5)  # on the accept thread: a client that does not read must not stall it
            request.sendall(head + body)
            request.setblocking(False)
            drained = 0  # what already arrived, so that closing does not reset the connection under the reply
            while drained < MAX_BODY_BYTES and (chunk := request.recv(65536)):
                drained += len(chunk)
        except OSError:
            pass
        self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._ready:
            self._closing = True
            pending = list(self._pending)
            self._pending.clear()
            self._ready.notify_all()
        for request, _, _ in pending:
            self._refuse(request, "shutting down")
        deadline = time.monotonic() + 5
        for thread in self._workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
