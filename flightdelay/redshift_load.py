"""The BTS flight loader's Redshift path: COPY from S3 into an all-text landing table, then the same rules
as the DuckDB loader in SQL: every line ends up in `raw.flights` (typed) or `raw.flights_rejected` (line
number and a reason naming each bad field), and COPY's own load errors (bad quoting, wrong column count)
are read back from `sys_load_error_detail` into the quarantine too, so read = loaded + rejected holds.

COPY loads in parallel and keeps no line numbers, so `deploy` uploads next to each raw file a copy with
its physical line number prepended (`numbered_copy`); the quarantine names the line of the original file.

The statements are rendered here (and parsed with sqlglot's Redshift dialect in the tests); `deploy`
prints them with --dry-run and runs them with redshift_connector otherwise. Nothing here has run on a
real Redshift cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightdelay.load import FIELDS, FieldSpec

REDSHIFT_TYPES = {
    "date": "date",
    "hhmm": "smallint",
    "int": "integer",
    "number": "double precision",
    "carrier": "varchar(3)",
    "airport": "varchar(3)",
    "text": "varchar(16)",
}
NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"


@dataclass(frozen=True)
class CopyJob:
    s3_uri: str  # the numbered copy
    source_file: str
    header: list[str]  # canonical BTS names of the file's columns, in order (without SOURCE_LINE)


def numbered_copy(data: bytes) -> bytes:
    """The file with `SOURCE_LINE,` prepended to the header and each line's physical number to each
    data line (BTS files have no quoted line breaks, so a record is a line)."""
    lines = data.decode("utf-8-sig").splitlines()
    if not lines:
        return b""
    out = ["SOURCE_LINE," + lines[0]]
    out += [f"{number},{line}" for number, line in enumerate(lines[1:], start=2) if line.strip()]
    return ("\n".join(out) + "\n").encode()


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def _value(field: FieldSpec) -> str:
    return f"l.{field.source.lower()}"  # trimmed, empty as null (see the landing subquery)


def _typed(field: FieldSpec) -> tuple[str, str]:
    """(typed expression, condition true when a non-empty value does not parse) in Redshift SQL."""
    v = _value(field)
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
        ok = f"{v} ~ '^[0-9]+(\\.0+)?$'"
        typed = f"case when {ok} then cast(cast({v} as double precision) as integer) end"
        return typed, f"({v} is not null and not {ok})"
    if field.kind == "number":
        ok = f"{v} ~ '{NUMBER}'"
        return f"case when {ok} then cast({v} as double precision) end", f"({v} is not null and not {ok})"
    if field.kind in ("carrier", "airport"):
        pattern = "^[A-Z0-9]{2,3}$" if field.kind == "carrier" else "^[A-Z0-9]{3}$"
        return f"case when {v} ~ '{pattern}' then {v} end", f"({v} is not null and not {v} ~ '{pattern}')"
    return f"left({v}, 16)", "false"


def copy_statements(job: CopyJob, iam_role_arn: str, region: str, max_errors: int = 100000) -> list[str]:
    """Landing table, COPY, quarantine of COPY errors and of unparseable fields, typed insert, audit."""
    landing_columns = ["source_line", *[h.lower() for h in job.header]]
    fields = [f for f in FIELDS if f.source in job.header]
    absent = [f for f in FIELDS if f.source not in job.header]
    name = _q(job.source_file)
    typed = {f.column: _typed(f) for f in fields}
    reasons = []
    for f in fields:
        if f.kind == "text" and not f.required:
            continue
        missing = f"{_value(f)} is null" if f.required else "false"
        reasons.append(f"case when {missing} then '{f.source}: required value is missing; ' "
                       f"when {typed[f.column][1]} then '{f.source}: cannot parse ''' || {_value(f)} || ''' as "
                       f"{f.kind}; ' else '' end")
    reason = " || ".join(reasons) if reasons else "''"
    select_typed = ", ".join(
        [f"{typed[f.column][0]} as {f.column}" for f in fields]
        + [f"cast(null as {REDSHIFT_TYPES[f.kind]}) as {f.column}" for f in absent]
    )
    columns = ", ".join([f.column for f in fields] + [f.column for f in absent])
    return [
        "create temp table flights_landing ("
        + ", ".join(f"{c} varchar(1024)" for c in landing_columns) + ")",
        f"copy flights_landing ({', '.join(landing_columns)}) from {_q(job.s3_uri)} iam_role {_q(iam_role_arn)} "
        f"region {_q(region)} csv ignoreheader 1 acceptinvchars emptyasnull blanksasnull maxerror {max_errors}",
        # lines COPY itself refused, with Redshift's reason (line numbers count the header as line 1)
        f"insert into raw.flights_rejected select {name}, line_number, 'CSV: ' || trim(error_message), "
        f"left(trim(column_value), 65535), getdate() from sys_load_error_detail "
        f"where query_id = pg_last_copy_id() and trim(file_name) = {_q(job.s3_uri)}",
        "create temp table flights_parsed as select " + select_typed + f", {reason} as rejection_reason, "
        "cast(l.source_line as bigint) as source_line from (select "
        + ", ".join(f"nullif(trim({c}), '') as {c}" for c in landing_columns) + " from flights_landing) as l",
        f"delete from raw.flights where source_file = {name}",
        f"insert into raw.flights ({columns}, source_file, source_line, loaded_at) "
        f"select {columns}, {name}, source_line, getdate() from flights_parsed where rejection_reason = ''",
        f"insert into raw.flights_rejected select {name}, source_line, rtrim(rejection_reason, '; '), "
        f"null, getdate() from flights_parsed where rejection_reason <> ''",
        "drop table flights_parsed",
        "drop table flights_landing",
    ]
