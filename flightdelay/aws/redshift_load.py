"""The BTS flight loader's Redshift path: COPY from S3 into an all-text landing table, then the same rules
as the DuckDB loader in SQL: every line ends up in `raw.flights` (typed) or `raw.flights_rejected` (line
number and a reason naming each bad field), and COPY's own load errors (bad quoting, wrong column count)
are read back from `sys_load_error_detail` into the quarantine too, so read = loaded + rejected holds.

COPY loads in parallel and keeps no line numbers, so `deploy` uploads next to each raw file a copy with
its physical line number prepended (`numbered_copy`); the quarantine names the line of the original file.

Each file is one transaction (`file_transaction`: `begin` ... `commit`): it first deletes the file's rows
from raw.flights and raw.flights_rejected, then COPYs, types, quarantines and writes the load_audit row.
A rerun of a file therefore replaces its rows, and a failure anywhere rolls back to the previous load.
`delete`, not `truncate`: Redshift's truncate commits the open transaction.

File names reach SQL only as string literals (`_q`), and COPY reads a manifest naming the one numbered
copy: a bare `from 's3://bucket/key'` loads every object whose key starts with that key.

The statements are rendered here (and parsed with sqlglot's Redshift dialect in the tests); `deploy`
prints them with --dry-run and runs them with redshift_connector otherwise. Nothing here has run on a
real Redshift cluster.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flightdelay.raw.load import FIELDS, FieldSpec

REDSHIFT_TYPES = {
    "date": "date",
    "hhmm": "smallint",
    "int": "integer",
    "number": "double precision",
    "flag": "double precision",
    "carrier": "varchar(3)",
    "airport": "varchar(3)",
    "text": "varchar(16)",
}
# `[.]`, not `\.`: Redshift reads backslashes in string literals as escapes, so `'\.'` would reach the
# regex as `.` (any character) and "1x5" would pass the check and fail the cast.
NUMBER = "^-?[0-9]+([.][0-9]+)?$"
BEGIN, COMMIT = "begin", "commit"  # the transaction brackets deploy's executor looks for


@dataclass(frozen=True)
class CopyJob:
    s3_uri: str  # the numbered copy
    manifest_uri: str  # the manifest listing exactly `s3_uri` (`copy_manifest`), what COPY reads
    source_file: str
    header: list[str]  # canonical BTS names of the file's columns, in order (without SOURCE_LINE)
    file_sha256: str  # of the original file, for raw.load_audit
    rows_read: int  # data lines of the original file (`data_line_count`): loaded + rejected must add up to it


def numbered_copy(data: bytes) -> bytes:
    """The file with `SOURCE_LINE,` prepended to the header and each line's physical number to each
    data line (BTS files have no quoted line breaks, so a record is a line)."""
    lines = data.decode("utf-8-sig").splitlines()
    if not lines:
        return b""
    out = ["SOURCE_LINE," + lines[0]]
    out += [f"{number},{line}" for number, line in enumerate(lines[1:], start=2) if line.strip()]
    return ("\n".join(out) + "\n").encode()


def data_line_count(data: bytes) -> int:
    """The data lines `numbered_copy` numbers: what one load of the file reads."""
    return max(len(numbered_copy(data).splitlines()) - 1, 0)


def copy_manifest(s3_uri: str) -> bytes:
    """A COPY manifest naming exactly one object. `mandatory`: a missing object is an error, not an empty load."""
    return json.dumps({"entries": [{"url": s3_uri, "mandatory": True}]}, indent=2).encode()


def _q(value: str) -> str:
    """A Redshift string literal. Backslashes are doubled as well as quotes: Redshift treats a backslash in a
    literal as an escape (its docs escape regex metacharacters with `'\\\\'`), so a name ending in `\\` would
    otherwise swallow the closing quote."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _landing_column(position: int, name: str) -> str:
    """The landing table's column for the file's `position`-th field: header names come from the file, so only
    letters, digits and `_` of them are kept, after a position that keeps empty and repeated names apart (BTS
    downloads end each line with a comma, which makes an unnamed last column)."""
    return f"c{position}_" + re.sub(r"[^a-z0-9_]", "", name.lower())[:48]


def ddl() -> list[str]:
    columns = ", ".join(f"{f.column} {REDSHIFT_TYPES[f.kind]}" for f in FIELDS)
    return [
        "create schema if not exists raw",
        f"create table if not exists raw.flights ({columns}, source_file varchar(256) not null, "
        "source_line bigint not null, loaded_at timestamp not null) diststyle even sortkey (fl_date)",
        "create table if not exists raw.flights_rejected (source_file varchar(256) not null, "
        "source_line bigint not null, rejection_reason varchar(4096) not null, raw_record varchar(65535), "
        "loaded_at timestamp not null)",
        "create table if not exists raw.load_audit (source_file varchar(256) not null, "
        "file_sha256 varchar(64) not null, "
        "status varchar(64) not null, rows_read bigint not null, rows_loaded bigint not null, "
        "rows_rejected bigint not null, loaded_at timestamp not null)",
    ]


def _value(field: FieldSpec, header: list[str]) -> str:
    # trimmed, empty as null (see the landing subquery); the first column of that name if a file repeats it
    position = header.index(field.source) + 1
    return f"l.{_landing_column(position, header[position - 1])}"


