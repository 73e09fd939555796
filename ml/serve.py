"""Inference for the delay model under the SageMaker container contract.

Two ways in, one code path (`predict` from ml/train.py, as batch scoring uses):
- the SageMaker XGBoost framework container imports this module's `model_fn`, `input_fn`, `predict_fn`
  and `output_fn` when it serves the model (script mode);
- `python -m ml.serve --model-dir DIR --port 8080` runs the same contract locally over HTTP:
  `GET /ping` (200 once the model is loaded) and `POST /invocations` with
  `text/csv` (a header line naming the feature columns, then one row per flight) or
  `application/json` (`{"instances": [{"carrier_code": "UA", ...}, ...]}` or a bare list of objects).
  The answer is JSON `{"predictions": [{"flight_id": ..., "delay_probability": ...}, ...]}` or, with
  `Accept: text/csv`, one probability per line.

Input is parsed strictly, because a lenient parse answers 200 with a wrong probability: every CSV row has
exactly the header's number of fields (a trailing comma is an error, not a shifted row), every JSON
instance has the same fields, and the columns are the model's features and optionally flight_id, nothing
else (an ignored column would hide a misspelt one). Every numeric feature is a finite decimal within
float32's range (the model computes in float32) and within the feature's plausible range
(ml/feature_ranges.py: a month of 13 or a humidity of 400 % is refused, not scored), or empty/null for
missing; every categorical feature is one of the categories the model was trained with (feature_spec.json;
the model would score an unseen one as missing), or empty/null.
Every bad request gets a 4xx with a JSON body `{"error": "..."}` naming the row (1-based, header not
counted) and field: 400 malformed, 404 unknown path, 405 wrong method, 408 request not received within
the timeout, 411 no Content-Length (chunked bodies are refused), 413 body over 6 MiB, 415 content type,
503 all workers busy past the queue wait.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # package import locally; a file next to train.py inside the SageMaker container
    from ml.feature_ranges import ranges_for
    from ml.train import ID_COLUMN, FeatureSpec, load_model, predict
except ImportError:  # pragma: no cover
    from feature_ranges import ranges_for
    from train import ID_COLUMN, FeatureSpec, load_model, predict

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit
MAX_REQUEST_LINE_BYTES = 8192  # the only routes are /ping and /invocations: a long line is garbage
DEFAULT_TIMEOUT_SECONDS = 10.0  # to receive a whole request (line, headers, body), and for each reply write
DEFAULT_WORKERS = 8
DEFAULT_QUEUE_WAIT_SECONDS = 5.0  # a connection waits this long for a free worker, then gets a 503
MAX_PENDING_CONNECTIONS = 64
LINGER_SECONDS = 1.0  # after a reply, how long to read and discard what the client still sends
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A plain decimal: no inf/nan, no hex, no digit separators, ASCII digits only (float() accepts all of those).
_NUMBER = r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*"
NUMBER = re.compile(_NUMBER)
NOT_IN_A_NUMBER = re.compile(r"[^0-9+\-.eE \t]")
CONTENT_TYPES = ("text/csv", "application/json")
ROUTES = {"/ping": "GET", "/invocations": "POST"}


class BadRequest(ValueError):
    """A request the client has to fix; `status` is the HTTP status to answer with (4xx)."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


