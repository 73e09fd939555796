"""The request contract, part one: a request body as a frame of the values sent, or a BadRequest saying why not.

Parsed strictly, because a lenient parse answers 200 with a wrong probability: every CSV row has exactly the
header's number of fields (a trailing comma is an error, not a shifted row), every JSON instance has the same
fields, no field is named twice. The values are checked against the model in request_validation.py.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import numpy as np
import pandas as pd

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit
CONTENT_TYPES = ("text/csv", "application/json")
# Reasons are opt-in, per request: `{"instances": [...], "reasons": 3}` in a JSON object, or the Content-Type
# parameter `reasons=3` (any body; how a batch transform, whose files carry no options, asks for them). The parsed
# frame carries the number in its attrs under this name.
REASONS_ATTRIBUTE = "reasons"
MAX_REASONS = 100


class BadRequest(ValueError):
    """A request the client has to fix; `status` is the HTTP status to answer with (4xx)."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


def shown(value: Any, limit: int = 60) -> str:
    """A value for an error message, cut short: the message must stay readable whatever was sent."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: Any) -> str:
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


def content_kind(content_type: str | None) -> str:
    """`text/csv` or `application/json` from a Content-Type header; 415 for anything else, or a charset
    other than UTF-8 (the body is decoded as UTF-8)."""
    kind, *params = (content_type or "").split(";")
    kind = kind.strip().lower()
    if kind not in CONTENT_TYPES:
        found = f"content type {shown(content_type)}" if content_type else "no Content-Type header"
        raise BadRequest(f"{found} is not supported; use text/csv or application/json",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
            raise BadRequest(f"charset {shown(charset)} is not supported; send UTF-8",
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
    frame = _read_csv(text) if kind == "text/csv" else _read_json(text)
    asked = [top for top in (_reasons_parameter(content_type), frame.attrs.get(REASONS_ATTRIBUTE)) if top]
    if len(asked) == 2 and asked[0] != asked[1]:
        raise BadRequest(f"reasons: the Content-Type asks for {asked[0]}, the body for {asked[1]}; ask once")
    frame.attrs[REASONS_ATTRIBUTE] = asked[0] if asked else 0
    return frame


def _reasons_count(number: int | None, found: Any, where: str) -> int:
    """A number of reasons from 1 to MAX_REASONS (`number` is None when `found` was no whole number), or a
    BadRequest naming where it was given."""
    if number is None or not 1 <= number <= MAX_REASONS:
        raise BadRequest(f"{where}: expected a whole number of reasons from 1 to {MAX_REASONS}, found "
                         f"{shown(found)}")
    return number


def _reasons_parameter(content_type: str | None) -> int:
    parameters = (param.partition("=") for param in (content_type or "").split(";")[1:])
    values = [value.strip() for name, _, value in parameters if name.strip().lower() == REASONS_ATTRIBUTE]
    if len(values) > 1:  # which one would count is ambiguous
        raise BadRequest(f"Content-Type parameter reasons is given {len(values)} times ({shown(values, 200)}); "
                         "give it once")
    if not values:
        return 0
    value = values[0]
    quoted = len(value) >= 2 and value[0] == value[-1] == '"'
    digits = value[1:-1] if quoted else value
    number = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 3 else None
    return _reasons_count(number, digits, "Content-Type parameter reasons")


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
            raise BadRequest(f"header: field {shown(name)} appears twice (fields {seen[name]} and {position})")
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
                             f'{shown(sorted(payload), 200)}); send {{"instances": [{{column: value, ...}}, ...]}}')
        instances = payload["instances"]
        others = sorted(set(payload) - {"instances", REASONS_ATTRIBUTE})
        if others:  # an ignored key hides a typo as an ignored column would
            raise BadRequest(f'JSON object has keys besides "instances" and "reasons": {shown(others, 200)}; '
                             'send {"instances": [...]} (and "reasons": N to have the N largest reasons explained)')
        asked = payload.get(REASONS_ATTRIBUTE)
        whole = asked if isinstance(asked, int) and not isinstance(asked, bool) else None
        top = _reasons_count(whole, asked, 'field "reasons"') if REASONS_ATTRIBUTE in payload else 0
    else:
        instances, top = payload, 0
    if not isinstance(instances, list):
        raise BadRequest(f'JSON must be {{"instances": [{{column: value, ...}}, ...]}} or a list of such objects; '
                         f"found {kind_of(instances)}")
    if not instances:
        raise BadRequest("no instances to score: the list is empty")
    fields: list[str] = []
    for number, row in enumerate(instances, 1):
        if not isinstance(row, dict):
            raise BadRequest(f"row {number}: expected an object {{column: value, ...}}, found {kind_of(row)}")
        for key, value in row.items():
            if isinstance(value, dict | list):
                raise BadRequest(f"row {number}, field {key}: expected a string, a number or null, found "
                                 f"{kind_of(value)}")
        if number == 1:
            fields = list(row)
        elif len(row) != len(fields) or any(field not in row for field in fields):
            missing = [field for field in fields if field not in row]
            extra = [key for key in row if key not in instances[0]]
            raise BadRequest(f"row {number}: fields differ from row 1 (missing {shown(missing, 200)}, extra "
                             f"{shown(extra, 200)}); every instance needs the same fields, null for a missing value")
    frame = pd.DataFrame({field: pd.Series([row[field] for row in instances], dtype=object) for field in fields})
    frame.attrs[REASONS_ATTRIBUTE] = top
    return frame
