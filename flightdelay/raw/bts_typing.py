"""One BTS file typed by the one rule set, for every warehouse: `type_file` reads the file record by record
(bts_reader.py), types each field with the rules of bts_fields.py (run by an in-memory DuckDB, whatever the
warehouse is) and returns the accepted rows, the quarantined ones and the counts that must reconcile.

The warehouse loaders (load.py for DuckDB and PostgreSQL, flightdelay/aws for Redshift via Parquet on S3) only
write what this returns, so a value is accepted or refused with the same reason on every home.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from flightdelay.raw import reconciliation
from flightdelay.raw.bts_fields import FIELDS, canonical_header, typing_rule
from flightdelay.raw.bts_reader import (
    LoadError,
    arrow_batches,
    check_layout,
    count_lines,
    layout_of,
    open_records,
    read_header,
    sha256_of,
)

# NUL cannot be stored in a PostgreSQL or Redshift text value (DuckDB stores it), so a quarantined record and its
# reason carry it spelled out, the same on every warehouse; a NUL in an accepted value cannot happen (every text
# field must match a printable pattern).
NUL, NUL_SHOWN = "\x00", "\\x00"

ACCEPTED_COLUMNS = [*(f.column for f in FIELDS), "source_line"]
REJECTED_COLUMNS = ["source_line", "rejection_reason", "raw_record"]


@dataclass(frozen=True)
class TypedFile:
    source_file: str
    file_sha256: str
    accepted: pa.Table  # FIELDS columns, typed, then source_line; in line order
    rejected: pa.Table  # source_line, rejection_reason, raw_record; in line order
    counts: reconciliation.FileCounts
    lines_read: int  # physical lines, the header included


def _printable(rejected: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    for name in ("rejection_reason", "raw_record"):
        index = rejected.schema.get_field_index(name)
        rejected = rejected.set_column(index, name, pc.replace_substring(rejected[name], NUL, NUL_SHOWN))
    return rejected


def type_file(path: Path, source_name: str | None = None, airport_codes: dict[str, str] | None = None,
              file_sha256: str | None = None) -> TypedFile:
    """Read and type one file; raises LoadError when the file cannot be read at all (no header, unknown layout)
    and when its counts do not reconcile."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    check_layout(path, read_header(path), airport_ids_mapped=airport_codes is not None)
    name = source_name or path.name
    with duckdb.connect(":memory:") as con:
        con.execute("set TimeZone = 'UTC'")
        with path.open("rb") as handle:
            records = open_records(path, handle)
            layout = layout_of(path, [canonical_header(h) for h in records.header], airport_codes is not None)
            con.execute("create table landed (source_line bigint, raw_record varchar"
                        + "".join(f', "{c}" varchar' for c in layout.columns) + ")")
            con.execute("create table read_rejects (source_line bigint, rejection_reason varchar, raw_record varchar)")
            for landed, rejects in arrow_batches(records, layout, airport_codes):
                if landed.num_rows:
                    con.register("landed_batch", landed)
                    con.execute("insert into landed select * from landed_batch")
                    con.unregister("landed_batch")
                if rejects.num_rows:
                    con.register("reject_batch", rejects)
                    con.execute("insert into read_rejects select * from reject_batch")
                    con.unregister("reject_batch")
        rules = [typing_rule(f, layout.label(f)) for f in FIELDS]
        typed = ",\n".join(f"{expr} as {f.column}" for f, (expr, _) in zip(FIELDS, rules, strict=True))
        reasons = ", ".join(reason for _, reason in rules)
        con.execute(f"""create table parsed as
            select {typed}, concat_ws('; ', {reasons}) as rejection_reason, source_line, raw_record
            from landed""")
        accepted = con.execute(
            f"select {', '.join(ACCEPTED_COLUMNS)} from parsed where rejection_reason = '' order by source_line"
        ).fetch_arrow_table()
        rejected = con.execute(
            """select source_line, rejection_reason, raw_record from (
                   select source_line, rejection_reason, raw_record from parsed where rejection_reason <> ''
                   union all
                   select source_line, rejection_reason, raw_record from read_rejects)
               order by source_line""").fetch_arrow_table()
    rejected = _printable(rejected)
    read = records.counts
    counts = reconciliation.FileCounts(name, read.rows_read, accepted.num_rows, rejected.num_rows, read.blank_lines)
    if not counts.reconciles:
        raise LoadError(f"{path}: reconciliation failed: read {counts.rows_read} != loaded {counts.rows_loaded} + "
                        f"rejected {counts.rows_quarantined} + blank {counts.blank_lines}")
    return TypedFile(name, file_sha256 or sha256_of(path), accepted, rejected, counts, count_lines(path))