def _show(value: Any, limit: int = 60) -> str:
    """A value for an error message, cut short: the message must stay readable whatever was sent."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "a boolean"
    if isinstance(value, int | float | Decimal | np.integer | np.floating):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# ---------------------------------------------------------------- SageMaker inference handlers


def model_fn(model_dir: str) -> tuple[Any, FeatureSpec]:
    """The booster and its feature spec; ValueError if a numeric feature has no plausible range to check
    requests against (ml/feature_ranges.py), so such a model is never served unchecked."""
    booster, spec = load_model(model_dir)
    ranges_for(spec.numeric)
    return booster, spec


def content_kind(content_type: str | None) -> str:
    """`text/csv` or `application/json` from a Content-Type header; 415 for anything else, or a charset
    other than UTF-8 (the body is decoded as UTF-8)."""
    kind, *params = (content_type or "").split(";")
    kind = kind.strip().lower()
    if kind not in CONTENT_TYPES:
        found = f"content type {_show(content_type)}" if content_type else "no Content-Type header"
        raise BadRequest(f"{found} is not supported; use text/csv or application/json",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
            raise BadRequest(f"charset {_show(charset)} is not supported; send UTF-8",
                             HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    return kind


def input_fn(body: bytes | str, content_type: str) -> pd.DataFrame:
    """The request body as a frame of the values sent (strings from CSV, JSON scalars), one row per flight.
    Checks the structure only; `validate` checks the values against the model's features."""
    kind = content_kind(content_type)
    if isinstance(body, bytes | bytearray):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(f"body is not valid UTF-8: byte 0x{body[error.start]:02x} at offset {error.start} "
                             f"({error.reason})") from error
    else:
        text = body
    text = text.removeprefix("\ufeff")  # a byte order mark, as spreadsheet exports write
    if not text.strip():
        if kind == "text/csv":
            raise BadRequest("empty CSV body: send a header line with the feature columns, then one row per flight")
        raise BadRequest('empty JSON body: send {"instances": [{column: value, ...}, ...]}')
    return _read_csv(text) if kind == "text/csv" else _read_json(text)


def _read_csv(text: str) -> pd.DataFrame:
    # strict: an unterminated quote or a quote inside a quoted field is an error, not a silently joined row
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as error:
        raise BadRequest(f"header (line {reader.line_num}): malformed CSV: {error}") from error
    for position, name in enumerate(header, 1):
        if not name.strip():
            raise BadRequest(f"header field {position} of {len(header)} has no name (a trailing comma?)")
    seen: dict[str, int] = {}
    for position, name in enumerate(header, 1):
        if name in seen:
            raise BadRequest(f"header: field {_show(name)} appears twice (fields {seen[name]} and {position})")
        seen[name] = position
    rows: list[list[str | None]] = []
    blank: tuple[int, int] | None = None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise BadRequest(f"row {len(rows) + 1} (line {reader.line_num}): malformed CSV: {error} "
                             "(an unterminated quote?)") from error
        if not row:
            blank = blank or (len(rows) + 1, reader.line_num)  # fine at the end, an error between rows
            continue
        if blank:
            raise BadRequest(f"row {blank[0]} (line {blank[1]}) is blank; expected {len(header)} fields like the "
                             "header")
        if len(row) != len(header):
            number = len(rows) + 1
            if len(row) > len(header):
                extra = "a trailing comma or an unquoted comma inside a value?"
            else:
                extra = f"nothing for {', '.join(header[len(row):][:5])}{'...' if len(header) - len(row) > 5 else ''}"
            raise BadRequest(f"row {number} (line {reader.line_num}): expected {len(header)} fields like the "
                             f"header, found {len(row)} ({extra})")
        rows.append([value if value != "" else None for value in row])
    if not rows:
        raise BadRequest("no rows to score: the CSV has a header line but no rows")
    return pd.DataFrame(rows, columns=header, dtype=object)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send null for a missing value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given twice in one object: which value counts is ambiguous (json.loads keeps the last)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the field {key!r} is given twice in one object")
        seen[key] = value
    return seen


def _read_json(text: str) -> pd.DataFrame:
    try:
        # Decimal keeps 1e400 as sent, so `validate` can say which row and field is out of range
        payload = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant,
                             object_pairs_hook=_unique_keys)
    except RecursionError as error:
        raise BadRequest("body is not valid JSON: nested too deeply") from error
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, integers of more than 4300 digits
        raise BadRequest(f"body is not valid JSON: {error}") from error
    if isinstance(payload, dict):
        if "instances" not in payload:
            raise BadRequest('JSON object has no "instances" key (found '
                             f'{_show(sorted(payload), 200)}); send {{"instances": [{{column: value, ...}}, ...]}}')
        instances = payload["instances"]
    else:
        instances = payload
    if not isinstance(instances, list):
        raise BadRequest(f'JSON must be {{"instances": [{{column: value, ...}}, ...]}} or a list of such objects; '
                         f"found {_kind(instances)}")
    if not instances:
        raise BadRequest("no instances to score: the list is empty")
    fields: list[str] = []
    for number, row in enumerate(instances, 1):
        if not isinstance(row, dict):
            raise BadRequest(f"row {number}: expected an object {{column: value, ...}}, found {_kind(row)}")
        for key, value in row.items():
            if isinstance(value, dict | list):
                raise BadRequest(f"row {number}, field {key}: expected a string, a number or null, found "
                                 f"{_kind(value)}")
        if number == 1:
            fields = list(row)
        elif len(row) != len(fields) or any(field not in row for field in fields):
            missing = [field for field in fields if field not in row]
            extra = [key for key in row if key not in instances[0]]
            raise BadRequest(f"row {number}: fields differ from row 1 (missing {_show(missing, 200)}, extra "
                             f"{_show(extra, 200)}); every instance needs the same fields, null for a missing value")
    return pd.DataFrame({field: pd.Series([row[field] for row in instances], dtype=object) for field in fields})


