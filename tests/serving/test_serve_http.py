"""The server's HTTP transport: framing errors are 4xx JSON, a slow client is dropped with a 408, a full worker pool
answers 503 after a bounded wait (the small real model of tests/serving/helpers.py)."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from ml import serve
from tests.serving.helpers import (
    Served,
    assert_error,
    http_post,
    raw_request,
    read_reply,
    start_server,
)


def test_http_framing_errors_are_4xx_json(small_server: Served, frame):
    port, body = small_server.port, frame.to_csv(index=False).encode()
    assert_error(raw_request(port, http_post("/invocations", body, length=-1)), 400,
                 "Content-Length '-1' is not a byte count")
    assert_error(raw_request(port, http_post("/invocations", body, length="12abc")), 400, "is not a byte count")
    assert_error(raw_request(port, http_post("/invocations", body, length="")), 411, "no Content-Length header")
    assert_error(raw_request(port, http_post("/invocations", body, length=serve.MAX_BODY_BYTES + 1)), 413,
                 f"exceeds the limit of {serve.MAX_BODY_BYTES}")
    assert_error(raw_request(port, http_post("/invocations", body, length="9" * 40)), 413)
    assert_error(raw_request(port, http_post("/invocations", b"5\r\nabcde\r\n0\r\n\r\n", length="",
                                             extra="Transfer-Encoding: chunked\r\n")), 411, "not supported")
    assert_error(raw_request(port, http_post("/invocations", body, extra="Transfer-Encoding: chunked\r\n")), 400,
                 "both Transfer-Encoding and Content-Length")
    assert_error(raw_request(port, http_post("/invocations", body, extra=f"Content-Length: {len(body)}\r\n")), 400,
                 "sent 2 times")
    assert_error(raw_request(port, http_post("/invocations", body[:100], length=len(body))), 400,
                 f"body ended after 100 of the {len(body)} bytes")
    assert_error(raw_request(port, http_post("/invocations", body, content_type=None)), 415, "no Content-Type")
    assert_error(raw_request(port, http_post("/invocations", body, content_type="text/plain")), 415)
    assert_error(raw_request(port, b"GET /nowhere HTTP/1.1\r\n\r\n"), 404, "no route '/nowhere'")
    # the target as sent: the standard library would read //invocations as /invocations and answer 200
    assert_error(raw_request(port, http_post("//invocations", body)), 404, "no route '//invocations'")
    assert_error(raw_request(port, b"GET //ping HTTP/1.1\r\n\r\n"), 404, "no route '//ping'")
    reply = raw_request(port, b"GET /invocations HTTP/1.1\r\n\r\n")
    assert_error(reply, 405, "'GET' is not allowed on /invocations; use POST")
    assert reply.headers["allow"] == "POST"
    assert_error(raw_request(port, http_post("/ping", b"")), 405)
    assert_error(raw_request(port, b"GET /ping\r\n\r\n"), 400, "is not 'METHOD /path HTTP/1.1'")
    assert_error(raw_request(port, b"GET /ping HTTP/2.0\r\n\r\n"), 400)
    assert_error(raw_request(port, b"\r\n"), 400)
    assert_error(raw_request(port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n"), 414)
    assert_error(raw_request(port, b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"), 431)
    assert raw_request(port, b"GET /ping HTTP/1.1\r\n\r\n").status == 200


def test_a_slow_client_is_dropped_with_a_408_within_the_timeout(small_server: Served):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\n")
        reply = read_reply(sock)  # the header block never ends
    assert_error(reply, 408, "not received within 1.5 s")
    assert time.monotonic() - started < 5
    # a byte every 0.3 s never lets one recv time out; the request deadline still ends it
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        for byte in b"POST /invocations HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.3)[0] or time.monotonic() - started > 8:
                break  # the server has answered (or never will): stop sending
        reply = read_reply(sock)
    assert_error(reply, 408)
    assert time.monotonic() - started < 5
    assert raw_request(small_server.port, b"GET /ping HTTP/1.1\r\n\r\n").status == 200


def test_a_full_worker_pool_answers_503_after_a_bounded_wait(small_model: Path):
    with start_server(small_model, "--timeout", "3", "--workers", "2", "--queue-wait", "0.5") as served:
        stalls = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(2)]
        try:
            for sock in stalls:
                sock.sendall(b"POST /invocations HTTP/1.1\r\n")  # holds a worker until the 3 s timeout
            time.sleep(0.3)
            started = time.monotonic()
            reply = raw_request(served.port, b"GET /ping HTTP/1.1\r\n\r\n")
            waited = time.monotonic() - started
            assert_error(reply, 503, "server busy: no worker free within 0.5 s")
            assert 0.4 < waited < 2.5
            assert [read_reply(sock).status for sock in stalls] == [408, 408]
        finally:
            for sock in stalls:
                sock.close()
        assert raw_request(served.port, b"GET /ping HTTP/1.1\r\n\r\n").status == 200
    assert "Traceback" not in served.output()
