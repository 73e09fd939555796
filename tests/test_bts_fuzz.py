"""Fuzz the BTS loader with a real download: 1,200 of its 2,922 rows corrupted in 34 kinds (deterministic
seed). Every record is accounted for exactly, every loaded and quarantined row carries the physical line
it starts on, nothing raises, and each reason names the field and shows the value."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flightdelay.raw.load import load_flights
from tests.conftest import REAL_SAMPLES, run_cli

SOURCE = REAL_SAMPLES / "bts_ontime_2021_02_oma_subset.csv"
SEED = 20261127
CORRUPTED_ROWS = 1_200


@dataclass
class Expected:
    line: int
    outcome: str  # loaded | rejected
    field: str | None = None  # the column the reason must name
    shows: str | None = None  # text the reason must show (the value, or its escaped form)


def _set(fields: list[bytes], header: list[str], name: str, value: bytes) -> list[bytes]:
    fields = list(fields)
    fields[header.index(name)] = value
    return fields


# kind -> (mutate the row's fields or its line, expected outcome, field named, text shown)
def _kinds(header: list[str]) -> dict[str, tuple]:
    def field(name: str, value: bytes, shows: str | None = None):
        return (lambda f: _set(f, header, name, value)), "rejected", name, shows or value.decode("utf-8", "replace")

    def loaded(mutate):
        return mutate, "loaded", None, None

    return {
        "bad date": field("FL_DATE", b"13/45/2021 12:00:00 AM"),
        "date out of range": field("FL_DATE", b"1/1/1900 12:00:00 AM"),
        "missing date": field("FL_DATE", b"", "required value is missing"),
        "bad carrier": field("OP_UNIQUE_CARRIER", b"a!"),
        "control character in carrier": field("OP_UNIQUE_CARRIER", b"A\x01"),
        "spaced origin": field("ORIGIN", b"O M"),
        "NUL in destination": field("DEST", b"P\x00X", shows="P\\x00X"),  # spelled out (only DuckDB stores NUL)
        "scheduled time 2561": field("CRS_DEP_TIME", b"2561"),
        "clock time with colon": field("DEP_TIME", b"12:30"),
        "NaN delay": field("DEP_DELAY_NEW", b"NaN", "'NaN' is not a finite number"),
        "-inf delay": field("DEP_DELAY_NEW", b"-inf", "'-inf' is not a finite number"),
        "1e309 delay": field("DEP_DELAY_NEW", b"1e309", "'1e309' is not a finite number"),
        "absurd delay": field("DEP_DELAY_NEW", b"99999999"),
        "negative distance": field("DISTANCE", b"-5.00"),
        "flight number overflow": field("OP_CARRIER_FL_NUM", b"99999999999"),
        "fractional flight number": field("OP_CARRIER_FL_NUM", b"12.5"),
        "flag 2": field("CANCELLED", b"2.00"),
        "tail with spaces": field("TAIL_NUM", b"N1 23"),
        "negative air time": field("AIR_TIME", b"-3.00"),
        "invalid UTF-8 in a used field": field("ORIGIN", b"\xff\xfe", "invalid UTF-8 in '\\xff\\xfe'"),
        "10 kB field": field("TAIL_NUM", b"N" + b"9" * 10_000, "value of 10,001 characters"),
        "extra field": ((lambda f: [*f, b"extra"]), "rejected", "WEATHER_DELAY", "an extra value 'extra'"),
        "missing fields": ((lambda f: f[:-2]), "rejected", "DISTANCE", "found 15"),
        "unterminated quote": field("CANCELLATION_CODE", b'"B', "unterminated quote"),
        "malformed quote": field("CANCELLATION_CODE", b'"B"x', "malformed quoting"),
        "CRLF line": loaded("crlf"),
        "blank line before": loaded("blank"),
        "spaces-only line before": loaded("spaces"),
        "quoted line break in an unused field": loaded(lambda f: _set(f, header, "CANCELLATION_CODE", b'"B\nC"')),
        "invalid UTF-8 in an unused field": loaded(lambda f: _set(f, header, "WEATHER_DELAY", b"\xff\xfe")),
        "padded values": loaded(lambda f: _set(f, header, "ORIGIN", b"  " + f[header.index("ORIGIN")] + b" ")),
        "lone CR line end": loaded("cr"),
        "every field quoted": loaded(lambda f: [b'"' + v + b'"' for v in f]),
        "overlong line": field("TAIL_NUM", b"N" + b"7" * 1_100_000, "line is longer than 1,048,576 bytes"),
    }


def corrupt(path: Path) -> tuple[list[Expected], int, dict[str, int]]:
    """Write a corrupted copy of the real file; return what each record must become, the blank lines and
    how many rows of each kind were written."""
    header_line, *rows = SOURCE.read_bytes().splitlines()
    header = header_line.decode().split(",")
    kinds = _kinds(header)
    rng = random.Random(SEED)
    chosen = rng.sample(range(len(rows)), CORRUPTED_ROWS)
    names = [name for name in kinds if name != "overlong line"]
    plan = {row: names[i % len(names)] for i, row in enumerate(chosen)}
    for row in chosen[:3]:  # three 1 MB lines are enough and keep the file small
        plan[row] = "overlong line"
    out = [b"\xef\xbb\xbf" + header_line + b"\n"]
    expected: list[Expected] = []
    blank = 0
    line = 2
    counts: dict[str, int] = {}
    for index, row in enumerate(rows):
        kind = plan.get(index)
        fields = row.split(b",")
        ending = b"\n"
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
            mutate, outcome, field, shows = kinds[kind]
            if mutate in ("blank", "spaces"):
                # after a lone CR a bare LF would make a CRLF with it, not a blank line
                out.append(b"   \n" if mutate == "spaces" else b"\r\n" if out[-1].endswith(b"\r") else b"\n")
                blank += 1
                line += 1
            elif mutate == "crlf":
                ending = b"\r\n"
            elif mutate == "cr":
                ending = b"\r"
            else:
                fields = mutate(fields)
            expected.append(Expected(line, outcome, field, shows))
        else:
            expected.append(Expected(line, "loaded"))
        record = b",".join(fields)
        out.append(record + ending)
        line += 1 + record.count(b"\n")
    path.write_bytes(b"".join(out))
    return expected, blank, counts


def test_a_corrupted_real_download_is_accounted_for_line_by_line(tmp_path):
    if not SOURCE.exists():
        pytest.skip(f"{SOURCE} not present")
    path = tmp_path / "bts_ontime_2021_02_fuzzed.csv"
    expected, blank, counts = corrupt(path)
    assert sum(counts.values()) == CORRUPTED_ROWS and len(counts) >= 25

    warehouse = tmp_path / "wh.duckdb"
    [load] = load_flights(warehouse, [path])
    want_loaded = {e.line for e in expected if e.outcome == "loaded"}
    want_rejected = {e.line: e for e in expected if e.outcome == "rejected"}
    assert load.rows_read == len(expected) + blank
    assert (load.rows_loaded, load.rows_rejected, load.blank_lines) == (len(want_loaded), len(want_rejected), blank)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded_lines = [r[0] for r in con.execute("select source_line from raw.flights order by 1").fetchall()]
        rejected = con.execute("select source_line, rejection_reason from raw.flights_rejected order by 1").fetchall()
        origins = con.execute("select count(*) from raw.flights where origin not in ('OMA', 'PHX', 'ORD', 'DEN') "
                              "and length(origin) <> 3").fetchone()[0]
    assert loaded_lines == sorted(want_loaded)
    assert [line for line, _ in rejected] == sorted(want_rejected)
    wrong = []
    for line, reason in rejected:
        want = want_rejected[line]
        if (want.field and not reason.startswith(f"{want.field}: ")) or (want.shows and want.shows not in reason):
            wrong.append((line, want.field, want.shows, reason[:200]))
    assert not wrong, f"{len(wrong)} reasons do not name the field and value, e.g. {wrong[:5]}"
    assert origins == 0


def test_the_cli_loads_the_fuzzed_file_without_a_traceback(tmp_path):
    if not SOURCE.exists():
        pytest.skip(f"{SOURCE} not present")
    path = tmp_path / "bts_ontime_2021_02_fuzzed.csv"
    corrupt(path)
    env = {"FLIGHTDELAY_WAREHOUSE": str(tmp_path / "wh.duckdb"), "FLIGHTDELAY_RAW": str(tmp_path / "raw"),
           "FLIGHTDELAY_LAKE": str(tmp_path / "lake"), "FLIGHTDELAY_ARTIFACTS": str(tmp_path / "artifacts")}
    done = run_cli(env, "load", str(path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "reconciled" in done.stdout
