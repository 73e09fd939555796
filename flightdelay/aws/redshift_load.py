"""BTS files into Redshift with the one rule set: each file is typed locally by flightdelay/raw/bts_typing.py
(`type_file`, the same rules and quarantine reasons as every other warehouse), its accepted and rejected rows are
written as Parquet in the table's exact column order and types, uploaded to S3, and loaded by one transaction per
file:

  delete the file's rows -> COPY raw.flights FROM the accepted Parquet -> COPY raw.flights_rejected FROM the
  rejected Parquet -> check that Redshift holds exactly the counts known before upload -> raw.load_audit and
  raw.data_quality_summary -> commit

A rerun of a file replaces its rows; a failure anywhere rolls back to the previous load. `delete`, not
`truncate` (Redshift's truncate commits the open transaction). COPY reads a manifest naming exactly the one
object (a bare key would load every key it prefixes); a columnar COPY needs each entry's content_length, and
takes no REGION. read = loaded + rejected + blank is asserted by type_file before anything is uploaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flightdelay.aws.warehouse_sql import REDSHIFT_NOW, q, refuse_when
from flightdelay.raw.bts_fields import FIELDS

REDSHIFT_TYPES = {"date": "date", "hhmm": "smallint", "int": "integer", "number": "double precision",
                  "flag": "double precision", "carrier": "varchar(3)", "airport": "varchar(3)", "text": "varchar(16)"}
ARROW_TYPES = {"date": pa.date32(), "hhmm": pa.int16(), "int": pa.int32(), "number": pa.float64(),
               "flag": pa.float64(), "carrier": pa.string(), "airport": pa.string(), "text": pa.string()}
FLIGHT_COLUMNS = [*(f.column for f in FIELDS), "source_file", "source_line", "loaded_at"]
REJECTED_COLUMNS = ["source_file", "source_line", "rejection_reason", "raw_record", "loaded_at"]
SOURCE_KIND = "flights"


def ddl() -> list[str]:
    columns = ", ".join(f"{f.column} {REDSHIFT_TYPES[f.kind]}" for f in FIELDS)
    return [
        "create schema if not exists raw",
        f"create table if not exists raw.flights ({columns}, source_file varchar(256) not null, "
        "source_line bigint not null, loaded_at timestamp not null) diststyle even sortkey (fl_date)",
        "create table if not exists raw.flights_rejected (source_file varchar(256) not null, "
        "source_line bigint not null, rejection_reason varchar(65535) not null, raw_record varchar(65535), "
        "loaded_at timestamp not null)",
        "create table if not exists raw.load_audit (source_file varchar(256) not null, "
        "file_sha256 varchar(64) not null, status varchar(64) not null, rows_read bigint not null, "
        "rows_loaded bigint not null, rows_rejected bigint not null, loaded_at timestamp not null, "
        "blank_lines bigint, lines_read bigint)",
        "create table if not exists raw.data_quality_summary (source_kind varchar(32) not null, "
        "source_file varchar(256) not null, rows_read bigint not null, rows_loaded bigint not null, "
        "rows_quarantined bigint not null, checked_at timestamp not null, blank_lines bigint)",
    ]


@dataclass(frozen=True)
class StagedFile:
    """One typed file, ready to upload: its Parquet files and the counts Redshift must end up holding."""
    source_file: str
    file_sha256: str
    accepted: Path
    rejected: Path | None  # None when no line was quarantined
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    blank_lines: int
    lines_read: int


def _with_file_columns(table: pa.Table, source_file: str, loaded_at: datetime) -> pa.Table:
    n = table.num_rows
    table = table.append_column("source_file", pa.array([source_file] * n, pa.string()))
    return table.append_column("loaded_at", pa.array([loaded_at] * n, pa.timestamp("us")))


def stage_file(path: Path, out_dir: Path, airport_codes: dict[str, str] | None = None) -> StagedFile:
    """Type `path` with the one rule set and write its rows as Parquet in raw.flights' / raw.flights_rejected's
    column order and Redshift-compatible types (a columnar COPY maps by position)."""
    from flightdelay.raw.bts_typing import type_file

    typed = type_file(path, airport_codes=airport_codes)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    schema = pa.schema([*((f.column, ARROW_TYPES[f.kind]) for f in FIELDS), ("source_file", pa.string()),
                        ("source_line", pa.int64()), ("loaded_at", pa.timestamp("us"))])
    accepted = _with_file_columns(typed.accepted, typed.source_file, loaded_at).select(FLIGHT_COLUMNS).cast(schema)
    accepted_path = out_dir / f"{typed.source_file}.accepted.parquet"
    pq.write_table(accepted, accepted_path)
    rejected_path = None
    if typed.rejected.num_rows:
        rejected_schema = pa.schema([("source_file", pa.string()), ("source_line", pa.int64()),
                                     ("rejection_reason", pa.string()), ("raw_record", pa.string()),
                                     ("loaded_at", pa.timestamp("us"))])
        rejected = _with_file_columns(typed.rejected, typed.source_file, loaded_at).select(REJECTED_COLUMNS)
        rejected_path = out_dir / f"{typed.source_file}.rejected.parquet"
        pq.write_table(rejected.cast(rejected_schema), rejected_path)
    counts = typed.counts
    return StagedFile(typed.source_file, typed.file_sha256, accepted_path, rejected_path, counts.rows_read,
                      counts.rows_loaded, counts.rows_quarantined, counts.blank_lines, typed.lines_read)


def copy_manifest(s3_uri: str, content_length: int) -> bytes:
    """A COPY manifest naming exactly one object; `mandatory`: a missing object is an error, not an empty load;
    `content_length`: required for a COPY from Parquet."""
    return json.dumps({"entries": [{"url": s3_uri, "mandatory": True, "meta": {"content_length": content_length}}]},
                      indent=2).encode()


def file_transaction(staged: StagedFile, accepted_manifest: str, rejected_manifest: str | None, role: str,
                     now: str = REDSHIFT_NOW) -> list[str]:
    """One file's load, run as one transaction (execute.run_sql)."""
    name = q(staged.source_file)
    sha = q(staged.file_sha256)
    loaded = f"select 1 from raw.load_audit where file_sha256 = {sha} and status = 'loaded'"
    statements = [
        # the same bytes loaded under another name (and never under this one) would count every flight twice
        refuse_when(f"exists ({loaded} and source_file <> {name}) and not exists ({loaded} and source_file = {name})",
                    f"{staged.source_file} refused: the same bytes were loaded before under another name (see "
                    "raw.load_audit); loading them again would count every flight twice. Remove the copy"),
        f"delete from raw.flights where source_file = {name}",
        f"delete from raw.flights_rejected where source_file = {name}",
        f"copy raw.flights ({', '.join(FLIGHT_COLUMNS)}) from {q(accepted_manifest)} iam_role {q(role)} "
        "format as parquet manifest",
    ]
    if rejected_manifest is not None:
        statements.append(f"copy raw.flights_rejected ({', '.join(REJECTED_COLUMNS)}) from {q(rejected_manifest)} "
                          f"iam_role {q(role)} format as parquet manifest")
    statements += [
        refuse_when(f"(select count(*) from raw.flights where source_file = {name}) <> {int(staged.rows_loaded)} "
                    f"or (select count(*) from raw.flights_rejected where source_file = {name}) "
                    f"<> {int(staged.rows_rejected)}",
                    f"load of {staged.source_file} refused: Redshift does not hold the {staged.rows_loaded} loaded "
                    f"and {staged.rows_rejected} rejected rows typed from the file; the previous load is kept"),
        "insert into raw.load_audit (source_file, file_sha256, status, rows_read, rows_loaded, rows_rejected, "
        f"loaded_at, blank_lines, lines_read) values ({name}, {q(staged.file_sha256)}, 'loaded', "
        f"{int(staged.rows_read)}, {int(staged.rows_loaded)}, {int(staged.rows_rejected)}, {now}, "
        f"{int(staged.blank_lines)}, {int(staged.lines_read)})",
        f"delete from raw.data_quality_summary where source_kind = {q(SOURCE_KIND)} and source_file = {name}",
        "insert into raw.data_quality_summary (source_kind, source_file, rows_read, rows_loaded, rows_quarantined, "
        f"checked_at, blank_lines) values ({q(SOURCE_KIND)}, {name}, {int(staged.rows_read)}, "
        f"{int(staged.rows_loaded)}, {int(staged.rows_rejected)}, {now}, {int(staged.blank_lines)})",
    ]
    return statements