def _is_missing(value: Any) -> bool:
    # float NaN only arrives in a frame handed straight to predict_fn (pandas' missing marker): input_fn
    # never turns text into NaN, it rejects 'nan' and NaN
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def _number(value: Any) -> float:
    """One numeric feature value as a float (NaN for missing); ValueError saying why it is not acceptable."""
    if _is_missing(value):
        return math.nan
    if isinstance(value, str):
        if not NUMBER.fullmatch(value):
            raise ValueError(f"{_show(value)} is not a number")
        number = float(value)
    elif isinstance(value, bool | np.bool_):
        raise ValueError(f"expected a number or null, found a boolean ({value})")
    elif isinstance(value, int | float | Decimal | np.integer | np.floating):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64
            number = math.inf
    else:
        raise ValueError(f"expected a number or null, found {_kind(value)}")
    if not abs(number) <= FLOAT32_MAX:  # inf too: the model computes in float32, where these overflow
        raise ValueError(f"{_show(value)} is outside the float32 range (magnitude at most {FLOAT32_MAX:.6g})")
    return number


def _category(value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string or null, found {_kind(value)} ({_show(value)})")


def _examples(values: list[str], limit: int = 12) -> str:
    if not values:
        return "none (every value of it was missing in training)"
    shown = ", ".join(_show(value, 20) for value in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _known_category(column: str, categories: list[str]) -> Callable[[Any], str | None]:
    """`_category`, then refuses a value the model never saw in training: the model would score it as missing
    (FeatureSpec.matrix), an answer to a question the client did not ask."""
    known = set(categories)
    by_spelling = {category.strip().casefold(): category for category in categories}

    def check(value: Any) -> str | None:
        category = _category(value)
        if category is None or category in known:
            return category
        hint = by_spelling.get(category.strip().casefold())
        raise ValueError(f"{_show(category)} is not among the {column} values the model was trained with"
                         + (f" (did you mean {hint!r}?)" if hint else "")
                         + f"; it knows {_examples(sorted(known))}; send null if unknown")

    return check


def _bound(value: float) -> str:
    return format(value, ".10g")


def _outside(numbers: np.ndarray | list, values: list, bounds: tuple[float, float]) -> tuple[int, str] | None:
    """The first value outside `bounds` (missing ones are not), with why."""
    low, high = bounds
    array = np.asarray(numbers, dtype=np.float64)
    outside = np.flatnonzero((array < low) | (array > high))  # NaN (missing) compares false both ways
    if not outside.size:
        return None
    row = int(outside[0])
    return row, (f"{_show(values[row])} is not inside the plausible range [{_bound(low)}, {_bound(high)}] "
                 "(ml/feature_ranges.py)")


def _flight_id(value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    raise ValueError(f"expected a string, an integer or null, found {_kind(value)} ({_show(value)})")


def _checked(values: list, check: Callable[[Any], Any]) -> tuple[list, tuple[int, str] | None]:
    """`check` applied to each value; stops at the first it rejects: (its row index, why)."""
    out = []
    for row, value in enumerate(values):
        try:
            out.append(check(value))
        except ValueError as error:
            return out, (row, str(error))
    return out, None


def _numbers(values: list) -> tuple[np.ndarray | list, tuple[int, str] | None]:
    """`_number` over a column. CSV columns (strings and None) take a vectorised path, about twice as fast on a
    6 MiB body: a string made only of characters `NUMBER` allows matches `NUMBER` exactly when float() accepts
    it (what float() accepts beyond, inf, nan, 1_0, other digits and spaces, needs other characters), so one
    scan for foreign characters and numpy's conversion stand in for a regex per value."""
    array = np.asarray(values, dtype=object)
    missing = pd.isna(array)
    present = array[~missing]
    if present.size and pd.api.types.infer_dtype(present, skipna=False) == "string":
        if not NOT_IN_A_NUMBER.search("".join(present.tolist())):
            numbers = np.full(array.size, math.nan)
            try:
                numbers[~missing] = present.astype(np.float64)
            except ValueError:  # '1e', '+-1', '.': the slow path says which row
                return _checked(values, _number)
            overflow = np.flatnonzero(np.abs(numbers) > FLOAT32_MAX)  # inf included; NaN (missing) is not
            if overflow.size:
                row = int(overflow[0])
                return numbers, (row, _checked([values[row]], _number)[1][1])
            return numbers, None
    return _checked(values, _number)


def validate(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model's features (and flight_id) from `frame`, typed: numeric features as float64, categorical
    ones as str/None. BadRequest for a column that is not one of these, or naming the earliest bad row and its
    field if any value is not acceptable: not a number, outside its feature's plausible range, a category the
    model was not trained with."""
    if frame.columns.duplicated().any():
        raise BadRequest(f"fields {_show(sorted(set(frame.columns[frame.columns.duplicated()])), 200)} appear "
                         "more than once")
    missing = [column for column in spec.columns if column not in frame.columns]
    unknown = [column for column in frame.columns if column not in spec.columns and column != ID_COLUMN]
    if unknown:  # ignored, a misspelt or misplaced column would leave the client believing it was used
        also = f" (and missing feature columns {missing}: a misspelt name?)" if missing else ""
        raise BadRequest(f"unknown columns {_show(unknown, 200)}{also}; send only {ID_COLUMN} (optional) and the "
                         f"model's {len(spec.columns)} features: {', '.join(spec.columns)}")
    if missing:
        raise BadRequest(f"missing feature columns {missing}; got {_show(list(frame.columns), 2000)}")
    if len(frame) == 0:
        raise BadRequest("no rows to score")
    ranges = ranges_for(spec.numeric)
    columns = [*spec.categorical, *spec.numeric, *([ID_COLUMN] if ID_COLUMN in frame.columns else [])]
    clean: dict[str, Any] = {}
    first_bad: tuple[int, int, str] | None = None  # (row, column order, message): report the earliest row
    for order, column in enumerate(columns):
        values = frame[column].tolist()
        if column in spec.numeric:
            clean[column], bad = _numbers(values)
            # before the first unparsable row (if any): that row itself is reported for what it is
            implausible = _outside(clean[column][: bad[0] if bad else len(values)], values, ranges[column])
            bad = implausible if implausible and (bad is None or implausible[0] < bad[0]) else bad
        elif column in spec.categorical:
            clean[column], bad = _checked(values, _known_category(column, spec.categorical[column]))
        else:
            clean[column], bad = _checked(values, _flight_id)
        if bad is not None and (first_bad is None or (bad[0], order) < first_bad[:2]):
            first_bad = (bad[0], order, f"row {bad[0] + 1}, field {column}: {bad[1]}")
    if first_bad is not None:
        raise BadRequest(first_bad[2])
    return pd.DataFrame({column: np.asarray(clean[column], dtype=np.float64) if column in spec.numeric
                         else pd.Series(clean[column], dtype=object) for column in columns})


def predict_fn(frame: pd.DataFrame, model: tuple[Any, FeatureSpec]) -> pd.DataFrame:
    booster, spec = model
    clean = validate(frame, spec)
    ids = clean[ID_COLUMN] if ID_COLUMN in clean.columns else pd.Series(range(len(clean))).astype(str)
    return pd.DataFrame({"flight_id": ids.astype(object),
                         "delay_probability": predict(booster, spec, clean).astype("float64")})


def output_fn(predictions: pd.DataFrame, accept: str) -> tuple[str, str]:
    if (accept or "").split(";")[0].strip().lower() == "text/csv":
        return "\n".join(repr(float(p)) for p in predictions["delay_probability"]) + "\n", "text/csv"
    rows = [{"flight_id": f, "delay_probability": float(p)}
            for f, p in zip(predictions["flight_id"], predictions["delay_probability"], strict=True)]
    return json.dumps({"predictions": rows}), "application/json"


# ---------------------------------------------------------------- local HTTP server


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
    half-read to resynchronise on. `model` and `request_timeout` are set by `make_handler`."""

    server_version = "flightdelay-serve"
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # so that even a reply to a garbled request line has a status line
    model: tuple[Any, FeatureSpec] | None = None
    request_timeout: float = DEFAULT_TIMEOUT_SECONDS

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
            self._error(HTTPStatus.BAD_REQUEST, f"request line {_show(self.raw_requestline.decode('latin-1'))} is "
                        "not 'METHOD /path HTTP/1.1'")
            return False
        return super().parse_request()

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        allowed = ROUTES.get(path)
        if allowed is None:
            self._error(HTTPStatus.NOT_FOUND, f"no route {_show(path)}; use GET /ping or POST /invocations")
        elif self.command != allowed:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{_show(self.command)} is not allowed on {path}; use "
                        f"{allowed}", headers=(("Allow", allowed),))
        elif path == "/ping":
            self._input_read = not self.headers.get("Content-Length") and not self.headers.get("Transfer-Encoding")
            self._send(HTTPStatus.OK, "{}")
        else:
            try:
                body, content_type = self._invoke()
            except BadRequest as error:
                self._error(error.status, str(error))
            else:
                self._send(HTTPStatus.OK, body, content_type)

    def _content_length(self) -> int:
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get_all("Transfer-Encoding"):
            if lengths:  # which one frames the body is how requests get smuggled: refuse both
                raise BadRequest("both Transfer-Encoding and Content-Length were sent; send only Content-Length")
            raise BadRequest(f"Transfer-Encoding {_show(self.headers['Transfer-Encoding'])} is not supported; "
                             "send the body with a Content-Length", HTTPStatus.LENGTH_REQUIRED)
        if not lengths:
            raise BadRequest("no Content-Length header; send the body's size in bytes", HTTPStatus.LENGTH_REQUIRED)
        if len(lengths) > 1:
            raise BadRequest(f"Content-Length sent {len(lengths)} times ({_show(lengths)}); send it once")
        text = lengths[0].strip()
        if not re.fullmatch(r"[0-9]+", text):  # int() would take '-1', '+5', ' 5', '1_0'
            raise BadRequest(f"Content-Length {_show(text)} is not a byte count (expected digits only)")
        if len(text.lstrip("0")) > len(str(MAX_BODY_BYTES)) or int(text) > MAX_BODY_BYTES:
            raise BadRequest(f"body of {_show(text.lstrip('0'))} bytes exceeds the limit of {MAX_BODY_BYTES}",
                             HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return int(text)

    def _invoke(self) -> tuple[str, str]:
        length = self._content_length()
        content_kind(self.headers.get("Content-Type"))  # before reading a body that cannot be used
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise BadRequest(f"body ended after {len(body)} of the {length} bytes its Content-Length announced")
        self._input_read = True
        frame = input_fn(body, self.headers.get("Content-Type", ""))
        return output_fn(predict_fn(frame, self.model), self.headers.get("Accept", ""))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet; errors go in the body
        pass


def make_handler(model: tuple[Any, FeatureSpec],
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> type[InvocationHandler]:
    return type("Handler", (InvocationHandler,), {"model": model, "request_timeout": timeout})


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


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8080, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
          workers: int = DEFAULT_WORKERS, queue_wait: float = DEFAULT_QUEUE_WAIT_SECONDS
          ) -> BoundedThreadingHTTPServer:
    return BoundedThreadingHTTPServer((host, port), make_handler(model_fn(model_dir), timeout),
                                      workers=workers, queue_wait=queue_wait)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the delay model under the SageMaker container contract.")
    parser.add_argument("--model-dir", default=str(Path("artifacts/ml/model")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help="seconds to receive a whole request before answering 408 (default %(default)s)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="requests handled at once (default %(default)s)")
    parser.add_argument("--queue-wait", type=float, default=DEFAULT_QUEUE_WAIT_SECONDS,
                        help="seconds a connection waits for a free worker before a 503 (default %(default)s)")
    args = parser.parse_args(argv)
    server = serve(args.model_dir, args.host, args.port, timeout=args.timeout, workers=args.workers,
                   queue_wait=args.queue_wait)
    print(f"serving {args.model_dir} on http://{args.host}:{server.server_port} (/ping, /invocations)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