def _typed(field: FieldSpec, header: list[str]) -> tuple[str, str]:
    """(typed expression, condition true when a non-empty value does not parse) in Redshift SQL."""
    v = _value(field, header)
    if field.kind == "date":
        # M/D/YYYY with or without a time part, or ISO
        us = f"{v} ~ '^[0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{4}}( .*)?$'"
        iso = f"{v} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'"
        typed = (f"case when {us} then to_date(split_part({v}, ' ', 1), 'MM/DD/YYYY') "
                 f"when {iso} then to_date({v}, 'YYYY-MM-DD') end")
        return typed, f"({v} is not null and not ({us} or {iso}))"
    if field.kind == "hhmm":
        ok = f"({v} ~ '^[0-9]{{1,4}}$' and cast({v} as integer) <= 2400 and cast({v} as integer) % 100 < 60)"
        return f"case when {ok} then cast({v} as smallint) end", f"({v} is not null and not {ok})"
    if field.kind == "int":
        ok = f"{v} ~ '^[0-9]+([.]0+)?$'"  # BTS writes some integers as 12.00
        typed = f"case when {ok} then cast(cast({v} as double precision) as integer) end"
        return typed, f"({v} is not null and not {ok})"
    if field.kind in ("number", "flag"):
        # flag (bts_fields.py's 0/1 fields) is checked as a number, as these fields were before it had a kind of its own
        ok = f"{v} ~ '{NUMBER}'"
        return f"case when {ok} then cast({v} as double precision) end", f"({v} is not null and not {ok})"
    if field.kind in ("carrier", "airport"):
        pattern = "^[A-Z0-9]{2,3}$" if field.kind == "carrier" else "^[A-Z0-9]{3}$"
        return f"case when {v} ~ '{pattern}' then {v} end", f"({v} is not null and not {v} ~ '{pattern}')"
    if field.kind == "text":
        return f"left({v}, 16)", "false"
    raise ValueError(f"{field.source}: no Redshift rule for the field kind {field.kind!r}; expected one of "
                     f"{sorted(REDSHIFT_TYPES)}")


def file_transaction(job: CopyJob, iam_role_arn: str, region: str, max_errors: int = 100000) -> list[str]:
    """One file's load as one transaction, `begin` to `commit`: delete the file's earlier rows, COPY into the
    landing table, quarantine COPY's errors and the unparseable lines, insert the typed rows, write the audit.

    The deletes come first, so a rerun replaces the file's rows instead of adding to them. The landing and
    parsed tables are temp tables created inside the transaction (plain `create`, not `if not exists`): they
    cannot hold another run's rows, and a rollback drops them. raw.load_audit is a history of loads and gets
    one more row per run, as with the DuckDB loader.
    """
    landing_columns = ["source_line", *[_landing_column(i, h) for i, h in enumerate(job.header, start=1)]]
    fields = [f for f in FIELDS if f.source in job.header]
    absent = [f for f in FIELDS if f.source not in job.header]
    name = _q(job.source_file)
    typed = {f.column: _typed(f, job.header) for f in fields}
    reasons = []
    for f in fields:
        if f.kind == "text" and not f.required:
            continue
        value = _value(f, job.header)
        missing = f"{value} is null" if f.required else "false"
        reasons.append(f"case when {missing} then '{f.source}: required value is missing; ' "
                       f"when {typed[f.column][1]} then '{f.source}: cannot parse ''' || {value} || ''' as "
                       f"{f.kind}; ' else '' end")
    reason = " || ".join(reasons) if reasons else "''"
    select_typed = ", ".join(
        [f"{typed[f.column][0]} as {f.column}" for f in fields]
        + [f"cast(null as {REDSHIFT_TYPES[f.kind]}) as {f.column}" for f in absent]
    )
    columns = ", ".join([f.column for f in fields] + [f.column for f in absent])
    rejected_columns = "source_file, source_line, rejection_reason, raw_record, loaded_at"
    return [
        BEGIN,
        f"delete from raw.flights where source_file = {name}",
        f"delete from raw.flights_rejected where source_file = {name}",
        "create temp table flights_landing ("
        + ", ".join(f"{c} varchar(1024)" for c in landing_columns) + ")",
        f"copy flights_landing ({', '.join(landing_columns)}) from {_q(job.manifest_uri)} "
        f"iam_role {_q(iam_role_arn)} region {_q(region)} manifest "
        f"csv ignoreheader 1 acceptinvchars emptyasnull blanksasnull maxerror {int(max_errors)}",
        # lines COPY itself refused, with Redshift's reason (line numbers count the header as line 1)
        f"insert into raw.flights_rejected ({rejected_columns}) select {name}, line_number, "
        "'CSV: ' || trim(error_message), left(trim(column_value), 65535), getdate() from sys_load_error_detail "
        f"where query_id = pg_last_copy_id() and trim(file_name) = {_q(job.s3_uri)}",
        "create temp table flights_parsed as select " + select_typed + f", {reason} as rejection_reason, "
        "cast(l.source_line as bigint) as source_line from (select "
        + ", ".join(f"nullif(trim({c}), '') as {c}" for c in landing_columns) + " from flights_landing) as l",
        f"insert into raw.flights ({columns}, source_file, source_line, loaded_at) "
        f"select {columns}, {name}, source_line, getdate() from flights_parsed where rejection_reason = ''",
        f"insert into raw.flights_rejected ({rejected_columns}) select {name}, source_line, "
        "rtrim(rejection_reason, '; '), null, getdate() from flights_parsed where rejection_reason <> ''",
        # the counts are this run's alone: the file's earlier rows were deleted above
        "insert into raw.load_audit (source_file, file_sha256, status, rows_read, rows_loaded, rows_rejected, "
        f"loaded_at) select {name}, {_q(job.file_sha256)}, case when loaded + rejected = {int(job.rows_read)} "
        f"then 'loaded' else 'not reconciled' end, {int(job.rows_read)}, loaded, rejected, getdate() from ("
        f"select (select count(*) from raw.flights where source_file = {name}) as loaded, "
        f"(select count(*) from raw.flights_rejected where source_file = {name}) as rejected) as counts",
        "drop table flights_parsed",
        "drop table flights_landing",
        COMMIT,
    ]
